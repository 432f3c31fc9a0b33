// TcpNetwork: the Network of a RealEnv, over TCP/IP (IPv4 and IPv6), with UDP for datagrams.
//
// Listening: one acceptor per io thread of the RealEnv, each its own socket bound with
// SO_REUSEADDR and SO_REUSEPORT to the same address, and each living on its thread's
// executor (listener shard i on env.executor(i)). The kernel spreads incoming connections
// over the sockets by a hash of the 4-tuple, so there is no hand-off: an accepted socket is
// created on its shard's thread and never changes thread, and accepting scales with the
// threads without a shared lock. The cost: the spread is by hash, not by load, and a thread
// that stops accepting leaves its share queued (the server runs an accept loop per shard).
// When asked for port 0, the first socket binds to port 0 and the others to the port the
// kernel chose.
//
// SO_REUSEPORT would also let this process silently join a group already listening on the
// port (any socket of the same user with SO_REUSEPORT). listen() therefore first probes the
// port with a plain bind, so listening on a port in use fails with ALREADY_EXISTS.
//
// Connecting: the host is a numeric IPv4/IPv6 literal, "localhost" (127.0.0.1) or a name
// resolved by the system resolver, whose addresses are tried in order. Streams have
// TCP_NODELAY set, name IPv4 peers of dual-stack sockets as IPv4, and make eof and errors
// sticky: a read after eof gets eof again at once (Asio's reactor alone would wait forever).
//
// Datagrams: open_datagram() binds a UDP socket (no SO_REUSEADDR, so a port in use fails
// with ALREADY_EXISTS) on one io thread of the RealEnv (pick_executor()). Sends go to IP
// literals or "localhost" only: a name lookup per datagram would be a hidden blocking cost.
// Binding to "::" gives a dual-stack socket that also reaches and hears IPv4 peers (unless
// the system sets net.ipv6.bindv6only).
//
// Threading: listen(), open_datagram() and async_connect() may be called from any thread. A
// connect runs its steps on its handler's executor, where, as for any Asio operation,
// cancellation is emitted. Lifetime: the RealEnv outlives the network and everything made
// through it. Listeners, streams and datagram sockets do not refer to the TcpNetwork, so it
// may go before them.
#pragma once

#include <memory>

#include "meshrpc/base/result.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/connector.h"
#include "meshrpc/transport/datagram.h"
#include "meshrpc/transport/listener.h"

namespace meshrpc::transport {

class TcpNetwork final : public Network {
 public:
  explicit TcpNetwork(runtime::RealEnv& env) : env_(env) {}

  TcpNetwork(const TcpNetwork&) = delete;
  TcpNetwork& operator=(const TcpNetwork&) = delete;

  // The host must be an IP literal or "localhost" (binding to a resolved name would pick one
  // of its addresses arbitrarily). Errors: ALREADY_EXISTS (port in use), INVALID_ARGUMENT
  // (not a literal, or not an address of this machine), PERMISSION_DENIED (privileged port),
  // else what to_status() gives (UNAVAILABLE, RESOURCE_EXHAUSTED when out of descriptors).
  Result<std::unique_ptr<Listener>> listen(const Address& address,
                                           const ListenOptions& options) override;
  using Network::listen;

  // The host must be an IP literal or "localhost". Errors as listen()'s.
  Result<std::unique_ptr<DatagramSocket>> open_datagram(const Address& bind_address) override;

 protected:
  // Cancellation through the handler's slot completes the connect at once with
  // operation_aborted, also while the name is still being resolved (the resolver's answer,
  // when it comes, is dropped). Every step runs on the handler's associated executor.
  void initiate_connect(const Address& address, asio::any_io_executor executor,
                        ConnectHandler handler) override;

 private:
  runtime::RealEnv& env_;
};

}  // namespace meshrpc::transport
