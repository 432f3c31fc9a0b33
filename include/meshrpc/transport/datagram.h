// DatagramSocket: unreliable, unordered, message-at-a-time delivery (UDP, or a simulated
// link's datagrams). For protocols that tolerate loss and want no connection: SWIM gossip
// pings and acks. A datagram arrives whole or not at all; it may also arrive late, out of
// order with others, or twice. Nothing tells the sender which.
//
// A socket is bound to one address (Network::open_datagram) and sends to any address from
// it; the receiver sees that address as the datagram's `from`, and can reply to it.
//
// Operations complete with error_codes, as the socket layer speaks them:
//   asio::error::operation_aborted   cancelled (the handler's slot, or close())
//   asio::error::message_size        a send of more than kMaxDatagramBytes
//   asio::error::host_unreachable    a send to a simulated host that does not exist
//   asio::error::invalid_argument    a send to a host that is no IP literal (UDP: no name
//                                    lookups per datagram)
//   others the OS reports            e.g. network_unreachable for a destination with no route
// A send's success means the datagram left, not that it arrived. Errors a lost datagram
// would cause elsewhere (ICMP port unreachable) are not reported: Linux tells unconnected
// UDP sockets nothing, and the simulation follows it. Upper layers turn codes into Status
// with transport::to_status().
//
// Threading: a socket belongs to one executor (get_executor()); start operations and call
// close() only there. At most one receive may be outstanding at a time; sends may overlap.
// Lifetime: destroying the socket closes it; outstanding operations complete with
// operation_aborted, and the socket must outlive their initiation only.
#pragma once

#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <string_view>
#include <utility>

#include "meshrpc/base/buffer.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::transport {

// One received datagram: who sent it (the address to reply to) and its bytes.
struct Datagram {
  Address from;
  Buffer payload;
};

class DatagramSocket {
 public:
  using executor_type = asio::any_io_executor;
  using SendHandler = asio::any_completion_handler<void(error_code, size_t)>;
  using ReceiveHandler = asio::any_completion_handler<void(error_code, Datagram)>;

  // The largest payload one datagram carries: IPv4's 65535-byte packet minus its 20-byte IP
  // and 8-byte UDP headers (IPv6 allows 20 bytes more; the smaller limit holds for both).
  // Anything above a path's MTU (1472 payload bytes on Ethernet) is fragmented by IP and lost
  // whole when any fragment is: protocols that can should stay under it.
  static constexpr size_t kMaxDatagramBytes = 65535 - 20 - 8;

  virtual ~DatagramSocket() = default;

  virtual executor_type get_executor() = 0;

  // Sends `payload` as one datagram to `to`: handler(error_code, bytes_sent). The payload's
  // slices are shared, not copied, and kept until completion.
  template <typename CompletionToken>
  auto async_send_to(Buffer payload, const Address& to, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, size_t)>(
        // Payload and address travel by value: with deferred tokens (use_awaitable)
        // initiation runs after this call returns.
        [this](auto handler, Buffer payload, const Address& to) {
          initiate_send(std::move(payload), to, SendHandler(std::move(handler)));
        },
        token, std::move(payload), to);
  }

  // As above; the bytes are copied before this returns, so they need not outlive the call.
  template <typename CompletionToken>
  auto async_send_to(asio::const_buffer payload, const Address& to, CompletionToken&& token) {
    return async_send_to(
        Buffer::copy_of(std::string_view(static_cast<const char*>(payload.data()), payload.size())),
        to, std::forward<CompletionToken>(token));
  }

  // The next datagram that arrives (or one already queued): handler(error_code, datagram).
  // A datagram is never truncated: every one up to kMaxDatagramBytes arrives whole.
  template <typename CompletionToken>
  auto async_receive_from(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, Datagram)>(
        [this](auto handler) { initiate_receive(ReceiveHandler(std::move(handler))); }, token);
  }

  // The bound address; with the real port when bound to port 0.
  virtual Address local_address() const = 0;

  // Unbinds the address (it may be bound again at once). Outstanding and later operations
  // complete with operation_aborted; datagrams queued for the socket are dropped. Idempotent.
  virtual void close() = 0;

 protected:
  virtual void initiate_send(Buffer payload, const Address& to, SendHandler handler) = 0;
  virtual void initiate_receive(ReceiveHandler handler) = 0;
};

}  // namespace meshrpc::transport
