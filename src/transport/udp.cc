#include "transport/udp.h"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <boost/container/small_vector.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/status.h"
#include "meshrpc/transport/errors.h"
#include "transport/ip_host.h"
#include "transport/tcp_stream.h"  // AdaptedCompletion

namespace meshrpc::transport {
namespace {

using Udp = asio::ip::udp;

// Room for the largest UDP payload of either IP version (IPv6: 65535 - 8), so nothing the
// kernel hands over is ever truncated.
constexpr size_t kReceiveSpaceBytes = 65536;

Status bind_error(const error_code& ec, const Address& requested) {
  const std::string context = "open datagram socket on " + requested.to_string();
  const std::string message = context + ": " + ec.message();
  if (ec == asio::error::address_in_use) return already_exists_error(message);
  if (ec == boost::system::errc::address_not_available || ec == asio::error::invalid_argument) {
    return invalid_argument_error(message);
  }
  if (ec == asio::error::access_denied) return permission_denied_error(message);
  return to_status(ec, context);
}

// Where a datagram to `to` goes from an IPv4 or IPv6 socket: IPv4 targets of an IPv6
// (dual-stack) socket as v4-mapped addresses.
std::optional<Udp::endpoint> target_endpoint(const Address& to, bool from_v6) {
  std::optional<asio::ip::address> ip = parse_ip_host(to.host);
  if (!ip) return std::nullopt;
  if (ip->is_v4() && from_v6) {
    ip = asio::ip::make_address_v6(asio::ip::v4_mapped, ip->to_v4());
  }
  return Udp::endpoint(*ip, to.port);
}

}  // namespace

struct UdpSocket::ReceiveSpace {
  Udp::endpoint sender;
  std::unique_ptr<char[]> bytes = std::make_unique<char[]>(kReceiveSpaceBytes);
};

Result<std::unique_ptr<DatagramSocket>> open_udp(runtime::RealEnv& env,
                                                 const Address& bind_address) {
  const std::optional<asio::ip::address> ip = parse_ip_host(bind_address.host);
  if (!ip) {
    return invalid_argument_error("open datagram socket on " + bind_address.to_string() +
                                  ": host must be an IP address or localhost");
  }
  const Udp::endpoint endpoint(*ip, bind_address.port);
  // Set up here, on the caller's thread, before any operation starts on it; from then on
  // only its executor's thread touches it.
  Udp::socket socket(env.pick_executor());
  error_code ec;
  socket.open(endpoint.protocol(), ec);
  if (!ec) socket.bind(endpoint, ec);
  if (ec) return bind_error(ec, bind_address);
  const Udp::endpoint bound = socket.local_endpoint(ec);  // the real port if 0 was asked
  if (ec) return bind_error(ec, bind_address);
  return std::make_unique<UdpSocket>(std::move(socket), to_address(bound.address(), bound.port()),
                                     endpoint.protocol() == Udp::v6());
}

UdpSocket::UdpSocket(Udp::socket socket, Address local_address, bool is_v6)
    : socket_(std::move(socket)), local_address_(std::move(local_address)), is_v6_(is_v6) {}

void UdpSocket::close() {
  closed_ = true;
  error_code ignored;
  socket_.close(ignored);
}

void UdpSocket::initiate_send(Buffer payload, const Address& to, SendHandler handler) {
  const std::optional<Udp::endpoint> target = target_endpoint(to, is_v6_);
  error_code refused;
  if (closed_) {
    refused = asio::error::operation_aborted;
  } else if (payload.size() > kMaxDatagramBytes) {
    refused = asio::error::message_size;
  } else if (!target) {
    refused = asio::error::invalid_argument;
  }
  if (refused) {
    asio::post(socket_.get_executor(), asio::append(std::move(handler), refused, size_t{0}));
    return;
  }
  // The slices' bytes stay where they are when the Buffer moves into the completion, which
  // keeps them alive until the kernel has taken them.
  boost::container::small_vector<asio::const_buffer, 4> buffers;
  for (const Slice& slice : payload.slices()) buffers.emplace_back(slice.data(), slice.size());
  socket_.async_send_to(
      buffers, *target,
      AdaptedCompletion(
          std::move(handler), socket_.get_executor(),
          [payload = std::move(payload)](SendHandler handler, error_code ec, size_t bytes) mutable {
            std::move(handler)(ec, bytes);
          }));
}

void UdpSocket::initiate_receive(ReceiveHandler handler) {
  if (closed_) {
    asio::post(
        socket_.get_executor(),
        asio::append(std::move(handler), error_code(asio::error::operation_aborted), Datagram()));
    return;
  }
  if (!receive_space_) receive_space_ = std::make_shared<ReceiveSpace>();
  ReceiveSpace& space = *receive_space_;
  socket_.async_receive_from(
      asio::buffer(space.bytes.get(), kReceiveSpaceBytes), space.sender,
      AdaptedCompletion(
          std::move(handler), socket_.get_executor(),
          [space = receive_space_](ReceiveHandler handler, error_code ec, size_t bytes) {
            Datagram datagram;
            if (!ec) {
              datagram.from = to_address(space->sender.address(), space->sender.port());
              datagram.payload =
                  Buffer(Slice::copy_of(std::string_view(space->bytes.get(), bytes)));
            }
            std::move(handler)(ec, std::move(datagram));
          }));
}

}  // namespace meshrpc::transport
