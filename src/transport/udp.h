// UdpSocket: a bound UDP socket as a DatagramSocket (see transport/datagram.h for the
// contract). Private to transport/: TcpNetwork::open_datagram makes them.
#pragma once

#include <boost/asio/ip/udp.hpp>
#include <memory>

#include "meshrpc/base/result.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/datagram.h"

namespace meshrpc::transport {

// Binds a UDP socket to `bind_address` (an IP literal or "localhost"), on one of `env`'s io
// threads (pick_executor()). No SO_REUSEADDR: on UDP it would let a second socket share a
// bound port silently, and UDP has no TIME_WAIT it would be needed for.
Result<std::unique_ptr<DatagramSocket>> open_udp(runtime::RealEnv& env,
                                                 const Address& bind_address);

// Threading and lifetime as DatagramSocket: operations and close() on the socket's executor.
// Sends gather the payload's slices (sendmsg, no copy); receives land in a buffer the socket
// allocates at its first receive (one maximal datagram) and are copied out at the size that
// arrived (a pooled block for small ones), so datagrams an application keeps queued do not
// pin 64 KiB each.
class UdpSocket final : public DatagramSocket {
 public:
  // `socket` is open and bound to `local_address`; `is_v6`: it is an IPv6 socket.
  UdpSocket(asio::ip::udp::socket socket, Address local_address, bool is_v6);
  ~UdpSocket() override = default;

  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  executor_type get_executor() override { return socket_.get_executor(); }
  Address local_address() const override { return local_address_; }
  void close() override;

 protected:
  void initiate_send(Buffer payload, const Address& to, SendHandler handler) override;
  void initiate_receive(ReceiveHandler handler) override;

 private:
  // Where a receive lands. Shared with the receive in flight, which may complete after the
  // socket is gone; the one-receive-at-a-time rule keeps two from sharing it.
  struct ReceiveSpace;

  asio::ip::udp::socket socket_;
  Address local_address_;
  bool is_v6_;
  std::shared_ptr<ReceiveSpace> receive_space_;
  // Set by close(): later operations fail with operation_aborted (the closed descriptor
  // would report bad_descriptor).
  bool closed_ = false;
};

}  // namespace meshrpc::transport
