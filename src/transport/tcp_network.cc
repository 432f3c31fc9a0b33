#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/transport/tcp.h"
#include "tcp_listener.h"
#include "tcp_stream.h"
#include "transport/ip_host.h"
#include "udp.h"

namespace meshrpc::transport {
namespace {

// One connect: resolve the host unless it is a literal, then try its addresses in order.
//
// Threading: every step runs on the handler's associated executor (`handler_executor_`),
// where the caller also emits cancellation, so the state needs no lock; the socket and
// resolver belong to the stream's io executor and are only driven from here.
// Lifetime: shared by the pending Asio operation; the cancellation slot holds only a weak
// reference, so nothing outlives the last pending operation. Cancellation completes the
// handler at once; an operation still pending then completes into a finished op and is
// ignored (a resolve cannot be interrupted: getaddrinfo runs to its end on Asio's resolver
// thread).
class ConnectOp : public std::enable_shared_from_this<ConnectOp> {
 public:
  ConnectOp(const Address& address, const asio::any_io_executor& io_executor,
            Connector::ConnectHandler handler)
      : address_(address),
        io_executor_(io_executor),
        handler_executor_(asio::get_associated_executor(handler, io_executor)),
        handler_(std::move(handler)),
        resolver_(io_executor),
        socket_(io_executor) {}

  void start() {
    asio::cancellation_slot slot = handler_.get_cancellation_slot();
    if (slot.is_connected()) {
      slot.assign([weak = weak_from_this()](asio::cancellation_type) {
        if (auto self = weak.lock()) self->cancel();
      });
    }
    if (auto ip = parse_ip_host(address_.host)) {
      endpoints_.emplace_back(*ip, address_.port);
      connect_next();
      return;
    }
    resolver_.async_resolve(
        address_.host, std::to_string(address_.port), asio::ip::resolver_base::numeric_service,
        asio::bind_executor(handler_executor_,
                            [self = shared_from_this()](
                                error_code ec, asio::ip::tcp::resolver::results_type results) {
                              self->on_resolved(ec, std::move(results));
                            }));
  }

 private:
  void on_resolved(error_code ec, const asio::ip::tcp::resolver::results_type& results) {
    if (finished_) return;
    if (ec) return finish(ec);
    for (const auto& entry : results) endpoints_.push_back(entry.endpoint());
    connect_next();
  }

  void connect_next() {
    if (next_endpoint_ == endpoints_.size()) {
      return finish(last_error_ ? last_error_ : asio::error::host_not_found);
    }
    error_code ignored;
    socket_.close(ignored);  // async_connect reopens it for the next address's protocol
    socket_.async_connect(
        endpoints_[next_endpoint_++],
        asio::bind_executor(handler_executor_, [self = shared_from_this()](error_code ec) {
          self->on_connected(ec);
        }));
  }

  void on_connected(error_code ec) {
    if (finished_) return;
    if (ec) {
      last_error_ = ec;
      return connect_next();
    }
    finish(error_code());
  }

  void cancel() {
    if (finished_) return;
    resolver_.cancel();
    error_code ignored;
    socket_.close(ignored);
    finish(asio::error::operation_aborted);
  }

  // Posted, never invoked inline: finish() may run inside the caller's cancellation emit.
  // Posting through the io executor still completes on the handler's own executor.
  void finish(error_code ec) {
    finished_ = true;
    std::unique_ptr<ByteStream> stream;
    if (!ec) stream = std::make_unique<TcpStream>(std::move(socket_));
    asio::post(io_executor_, asio::append(std::move(handler_), ec, std::move(stream)));
  }

  const Address address_;
  const asio::any_io_executor io_executor_;
  const asio::any_completion_executor handler_executor_;
  Connector::ConnectHandler handler_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  std::vector<asio::ip::tcp::endpoint> endpoints_;
  size_t next_endpoint_ = 0;
  error_code last_error_;
  bool finished_ = false;
};

}  // namespace

Result<std::unique_ptr<Listener>> TcpNetwork::listen(const Address& address,
                                                     const ListenOptions& options) {
  const std::optional<asio::ip::address> ip = parse_ip_host(address.host);
  if (!ip) {
    return invalid_argument_error("listen on " + address.to_string() +
                                  ": host must be an IP address or localhost");
  }
  return listen_tcp(env_, asio::ip::tcp::endpoint(*ip, address.port), address, options);
}

Result<std::unique_ptr<DatagramSocket>> TcpNetwork::open_datagram(const Address& bind_address) {
  return open_udp(env_, bind_address);
}

void TcpNetwork::initiate_connect(const Address& address, asio::any_io_executor executor,
                                  ConnectHandler handler) {
  std::make_shared<ConnectOp>(address, executor, std::move(handler))->start();
}

}  // namespace meshrpc::transport
