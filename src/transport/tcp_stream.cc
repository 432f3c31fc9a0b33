#include "transport/tcp_stream.h"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <boost/container/small_vector.hpp>
#include <utility>

#include "transport/ip_host.h"

namespace meshrpc::transport {
namespace {

// Socket operations keep their own copy of the buffer list, so the span a ByteStream caller
// passes (valid only during initiation) is copied into one of these. Sized like the lists
// ByteStream builds, so the common cases do not allocate.
using ReadBuffers = boost::container::small_vector<asio::mutable_buffer, 8>;
using WriteBuffers = boost::container::small_vector<asio::const_buffer, 16>;

// A failure that every later operation in the same direction would meet too. A cancelled
// operation says nothing about the socket.
bool is_lasting(const error_code& ec) { return ec && ec != asio::error::operation_aborted; }

}  // namespace

Address to_address(const asio::ip::tcp::endpoint& endpoint) {
  return to_address(endpoint.address(), endpoint.port());
}

TcpStream::TcpStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
  error_code ignored;
  // Best effort: a socket whose peer already reset it cannot take options, and its first
  // operation reports that failure.
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  local_address_ = to_address(socket_.local_endpoint(ignored));
  remote_address_ = to_address(socket_.remote_endpoint(ignored));
}

void TcpStream::shutdown_send() {
  error_code ignored;  // not connected (e.g. reset): the next read or write reports it.
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

void TcpStream::close() {
  error_code ignored;
  // FIN first, so the peer reads eof after our data even if this descriptor were shared.
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
}

void TcpStream::abort() {
  error_code ignored;
  // Linger on with a zero timeout makes close() drop unsent data and send RST.
  socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

// The handler (any_completion_handler) carries the caller's executor and cancellation slot
// into the socket operation, so a per-operation cancel reaches the socket's reactor.
void TcpStream::initiate_read(std::span<const asio::mutable_buffer> buffers, ReadHandler handler) {
  if (failures_->read) {
    asio::post(socket_.get_executor(),
               asio::append(std::move(handler), failures_->read, size_t{0}));
    return;
  }
  AdaptedCompletion completion(
      std::move(handler), socket_.get_executor(),
      [failures = failures_](ReadHandler handler, error_code ec, size_t bytes) {
        if (is_lasting(ec)) failures->read = ec;
        std::move(handler)(ec, bytes);
      });
  if (buffers.size() == 1) {
    // A single buffer takes Asio's plain recv() path.
    socket_.async_read_some(buffers.front(), std::move(completion));
    return;
  }
  socket_.async_read_some(ReadBuffers(buffers.begin(), buffers.end()), std::move(completion));
}

void TcpStream::initiate_wait_readable(WaitHandler handler) {
  if (failures_->read) {
    asio::post(socket_.get_executor(), asio::append(std::move(handler), failures_->read));
    return;
  }
  // Readable includes "the peer closed": the read that follows reports eof (and sticks).
  socket_.async_wait(asio::ip::tcp::socket::wait_read, std::move(handler));
}

void TcpStream::initiate_write(std::span<const asio::const_buffer> buffers, WriteHandler handler) {
  if (failures_->write) {
    asio::post(socket_.get_executor(),
               asio::append(std::move(handler), failures_->write, size_t{0}));
    return;
  }
  AdaptedCompletion completion(
      std::move(handler), socket_.get_executor(),
      [failures = failures_](WriteHandler handler, error_code ec, size_t bytes) {
        if (is_lasting(ec)) failures->write = ec;
        std::move(handler)(ec, bytes);
      });
  if (buffers.size() == 1) {
    socket_.async_write_some(buffers.front(), std::move(completion));
    return;
  }
  socket_.async_write_some(WriteBuffers(buffers.begin(), buffers.end()), std::move(completion));
}

}  // namespace meshrpc::transport
