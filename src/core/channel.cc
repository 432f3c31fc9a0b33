#include "meshrpc/core/channel.h"

#include <algorithm>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <deque>
#include <latch>
#include <map>
#include <mutex>
#include <unordered_map>

#include "call_metrics.h"
#include "connection_sink.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/core/trace.h"
#include "meshrpc/runtime/buggify.h"
#include "meshrpc/transport/errors.h"

namespace meshrpc::core {

using namespace asio::experimental::awaitable_operators;

class ClientConnection;

// One call, shared by the caller's cancellation handler, its deadline timer and the
// sub-connection. Every field but the handler is touched on the sub-channel's executor only.
struct PendingCall {
  // Constructed in place: Boost 1.81's any_completion_handler move *assignment* recurses
  // forever (it copies `other` as an lvalue through its template constructor).
  explicit PendingCall(Channel::CallHandler h) : handler(std::move(h)) {}

  std::string method;
  Buffer request;
  Metadata metadata;
  runtime::TimePoint deadline = runtime::kInfiniteFuture;
  // CallOptions::wait_for_ready (clamped to >= 0), and when that bound passes.
  std::optional<runtime::Duration> wait_for_ready;
  runtime::TimePoint ready_deadline = runtime::kInfiniteFuture;
  asio::any_io_executor completion_executor;
  Channel::CallHandler handler;
  asio::cancellation_slot caller_slot;
  asio::cancellation_signal deadline_cancel;
  // The wait_for_ready bound's timer: armed while the call waits for a connection.
  asio::cancellation_signal ready_cancel;
  // The connection that took the call (to send it, or to queue it for a stream slot).
  std::weak_ptr<ClientConnection> connection;
  uint64_t stream_id = 0;  // 0 until sent
  bool deadline_armed = false;
  bool ready_armed = false;
  bool completed = false;
  bool committed = false;  // the response message arrived
  CallResult result;
  // Set for a stream (open_stream): messages go to it instead of `result`.
  std::shared_ptr<detail::StreamCore> stream;
  // The traceparent sent (this attempt's span) and the caller's span it names as parent.
  TraceParent trace;
  uint64_t parent_span_id = 0;
  // Started on the sub-channel's executor (SubChannel::begin_record), finished by complete().
  // After `method`, which it borrows.
  detail::CallRecord record;
};

// The channel's call log with the endpoint its spans name; shared like ChannelMetrics.
struct ChannelSpans {
  ChannelSpans(runtime::Env& env, transport::Address endpoint_address, CallLogOptions options)
      : endpoint(std::move(endpoint_address)), log(env, options) {}
  const transport::Address endpoint;
  CallLog log;
};

// The channel's metrics, shared by the channel, its sub-channels and its collector.
// Per-method metrics are created on a method's first call from each sub-channel (which then
// caches the pointer); `mutex` guards the table, never taken once a sub-channel has cached.
struct ChannelMetrics {
  // Distinct methods a channel keeps metrics for; calls to more share the "other" label.
  // 1,000: far more than any service has, small enough that a caller passing arbitrary
  // names cannot grow the exposition without bound.
  static constexpr size_t kMaxMethods = 1000;

  explicit ChannelMetrics(std::string endpoint_label) : endpoint(std::move(endpoint_label)) {}

  detail::CallMetrics* method(const std::string& name) {
    std::lock_guard lock(mutex);
    auto it = methods.find(name);
    if (it == methods.end()) {
      const bool full = methods.size() >= kMaxMethods;
      it = methods.try_emplace(full ? std::string(detail::kOtherMethodLabel) : name).first;
      if (!it->second) it->second = std::make_unique<detail::CallMetrics>();
    }
    return it->second.get();
  }

  void write(MetricWriter& writer) const {
    {
      std::lock_guard lock(mutex);
      for (const auto& [name, metrics] : methods) {
        metrics->write(writer, "meshrpc_client", {{"method", name}, {"endpoint", endpoint}});
      }
    }
    const MetricLabels labels = {{"endpoint", endpoint}};
    const uint64_t closed = connections_closed.value();
    const uint64_t opened = connections_opened.value();
    writer.counter("meshrpc_client_connections_opened_total", "Connections established.", labels,
                   opened);
    writer.counter("meshrpc_client_connections_closed_total", "Connections closed.", labels,
                   closed);
    writer.gauge("meshrpc_client_connections_open", "Connections open.", labels,
                 opened > closed ? static_cast<double>(opened - closed) : 0.0);
    writer.counter("meshrpc_client_connect_failures_total",
                   "Connection attempts that failed or timed out.", labels,
                   connect_failures.value());
    writer.counter("meshrpc_client_streams_opened_total", "Streams opened (open_stream).", labels,
                   streams_opened.value());
    writer.counter("meshrpc_client_flow_control_stalls_total",
                   "Times a request or stream message had to wait for the server to grant "
                   "flow-control window.",
                   labels, flow_control_stalls.value());
  }

  const std::string endpoint;  // host:port
  mutable std::mutex mutex;
  std::map<std::string, std::unique_ptr<detail::CallMetrics>> methods;
  Counter connections_opened;
  Counter connections_closed;
  Counter connect_failures;
  Counter streams_opened;
  Counter flow_control_stalls;
};

namespace {

void stop_ready_timer(PendingCall& call) {
  if (!call.ready_armed) return;
  call.ready_armed = false;
  call.ready_cancel.emit(asio::cancellation_type::terminal);
}

// Completes a call once: stops its timers and hands the result to the caller's executor.
void complete(const std::shared_ptr<PendingCall>& call, CallResult result) {
  if (call->completed) return;
  call->completed = true;
  call->record.finish(result.status.code());
  if (call->deadline_armed) call->deadline_cancel.emit(asio::cancellation_type::terminal);
  stop_ready_timer(*call);
  call->result = std::move(result);
  asio::post(call->completion_executor, [call] {
    // The slot belongs to the caller's executor, where this runs.
    if (call->caller_slot.is_connected()) call->caller_slot.clear();
    auto handler = std::move(call->handler);
    std::move(handler)(std::move(call->result));
  });
}

CallResult failure(Status status, bool not_processed, FailureOrigin origin,
                   bool committed = false) {
  CallResult result;
  result.status = std::move(status);
  result.not_processed = not_processed;
  result.origin = origin;
  result.committed = committed;
  return result;
}

// An unsent call failed here: provably not processed.
CallResult local_failure(Status status) {
  return failure(std::move(status), true, FailureOrigin::kLocal);
}

}  // namespace

// The client side of one connection: its table of calls and its queue of calls waiting
// for a stream slot. Lives on the sub-channel's executor.
class ClientConnection final : public Connection::Delegate,
                               public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(runtime::Env& env, std::shared_ptr<transport::ByteStream> stream,
                   const ChannelOptions& options, std::shared_ptr<ChannelMetrics> metrics)
      : env_(env),
        options_(options),
        metrics_(std::move(metrics)),
        connection_(Connection::create(env, std::move(stream), wire::Role::kClient,
                                       options.connection, this)) {}
  ~ClientConnection() override { connection_->detach(); }

  void start() { connection_->start(); }
  // Ends every call (CANCELLED, as the caller's side went away) and closes.
  void shut_down() { connection_->close(cancelled_error("channel destroyed")); }
  // New calls may go here: not closed, and the server has not said GOAWAY.
  bool usable() const { return !closed_ && !going_away_; }
  bool closed() const { return closed_; }
  // No call is running or waiting here.
  bool idle() const { return active_.empty() && waiting_.empty(); }

  void start_call(const std::shared_ptr<PendingCall>& call) {
    if (!usable()) return complete(call, local_failure(unavailable_error("connection closed")));
    call->connection = weak_from_this();
    if (active_.size() >= connection_->send_limits().max_concurrent_streams) {
      if (waiting_.size() >= options_.max_queued_calls) {
        return complete(
            call, local_failure(resource_exhausted_error("client queue of max_queued_calls " +
                                                         std::to_string(options_.max_queued_calls) +
                                                         " calls waiting for a stream is full")));
      }
      waiting_.push_back(call);
      return;
    }
    send(call);
  }

  // The caller cancelled (kLocal) or the deadline passed (kTransport): tell the server, end
  // the call.
  void abandon(const std::shared_ptr<PendingCall>& call, Status status, FailureOrigin origin) {
    if (call->completed) return;
    if (call->stream_id != 0) {
      active_.erase(call->stream_id);
      connection_
          ->send_cancel(call->stream_id, wire::Cancel{status.code(), std::string(status.message())})
          .ignore_error();
      complete(call, failure(std::move(status), false, origin, call->committed));
      start_waiting();
      return;
    }
    std::erase(waiting_, call);
    complete(call, failure(std::move(status), true, origin));
  }

  void on_headers(uint64_t, wire::Headers, bool) override {}
  void on_message(uint64_t id, Buffer message, bool has_message, bool end_stream) override {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    PendingCall& call = *it->second;
    if (has_message) {
      if (detail::CallMetrics* metrics = call.record.metrics()) {
        metrics->response_bytes.add(message.size());
      }
      call.record.count_response_bytes(message.size());
    }
    if (call.stream) {
      call.committed = true;
      if (has_message) call.stream->on_message(std::move(message));
      if (end_stream) call.stream->on_end_of_stream();
      return;
    }
    if (has_message) {
      call.result.response = std::move(message);
      call.committed = true;
    }
  }
  // Calls queued for a stream slot under the default limit may go once the server's
  // SETTINGS allow more.
  void on_peer_settings() override { start_waiting(); }
  void on_stream_writable(uint64_t id) override {
    auto it = active_.find(id);
    if (it != active_.end() && it->second->stream) it->second->stream->on_writable();
  }
  void on_trailers(uint64_t id, wire::Trailers trailers) override {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    std::shared_ptr<PendingCall> call = std::move(it->second);
    active_.erase(it);
    CallResult result;
    result.status = std::move(trailers.status);
    if (result.status.ok()) result.response = std::move(call->result.response);
    result.trailing_metadata = std::move(trailers.metadata);
    result.not_processed = trailers.rejected_before_dispatch;
    result.origin = FailureOrigin::kServer;
    result.committed = call->committed;
    complete(call, std::move(result));
    start_waiting();
  }
  void on_cancel(uint64_t id, wire::Cancel cancel) override {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    auto call = std::move(it->second);
    active_.erase(it);
    complete(call, failure(Status(cancel.code, "server reset the call: " + cancel.reason), false,
                           FailureOrigin::kTransport, call->committed));
    start_waiting();
  }
  void on_stream_error(uint64_t id, const Status& status) override {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    auto call = std::move(it->second);
    active_.erase(it);
    connection_->send_cancel(id, wire::Cancel{status.code(), std::string(status.message())})
        .ignore_error();
    complete(call, failure(status.with_context("response"), false, FailureOrigin::kTransport,
                           call->committed));
    start_waiting();
  }
  void on_goaway(const wire::GoAway& goaway) override {
    going_away_ = true;
    // Calls above last_stream_id were never processed: safe to retry elsewhere.
    std::vector<std::shared_ptr<PendingCall>> refused;
    for (auto it = active_.begin(); it != active_.end();) {
      if (it->first > goaway.last_stream_id) {
        refused.push_back(std::move(it->second));
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& call : refused) {
      complete(call, failure(unavailable_error("server going away: " + goaway.reason), true,
                             FailureOrigin::kTransport));
    }
    fail_waiting(unavailable_error("server going away: " + goaway.reason));
  }
  // Called (on the sub-channel's executor) once the connection has closed.
  UniqueFunction<void()> on_closed_hook;

  void on_closed(const Status& status) override {
    closed_ = true;
    if (metrics_ != nullptr) metrics_->connections_closed.increment();
    if (on_closed_hook) on_closed_hook();
    auto active = std::move(active_);
    active_.clear();
    for (auto& [id, call] : active) {
      complete(call, failure(status, false, FailureOrigin::kTransport, call->committed));
    }
    fail_waiting(status);
  }

 private:
  void send(const std::shared_ptr<PendingCall>& call) {
    const uint64_t id = ++last_stream_id_;
    wire::Headers headers;
    headers.method = call->method;
    headers.metadata = call->metadata;
    if (call->deadline != runtime::kInfiniteFuture) {
      headers.timeout = call->deadline - env_.now();
      if (headers.timeout.count() <= 0) {
        return complete(
            call,
            local_failure(deadline_exceeded_error("deadline passed before the call was sent")));
      }
    }
    Status status = connection_->send_headers(id, headers, false);
    if (call->stream && status.ok()) {
      connection_->hold_receive_grants(id);
      call->stream_id = id;
      active_.emplace(id, call);
      std::shared_ptr<Counter> sent_bytes;
      if (detail::CallMetrics* metrics = call->record.metrics()) {
        sent_bytes = std::shared_ptr<Counter>(metrics_, &metrics->request_bytes);
      }
      call->stream->attach(
          std::make_unique<detail::ConnectionSink>(connection_, id, std::move(sent_bytes)));
      return;
    }
    const size_t request_bytes = call->request.size();
    if (status.ok()) status = connection_->send_message(id, std::move(call->request), true);
    if (status.ok()) {
      if (detail::CallMetrics* metrics = call->record.metrics()) {
        metrics->request_bytes.add(request_bytes);
      }
      call->record.count_request_bytes(request_bytes);
    }
    if (!status.ok()) {
      connection_->send_cancel(id, wire::Cancel{StatusCode::kCancelled, "request not sent"})
          .ignore_error();
      return complete(call, local_failure(status.with_context("request")));
    }
    call->stream_id = id;
    active_.emplace(id, call);
  }
  void start_waiting() {
    while (!waiting_.empty() && usable() &&
           active_.size() < connection_->send_limits().max_concurrent_streams) {
      auto call = std::move(waiting_.front());
      waiting_.pop_front();
      send(call);
    }
  }
  void fail_waiting(const Status& status) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& call : waiting) complete(call, failure(status, true, FailureOrigin::kTransport));
  }

  runtime::Env& env_;
  const ChannelOptions& options_;
  // Null when off. Shared, as a stream's sink counts into it and may outlive the channel.
  std::shared_ptr<ChannelMetrics> metrics_;
  std::shared_ptr<Connection> connection_;
  std::unordered_map<uint64_t, std::shared_ptr<PendingCall>> active_;
  std::deque<std::shared_ptr<PendingCall>> waiting_;
  uint64_t last_stream_id_ = 0;
  bool going_away_ = false;
  bool closed_ = false;
};

// One executor's share of a Channel: its connection, connecting and backoff.
//
// Calls that find no usable connection wait in pending_ while a connect is in flight. When
// a connect fails, the sub-channel backs off until retry_after_: calls fail fast meanwhile,
// except wait-for-ready calls, which stay in pending_ until their bound passes; while any
// do, one reconnect timer (reconnect_cancel_ set) connects again when the backoff ends.
class SubChannel : public std::enable_shared_from_this<SubChannel> {
 public:
  SubChannel(runtime::Env& env, transport::Network& network, transport::Address target,
             ChannelOptions options, asio::any_io_executor executor,
             std::shared_ptr<ChannelMetrics> metrics, std::shared_ptr<ChannelSpans> spans)
      : metrics_(std::move(metrics)),
        spans_(std::move(spans)),
        env_(env),
        network_(network),
        target_(std::move(target)),
        options_(std::move(options)),
        executor_(std::move(executor)),
        backoff_(options_.backoff_initial) {}

  asio::any_io_executor executor() const { return executor_; }
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  ChannelMetrics* metrics() const { return metrics_.get(); }

  // On executor_: counts the call as started under its method (a hash lookup in this
  // sub-channel's cache; the channel's table only on a method's first call here).
  void begin_record(PendingCall& call) {
    if (!metrics_ && !spans_) return;
    call.record =
        detail::CallRecord(method_metrics(call.method), env_, spans_ ? &spans_->log : nullptr);
    if (spans_) {
      call.record.describe(call.method, &spans_->endpoint, CallSpan::Side::kClient,
                           call.trace.trace_id, call.trace.parent_id, call.parent_span_id);
      call.record.set_attempt(attempt_number(call.metadata));
    }
  }

  // The metrics of `method` (null when off): this sub-channel's cache, the channel's table on
  // a method's first call here.
  detail::CallMetrics* method_metrics(const std::string& method) {
    if (!metrics_) return nullptr;
    if (auto it = method_metrics_.find(method); it != method_metrics_.end()) return it->second;
    detail::CallMetrics* metrics = metrics_->method(method);
    if (method_metrics_.size() < ChannelMetrics::kMaxMethods) {
      method_metrics_.emplace(method, metrics);
    }
    return metrics;
  }

  // On executor_.
  void submit(const std::shared_ptr<PendingCall>& call) {
    if (shut_down_) return complete(call, local_failure(cancelled_error("channel destroyed")));
    arm_deadline(call);
    if (call->completed) return;
    if (connection_ && connection_->usable()) return connection_->start_call(call);
    if (connecting_) return enqueue(call);
    if (env_.now() < retry_after_) {
      // Backing off: the last attempt said the endpoint is unreachable.
      if (!waits_for_ready(*call)) {
        return complete(call, failure(last_error_, true, FailureOrigin::kTransport));
      }
      enqueue(call);
      return schedule_reconnect();
    }
    queue(call);  // as ever, the call that starts a connect is not refused
    connect();
  }

  // On executor_: the channel is going away.
  void shut_down() {
    shut_down_ = true;
    if (reconnect_cancel_) {
      auto cancel = std::move(reconnect_cancel_);
      cancel->emit(asio::cancellation_type::terminal);
    }
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& call : pending) complete(call, local_failure(cancelled_error("channel destroyed")));
    if (connection_) connection_->shut_down();  // its calls end with CANCELLED
    connection_.reset();
    auto draining = std::move(draining_);
    draining_.clear();
    for (auto& connection : draining) connection->shut_down();
  }

  // On executor_: from the caller's cancellation slot (kLocal) or the deadline timer
  // (kTransport).
  void abandon(const std::shared_ptr<PendingCall>& call, Status status, FailureOrigin origin) {
    if (call->completed) return;
    std::erase(pending_, call);
    // The connection that took the call handles it, in flight (it sends CANCEL with the
    // call's stream id, which means something on that connection only) or queued there.
    if (auto connection = call->connection.lock()) {
      return connection->abandon(call, std::move(status), origin);
    }
    complete(call, failure(std::move(status), true, origin));
  }

 private:
  // Before a new connection takes over: the old one (after GOAWAY, or closed) goes. If calls
  // still run on it, it stays, draining, until it closes, so that they complete.
  void retire_connection() {
    std::erase_if(draining_, [](const auto& connection) { return connection->closed(); });
    if (!connection_) return;
    std::shared_ptr<ClientConnection> old = std::move(connection_);
    if (old->closed() || old->idle()) return;  // nothing on it: dropping it closes it
    old->on_closed_hook = [weak = weak_from_this(), raw = old.get(), executor = executor_] {
      // Posted: the connection is inside its own callback here.
      asio::post(executor, [weak, raw] {
        if (auto self = weak.lock()) {
          std::erase_if(self->draining_,
                        [raw](const auto& connection) { return connection.get() == raw; });
        }
      });
    };
    draining_.push_back(std::move(old));
  }

  // A wait-for-ready call whose bound has not passed: it does not fail for want of a
  // connection.
  bool waits_for_ready(const PendingCall& call) const {
    return call.wait_for_ready && env_.now() < call.ready_deadline;
  }

  // Queues `call` until a connect ends, or fails it when the queue is full.
  void enqueue(const std::shared_ptr<PendingCall>& call) {
    if (pending_.size() >= options_.max_queued_calls) {
      return complete(
          call, local_failure(resource_exhausted_error("client queue of max_queued_calls " +
                                                       std::to_string(options_.max_queued_calls) +
                                                       " calls waiting for a connection is full")));
    }
    queue(call);
  }
  void queue(const std::shared_ptr<PendingCall>& call) {
    pending_.push_back(call);
    if (waits_for_ready(*call)) arm_ready_timer(call);
  }

  void arm_deadline(const std::shared_ptr<PendingCall>& call) {
    if (call->deadline == runtime::kInfiniteFuture) return;
    if (call->deadline <= env_.now()) {
      return complete(
          call, local_failure(deadline_exceeded_error("deadline passed before the call started")));
    }
    call->deadline_armed = true;
    env_.async_wait_until(
        call->deadline,
        asio::bind_cancellation_slot(
            call->deadline_cancel.slot(),
            asio::bind_executor(executor_, [self = shared_from_this(), call](error_code ec) {
              if (!ec) {
                self->abandon(call, deadline_exceeded_error("deadline exceeded"),
                              FailureOrigin::kTransport);
              }
            })));
  }

  // The wait_for_ready bound of a call in pending_. Not armed when the deadline comes first:
  // then the deadline timer ends the wait, with DEADLINE_EXCEEDED. Stopped when the call is
  // handed to a connection or completes.
  void arm_ready_timer(const std::shared_ptr<PendingCall>& call) {
    if (call->ready_armed || call->ready_deadline >= call->deadline) return;
    call->ready_armed = true;
    env_.async_wait_until(
        call->ready_deadline,
        asio::bind_cancellation_slot(
            call->ready_cancel.slot(),
            asio::bind_executor(executor_, [self = shared_from_this(), call](error_code ec) {
              if (!ec) self->on_ready_bound_passed(call);
            })));
  }

  void on_ready_bound_passed(const std::shared_ptr<PendingCall>& call) {
    call->ready_armed = false;
    if (call->completed) return;
    auto it = std::find(pending_.begin(), pending_.end(), call);
    if (it == pending_.end()) return;  // on a connection already: the bound no longer applies
    pending_.erase(it);
    complete(call, not_ready(*call));
  }

  // UNAVAILABLE for a wait-for-ready call whose bound passed without a connection.
  CallResult not_ready(const PendingCall& call) const {
    const auto bound_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(*call.wait_for_ready).count();
    std::string message = "wait_for_ready: " + target_.to_string() + " not ready within " +
                          std::to_string(bound_ms) + " ms; ";
    if (last_error_.ok()) {
      message += "a connect to it is still in progress";
    } else {
      message += "last connect error: ";
      message += last_error_.message();
    }
    return failure(unavailable_error(std::move(message)), true, FailureOrigin::kTransport);
  }

  // Connects again at retry_after_ for the wait-for-ready calls in pending_. One timer per
  // sub-channel: it holds the sub-channel weakly, and shut_down() cancels it.
  void schedule_reconnect() {
    if (shut_down_ || reconnect_cancel_ || pending_.empty()) return;
    auto cancel = std::make_shared<asio::cancellation_signal>();
    reconnect_cancel_ = cancel;
    // The handler owns the signal, so the signal outlives the wait that uses its slot.
    auto on_backoff_end = [weak = weak_from_this(), cancel](error_code ec) {
      auto self = weak.lock();
      if (!self || self->reconnect_cancel_ != cancel) return;
      self->reconnect_cancel_.reset();
      if (!ec) self->reconnect();
    };
    env_.async_wait_until(
        retry_after_,
        asio::bind_cancellation_slot(cancel->slot(),
                                     asio::bind_executor(executor_, std::move(on_backoff_end))));
  }

  void reconnect() {
    if (shut_down_ || connecting_ || pending_.empty()) return;
    if (connection_ && connection_->usable()) return;
    // A connect started by another call failed meanwhile and pushed the backoff further.
    if (env_.now() < retry_after_) return schedule_reconnect();
    connect();
  }

  void connect() {
    connecting_ = true;
    asio::co_spawn(executor_, connect_once(shared_from_this()), asio::detached);
  }

  // `self` keeps the sub-channel alive while the connect is in flight.
  awaitable<void> connect_once([[maybe_unused]] std::shared_ptr<SubChannel> self) {
    auto outcome = co_await (network_.async_connect(target_, executor_, use_nothrow_awaitable) ||
                             env_.async_wait_for(options_.connect_timeout, use_nothrow_awaitable));
    connecting_ = false;
    std::unique_ptr<transport::ByteStream> stream;
    Status status;
    if (outcome.index() == 1) {
      status =
          unavailable_error("connect to " + target_.to_string() + " timed out after " +
                            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               options_.connect_timeout)
                                               .count()) +
                            " ms");
    } else {
      auto& [ec, connected] = std::get<0>(outcome);
      if (ec) {
        status = transport::to_status(ec, "connect to " + target_.to_string());
        // A TLS certificate failure stays UNAUTHENTICATED: retrying cannot fix it, and the
        // caller should see which certificate was wrong. Anything else is UNAVAILABLE.
        if (status.code() != StatusCode::kUnavailable &&
            status.code() != StatusCode::kUnauthenticated) {
          status = unavailable_error(status.message());
        }
      }
      stream = std::move(connected);
      if (status.ok() && MESHRPC_BUGGIFY) {
        stream.reset();
        status = unavailable_error("connect to " + target_.to_string() + " failed (buggify)");
      }
    }
    auto pending = std::move(pending_);
    pending_.clear();
    if (!status.ok()) {
      on_connect_failed(std::move(status), pending);
      co_return;
    }
    if (shut_down_) {
      for (auto& call : pending) {
        complete(call, local_failure(cancelled_error("channel destroyed")));
      }
      co_return;  // the stream closes as it goes out of scope
    }
    backoff_ = options_.backoff_initial;
    retry_after_ = {};
    last_error_ = Status();
    retire_connection();
    connection_ = std::make_shared<ClientConnection>(env_, std::move(stream), options_, metrics_);
    if (metrics_) metrics_->connections_opened.increment();
    connection_->on_closed_hook = [this] { connected_.store(false, std::memory_order_relaxed); };
    connection_->start();
    connected_.store(true, std::memory_order_relaxed);
    for (auto& call : pending) {
      if (call->completed) continue;
      stop_ready_timer(*call);  // ready now: only the deadline applies from here
      connection_->start_call(call);
    }
  }

  // Backs off; the calls that waited for this connect fail with its error, except
  // wait-for-ready calls within their bound, which wait for the next attempt.
  void on_connect_failed(Status status, std::deque<std::shared_ptr<PendingCall>>& pending) {
    last_error_ = std::move(status);
    if (metrics_) metrics_->connect_failures.increment();
    const double jitter = 0.8 + 0.4 * (static_cast<double>(env_.random_u64() >> 11) * 0x1.0p-53);
    retry_after_ = env_.now() + std::chrono::duration_cast<runtime::Duration>(backoff_ * jitter);
    backoff_ = std::min(options_.backoff_max, std::chrono::duration_cast<runtime::Duration>(
                                                  backoff_ * options_.backoff_multiplier));
    for (auto& call : pending) {
      if (call->completed) continue;
      if (waits_for_ready(*call)) {
        pending_.push_back(call);
      } else if (call->wait_for_ready) {
        complete(call, not_ready(*call));  // its bound passed in this very turn
      } else {
        complete(call, failure(last_error_, true, FailureOrigin::kTransport));
      }
    }
    schedule_reconnect();
  }

  // First, so destroyed last: connections and calls below record into them.
  std::shared_ptr<ChannelMetrics> metrics_;
  std::shared_ptr<ChannelSpans> spans_;
  // By method name, on executor_ only. Bounded: ChannelMetrics folds methods past
  // kMaxMethods into one entry, but each distinct name still gets a cache slot; past
  // kMaxMethods names the cache stops growing (those calls look up the channel's table).
  std::unordered_map<std::string, detail::CallMetrics*> method_metrics_;
  runtime::Env& env_;
  transport::Network& network_;
  transport::Address target_;
  ChannelOptions options_;
  asio::any_io_executor executor_;
  std::shared_ptr<ClientConnection> connection_;
  std::deque<std::shared_ptr<PendingCall>> pending_;  // waiting for the connection
  // Connections replaced after a GOAWAY that still carry calls; each stays until it closes.
  std::vector<std::shared_ptr<ClientConnection>> draining_;
  bool connecting_ = false;
  bool shut_down_ = false;
  std::atomic<bool> connected_{false};
  Status last_error_;  // of the last connect, OK once one succeeds
  runtime::TimePoint retry_after_{};
  runtime::Duration backoff_;
  // Set while the reconnect timer is armed; emitting it cancels the timer.
  std::shared_ptr<asio::cancellation_signal> reconnect_cancel_;
};

// --- Channel ------------------------------------------------------------------------------

Channel::Channel(runtime::Env& env, transport::Network& network, transport::Address target,
                 ChannelOptions options)
    : env_(env),
      target_(std::move(target)),
      interceptors_(options.interceptors),
      default_stream_idle_timeout_(options.default_stream_idle_timeout) {
  if (options.metrics != nullptr) {
    metrics_ = std::make_shared<ChannelMetrics>(target_.to_string());
    // Sub-channels (and their connections) co-own metrics_.
    options.connection.flow_control_stalls = &metrics_->flow_control_stalls;
    metrics_registration_ = options.metrics->add(
        [metrics = metrics_](MetricWriter& writer) { metrics->write(writer); });
  }
  if (options.rpcz) spans_ = std::make_shared<ChannelSpans>(env, target_, *options.rpcz);
  for (size_t i = 0; i < env.executor_count(); ++i) {
    subchannels_.push_back(std::make_shared<SubChannel>(env, network, target_, options,
                                                        env.executor(i), metrics_, spans_));
  }
}

Channel::~Channel() {
  // Own what was spawned (STYLE.md): every sub-channel closes its connection and fails its
  // waiting calls on its own executor. On real threads we wait for that, so no connection
  // outlives the channel into the env's destruction; under simulation (or on an io thread)
  // it happens when the executors next run.
  if (env_.is_simulated()) {  // one thread: shut down now, no turn may come later
    for (const auto& sub : subchannels_) sub->shut_down();
    return;
  }
  const bool wait = !env_.in_env_thread();
  auto done = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(subchannels_.size()));
  for (const auto& sub : subchannels_) {
    asio::post(sub->executor(), [sub, done] {
      sub->shut_down();
      done->count_down();
    });
  }
  if (wait) done->wait();
}

const CallLog* Channel::call_log() const { return spans_ ? &spans_->log : nullptr; }

size_t Channel::connected_count() const {
  size_t count = 0;
  for (const auto& sub : subchannels_) count += sub->connected();
  return count;
}

SubChannel& Channel::pick_subchannel() {
  const size_t index = env_.current_executor_index();
  if (index < subchannels_.size()) return *subchannels_[index];
  return *subchannels_[next_subchannel_.fetch_add(1, std::memory_order_relaxed) %
                       subchannels_.size()];
}

asio::any_io_executor Channel::pick_executor() { return pick_subchannel().executor(); }

// The caller's cancellation, routed to the sub-channel's executor. Touched there only.
struct CallCancel {
  std::weak_ptr<PendingCall> call;
  bool requested = false;
};

namespace {

// now + wait, with a negative wait as zero and saturating at kInfiniteFuture. Only a
// non-negative `now` can overflow, and then the room left is computable without overflowing.
runtime::TimePoint time_after(runtime::TimePoint now, runtime::Duration wait) {
  wait = std::max(wait, runtime::Duration::zero());
  if (now.time_since_epoch() >= runtime::Duration::zero() &&
      wait >= runtime::kInfiniteFuture - now) {
    return runtime::kInfiniteFuture;
  }
  return now + wait;
}

// The attempt's span: the caller's trace (the traceparent in its metadata, as
// ServerContext::child_call_options() sets it) or a new one, and a new span id, sent as the
// traceparent's parent id.
void start_span(runtime::Env& env, PendingCall& call) {
  const std::optional<TraceParent> caller = find_traceparent(call.metadata);
  call.trace.trace_id = caller ? caller->trace_id : new_trace_id(env);
  call.trace.parent_id = new_span_id(env);
  call.trace.flags = caller ? caller->flags : kTraceFlagSampled;
  call.parent_span_id = caller ? caller->parent_id : 0;
  set_traceparent(call.metadata, call.trace);
}

std::shared_ptr<PendingCall> make_pending(runtime::Env& env, std::string method, Buffer request,
                                          CallOptions options, runtime::TimePoint now,
                                          asio::any_io_executor completion_executor,
                                          Channel::CallHandler handler,
                                          asio::cancellation_slot caller_slot) {
  auto call = std::make_shared<PendingCall>(std::move(handler));
  call->method = std::move(method);
  call->request = std::move(request);
  call->metadata = std::move(options.metadata);
  start_span(env, *call);
  call->deadline = options.deadline;
  if (options.timeout) call->deadline = std::min(call->deadline, time_after(now, *options.timeout));
  if (options.wait_for_ready) {
    call->wait_for_ready = std::max(*options.wait_for_ready, runtime::Duration::zero());
    call->ready_deadline = time_after(now, *call->wait_for_ready);
  }
  call->completion_executor = std::move(completion_executor);
  call->caller_slot = caller_slot;
  return call;
}

}  // namespace

void Channel::start_call(std::string method, Buffer request, CallOptions options,
                         asio::any_io_executor completion_executor, CallHandler handler) {
  if (method.empty() || method.front() != '/') method = canonical_method_name(method);
  std::shared_ptr<SubChannel> sub = pick_subchannel().shared_from_this();
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto cancel = std::make_shared<CallCancel>();
  if (slot.is_connected()) {
    // Emitted on the caller's executor; the call lives on the sub-channel's: post over.
    slot.assign([sub, cancel](asio::cancellation_type) {
      asio::post(sub->executor(), [sub, cancel] {
        cancel->requested = true;
        if (auto call = cancel->call.lock()) {
          sub->abandon(call, cancelled_error("call cancelled by the caller"),
                       FailureOrigin::kLocal);
        }
      });
    });
  }
  if (interceptors_.empty()) {
    auto call = make_pending(env_, std::move(method), std::move(request), std::move(options),
                             env_.now(), std::move(completion_executor), std::move(handler), slot);
    asio::post(sub->executor(), [sub, call, cancel] { submit(*sub, call, *cancel); });
    return;
  }
  auto info = std::make_shared<ClientCallInfo>(
      ClientCallInfo{std::move(method), target_, CallKind::kUnary, std::move(options)});
  auto shared_handler = std::make_shared<CallHandler>(std::move(handler));
  asio::co_spawn(
      sub->executor(),
      intercepted_call(sub, std::move(info), std::move(request), std::move(completion_executor),
                       std::move(shared_handler), slot, std::move(cancel)),
      asio::detached);
}

void Channel::submit(SubChannel& sub, const std::shared_ptr<PendingCall>& call,
                     CallCancel& cancel) {
  cancel.call = call;
  sub.begin_record(*call);
  if (cancel.requested) {
    return complete(call, local_failure(cancelled_error("call cancelled by the caller")));
  }
  sub.submit(call);
}

// Runs the interceptors' before_call hooks on the sub-channel's executor, then the call;
// after_call hooks run in reverse order on the caller's executor, before its handler.
awaitable<void> Channel::intercepted_call(std::shared_ptr<SubChannel> sub,
                                          std::shared_ptr<ClientCallInfo> info, Buffer request,
                                          asio::any_io_executor completion_executor,
                                          std::shared_ptr<CallHandler> handler,
                                          asio::cancellation_slot caller_slot,
                                          std::shared_ptr<CallCancel> cancel) {
  const runtime::TimePoint start = env_.now();
  Status status;
  size_t ran = 0;
  while (ran < interceptors_.size() && status.ok()) {
    status = co_await interceptors_[ran++]->before_call(*info);
  }
  CallHandler wrapped([interceptors = interceptors_, info, start, ran, handler,
                       env = &env_](CallResult result) mutable {
    for (size_t i = ran; i-- > 0;) interceptors[i]->after_call(*info, result, env->now() - start);
    std::move (*handler)(std::move(result));
  });
  auto call = make_pending(env_, info->method, std::move(request), info->options, start,
                           std::move(completion_executor), std::move(wrapped), caller_slot);
  if (!status.ok()) {
    sub->begin_record(*call);  // a call refused by an interceptor is a call that failed
    co_return complete(call, local_failure(std::move(status)));
  }
  submit(*sub, call, *cancel);
}

ClientStream Channel::open_stream(std::string method, StreamOptions options) {
  if (method.empty() || method.front() != '/') method = canonical_method_name(method);
  std::shared_ptr<SubChannel> sub = pick_subchannel().shared_from_this();
  const std::optional<runtime::Duration> idle_timeout =
      options.idle_timeout ? options.idle_timeout : default_stream_idle_timeout_;
  auto core = std::make_shared<detail::StreamCore>(&env_, sub->executor(), idle_timeout, true);
  // The call's end is the stream's: the server's trailers (an application outcome) or a
  // failure below it.
  CallHandler handler(asio::bind_executor(sub->executor(), [core](CallResult result) {
    const auto kind = result.origin == FailureOrigin::kServer ? StreamError::Kind::kApplication
                                                              : StreamError::Kind::kTransport;
    core->on_finished(std::move(result.status), kind);
  }));
  auto call = make_pending(env_, std::move(method), Buffer(), std::move(options.call), env_.now(),
                           sub->executor(), std::move(handler), asio::cancellation_slot());
  call->stream = core;
  if (metrics_) metrics_->streams_opened.increment();
  core->set_abort_hook([weak_sub = std::weak_ptr<SubChannel>(sub),
                        weak_call = std::weak_ptr<PendingCall>(call)](Status why) {
    auto sub = weak_sub.lock();
    auto call = weak_call.lock();
    if (sub && call) sub->abandon(call, std::move(why), FailureOrigin::kLocal);
  });
  asio::post(sub->executor(), [sub, call] {
    CallCancel cancel;
    submit(*sub, call, cancel);
  });
  return ClientStream(std::move(core));
}

}  // namespace meshrpc::core
