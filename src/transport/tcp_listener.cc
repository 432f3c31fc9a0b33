#include "tcp_listener.h"

#include <sys/socket.h>

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <cassert>
#include <string>
#include <utility>

#include "meshrpc/base/status.h"
#include "meshrpc/transport/errors.h"
#include "tcp_stream.h"

namespace meshrpc::transport {

struct TcpListener::Shard {
  explicit Shard(asio::any_io_executor shard_executor)
      : executor(std::move(shard_executor)), acceptor(executor) {}

  // On `executor` only.
  void close() {
    closed = true;
    error_code ignored;
    acceptor.close(ignored);
  }

  asio::any_io_executor executor;
  asio::ip::tcp::acceptor acceptor;
  // Set by close(), so an accept started after it fails like the ones it aborted.
  bool closed = false;
};

namespace {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

Status listen_error(const error_code& ec, const Address& requested) {
  const std::string context = "listen on " + requested.to_string();
  const std::string message = context + ": " + ec.message();
  if (ec == asio::error::address_in_use) return already_exists_error(message);
  if (ec == boost::system::errc::address_not_available || ec == asio::error::invalid_argument) {
    return invalid_argument_error(message);
  }
  if (ec == asio::error::access_denied) return permission_denied_error(message);
  return to_status(ec, context);
}

// SO_REUSEPORT lets a socket join any group of the same user already bound to the port, so
// a port in use would not be reported. A plain bind (SO_REUSEADDR only, which still
// conflicts with a listening socket but not with TIME_WAIT leftovers) detects it.
error_code probe_port_free(const asio::any_io_executor& executor,
                           const asio::ip::tcp::endpoint& endpoint) {
  asio::ip::tcp::acceptor probe(executor);
  error_code ec;
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) probe.bind(endpoint, ec);
  return ec;
}

error_code bind_and_listen(asio::ip::tcp::acceptor& acceptor,
                           const asio::ip::tcp::endpoint& endpoint, int backlog) {
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.set_option(ReusePort(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(backlog, ec);
  return ec;
}

}  // namespace

Result<std::unique_ptr<Listener>> listen_tcp(runtime::RealEnv& env,
                                             const asio::ip::tcp::endpoint& endpoint,
                                             const Address& requested,
                                             const ListenOptions& options) {
  // The acceptors are set up here, on the caller's thread, before any operation is started on
  // them; from then on only their own threads touch them.
  if (endpoint.port() != 0) {
    if (error_code ec = probe_port_free(env.executor(0), endpoint)) {
      return listen_error(ec, requested);
    }
  }
  std::vector<std::shared_ptr<TcpListener::Shard>> shards;
  asio::ip::tcp::endpoint bound = endpoint;
  for (size_t i = 0; i < env.executor_count(); ++i) {
    auto shard = std::make_shared<TcpListener::Shard>(env.executor(i));
    if (error_code ec = bind_and_listen(shard->acceptor, bound, options.backlog)) {
      return listen_error(ec, requested);
    }
    error_code ec;
    if (i == 0) bound = shard->acceptor.local_endpoint(ec);  // the real port if 0 was asked
    if (ec) return listen_error(ec, requested);
    shards.push_back(std::move(shard));
  }
  return std::make_unique<TcpListener>(std::move(shards), to_address(bound));
}

TcpListener::TcpListener(std::vector<std::shared_ptr<Shard>> shards, Address local_address)
    : shards_(std::move(shards)), local_address_(std::move(local_address)) {}

TcpListener::~TcpListener() { close(); }

asio::any_io_executor TcpListener::shard_executor(size_t shard) {
  assert(shard < shards_.size());
  return shards_[shard]->executor;
}

void TcpListener::close() {
  // Once is enough; a listener closed earlier must not reach for executors in its destructor
  // (their env may be gone by then).
  if (close_requested_.exchange(true)) return;
  // Runs at once for the caller's own shard, so an accept it starts next already fails;
  // other shards close when their threads get to it.
  for (const auto& shard : shards_) {
    asio::dispatch(shard->executor, [shard] { shard->close(); });
  }
}

void TcpListener::initiate_accept(size_t shard_index, AcceptHandler handler) {
  assert(shard_index < shards_.size());
  Shard& shard = *shards_[shard_index];
  if (shard.closed) {
    asio::post(shard.executor,
               asio::append(std::move(handler), error_code(asio::error::operation_aborted),
                            std::unique_ptr<ByteStream>()));
    return;
  }
  // The accepted socket takes the acceptor's executor: it stays on this shard's thread.
  shard.acceptor.async_accept(
      AdaptedCompletion(std::move(handler), shard.executor,
                        [](AcceptHandler handler, error_code ec, asio::ip::tcp::socket socket) {
                          std::unique_ptr<ByteStream> stream;
                          if (!ec) stream = std::make_unique<TcpStream>(std::move(socket));
                          std::move(handler)(ec, std::move(stream));
                        }));
}

}  // namespace meshrpc::transport
