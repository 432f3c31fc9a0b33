// Server: serves registered methods on raw bytes over any transport::Network.
//
//   core::Server server(env, network);
//   server.register_method("/demo.Echo/Say",
//       [](core::ServerContext& ctx, Buffer request) -> awaitable<Result<Buffer>> {
//         co_return request;
//       });
//   auto address = server.start({"127.0.0.1", 0});
//
// Each accepted connection lives on one executor (its listener shard's) and its calls are
// handled there, as coroutines. Calls are rejected *before dispatch* (so a client may retry
// them safely) with RESOURCE_EXHAUSTED past max_concurrent_calls_per_connection,
// max_concurrent_calls or the adaptive concurrency_limit (if one is set; health checks are
// exempt), with DEADLINE_EXCEEDED when they arrive already expired, with
// the UNIMPLEMENTED status code for an unknown method and UNAVAILABLE while shutting down. A
// handler that throws ends its call with INTERNAL; the server stays up. `meshrpc.Health/Check`
// answers "SERVING" (empty request) while the server runs.
//
// Threading: register methods before start(); start() and shutdown() from any thread that
// is not one of the env's; everything else is internal. Lifetime: outlives its calls;
// shutdown() (or destruction) ends them.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/result.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/call_log.h"
#include "meshrpc/core/concurrency_limit.h"
#include "meshrpc/core/connection.h"
#include "meshrpc/core/interceptor.h"
#include "meshrpc/core/server_context.h"
#include "meshrpc/core/stream.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/connector.h"
#include "meshrpc/transport/tls.h"

namespace meshrpc::core {

class ServerConnection;

using Handler = std::function<awaitable<Result<Buffer>>(ServerContext&, Buffer)>;
// A handler that blocks its thread (synchronous disk or library calls). It runs on the env's
// worker pool, never on an io thread; it may poll ctx.cancelled().
using BlockingHandler = std::function<Result<Buffer>(ServerContext&, Buffer)>;

// A streaming handler (stream.h): reads and writes `stream` until it returns the call's final
// status. The call is dispatched when its headers arrive, before any message.
using StreamHandler = std::function<awaitable<Status>(ServerContext&, ServerStream&)>;

inline constexpr std::string_view kHealthCheckMethod = "/meshrpc.Health/Check";

// Serves HTTP/1.1 on the server's port (observe/'s pages and JSON gateway). The server reads
// the first bytes of every connection; one that starts with an HTTP request line is handed
// here, with the bytes already read.
//
// Threading: serve() runs on the stream's executor; shutdown() on any thread; on_server_start()
// on the thread of Server::start(), before any serve().
class HttpConnectionHandler {
 public:
  virtual ~HttpConnectionHandler() = default;
  // `first_bytes` (the start of the request) were read from `stream` already.
  virtual void serve(std::shared_ptr<transport::ByteStream> stream, Buffer first_bytes) = 0;
  // The server is shutting down (or going away): finish what is in flight, close the rest.
  virtual void shutdown() = 0;
  // Server::start() calls this on its own thread before it accepts the first connection:
  // registration is over, so the handler may take a copy of what is registered.
  virtual void on_server_start() {}
};

// A unary call made in-process (Server::call_local), for gateways that translate another
// protocol into calls: it meets the same limits, interceptors and deadline as one from the
// network.
struct LocalCall {
  LocalCall() = default;
  explicit LocalCall(std::string method, Buffer request = {}, Metadata metadata = {})
      : method(std::move(method)), request(std::move(request)), metadata(std::move(metadata)) {}

  std::string method;  // canonical or dotted
  Buffer request;
  Metadata metadata;
  runtime::TimePoint deadline = runtime::kInfiniteFuture;
  transport::Address peer;  // who asked (the HTTP client), as ServerContext::peer()
  // Its verified certificate identity (an HTTPS client with a certificate), or null.
  std::shared_ptr<const transport::PeerIdentity> peer_identity;
  // Receives the handler's response metadata, if not null.
  Metadata* response_metadata = nullptr;
};

// A server's connection defaults: ConnectionOptions' with an idle timeout. 30 minutes: an
// idle client costs a socket and keepalive traffic; one idle that long reconnects (one round
// trip) when it next calls, and a call that races the GOAWAY fails as not processed, which
// cluster::Client retries.
inline ConnectionOptions default_server_connection_options() {
  ConnectionOptions options;
  options.peer_limits.idle_timeout = std::chrono::minutes(30);
  return options;
}

struct ServerOptions {
  // connection.limits.max_concurrent_streams bounds the calls in flight on one connection;
  // connection.peer_limits what a client may do before it counts as abuse (peer_guard.h).
  ConnectionOptions connection = default_server_connection_options();
  // Connections open at once, whatever they speak (meshrpc, HTTP, or not yet known). Past
  // it a new connection is refused: a meshrpc client reads a GOAWAY saying so
  // (RESOURCE_EXHAUSTED), then the socket closes. 10,000: each costs a descriptor and some
  // tens of KiB; with connection.peer_limits.max_pending_bytes it bounds the server's memory.
  size_t max_connections = 10'000;
  // Connections open at once from one IP address, so that one client cannot take them all.
  // 1,000: a meshrpc client opens one per I/O thread per server; a thousand is a NAT of
  // hundreds of hosts, or a leak.
  size_t max_connections_per_peer = 1'000;
  // Calls in flight on the whole server. 10,000: a bound on memory (each call holds its
  // request and a coroutine frame) far above what 2 cores serve at once.
  size_t max_concurrent_calls = 10'000;
  // Run around every handler, in order (see interceptor.h).
  ServerInterceptors interceptors;
  // Blocking calls queued for or running on the worker pool; past it, RESOURCE_EXHAUSTED
  // before dispatch. 64: a few seconds of backlog for a pool of 4 at ~100 ms per call,
  // rather than an unbounded queue that turns overload into timeouts.
  size_t max_blocking_calls = 64;
  // A limit on calls in flight that adapts to load, asked before each call is dispatched
  // (after the fixed limits above); calls it sheds end RESOURCE_EXHAUSTED before dispatch, so
  // clients may retry them on another server. Health checks are never shed: a server shedding
  // load is still alive, and being taken out of rotation would move its load onto the rest.
  // Null (the default): off, at the cost of one null check per call. See
  // cluster/adaptive_limit.h for the latency-driven one.
  std::shared_ptr<ConcurrencyLimit> concurrency_limit;
  // A new connection must send its first 8 bytes (the meshrpc preface, or the start of an
  // HTTP request) within this, or it is closed: idle sockets cost file descriptors.
  runtime::Duration first_bytes_timeout = std::chrono::seconds(10);
  // TLS (transport/tls.h): the server's credentials; null serves plaintext only. A connection
  // whose first byte starts a TLS handshake gets one, then speaks RPC or HTTP inside it, on
  // the same port as plaintext. Handlers see a client certificate as
  // ServerContext::peer_identity().
  std::shared_ptr<transport::TlsCredentials> tls;
  // With `tls`: close every connection that does not start TLS, once its first bytes show it
  // (meshrpc_server_connections_refused_total{reason="plaintext"}). Off by default so that
  // loopback development and health checks keep working; turn it on in production.
  bool require_tls = false;
  // A TLS handshake must be done this long after its first byte, or the connection is closed
  // (a client holding a socket half-way through a handshake). 10 s: a real handshake takes
  // one or two round trips, even across continents under load.
  runtime::Duration tls_handshake_timeout = std::chrono::seconds(10);
  // Where the server's metrics are exposed (meshrpc_server_*, docs/metrics.md): per method,
  // calls started and finished by code, latency, bytes, in flight; connections. Recorded on
  // every call at a cost of a few sharded counter adds and a histogram record; null turns
  // recording off (one null check per call remains). The registry outlives the server.
  MetricRegistry* metrics = &MetricRegistry::global();
  // The recent and slowest calls kept for /rpcz (call_log.h): method, peer, timing, status,
  // trace id, bytes of each finished call, including those rejected before dispatch. On by
  // default (one uncontended lock and a slot copy per call); nullopt turns it off.
  std::optional<CallLogOptions> rpcz = CallLogOptions{};
};

class ServerHandle;

class Server {
 public:
  Server(runtime::Env& env, transport::Network& network, ServerOptions options = {});
  // On real threads, closes every connection and waits until they and the accept loops have
  // ended: the env's threads must still be running (destroy the server before stopping the
  // env). Under simulation it closes them at once.
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers `handler` for `method` ("/package.Service/Method", or the dotted form
  // "package.Service.Method"; see method_name.h); any other name throws
  // std::invalid_argument. A second registration of a name replaces the first. Before start()
  // only.
  void register_method(std::string method, Handler handler);
  // Registers a streaming handler (server-streaming, client-streaming or bidirectional: the
  // handler decides how many messages it reads and writes). Names as for register_method.
  void register_stream_method(std::string method, StreamHandler handler);
  // Registers a handler that blocks: it runs on the worker pool (Env::blocking_executor).
  void register_blocking_method(std::string method, BlockingHandler handler);

  // Connections that start with an HTTP request go to `handler` (without one they are
  // closed). Before start() only.
  void set_http_handler(std::shared_ptr<HttpConnectionHandler> handler);

  // Runs a unary method in-process as if the call had come from the network: admission
  // limits (RESOURCE_EXHAUSTED), interceptors, the deadline (DEADLINE_EXCEEDED), UNIMPLEMENTED
  // for an unknown or streaming method, UNAVAILABLE once shutting down. Counts as an active
  // call for shutdown. Runs on the caller's executor (a blocking method: the worker pool).
  awaitable<Result<Buffer>> call_local(LocalCall call);
  // True if `method` is registered and unary.
  bool has_method(std::string_view method) const;

  // Listens and starts accepting. Returns the bound address (with the real port).
  Result<transport::Address> start(const transport::Address& address);

  // Stops accepting, tells every connection GOAWAY (calls not yet started are refused with
  // UNAVAILABLE, rejected before dispatch), lets calls in flight finish, then closes.
  // `done` runs (on some executor of the env) once every call has finished or `grace` has
  // passed, whichever is first; calls still running then are cancelled.
  void shutdown(runtime::Duration grace, UniqueFunction<void()> done);

  bool is_shutting_down() const;
  size_t active_calls() const;
  size_t connection_count() const;
  runtime::Env& env();
  // The server's recent and slowest calls (ServerOptions::rpcz); null when off. Lives as
  // long as the server.
  const CallLog* call_log() const;
  // A handle on this server that stays safe to use after the Server is destroyed (see
  // ServerHandle): what an HTTP handler's connections hold, as they may outlive the server.
  // It does not keep the server's state alive (the server holds its HTTP handler, which
  // holds the handle: a strong handle would be a cycle).
  ServerHandle shared_handle() const;

 private:
  friend class ServerConnection;
  friend class ServerHandle;
  // Everything connections and calls need, shared so that they may outlive the Server
  // object by the few turns it takes them to wind down.
  struct State;
  awaitable<void> accept_loop(std::shared_ptr<State> state, size_t shard);

  std::shared_ptr<State> state_;
  // Declared after state_, so destroyed first: once it is gone no collector reads the
  // server's metrics (which the state, and so calls winding down, still co-own).
  MetricRegistry::Registration metrics_registration_;
};

// What a gateway or a built-in page reads of a Server: its local calls, methods, call log.
// Unlike the Server itself, a handle may be used after the server is destroyed: it then
// answers as a server that is gone (local calls fail UNAVAILABLE, no methods, no call log).
// A call in progress keeps what it uses alive. Copyable; every member is thread-safe; the
// env outlives it.
class ServerHandle {
 public:
  // As Server::call_local.
  awaitable<Result<Buffer>> call_local(LocalCall call) const;
  bool has_method(std::string_view method) const;
  // True once the server began shutting down, and after it is gone.
  bool is_shutting_down() const;
  runtime::Env& env() const { return *env_; }
  // The recent and slowest calls (ServerOptions::rpcz); nullopt when off or the server is
  // gone.
  std::optional<CallLogSnapshot> call_log_snapshot() const;

 private:
  friend class Server;
  ServerHandle(std::weak_ptr<Server::State> state, runtime::Env& env)
      : state_(std::move(state)), env_(&env) {}
  // The coroutine owns the state while it runs: it may outlive this handle (a temporary).
  static awaitable<Result<Buffer>> run_local(std::shared_ptr<Server::State> state, LocalCall call);
  static awaitable<Result<Buffer>> run_gone();
  std::weak_ptr<Server::State> state_;
  runtime::Env* env_;
};

}  // namespace meshrpc::core
