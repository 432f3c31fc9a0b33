// Connector and Network: how a host reaches others.
//
// Network is one host's view of the network: it listens on addresses, connects out, and
// opens datagram sockets. TcpNetwork (RealEnv: TCP and UDP) and SimNetwork's hosts (SimEnv)
// implement it, so servers and clients take a Network& and run unchanged on both.
#pragma once

#include <memory>

#include "meshrpc/base/result.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/byte_stream.h"
#include "meshrpc/transport/datagram.h"
#include "meshrpc/transport/listener.h"

namespace meshrpc::transport {

class Connector {
 public:
  using ConnectHandler =
      asio::any_completion_handler<void(error_code, std::unique_ptr<ByteStream>)>;

  virtual ~Connector() = default;

  // handler(error_code, stream) with the stream bound to `executor`. Errors:
  // connection_refused, host_unreachable, timed_out, operation_aborted (cancelled through the
  // handler's slot: race it with a timer for a connect timeout), or a resolve failure.
  template <typename CompletionToken>
  auto async_connect(const Address& address, asio::any_io_executor executor,
                     CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, std::unique_ptr<ByteStream>)>(
        // The address travels by value: with deferred tokens (use_awaitable) initiation runs
        // after this call returns, when a temporary argument may be gone.
        [this, executor](auto handler, const Address& target) {
          initiate_connect(target, executor, ConnectHandler(std::move(handler)));
        },
        token, address);
  }

 protected:
  virtual void initiate_connect(const Address& address, asio::any_io_executor executor,
                                ConnectHandler handler) = 0;
};

class Network : public Connector {
 public:
  // Binds and starts listening. Errors: address in use (ALREADY_EXISTS), bad address or a
  // host name where an IP literal is needed (INVALID_ARGUMENT), a privileged port without the
  // right (PERMISSION_DENIED), other failures (UNAVAILABLE), each naming the address.
  virtual Result<std::unique_ptr<Listener>> listen(const Address& address,
                                                   const ListenOptions& options) = 0;
  Result<std::unique_ptr<Listener>> listen(const Address& address) {
    return listen(address, ListenOptions{});
  }

  // Binds a datagram socket to `bind_address` (port 0: a free port the socket reports in
  // local_address()). Errors as for listen(): ALREADY_EXISTS (port in use), INVALID_ARGUMENT,
  // PERMISSION_DENIED, else UNAVAILABLE, each naming the address.
  virtual Result<std::unique_ptr<DatagramSocket>> open_datagram(const Address& bind_address) = 0;
};

}  // namespace meshrpc::transport
