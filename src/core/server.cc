#include "meshrpc/core/server.h"

#include <array>
#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <variant>

#include "call_metrics.h"
#include "connection_admission.h"
#include "connection_sink.h"
#include "meshrpc/base/logging.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/core/trace.h"
#include "meshrpc/runtime/buggify.h"
#include "meshrpc/wire/preface.h"

namespace meshrpc::core {

using namespace asio::experimental::awaitable_operators;

const std::string* find_metadata(const Metadata& metadata, std::string_view key) {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

uint32_t attempt_number(const Metadata& metadata) {
  const std::string* value = find_metadata(metadata, kAttemptMetadataKey);
  if (value == nullptr || value->empty() || value->size() > 10) return 1;
  uint64_t number = 0;
  for (char c : *value) {
    if (c < '0' || c > '9') return 1;
    number = number * 10 + static_cast<uint64_t>(c - '0');
  }
  return number >= 1 && number <= (uint64_t{1} << 31) ? static_cast<uint32_t>(number) : 1;
}

class ServerConnection;

namespace {

// A call's place under ServerOptions::concurrency_limit, given back with the call's latency
// however the call ends: explicitly with its outcome, or as a failure if the coroutine
// holding it is destroyed unfinished. Empty (no cost but a null check) when the server has no
// such limit or the call is exempt. Co-owns the limit: it may outlive the server's state.
class LimitPermit {
 public:
  LimitPermit() = default;
  LimitPermit(std::shared_ptr<ConcurrencyLimit> limit, runtime::Env& env)
      : limit_(std::move(limit)), env_(&env), admitted_(env.now()) {}
  LimitPermit(LimitPermit&& other) noexcept = default;
  LimitPermit& operator=(LimitPermit&& other) noexcept {
    release(false);
    limit_ = std::move(other.limit_);
    env_ = other.env_;
    admitted_ = other.admitted_;
    return *this;
  }
  ~LimitPermit() { release(false); }

  void release(bool ok) {
    if (limit_ == nullptr) return;
    std::exchange(limit_, nullptr)->release(env_->now() - admitted_, ok);
  }

 private:
  std::shared_ptr<ConcurrencyLimit> limit_;
  runtime::Env* env_ = nullptr;
  runtime::TimePoint admitted_{};
};

// What a connection's first bytes turned out to be (ServerConnection::sniff).
enum class Protocol { kMeshrpc, kHttp, kUnrecognized };
constexpr std::array<std::string_view, 3> kProtocolLabels = {"meshrpc", "http", "unrecognized"};
// How a TLS handshake ended (ServerMetrics::tls_handshakes).
enum class HandshakeOutcome { kOk, kCertificateRejected, kTimeout, kFailed };
constexpr std::array<std::string_view, 4> kHandshakeLabels = {"ok", "certificate_rejected",
                                                              "timeout", "failed"};

// The server's metrics, shared by its state (calls record into them) and its collector.
// Per-method metrics are created when a method is registered and found through the
// method's table entry; `mutex` only orders registration against collection.
struct ServerMetrics {
  detail::CallMetrics* method(const std::string& name) {
    std::lock_guard lock(mutex);
    auto& slot = methods[name];
    slot = std::make_unique<detail::CallMetrics>();  // a re-registration starts over
    return slot.get();
  }
  void write(MetricWriter& writer) const;

  mutable std::mutex mutex;
  std::map<std::string, std::unique_ptr<detail::CallMetrics>> methods;  // by method label
  // Connections by what their first bytes were; meshrpc ones closed.
  std::array<Counter, 3> accepted;
  // TLS handshakes by outcome (kHandshakeLabels), and plaintext refused by require_tls.
  std::array<Counter, 4> tls_handshakes;
  Counter plaintext_refused;
  // Connections refused for max_connections and max_connections_per_peer.
  Counter refused_max_connections;
  Counter refused_max_per_peer;
  // Limits clients hit on their connections (PeerGuard::Violation), shared by them all.
  std::array<Counter, PeerGuard::kViolationCount> limit_hits;
  std::shared_ptr<transport::TlsCredentials> tls;  // for its certificate's expiry; may be null
  Counter meshrpc_closed;
  Counter streams_opened;
  Counter flow_control_stalls;
};

void ServerMetrics::write(MetricWriter& writer) const {
  {
    std::lock_guard lock(mutex);
    for (const auto& [name, metrics] : methods) {
      metrics->write(writer, "meshrpc_server", {{"method", name}});
    }
  }
  for (size_t i = 0; i < accepted.size(); ++i) {
    writer.counter("meshrpc_server_connections_accepted_total",
                   "Connections accepted, by the protocol their first bytes spoke (counted "
                   "once classified; unrecognized ones are closed at once).",
                   {{"protocol", std::string(kProtocolLabels[i])}}, accepted[i].value());
  }
  if (tls) {
    for (size_t i = 0; i < tls_handshakes.size(); ++i) {
      writer.counter("meshrpc_server_tls_handshakes_total",
                     "TLS handshakes by outcome: ok, certificate_rejected (the client's "
                     "certificate missing, expired or untrusted), timeout, failed.",
                     {{"result", std::string(kHandshakeLabels[i])}}, tls_handshakes[i].value());
    }
    writer.gauge("meshrpc_server_tls_certificate_expiry_seconds",
                 "When the server's TLS certificate expires, in seconds since the epoch: alert "
                 "on it nearing now.",
                 {}, static_cast<double>(tls->certificate_not_after()));
  }
  const char* refused_help =
      "Connections closed before they were served: plaintext while the server requires TLS, "
      "or past max_connections or max_connections_per_peer.";
  writer.counter("meshrpc_server_connections_refused_total", refused_help,
                 {{"reason", "plaintext"}}, plaintext_refused.value());
  writer.counter("meshrpc_server_connections_refused_total", refused_help,
                 {{"reason", "max_connections"}}, refused_max_connections.value());
  writer.counter("meshrpc_server_connections_refused_total", refused_help,
                 {{"reason", "max_connections_per_peer"}}, refused_max_per_peer.value());
  for (size_t i = 1; i < limit_hits.size(); ++i) {
    writer.counter("meshrpc_server_peer_limits_hit_total",
                   "Times a client hit a limit on its connection (ConnectionOptions::"
                   "peer_limits): a flood of PING, SETTINGS or cancelled streams, too slow a "
                   "sender, idle, or too many pending bytes.",
                   {{"limit", std::string(PeerGuard::label(static_cast<PeerGuard::Violation>(i)))}},
                   limit_hits[i].value());
  }
  // Closed before accepted, as for calls: never more closed than opened.
  const uint64_t closed = meshrpc_closed.value();
  const uint64_t opened = accepted[static_cast<size_t>(Protocol::kMeshrpc)].value();
  const MetricLabels meshrpc = {{"protocol", "meshrpc"}};
  writer.counter("meshrpc_server_connections_closed_total", "meshrpc connections closed.", meshrpc,
                 closed);
  writer.gauge("meshrpc_server_connections_open", "meshrpc connections open.", meshrpc,
               opened > closed ? static_cast<double>(opened - closed) : 0.0);
  writer.counter("meshrpc_server_streams_opened_total",
                 "Calls of streaming methods dispatched to their handler.", {},
                 streams_opened.value());
  writer.counter("meshrpc_server_flow_control_stalls_total",
                 "Times a reply or stream message had to wait for the client to grant "
                 "flow-control window (a slow reader, or a window too small).",
                 {}, flow_control_stalls.value());
}

}  // namespace

namespace {

// A handler's failure, with the call's trace so it can be found in /rpcz and across services:
// bugs (INTERNAL, UNKNOWN, DATA_LOSS of a call nobody cancelled) as warnings (rate-limited per
// site), the rest at debug.
void log_failed_call(const ServerContext& context, const Status& status) {
  const StatusCode code = status.code();
  // A call cancelled from outside (the client's CANCEL, its deadline, shutdown) may end in
  // whatever its handler made of the cancellation: not a bug of the handler.
  if (!context.cancelled() && (code == StatusCode::kInternal || code == StatusCode::kUnknown ||
                               code == StatusCode::kDataLoss)) {
    MESHRPC_LOG_WARN("call {} from {} failed: {} trace_id={} span_id={}", context.method(),
                     context.peer().to_string(), status.to_string(), context.trace_id().to_hex(),
                     span_id_hex(context.span_id()));
  } else {
    MESHRPC_LOG_DEBUG("call {} from {} failed: {} trace_id={} span_id={}", context.method(),
                      context.peer().to_string(), status.to_string(), context.trace_id().to_hex(),
                      span_id_hex(context.span_id()));
  }
}

}  // namespace

struct Server::State {
  State(runtime::Env& env, transport::Network& network, ServerOptions options)
      : env(env), network(network), options(std::move(options)) {
    if (this->options.metrics != nullptr) {
      metrics = std::make_shared<ServerMetrics>();
      other_method_metrics = metrics->method(std::string(detail::kOtherMethodLabel));
      // Connections count into the metrics, which the state (and so every connection) co-owns.
      this->options.connection.flow_control_stalls = &metrics->flow_control_stalls;
      this->options.connection.limit_hits = &metrics->limit_hits;
      metrics->tls = this->options.tls;
    }
    if (this->options.rpcz) call_log = std::make_unique<CallLog>(env, *this->options.rpcz);
    admission = std::make_shared<detail::ConnectionAdmission>(
        this->options.max_connections, this->options.max_connections_per_peer);
  }

  bool try_begin_call() {
    if (active_calls.fetch_add(1, std::memory_order_relaxed) >= options.max_concurrent_calls) {
      active_calls.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void end_call();
  void remove(ServerConnection* connection);
  void finish_shutdown();

  struct Method;
  void add_method(const std::string& name, Method method);
  // True if `method` (either name form) is registered and unary.
  bool has_unary(std::string_view method) const;
  // The metrics of calls to `method` (null: unknown method); null when metrics are off.
  detail::CallMetrics* metrics_of(const std::pair<const std::string, Method>* method) const {
    return method != nullptr ? method->second.metrics : other_method_metrics;
  }
  // Admits a call to `method` or rejects it before dispatch (RESOURCE_EXHAUSTED): the
  // server's call limit, the worker pool's queue, the adaptive limit. On success the call
  // counts as active (end_call() when it is done) and, if blocking, holds a pool place.
  Result<LimitPermit> admit(const std::pair<const std::string, Method>& method);
  // Runs the interceptors and the handler under the call's deadline. `rejected`: an
  // interceptor refused the call before the handler ran.
  struct Outcome {
    Result<Buffer> result = internal_error("handler did not finish");
    bool rejected = false;
  };
  awaitable<Outcome> invoke(const Method& method, ServerContext& context, Buffer request,
                            std::shared_ptr<detail::StreamCore> stream);

  runtime::Env& env;
  transport::Network& network;
  ServerOptions options;
  struct Method {
    Handler handler;
    bool blocking = false;
    StreamHandler stream_handler = {};       // set for a streaming method (then `handler` is not)
    detail::CallMetrics* metrics = nullptr;  // owned by `metrics` below; null when off
  };
  std::unordered_map<std::string, Method> handlers;
  std::shared_ptr<HttpConnectionHandler> http_handler;  // set before start()
  std::atomic<size_t> blocking_calls{0};
  std::unique_ptr<transport::Listener> listener;
  std::atomic<size_t> active_calls{0};
  std::atomic<bool> shutting_down{false};
  std::mutex mutex;                 // guards what follows (never taken on the per-call path)
  std::condition_variable changed;  // connections or accept_loops changed
  std::set<std::shared_ptr<ServerConnection>> connections;
  size_t accept_loops = 0;
  UniqueFunction<void()> shutdown_done;
  // Null when ServerOptions::metrics is.
  std::shared_ptr<ServerMetrics> metrics;
  detail::CallMetrics* other_method_metrics = nullptr;  // calls to unregistered methods
  std::unique_ptr<CallLog> call_log;                    // null when ServerOptions::rpcz is
  std::shared_ptr<detail::ConnectionAdmission> admission;
};

// The server side of one connection: its table of calls. Lives on the connection's executor.
class ServerConnection final : public Connection::Delegate,
                               public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(std::shared_ptr<Server::State> state,
                   std::unique_ptr<transport::ByteStream> stream,
                   std::unique_ptr<detail::ConnectionAdmission::Ticket> ticket)
      : state_(std::move(state)),
        ticket_(std::move(ticket)),
        executor_(stream->get_executor()),
        stream_(std::move(stream)) {}
  ~ServerConnection() override {
    if (connection_) connection_->detach();
  }

  // Reads the first bytes, then serves meshrpc frames or hands the stream to the HTTP handler.
  void start() {
    asio::co_spawn(
        executor_, [self = shared_from_this()] { return self->sniff(); },
        asio::bind_cancellation_slot(sniff_cancel_.slot(), asio::detached));
  }
  asio::any_io_executor executor() { return executor_; }

  // Shutdown, step 1: refuse new calls, tell the client which calls will still be served.
  void begin_drain() {
    draining_ = true;
    if (!connection_) return close();  // still sniffing: nothing was served
    connection_->send_goaway(highest_id_, StatusCode::kOk, "server shutting down").ignore_error();
  }
  // Shutdown, step 2: end what is left.
  void close() {
    if (!connection_) {
      closed_ = true;
      // Ends the sniff's read, or the TLS handshake that owns the stream by now.
      if (stream_) stream_->abort();
      sniff_cancel_.emit(asio::cancellation_type::terminal);
      // Removed here, not by the sniff: a crash destroys the sniff's frame without running it,
      // and the state and this connection would keep each other alive. Last: may free `this`.
      state_->remove(this);
      return;
    }
    cancel_running();
    connection_->close(unavailable_error("server shut down"));
  }

  void on_headers(uint64_t id, wire::Headers headers, bool end_stream) override;
  void on_message(uint64_t id, Buffer message, bool has_message, bool end_stream) override;
  void on_trailers(uint64_t, wire::Trailers) override {}  // the decoder rejects these
  void on_cancel(uint64_t id, wire::Cancel cancel) override;
  void on_stream_error(uint64_t id, const Status& status) override {
    reject(id, status);  // the handler never saw this call
  }
  void on_goaway(const wire::GoAway&) override {}
  void on_stream_writable(uint64_t id) override {
    auto it = calls_.find(id);
    if (it != calls_.end() && it->second.stream) it->second.stream->on_writable();
  }
  void on_closed(const Status&) override {
    closed_ = true;
    if (state_->metrics) state_->metrics->meshrpc_closed.increment();
    cancel_running();
    auto self = shared_from_this();  // the state's set may hold the last reference
    state_->remove(this);
  }

 private:
  struct Call {
    std::shared_ptr<ServerContext> context;
    Buffer request;
    bool dispatched = false;
    std::shared_ptr<asio::cancellation_signal> cancel;
    std::shared_ptr<detail::StreamCore> stream;  // a streaming call's messages
    bool cancel_emitted = false;
    // Bytes of `request` counted by Connection::hold_request_bytes until the call ends.
    size_t held_bytes = 0;
    // The registered method (handlers are fixed once the server starts); null if unknown.
    const std::pair<const std::string, Server::State::Method>* method = nullptr;
    // Until dispatch; then run() holds it. Destroyed unfinished: CANCELLED.
    detail::CallRecord record;
  };

  void reject(uint64_t id, Status status) {
    if (auto it = calls_.find(id); it != calls_.end()) {
      it->second.record.finish(status);
      erase_call(it);
    }
    if (closed_) return;
    connection_->send_trailers(id, wire::Trailers{std::move(status), true, {}}).ignore_error();
  }
  awaitable<void> sniff();
  // Reads into `first` until its start is classified, or a TLS handshake record starts it
  // (when the server has TLS and `tls_allowed`), or the deadline passes.
  enum class Start { kMeshrpc, kHttp, kTls, kOther };
  awaitable<Start> read_start(Buffer& first, runtime::TimePoint deadline, bool tls_allowed);
  // Replaces stream_ with a TLS session over it; false if the handshake failed (counted).
  awaitable<bool> accept_tls(Buffer already_read);
  void dispatch(uint64_t id, Call& call);
  awaitable<void> run(uint64_t id, const Server::State::Method* method,
                      std::shared_ptr<ServerContext> context, Buffer request, LimitPermit permit,
                      std::shared_ptr<detail::StreamCore> stream, detail::CallRecord record);
  void finish(uint64_t id, ServerContext& context, Result<Buffer> result, bool rejected,
              bool send_reply, detail::CallRecord& record);
  void cancel_running();
  // Forgets a call, and the request bytes it held against max_pending_bytes.
  void erase_call(std::unordered_map<uint64_t, Call>::iterator it) {
    if (it->second.held_bytes > 0) connection_->release_request_bytes(it->second.held_bytes);
    calls_.erase(it);
  }

  std::shared_ptr<Server::State> state_;
  // This connection's place under max_connections; goes with the stream to the HTTP handler.
  std::unique_ptr<detail::ConnectionAdmission::Ticket> ticket_;
  asio::any_io_executor executor_;
  // The accepted stream (or the TLS session over it) until sniff() decides what it carries;
  // then moved into connection_ (meshrpc) or to the HTTP handler.
  std::unique_ptr<transport::ByteStream> stream_;
  // Cancels the sniff (its reads, its TLS handshake) when the connection is closed first.
  asio::cancellation_signal sniff_cancel_;
  std::shared_ptr<Connection> connection_;
  std::unordered_map<uint64_t, Call> calls_;
  uint64_t highest_id_ = 0;
  bool draining_ = false;
  bool closed_ = false;
};

void ServerConnection::on_headers(uint64_t id, wire::Headers headers, bool end_stream) {
  highest_id_ = id;
  runtime::Env& env = state_->env;
  // Looked up once, here; the call's metrics and dispatch() use it.
  auto found = state_->handlers.find(headers.method);
  const bool unknown = found == state_->handlers.end();
  detail::CallRecord record(state_->metrics_of(unknown ? nullptr : &*found), env,
                            state_->call_log.get());
  const size_t limit = state_->options.connection.limits.max_concurrent_streams;
  if (draining_ || calls_.size() >= limit) {
    // Refused before a context exists: the span shows the client's trace, if it sent one.
    Status status = draining_
                        ? unavailable_error("server is shutting down")
                        : resource_exhausted_error("connection has max_concurrent_streams " +
                                                   std::to_string(limit) + " calls in flight");
    const transport::Address peer = connection_->remote_address();
    const std::optional<TraceParent> trace = find_traceparent(headers.metadata);
    record.describe(headers.method, &peer, CallSpan::Side::kServer,
                    trace ? trace->trace_id : TraceId{}, 0, trace ? trace->parent_id : 0);
    record.set_attempt(attempt_number(headers.metadata));
    record.finish(status);
    return reject(id, std::move(status));
  }
  const runtime::TimePoint deadline =
      headers.timeout.count() > 0 ? env.now() + headers.timeout : runtime::kInfiniteFuture;
  auto context =
      std::make_shared<ServerContext>(env, std::move(headers.method), std::move(headers.metadata),
                                      deadline, connection_->remote_address());
  context->set_peer_identity(connection_->peer_identity());
  Call& call = calls_[id];
  call.context = std::move(context);
  call.record = std::move(record);
  const ServerContext& described = *call.context;  // lives as long as the record: see Call
  call.record.describe(described.method(), &described.peer(), CallSpan::Side::kServer,
                       described.trace_id(), described.span_id(), described.parent_span_id());
  call.record.set_attempt(attempt_number(described.metadata()));
  if (!unknown) call.method = &*found;
  const bool streaming = !unknown && found->second.stream_handler;
  // A stream is dispatched at once; so is an unknown method, rejected without waiting for a
  // request that a stream may never half-close.
  if (streaming || unknown || end_stream) dispatch(id, call);
  if (streaming && end_stream) {
    auto it = calls_.find(id);
    if (it != calls_.end() && it->second.stream) it->second.stream->on_end_of_stream();
  }
}

void ServerConnection::on_message(uint64_t id, Buffer message, bool has_message, bool end_stream) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  if (has_message) {
    if (detail::CallMetrics* metrics = state_->metrics_of(it->second.method)) {
      metrics->request_bytes.add(message.size());
    }
    it->second.record.count_request_bytes(message.size());  // moved on once dispatched
  }
  if (const auto& stream = it->second.stream) {
    if (has_message) stream->on_message(std::move(message));
    if (end_stream) stream->on_end_of_stream();
    return;
  }
  if (it->second.dispatched) return;
  if (has_message) {
    if (!it->second.request.empty()) {
      return reject(id, invalid_argument_error("a unary call carries exactly one request"));
    }
    it->second.held_bytes = message.size();
    connection_->hold_request_bytes(message.size());
    it->second.request = std::move(message);
  }
  if (end_stream) dispatch(id, it->second);
}

void ServerConnection::on_cancel(uint64_t id, wire::Cancel) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  if (!it->second.dispatched) {
    erase_call(it);
    return;
  }
  if (it->second.cancel_emitted) return;
  it->second.cancel_emitted = true;
  it->second.context->mark_cancelled();
  const auto stream = it->second.stream;
  it->second.cancel->emit(asio::cancellation_type::terminal);
  // After the emit, as in cancel_running().
  if (stream) {
    stream->on_finished(cancelled_error("the client cancelled the call"),
                        StreamError::Kind::kTransport);
  }
}

// The first bytes decide the protocol (wire::classify_connection_start): the meshrpc
// preface, an HTTP request line, or neither; with ServerOptions::tls, a TLS handshake record
// first, after which the same is decided again inside TLS. A peer that sends too little within
// first_bytes_timeout, or garbage, is dropped without a word.
awaitable<void> ServerConnection::sniff() {
  auto self = shared_from_this();
  runtime::Env& env = state_->env;
  const ServerOptions& options = state_->options;
  Buffer first;
  Start start = co_await read_start(first, env.now() + options.first_bytes_timeout, true);
  bool secure = false;
  if (start == Start::kTls) {
    secure = co_await accept_tls(std::move(first));
    first = Buffer();
    start = secure ? co_await read_start(first, env.now() + options.first_bytes_timeout, false)
                   : Start::kOther;
  }
  const bool refused = !secure && options.require_tls && start != Start::kOther;
  if (refused && state_->metrics) state_->metrics->plaintext_refused.increment();
  Protocol protocol = Protocol::kUnrecognized;
  if (!closed_ && !refused && start == Start::kMeshrpc) {
    protocol = Protocol::kMeshrpc;
  } else if (!closed_ && !refused && start == Start::kHttp && state_->http_handler) {
    protocol = Protocol::kHttp;
  }
  if (state_->metrics) state_->metrics->accepted[static_cast<size_t>(protocol)].increment();
  if (protocol == Protocol::kMeshrpc) {
    connection_ =
        Connection::create(env, std::move(stream_), wire::Role::kServer, options.connection, this);
    connection_->preface_consumed();
    connection_->start();
    co_return;
  }
  if (protocol == Protocol::kHttp) {
    state_->http_handler->serve(detail::hold_ticket(std::move(stream_), std::move(ticket_)),
                                std::move(first));
  } else if (stream_) {
    stream_->abort();
  }
  closed_ = true;
  state_->remove(this);
}

awaitable<ServerConnection::Start> ServerConnection::read_start(Buffer& first,
                                                                runtime::TimePoint deadline,
                                                                bool tls_allowed) {
  runtime::Env& env = state_->env;
  const bool tls = tls_allowed && state_->options.tls != nullptr;
  wire::ConnectionStart start = wire::ConnectionStart::kNeedMoreBytes;
  while (!closed_ && stream_) {
    if (tls && first.size() > 0 &&
        static_cast<unsigned char>(first.at(0)) == transport::kTlsHandshakeRecordType) {
      co_return Start::kTls;
    }
    start = wire::classify_connection_start(first);
    if (start != wire::ConnectionStart::kNeedMoreBytes) break;
    // Never past kClassifyBytes: the preface's bytes are exactly those, and the HTTP
    // handler (or the TLS handshake) is given whatever was read.
    const size_t want = wire::kClassifyBytes - first.size();
    std::span<char> space = first.prepare(want);
    auto outcome = co_await (
        stream_->async_read_some(asio::buffer(space.data(), want), use_nothrow_awaitable) ||
        env.async_wait_until(deadline, use_nothrow_awaitable));
    if (outcome.index() == 1 || std::get<0>(std::get<0>(outcome))) co_return Start::kOther;
    first.commit(std::get<1>(std::get<0>(outcome)));
  }
  if (start == wire::ConnectionStart::kMeshrpc) co_return Start::kMeshrpc;
  if (start == wire::ConnectionStart::kHttp) co_return Start::kHttp;
  co_return Start::kOther;
}

awaitable<bool> ServerConnection::accept_tls(Buffer already_read) {
  runtime::Env& env = state_->env;
  const transport::Address peer = stream_->remote_address();
  auto outcome =
      co_await (transport::async_tls_accept(std::move(stream_), *state_->options.tls,
                                            already_read.to_string(), use_nothrow_awaitable) ||
                env.async_wait_for(state_->options.tls_handshake_timeout, use_nothrow_awaitable));
  HandshakeOutcome result = HandshakeOutcome::kTimeout;
  if (outcome.index() == 0) {
    auto& [ec, session] = std::get<0>(outcome);
    if (!ec && !closed_) stream_ = std::move(session);
    result = !ec                                   ? HandshakeOutcome::kOk
             : transport::is_certificate_error(ec) ? HandshakeOutcome::kCertificateRejected
                                                   : HandshakeOutcome::kFailed;
    if (ec && ec != asio::error::operation_aborted) {
      MESHRPC_LOG_DEBUG("TLS handshake with {} failed: {}", peer.to_string(), ec.message());
    }
  }
  if (state_->metrics) {
    state_->metrics->tls_handshakes[static_cast<size_t>(result)].increment();
  }
  co_return stream_ != nullptr;
}

void ServerConnection::dispatch(uint64_t id, Call& call) {
  ServerContext& context = *call.context;
  if (context.deadline() <= state_->env.now()) {
    return reject(id, deadline_exceeded_error("deadline expired before the call was dispatched"));
  }
  const auto* found = call.method;
  if (found == nullptr) {
    return reject(id, Status(StatusCode::kUnimplemented,
                             "method " + context.method() + " is not registered"));
  }
  Result<LimitPermit> permit = state_->admit(*found);
  if (!permit.ok()) return reject(id, std::move(permit).status());
  call.dispatched = true;
  call.cancel = std::make_shared<asio::cancellation_signal>();
  if (found->second.stream_handler) {
    call.stream = std::make_shared<detail::StreamCore>(&state_->env, executor(), std::nullopt,
                                                       /*is_client=*/false);
    connection_->hold_receive_grants(id);
    std::shared_ptr<Counter> sent_bytes;
    if (detail::CallMetrics* metrics = state_->metrics_of(found)) {
      sent_bytes = std::shared_ptr<Counter>(state_->metrics, &metrics->response_bytes);
    }
    call.stream->attach(
        std::make_unique<detail::ConnectionSink>(connection_, id, std::move(sent_bytes)));
    if (state_->metrics) state_->metrics->streams_opened.increment();
  }
  // The completion handler owns the signal: Asio clears the slot after the coroutine ends,
  // when the call's table entry (the other owner) may already be gone.
  asio::co_spawn(executor(),
                 run(id, &found->second, call.context, std::move(call.request),
                     std::move(permit).value(), call.stream, std::move(call.record)),
                 asio::bind_cancellation_slot(call.cancel->slot(),
                                              [signal = call.cancel](std::exception_ptr) {}));
}

awaitable<void> ServerConnection::run(uint64_t id, const Server::State::Method* method,
                                      std::shared_ptr<ServerContext> context, Buffer request,
                                      LimitPermit permit,
                                      std::shared_ptr<detail::StreamCore> stream,
                                      detail::CallRecord record_argument) {
  auto self = shared_from_this();
  // A local, destroyed before `self`: the metrics it records into live as long as the state.
  detail::CallRecord record = std::move(record_argument);
  Server::State::Outcome outcome =
      co_await state_->invoke(*method, *context, std::move(request), stream);
  permit.release(outcome.result.ok());
  if (stream) {
    // Writes after the handler returned have nowhere to go.
    stream->on_finished(outcome.result.ok() ? Status() : outcome.result.status(),
                        StreamError::Kind::kTransport);
  }
  finish(id, *context, std::move(outcome.result), outcome.rejected,
         /*send_reply=*/stream == nullptr, record);
}

void ServerConnection::finish(uint64_t id, ServerContext& context, Result<Buffer> result,
                              bool rejected, bool send_reply, detail::CallRecord& record) {
  // The call counts as active until its reply is queued, so a shutdown waiting for active
  // calls never closes the connection ahead of the last reply.
  struct EndCall {
    Server::State* state;
    ~EndCall() { state->end_call(); }
  } end_call{state_.get()};
  auto it = calls_.find(id);
  const bool client_gone =
      it == calls_.end() || closed_ ||
      (context.cancelled() && result.status().code() != StatusCode::kDeadlineExceeded);
  if (it != calls_.end()) erase_call(it);
  if (client_gone) {
    const StatusCode code = result.ok() ? StatusCode::kOk : result.status().code();
    if (context.cancelled() && code != StatusCode::kDeadlineExceeded) {
      record.finish(StatusCode::kCancelled, "the client cancelled the call or went away");
    } else {
      record.finish(result.ok() ? Status() : result.status());
    }
    return;
  }
  Status status = result.ok() ? Status() : result.status();
  if (result.ok() && send_reply) {
    const size_t bytes = result->size();
    Status sent = connection_->send_message(id, std::move(result).value(), false);
    if (!sent.ok()) {
      status = sent.with_context("response");
    } else {
      if (detail::CallMetrics* metrics = record.metrics()) metrics->response_bytes.add(bytes);
      record.count_response_bytes(bytes);
    }
  }
  record.finish(status);
  connection_
      ->send_trailers(
          id, wire::Trailers{std::move(status), rejected, std::move(context.response_metadata())})
      .ignore_error();
}

void ServerConnection::cancel_running() {
  // Emitting may complete coroutines that erase from calls_: collect first.
  std::vector<std::shared_ptr<asio::cancellation_signal>> signals;
  std::vector<std::shared_ptr<detail::StreamCore>> streams;
  for (auto& [id, call] : calls_) {
    // Once per call: close() and then on_closed() both come here, and a second emit could
    // reach a coroutine that the first one's outcome has already let finish.
    if (!call.dispatched || call.cancel_emitted) continue;
    call.cancel_emitted = true;
    call.context->mark_cancelled();
    signals.push_back(call.cancel);
    if (call.stream) streams.push_back(call.stream);
  }
  for (auto& signal : signals) signal->emit(asio::cancellation_type::terminal);
  // A handler parked in a stream read or write is woken with the error (the stream's waits
  // do not listen to the coroutine's cancellation), so it returns and its frame goes. After
  // the emits: co_spawn forwards a cancellation by posting it, and that must run before the
  // coroutine can finish and free what the cancellation refers to.
  for (auto& stream : streams) {
    stream->on_finished(unavailable_error("connection closed"), StreamError::Kind::kTransport);
  }
}

// --- Server::State ------------------------------------------------------------------------

void Server::State::end_call() {
  if (active_calls.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      shutting_down.load(std::memory_order_acquire)) {
    finish_shutdown();
  }
}

void Server::State::remove(ServerConnection* connection) {
  std::shared_ptr<ServerConnection> removed;  // destroyed outside the lock
  std::lock_guard lock(mutex);
  for (auto it = connections.begin(); it != connections.end(); ++it) {
    if (it->get() == connection) {
      removed = *it;
      connections.erase(it);
      break;
    }
  }
  changed.notify_all();
}

Result<LimitPermit> Server::State::admit(const std::pair<const std::string, Method>& method) {
  if (!try_begin_call()) {
    return resource_exhausted_error("server has max_concurrent_calls " +
                                    std::to_string(options.max_concurrent_calls) + " in flight");
  }
  if (method.second.blocking) {
    const size_t limit = options.max_blocking_calls;
    if (blocking_calls.fetch_add(1, std::memory_order_acq_rel) >= limit) {
      blocking_calls.fetch_sub(1, std::memory_order_acq_rel);
      end_call();
      return resource_exhausted_error("server has max_blocking_calls " + std::to_string(limit) +
                                      " queued or running on its worker pool");
    }
  }
  const auto& limit = options.concurrency_limit;
  if (limit == nullptr || method.first == kHealthCheckMethod) return LimitPermit();
  if (!limit->try_acquire()) {
    if (method.second.blocking) blocking_calls.fetch_sub(1, std::memory_order_acq_rel);
    end_call();
    return resource_exhausted_error("server over its adaptive concurrency limit " +
                                    std::to_string(limit->limit()));
  }
  return LimitPermit(limit, env);
}

// Exceptions become INTERNAL; the deadline cancels the handler.
awaitable<Server::State::Outcome> Server::State::invoke(
    const Method& method, ServerContext& context, Buffer request,
    std::shared_ptr<detail::StreamCore> stream) {
  auto guarded = [](const Method* m, ServerContext& ctx, Buffer req,
                    std::shared_ptr<detail::StreamCore> core) -> awaitable<Result<Buffer>> {
    try {
      if (core) {
        ServerStream server_stream(std::move(core));
        Status final_status = co_await m->stream_handler(ctx, server_stream);
        if (!final_status.ok()) co_return final_status;
        co_return Buffer();
      }
      co_return co_await m->handler(ctx, std::move(req));
    } catch (const std::exception& e) {
      co_return internal_error(std::string("handler threw: ") + e.what());
    } catch (...) {
      co_return internal_error("handler threw a non-standard exception");
    }
  };
  Outcome outcome;
  const ServerInterceptors& interceptors = options.interceptors;
  const runtime::TimePoint start = env.now();
  size_t ran = 0;
  try {
    Status admitted;
    while (ran < interceptors.size() && admitted.ok()) {
      admitted = co_await interceptors[ran++]->before_handler(context);
    }
    if (!admitted.ok()) {
      outcome.rejected = true;
      outcome.result = std::move(admitted);
    } else if (context.deadline() == runtime::kInfiniteFuture) {
      outcome.result = co_await guarded(&method, context, std::move(request), stream);
    } else {
      auto raced = co_await (guarded(&method, context, std::move(request), stream) ||
                             env.async_wait_until(context.deadline(), use_nothrow_awaitable));
      if (raced.index() == 0) {
        outcome.result = std::move(std::get<0>(raced));
      } else {
        context.mark_cancelled();
        outcome.result = deadline_exceeded_error("deadline exceeded while the handler ran");
      }
    }
  } catch (const std::exception& e) {
    context.mark_cancelled();  // cancelled from outside (client CANCEL, shutdown) or a throw
    outcome.result = internal_error(std::string("call ended by an exception: ") + e.what());
  }
  const Status& final_status = outcome.result.ok() ? Status() : outcome.result.status();
  for (size_t i = ran; i-- > 0;) {
    interceptors[i]->after_handler(context, final_status, env.now() - start);
  }
  if (!final_status.ok()) log_failed_call(context, final_status);
  co_return outcome;
}

// Runs once: every call has finished, or the grace period ran out.
void Server::State::finish_shutdown() {
  UniqueFunction<void()> done;
  std::set<std::shared_ptr<ServerConnection>> remaining;
  {
    std::lock_guard lock(mutex);
    done = std::move(shutdown_done);
    shutdown_done = nullptr;
    remaining = connections;
  }
  if (!done) return;
  for (const auto& connection : remaining) {
    asio::post(connection->executor(), [connection] { connection->close(); });
  }
  done();
}

// --- Server -------------------------------------------------------------------------------

Server::Server(runtime::Env& env, transport::Network& network, ServerOptions options)
    : state_(std::make_shared<State>(env, network, std::move(options))) {
  if (state_->metrics) {
    metrics_registration_ = state_->options.metrics->add(
        [metrics = state_->metrics](MetricWriter& writer) { metrics->write(writer); });
  }
  register_method(std::string(kHealthCheckMethod),
                  [](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                    co_return Buffer::copy_of("SERVING");
                  });
}

Server::~Server() {
  std::shared_ptr<State> state = state_;
  if (!state->shutting_down.exchange(true)) {
    if (state->listener) state->listener->close();
  }
  if (state->http_handler) state->http_handler->shutdown();
  std::set<std::shared_ptr<ServerConnection>> connections;
  {
    std::lock_guard lock(state->mutex);
    connections = state->connections;
  }
  // Under simulation everything runs on this one thread: close now, so nothing waits for a
  // turn that may never come (a connection and the state own each other until closed).
  if (state->env.is_simulated()) {
    for (const auto& connection : connections) connection->close();
    return;
  }
  for (const auto& connection : connections) {
    asio::post(connection->executor(), [connection] { connection->close(); });
  }
  // Own what was spawned (STYLE.md): on real threads, wait until every accept loop and
  // connection has ended, so none outlives the server into the env's own destruction.
  // On an io thread that wait could deadlock; the tasks end on their own threads instead.
  if (state->env.in_env_thread()) return;
  std::unique_lock lock(state->mutex);
  state->changed.wait(lock, [&] { return state->connections.empty() && state->accept_loops == 0; });
  lock.unlock();
  state->listener.reset();
}

namespace {

// The wire form of `method`; a name that has none is a setup-time programmer error.
std::string checked_method_name(std::string_view method) {
  std::string canonical = canonical_method_name(method);
  if (Result<MethodNameParts> parts = split_method_name(canonical); !parts.ok()) {
    throw std::invalid_argument("Server: cannot register " + std::string(parts.status().message()));
  }
  return canonical;
}

}  // namespace

bool Server::State::has_unary(std::string_view method) const {
  auto found = handlers.find(canonical_method_name(method));
  return found != handlers.end() && !found->second.stream_handler;
}

void Server::State::add_method(const std::string& name, Method method) {
  if (metrics) method.metrics = metrics->method(name);
  handlers[name] = std::move(method);
}

void Server::register_method(std::string method, Handler handler) {
  state_->add_method(checked_method_name(method), State::Method{std::move(handler), false});
}

void Server::register_stream_method(std::string method, StreamHandler handler) {
  state_->add_method(checked_method_name(method), State::Method{{}, false, std::move(handler)});
}

void Server::register_blocking_method(std::string method, BlockingHandler handler) {
  State* state = state_.get();  // outlives every call: calls co-own it
  Handler hop = [state, handler = std::move(handler)](ServerContext& ctx,
                                                      Buffer request) -> awaitable<Result<Buffer>> {
    struct Release {  // admitted in dispatch(); released however the call ends
      State* state;
      ~Release() { state->blocking_calls.fetch_sub(1, std::memory_order_acq_rel); }
    } release{state};
    // Named, not a temporary in the co_await (GCC 12 would destroy it twice). Optional
    // because co_spawn needs a default-constructible result.
    auto work = [&]() -> awaitable<std::optional<Result<Buffer>>> {
      co_return handler(ctx, std::move(request));
    };
    auto result = co_await asio::co_spawn(ctx.env().blocking_executor(), work, asio::use_awaitable);
    co_return std::move(*result);
  };
  state_->add_method(checked_method_name(method), State::Method{std::move(hop), true});
}

void Server::set_http_handler(std::shared_ptr<HttpConnectionHandler> handler) {
  state_->http_handler = std::move(handler);
}

bool Server::is_shutting_down() const {
  return state_->shutting_down.load(std::memory_order_acquire);
}

bool Server::has_method(std::string_view method) const { return state_->has_unary(method); }

awaitable<Result<Buffer>> Server::call_local(LocalCall call) {
  return ServerHandle::run_local(state_, std::move(call));
}

ServerHandle Server::shared_handle() const { return ServerHandle(state_, state_->env); }

bool ServerHandle::is_shutting_down() const {
  std::shared_ptr<Server::State> state = state_.lock();
  return !state || state->shutting_down.load(std::memory_order_acquire);
}

bool ServerHandle::has_method(std::string_view method) const {
  std::shared_ptr<Server::State> state = state_.lock();
  return state && state->has_unary(method);
}

std::optional<CallLogSnapshot> ServerHandle::call_log_snapshot() const {
  std::shared_ptr<Server::State> state = state_.lock();
  if (!state || !state->call_log) return std::nullopt;
  return state->call_log->snapshot();
}

awaitable<Result<Buffer>> ServerHandle::call_local(LocalCall call) const {
  std::shared_ptr<Server::State> state = state_.lock();
  if (!state) return run_gone();
  return run_local(std::move(state), std::move(call));
}

awaitable<Result<Buffer>> ServerHandle::run_gone() {
  co_return unavailable_error("server is gone");
}

awaitable<Result<Buffer>> ServerHandle::run_local(std::shared_ptr<Server::State> state,
                                                  LocalCall call) {
  const std::string method = canonical_method_name(call.method);
  auto found = state->handlers.find(method);
  const bool unknown = found == state->handlers.end();
  // Before the record: the record borrows its method and peer until it finishes.
  ServerContext context(state->env, method, std::move(call.metadata), call.deadline,
                        std::move(call.peer));
  context.set_peer_identity(std::move(call.peer_identity));
  // Declared after `state`, so finished (or destroyed) while the metrics are alive.
  detail::CallRecord record(state->metrics_of(unknown ? nullptr : &*found), state->env,
                            state->call_log.get());
  record.describe(context.method(), &context.peer(), CallSpan::Side::kServer, context.trace_id(),
                  context.span_id(), context.parent_span_id());
  record.set_attempt(attempt_number(context.metadata()));
  auto reject = [&record](Status status) {
    record.finish(status);
    return status;
  };
  if (state->shutting_down.load(std::memory_order_acquire)) {
    co_return reject(unavailable_error("server is shutting down"));
  }
  if (unknown) {
    co_return reject(Status(StatusCode::kUnimplemented, "method " + method + " is not registered"));
  }
  if (found->second.stream_handler) {
    co_return reject(
        Status(StatusCode::kUnimplemented,
               "method " + method + " is streaming; only unary methods are called locally"));
  }
  if (detail::CallMetrics* metrics = record.metrics())
    metrics->request_bytes.add(call.request.size());
  record.count_request_bytes(call.request.size());
  if (call.deadline <= state->env.now()) {
    co_return reject(deadline_exceeded_error("deadline expired before the call was dispatched"));
  }
  Result<LimitPermit> permit = state->admit(*found);
  if (!permit.ok()) co_return reject(std::move(permit).status());
  struct EndCall {
    Server::State* state;
    ~EndCall() { state->end_call(); }
  } end_call{state.get()};
  Server::State::Outcome outcome =
      co_await state->invoke(found->second, context, std::move(call.request), nullptr);
  permit->release(outcome.result.ok());
  if (call.response_metadata != nullptr) {
    *call.response_metadata = std::move(context.response_metadata());
  }
  if (outcome.result.ok()) {
    if (detail::CallMetrics* metrics = record.metrics()) {
      metrics->response_bytes.add(outcome.result->size());
    }
    record.count_response_bytes(outcome.result->size());
  }
  record.finish(outcome.result.ok() ? Status() : outcome.result.status());
  co_return std::move(outcome.result);
}

Result<transport::Address> Server::start(const transport::Address& address) {
  if (state_->options.require_tls && !state_->options.tls) {
    return invalid_argument_error("ServerOptions::require_tls is set without tls credentials");
  }
  if (state_->http_handler) state_->http_handler->on_server_start();
  auto listener = state_->network.listen(address);
  if (!listener.ok()) return listener.status();
  state_->listener = std::move(*listener);
  {
    std::lock_guard lock(state_->mutex);
    state_->accept_loops = state_->listener->shard_count();
  }
  for (size_t shard = 0; shard < state_->listener->shard_count(); ++shard) {
    asio::co_spawn(state_->listener->shard_executor(shard), accept_loop(state_, shard),
                   asio::detached);
  }
  return state_->listener->local_address();
}

awaitable<void> Server::accept_loop(std::shared_ptr<State> state, size_t shard) {
  struct Exit {  // counts the loop out however it ends, even destroyed while suspended
    State& state;
    ~Exit() {
      std::lock_guard lock(state.mutex);
      --state.accept_loops;
      state.changed.notify_all();
    }
  } exit{*state};
  while (!state->shutting_down.load(std::memory_order_acquire)) {
    auto [ec, stream] = co_await state->listener->async_accept(shard, use_nothrow_awaitable);
    if (ec) co_return;
    if (MESHRPC_BUGGIFY) {
      stream->abort();  // a connection that dies as it is accepted: the client must cope
      continue;
    }
    detail::ConnectionAdmission::Decision admitted =
        state->admission->admit(stream->remote_address().host);
    if (!admitted.ticket) {
      if (state->metrics) {
        (admitted.refusal == detail::ConnectionAdmission::Refusal::kMaxConnections
             ? state->metrics->refused_max_connections
             : state->metrics->refused_max_per_peer)
            .increment();
      }
      // A client that must speak TLS could not read a plaintext GOAWAY: it is only closed.
      state->admission->refuse(state->env, std::move(stream), std::move(admitted.status),
                               /*explain=*/!state->options.require_tls);
      continue;
    }
    auto connection =
        std::make_shared<ServerConnection>(state, std::move(stream), std::move(admitted.ticket));
    {
      // Under the lock that shutdown and destruction take their snapshot with: a connection
      // is either in their snapshot or refused here.
      std::lock_guard lock(state->mutex);
      if (state->shutting_down.load(std::memory_order_acquire)) co_return;
      state->connections.insert(connection);
    }
    connection->start();
  }
}

void Server::shutdown(runtime::Duration grace, UniqueFunction<void()> done) {
  std::shared_ptr<State> state = state_;
  {
    std::lock_guard lock(state->mutex);
    state->shutdown_done = std::move(done);
  }
  if (state->shutting_down.exchange(true)) return;
  if (state->listener) state->listener->close();
  if (state->http_handler) state->http_handler->shutdown();
  std::set<std::shared_ptr<ServerConnection>> connections;
  {
    std::lock_guard lock(state->mutex);
    connections = state->connections;
  }
  for (const auto& connection : connections) {
    asio::post(connection->executor(), [connection] { connection->begin_drain(); });
  }
  if (state->active_calls.load(std::memory_order_acquire) == 0) return state->finish_shutdown();
  state->env.async_wait_for(grace, [state](error_code) { state->finish_shutdown(); });
}

size_t Server::active_calls() const { return state_->active_calls.load(std::memory_order_relaxed); }

size_t Server::connection_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->connections.size();
}

runtime::Env& Server::env() { return state_->env; }

const CallLog* Server::call_log() const { return state_->call_log.get(); }

}  // namespace meshrpc::core
