#include "meshrpc/cluster/client.h"

#include <algorithm>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <condition_variable>
#include <list>
#include <stdexcept>
#include <utility>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/resilience/backoff.h"
#include "meshrpc/resilience/pushback.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::cluster {

using resilience::CircuitBreaker;

namespace {

// Attempts after the first carry their number, so a server (and its logs) can tell a retry
// or hedge from a new call.

int64_t to_ms(runtime::Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A breaker state as a label value (Prometheus style: lower case, underscores).
std::string_view metric_state_name(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

}  // namespace

// One endpoint: its channel and its circuit breaker.
struct Client::Endpoint {
  Endpoint(runtime::Env& env, transport::Network& network, transport::Address target,
           const ClientOptions& options)
      : address(std::move(target)), channel(env, network, address, options.channel) {}

  transport::Address address;
  core::Channel channel;
  std::mutex mutex;  // guards breaker
  std::optional<CircuitBreaker> breaker;
};

class UnaryCall;

// What the client and its calls in flight share. Calls hold it by shared_ptr, so it outlives
// the Client object until the last of them ends.
struct Client::Shared {
  Shared(runtime::Env& e, transport::Network& n, ClientOptions o)
      : env(e), network(n), options(std::move(o)), budget(options.retry_budget) {}

  runtime::Env& env;
  transport::Network& network;
  const ClientOptions options;

  std::shared_mutex endpoints_mutex;
  std::unordered_map<std::string, std::shared_ptr<Endpoint>> endpoints;

  std::mutex policy_mutex;  // guards budget and hedgers
  resilience::RetryBudget budget;
  std::unordered_map<std::string, std::unique_ptr<resilience::Hedger>> hedgers;

  // Calls in flight, so that destroying the client can cancel them.
  std::mutex calls_mutex;
  std::list<std::weak_ptr<UnaryCall>> calls;
  // UnaryCall objects alive (finished ones too, until their last handler has run), under
  // calls_mutex: the destructor waits for none, so no channel outlives the env's threads.
  size_t call_objects = 0;
  std::condition_variable no_call_objects;
  std::atomic<bool> closed{false};

  struct Counters {
    std::atomic<uint64_t> calls{0}, attempts{0}, retries{0}, hedges{0}, retries_budget_denied{0},
        hedges_load_denied{0}, pushback_stops{0}, pushback_delays{0}, breaker_rejections{0},
        losers_cancelled{0}, circuits_opened{0};
  } counters;

  std::shared_ptr<Endpoint> endpoint(const transport::Address& address);
  resilience::Hedger* hedger(const std::string& method);
  // The collector: the counters above and each endpoint's breaker (docs/metrics.md).
  void write_metrics(MetricWriter& out);
};

void Client::Shared::write_metrics(MetricWriter& out) {
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  const Counters& c = counters;
  out.counter("meshrpc_client_cluster_calls_total",
              "Calls made through a cluster::Client (each sends one or more attempts).", {},
              get(c.calls));
  out.counter("meshrpc_client_attempts_total",
              "Attempts a cluster::Client sent: first attempts, retries and hedges.", {},
              get(c.attempts));
  out.counter("meshrpc_client_retries_total", "Attempts sent after an attempt of the call failed.",
              {}, get(c.retries));
  out.counter("meshrpc_client_hedges_total",
              "Attempts sent while another attempt of the call was outstanding.", {},
              get(c.hedges));
  out.counter("meshrpc_client_retry_budget_refusals_total",
              "Retries and hedges the retry budget refused.", {}, get(c.retries_budget_denied));
  out.counter("meshrpc_client_hedge_load_refusals_total",
              "Hedges the hedging policy's extra-load cap refused.", {}, get(c.hedges_load_denied));
  out.counter("meshrpc_client_pushback_stops_total",
              "Retries prevented by a server's do-not-retry pushback.", {}, get(c.pushback_stops));
  out.counter("meshrpc_client_pushback_delays_total",
              "Retries delayed by a server's retry-after pushback.", {}, get(c.pushback_delays));
  out.counter("meshrpc_client_attempts_cancelled_total",
              "Outstanding attempts cancelled because another attempt decided the call.", {},
              get(c.losers_cancelled));
  if (!options.circuit_breaker) return;

  std::vector<std::shared_ptr<Endpoint>> list;
  {
    std::shared_lock lock(endpoints_mutex);
    list.reserve(endpoints.size());
    for (const auto& [key, endpoint] : endpoints) list.push_back(endpoint);
  }
  const runtime::TimePoint now = env.now();
  for (const auto& endpoint : list) {
    if (!endpoint->breaker) continue;
    CircuitBreaker::State state;
    uint64_t opened, half_opened, closed, rejected;
    {
      std::lock_guard lock(endpoint->mutex);
      CircuitBreaker& breaker = *endpoint->breaker;
      state = breaker.state(now);  // an open period that ran out is half-open now
      opened = breaker.times_opened();
      half_opened = breaker.times_half_opened();
      closed = breaker.times_closed();
      rejected = breaker.calls_rejected();
    }
    const std::string& name = endpoint->breaker->name();
    for (CircuitBreaker::State s : {CircuitBreaker::State::kClosed, CircuitBreaker::State::kOpen,
                                    CircuitBreaker::State::kHalfOpen}) {
      out.gauge("meshrpc_client_circuit_state",
                "1 for the state the endpoint's circuit breaker is in, 0 for the others.",
                {{"endpoint", name}, {"state", std::string(metric_state_name(s))}},
                s == state ? 1.0 : 0.0);
    }
    const std::pair<CircuitBreaker::State, uint64_t> transitions[] = {
        {CircuitBreaker::State::kOpen, opened},
        {CircuitBreaker::State::kHalfOpen, half_opened},
        {CircuitBreaker::State::kClosed, closed}};
    for (const auto& [to, count] : transitions) {
      out.counter("meshrpc_client_circuit_transitions_total",
                  "Circuit breaker state changes, by the state entered.",
                  {{"endpoint", name}, {"to", std::string(metric_state_name(to))}}, count);
    }
    out.counter("meshrpc_client_circuit_rejections_total",
                "Attempts not sent because the endpoint's circuit was open (or its half-open "
                "probes were all in flight).",
                {{"endpoint", name}}, rejected);
  }
}

std::shared_ptr<Client::Endpoint> Client::Shared::endpoint(const transport::Address& address) {
  const std::string key = address.to_string();
  {
    std::shared_lock lock(endpoints_mutex);
    auto it = endpoints.find(key);
    if (it != endpoints.end()) return it->second;
  }
  std::unique_lock lock(endpoints_mutex);
  auto& slot = endpoints[key];
  if (!slot) {
    slot = std::make_shared<Endpoint>(env, network, address, options);
    if (options.circuit_breaker) {
      slot->breaker.emplace(key, *options.circuit_breaker);
      slot->breaker->set_observer(
          [this](std::string_view name, const CircuitBreaker::Transition& transition) {
            if (transition.to == CircuitBreaker::State::kOpen) {
              counters.circuits_opened.fetch_add(1, std::memory_order_relaxed);
              MESHRPC_LOG_WARN("circuit for {} {} -> open for {} ms", name,
                               resilience::circuit_state_name(transition.from),
                               to_ms(transition.open_duration));
            } else {
              MESHRPC_LOG_INFO("circuit for {} {} -> {}", name,
                               resilience::circuit_state_name(transition.from),
                               resilience::circuit_state_name(transition.to));
            }
          });
    }
  }
  return slot;
}

resilience::Hedger* Client::Shared::hedger(const std::string& method) {
  // Under policy_mutex.
  auto& slot = hedgers[method];
  if (!slot) slot = std::make_unique<resilience::Hedger>(*options.hedging);
  return slot.get();
}

// A unicast call: every attempt to one endpoint.
class FixedRoute final : public Route {
 public:
  explicit FixedRoute(std::shared_ptr<Client::Endpoint> endpoint)
      : endpoint_(std::move(endpoint)) {}
  std::shared_ptr<Client::Endpoint> next(const std::vector<const Client::Endpoint*>&,
                                         Status*) override {
    return endpoint_;
  }
  bool has_alternatives() const override { return false; }

 private:
  std::shared_ptr<Client::Endpoint> endpoint_;
};

// One call: its attempts, timers and decisions, all on one executor of the env.
class UnaryCall : public std::enable_shared_from_this<UnaryCall> {
 public:
  UnaryCall(std::shared_ptr<Client::Shared> shared, std::unique_ptr<Route> route,
            std::string method, Buffer request, CallOptions options, asio::any_io_executor executor,
            asio::any_io_executor completion_executor, Client::CallHandler handler)
      : shared_(std::move(shared)),
        route_(std::move(route)),
        method_(std::move(method)),
        request_(std::move(request)),
        policy_(options.retry ? *options.retry : shared_->options.retry),
        executor_(std::move(executor)),
        completion_executor_(std::move(completion_executor)),
        handler_(std::move(handler)),
        backoff_(policy_.backoff),
        random_(shared_->env.random_u64()) {
    {
      std::lock_guard lock(shared_->calls_mutex);
      ++shared_->call_objects;
    }
    runtime::Env& env = shared_->env;
    deadline_ = options.deadline;
    if (options.timeout) deadline_ = std::min(deadline_, env.now() + *options.timeout);
    if (options.parent != nullptr) {
      deadline_ = std::min(deadline_, options.parent->deadline());
      // The trace entries and a traceparent naming the parent's span (server_context.h).
      for (auto& entry : options.parent->propagated_metadata()) {
        if (core::find_metadata(options.metadata, entry.first) == nullptr) {
          options.metadata.push_back(std::move(entry));
        }
      }
    }
    attempt_options_.metadata = std::move(options.metadata);
    attempt_options_.idempotency = options.idempotency;
    if (options.wait_for_ready) ready_deadline_ = env.now() + *options.wait_for_ready;
    hedge_ = shared_->options.hedging.has_value() && options.allow_hedging &&
             resilience::may_hedge(options.idempotency);
    if (options.inherit_cancellation)
      caller_slot_ = asio::get_associated_cancellation_slot(handler_);
  }

  ~UnaryCall() {
    std::lock_guard lock(shared_->calls_mutex);
    if (--shared_->call_objects == 0) shared_->no_call_objects.notify_all();
  }
  UnaryCall(const UnaryCall&) = delete;
  UnaryCall& operator=(const UnaryCall&) = delete;

  // On the caller's thread, before start(): the slot belongs to the caller's executor.
  void attach_caller_slot() {
    if (!caller_slot_.is_connected()) return;
    // Emitted on the caller's executor; the call lives on executor_: post over. The caller
    // cannot emit before this returns, so a cancel always runs after start(), posted next.
    caller_slot_.assign([weak = weak_from_this(), executor = executor_](asio::cancellation_type) {
      asio::post(executor, [weak] {
        if (auto self = weak.lock()) self->cancel(cancelled_error("call cancelled by the caller"));
      });
    });
  }

  // On executor_.
  void start() {
    if (shared_->closed.load(std::memory_order_acquire)) {
      return finish(local_failure(cancelled_error("client destroyed")));
    }
    const runtime::TimePoint now = shared_->env.now();
    {
      std::lock_guard lock(shared_->policy_mutex);
      shared_->budget.record_request(now);
      if (hedge_) {
        hedger_ = shared_->hedger(method_);
        hedger_->record_request(now);
      }
    }
    launch_attempt(false);
  }

  // On executor_: the caller or the client's destruction ends the call.
  void cancel(Status status) {
    if (finished_) return;
    core::CallResult result = local_failure(std::move(status));
    result.not_processed = attempts_made_ == 0;
    finish(std::move(result));
  }

  const asio::any_io_executor& executor() const { return executor_; }

  // Its place in Shared::calls, under calls_mutex.
  std::list<std::weak_ptr<UnaryCall>>::iterator registration;
  bool registered_ = false;

 private:
  struct Attempt {
    std::shared_ptr<Client::Endpoint> endpoint;
    runtime::TimePoint sent_at;
    asio::cancellation_signal cancel;
    bool outstanding = true;
    bool breaker_admitted = false;
  };

  static core::CallResult local_failure(Status status) {
    core::CallResult result;
    result.status = std::move(status);
    result.not_processed = true;
    result.origin = FailureOrigin::kLocal;
    return result;
  }

  // The last attempt's endpoint, for log lines.
  std::string target() const {
    return attempts_.empty() ? std::string("-") : attempts_.back()->endpoint->address.to_string();
  }

  int attempts_allowed() const {
    return std::clamp(policy_.max_attempts, 1, resilience::kMaxAttemptsLimit);
  }

  void launch_attempt(bool is_hedge) {
    Client::Shared& shared = *shared_;
    const runtime::TimePoint now = shared.env.now();
    std::shared_ptr<Client::Endpoint> endpoint;
    bool admitted = false;
    while (!endpoint) {
      Status why;
      endpoint = route_->next(failed_, &why);
      if (!endpoint) {
        if (outstanding_ > 0) return;  // nowhere for a hedge to go; the others continue
        if (!last_failure_) return finish(local_failure(std::move(why)));
        last_failure_->status = last_failure_->status.with_context(why.message());
        return finish(std::move(*last_failure_));
      }
      if (!endpoint->breaker) break;
      Status allowed;
      {
        std::lock_guard lock(endpoint->mutex);
        allowed = endpoint->breaker->allow(now);
      }
      if (allowed.ok()) {
        admitted = true;
        break;
      }
      shared.counters.breaker_rejections.fetch_add(1, std::memory_order_relaxed);
      MESHRPC_LOG_DEBUG("{} to {}: {}", method_, endpoint->address.to_string(), allowed.message());
      if (route_->has_alternatives()) {  // skip it, as if it had failed in this call
        failed_.push_back(endpoint.get());
        endpoint.reset();
        continue;
      }
      if (outstanding_ > 0) return;  // a hedge that cannot go; the others continue
      return finish(last_failure_ ? std::move(*last_failure_) : local_failure(std::move(allowed)));
    }
    const int number = ++attempts_made_;
    shared.counters.attempts.fetch_add(1, std::memory_order_relaxed);
    if (is_hedge) {
      shared.counters.hedges.fetch_add(1, std::memory_order_relaxed);
      ++hedges_sent_;
    } else if (number > 1) {
      shared.counters.retries.fetch_add(1, std::memory_order_relaxed);
    }
    core::CallOptions options = attempt_options_;
    options.deadline = resilience::attempt_deadline(now, deadline_, policy_);
    // Wait-for-ready bounds the whole call, not each attempt: what is left of it.
    if (ready_deadline_ && *ready_deadline_ > now) options.wait_for_ready = *ready_deadline_ - now;
    if (number > 1)
      options.metadata.emplace_back(core::kAttemptMetadataKey, std::to_string(number));

    auto& attempt = *attempts_.emplace_back(std::make_unique<Attempt>());
    attempt.sent_at = now;
    attempt.breaker_admitted = admitted;
    attempt.endpoint = std::move(endpoint);
    route_->on_attempt_sent(*attempt.endpoint, !failed_.empty());
    ++outstanding_;
    const size_t index = attempts_.size() - 1;
    attempt.endpoint->channel.async_call(
        method_, request_, std::move(options),
        asio::bind_cancellation_slot(
            attempt.cancel.slot(),
            asio::bind_executor(executor_, [self = shared_from_this(), index](core::CallResult r) {
              self->on_attempt_done(index, std::move(r));
            })));
    if (hedger_ != nullptr) arm_hedge(now);
  }

  // After an attempt went out: when the next hedge goes, if one may.
  void arm_hedge(runtime::TimePoint now) {
    if (hedges_sent_ + 1 >= hedger_->policy().max_attempts) return;
    if (attempts_made_ >= attempts_allowed()) return;
    std::optional<runtime::Duration> delay;
    {
      std::lock_guard lock(shared_->policy_mutex);
      delay = hedger_->hedge_delay();
    }
    if (!delay) return;  // no latency estimate yet: no evidence that a hedge would help
    const runtime::TimePoint at = now + *delay;
    if (at >= deadline_) return;
    arm_timer(at, TimerKind::kHedge);
  }

  void on_attempt_done(size_t index, core::CallResult result) {
    Attempt& attempt = *attempts_[index];
    attempt.outstanding = false;
    --outstanding_;
    const runtime::TimePoint now = shared_->env.now();
    report_to_breaker(attempt, result, now);
    route_->on_attempt_finished(*attempt.endpoint, now, now - attempt.sent_at, result);
    if (finished_) return;  // a loser, cancelled after another attempt decided the call
    if (!result.ok()) failed_.push_back(attempt.endpoint.get());

    if (hedger_ != nullptr && (result.ok() || result.origin == FailureOrigin::kServer)) {
      std::lock_guard lock(shared_->policy_mutex);
      hedger_->record_latency(now - attempt.sent_at);
    }
    if (result.ok()) return finish(std::move(result));

    resilience::AttemptFailure failure;
    failure.code = result.status.code();
    failure.origin = result.origin;
    failure.not_processed = result.not_processed;
    failure.committed = result.committed;
    failure.call_deadline_passed = now >= deadline_;
    failure.request_bytes = request_.size();
    const resilience::RetryDecision decision =
        resilience::classify_failure(failure, attempt_options_.idempotency, policy_);
    resilience::Pushback pushback;
    if (const std::string* value =
            core::find_metadata(result.trailing_metadata, resilience::kRetryPushbackKey)) {
      pushback = resilience::parse_pushback(*value);
    }
    if (!decision.retry()) {
      MESHRPC_LOG_DEBUG("{} to {}: attempt {} failed ({}), not retried: {}", method_, target(),
                        attempts_made_, result.status.to_string(), decision.reason);
      return finish(std::move(result));
    }
    if (pushback.kind == resilience::Pushback::Kind::kDoNotRetry) {
      shared_->counters.pushback_stops.fetch_add(1, std::memory_order_relaxed);
      MESHRPC_LOG_DEBUG("{} to {}: server said do not retry", method_, target());
      return finish(std::move(result));
    }
    last_failure_ = std::move(result);
    // Hedged attempts still out: wait for them; a retry goes only when none is left.
    if (outstanding_ > 0) return;
    schedule_retry(now, pushback);
  }

  void schedule_retry(runtime::TimePoint now, const resilience::Pushback& pushback) {
    Client::Shared& shared = *shared_;
    auto give_up = [&](std::string_view why) {
      MESHRPC_LOG_DEBUG("{} to {}: not retried after attempt {}: {}", method_, target(),
                        attempts_made_, why);
      finish(std::move(*last_failure_));
    };
    if (attempts_made_ >= attempts_allowed()) {
      if (route_->has_alternatives()) {
        last_failure_->status = last_failure_->status.with_context(
            "max_attempts " + std::to_string(attempts_allowed()) + " exceeded");
      }
      return give_up("no attempts left");
    }
    if (shared.closed.load(std::memory_order_acquire)) return give_up("client destroyed");
    // Another endpoint goes at once: the backoff gives a failing endpoint room, and the next
    // attempt goes elsewhere. A pushback delay still holds.
    runtime::Duration delay =
        route_->has_alternatives() ? runtime::Duration::zero() : backoff_.next(random_);
    if (pushback.kind == resilience::Pushback::Kind::kRetryAfter) {
      shared.counters.pushback_delays.fetch_add(1, std::memory_order_relaxed);
      delay = std::max(delay, pushback.retry_after);
    }
    if (now + delay >= deadline_) return give_up("the backoff would pass the deadline");
    bool allowed;
    {
      std::lock_guard lock(shared.policy_mutex);
      allowed = shared.budget.try_acquire_retry(now);
    }
    if (!allowed) {
      shared.counters.retries_budget_denied.fetch_add(1, std::memory_order_relaxed);
      return give_up("retry budget spent");
    }
    MESHRPC_LOG_DEBUG("{} to {}: attempt {} failed ({}), retrying in {} ms", method_, target(),
                      attempts_made_, last_failure_->status.to_string(), to_ms(delay));
    arm_timer(now + delay, TimerKind::kBackoff);
  }

  void report_to_breaker(Attempt& attempt, const core::CallResult& result, runtime::TimePoint now) {
    if (!attempt.breaker_admitted) return;
    attempt.breaker_admitted = false;
    std::lock_guard lock(attempt.endpoint->mutex);
    CircuitBreaker& breaker = *attempt.endpoint->breaker;
    if (result.ok()) return breaker.on_success(now);
    // A failure made up here (a local limit, a cancel) says nothing about the endpoint.
    if (result.origin == FailureOrigin::kLocal || result.status.code() == StatusCode::kCancelled) {
      return breaker.on_cancelled(now);
    }
    if (resilience::counts_as_breaker_failure(result.status)) return breaker.on_failure(now);
    breaker.on_success(now);  // the endpoint answered, with an application error
  }

  enum class TimerKind { kHedge, kBackoff };

  void arm_timer(runtime::TimePoint at, TimerKind kind) {
    cancel_timer();
    timer_armed_ = true;
    const uint64_t generation = ++timer_generation_;
    shared_->env.async_wait_until(
        at,
        asio::bind_cancellation_slot(
            timer_cancel_.slot(), asio::bind_executor(executor_, [self = shared_from_this(), kind,
                                                                  generation](error_code ec) {
              self->on_timer(ec, kind, generation);
            })));
  }

  void cancel_timer() {
    if (!timer_armed_) return;
    timer_armed_ = false;
    ++timer_generation_;
    timer_cancel_.emit(asio::cancellation_type::terminal);
  }

  void on_timer(error_code ec, TimerKind kind, uint64_t generation) {
    if (ec || generation != timer_generation_ || finished_) return;
    timer_armed_ = false;
    if (kind == TimerKind::kBackoff) return launch_attempt(false);
    // A hedge: the earlier attempts have not answered within the delay.
    if (outstanding_ == 0 || attempts_made_ >= attempts_allowed()) return;
    Client::Shared& shared = *shared_;
    const runtime::TimePoint now = shared.env.now();
    bool load_ok, budget_ok = false;
    {
      std::lock_guard lock(shared.policy_mutex);
      load_ok = hedger_->try_acquire_hedge(now);
      if (load_ok) budget_ok = shared.budget.try_acquire_retry(now);
    }
    if (!load_ok) {
      shared.counters.hedges_load_denied.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!budget_ok) {
      shared.counters.retries_budget_denied.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    MESHRPC_LOG_DEBUG("{} to {}: no answer after {} ms, hedging (attempt {})", method_, target(),
                      to_ms(now - attempts_.back()->sent_at), attempts_made_ + 1);
    launch_attempt(true);
  }

  void finish(core::CallResult result) {
    if (finished_) return;
    finished_ = true;
    cancel_timer();
    for (auto& attempt : attempts_) {
      if (!attempt->outstanding) continue;
      shared_->counters.losers_cancelled.fetch_add(1, std::memory_order_relaxed);
      attempt->cancel.emit(asio::cancellation_type::terminal);
    }
    {
      std::lock_guard lock(shared_->calls_mutex);
      if (registered_) shared_->calls.erase(registration);
      registered_ = false;
    }
    asio::post(completion_executor_,
               [self = shared_from_this(), result = std::move(result)]() mutable {
                 // The slot belongs to the caller's executor, where this runs.
                 if (self->caller_slot_.is_connected()) self->caller_slot_.clear();
                 auto handler = std::move(self->handler_);
                 std::move(handler)(std::move(result));
               });
  }

  std::shared_ptr<Client::Shared> shared_;
  std::unique_ptr<Route> route_;
  // Endpoints that failed (or refused) in this call, for a route with alternatives to avoid.
  std::vector<const Client::Endpoint*> failed_;
  std::string method_;
  Buffer request_;
  core::CallOptions attempt_options_;  // metadata and idempotency; the deadline is per attempt
  resilience::RetryPolicy policy_;
  runtime::TimePoint deadline_ = runtime::kInfiniteFuture;
  std::optional<runtime::TimePoint> ready_deadline_;  // from CallOptions::wait_for_ready
  asio::any_io_executor executor_;
  asio::any_io_executor completion_executor_;
  Client::CallHandler handler_;
  asio::cancellation_slot caller_slot_;
  bool hedge_ = false;
  resilience::Hedger* hedger_ = nullptr;  // owned by Shared, touched under policy_mutex

  resilience::Backoff backoff_;
  runtime::Random random_;
  std::vector<std::unique_ptr<Attempt>> attempts_;
  int attempts_made_ = 0;
  int hedges_sent_ = 0;
  int outstanding_ = 0;
  std::optional<core::CallResult> last_failure_;
  asio::cancellation_signal timer_cancel_;
  bool timer_armed_ = false;
  uint64_t timer_generation_ = 0;
  bool finished_ = false;
};

// --- Client -------------------------------------------------------------------------------

class Client::EndpointInvoker final : public core::CallInvoker {
 public:
  EndpointInvoker(Client& client, transport::Address target)
      : client_(client), target_(std::move(target)) {}
  asio::any_io_executor default_executor() override { return client_.default_executor(); }
  void start_call(std::string method, Buffer request, core::CallOptions options,
                  asio::any_io_executor completion_executor, CallHandler handler) override {
    client_.start_call(target_, std::move(method), std::move(request),
                       CallOptions(std::move(options)), std::move(completion_executor),
                       std::move(handler));
  }
  // Straight to the endpoint's channel: a stream is not retried, hedged or failed over.
  core::ClientStream open_stream(std::string method, core::StreamOptions options) override {
    return client_.endpoint(target_)->channel.open_stream(std::move(method), std::move(options));
  }

 private:
  Client& client_;
  transport::Address target_;
};

namespace {

// Every policy is checked once, here, so that a bad one fails at setup, not on a call.
ClientOptions validated(ClientOptions options) {
  if (Status status = resilience::validate_retry_policy(options.retry); !status.ok()) {
    throw std::invalid_argument(std::string(status.message()));
  }
  if (options.hedging) resilience::Hedger check(*options.hedging);  // throws when invalid
  if (options.circuit_breaker) CircuitBreaker check("check", *options.circuit_breaker);
  resilience::RetryBudget check_budget(options.retry_budget);
  return options;
}

}  // namespace

Client::Client(runtime::Env& env, transport::Network& network, ClientOptions options)
    : env_(env),
      options_(validated(std::move(options))),
      shared_(std::make_shared<Shared>(env, network, options_)) {
  if (options_.metrics != nullptr) {
    metrics_registration_ = options_.metrics->add(
        [shared = shared_](MetricWriter& writer) { shared->write_metrics(writer); });
  }
}

Client::~Client() {
  shared_->closed.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<UnaryCall>> live;
  {
    std::lock_guard lock(shared_->calls_mutex);
    for (auto& weak : shared_->calls) {
      if (auto call = weak.lock()) live.push_back(std::move(call));
    }
  }
  for (auto& call : live) {
    auto executor = call->executor();
    asio::post(executor, [call] { call->cancel(cancelled_error("client destroyed")); });
  }
  live.clear();
  // On real threads, wait until every call has let go of the channels (their last handlers
  // run promptly: everything was cancelled), so that the channels close here, while the
  // env's threads run. On an env thread (or under simulation) that wait would block the
  // very handlers it waits for: the last call then closes the channels from its thread.
  if (env_.is_simulated() || env_.in_env_thread()) return;
  std::unique_lock lock(shared_->calls_mutex);
  shared_->no_call_objects.wait(lock, [&] { return shared_->call_objects == 0; });
}

asio::any_io_executor Client::default_executor() {
  const size_t index = env_.current_executor_index();
  if (index < env_.executor_count()) return env_.executor(index);
  return env_.pick_executor();
}

void Client::start_call(transport::Address target, std::string method, Buffer request,
                        CallOptions options, asio::any_io_executor completion_executor,
                        CallHandler handler) {
  start_routed_call(std::make_unique<FixedRoute>(shared_->endpoint(target)), std::move(method),
                    std::move(request), std::move(options), std::move(completion_executor),
                    std::move(handler));
}

std::shared_ptr<Client::Endpoint> Client::endpoint(const transport::Address& target) {
  return shared_->endpoint(target);
}

const transport::Address& Client::address_of(const Endpoint& endpoint) { return endpoint.address; }

void Client::start_routed_call(std::unique_ptr<Route> route, std::string method, Buffer request,
                               CallOptions options, asio::any_io_executor completion_executor,
                               CallHandler handler) {
  shared_->counters.calls.fetch_add(1, std::memory_order_relaxed);
  if (method.empty() || method.front() != '/') method = core::canonical_method_name(method);
  if (options.retry) {
    // A per-call policy is checked here; the client's was checked at construction.
    if (Status invalid = resilience::validate_retry_policy(*options.retry); !invalid.ok()) {
      core::CallResult result;
      result.status = invalid.with_context("CallOptions::retry");
      result.not_processed = true;
      result.origin = FailureOrigin::kLocal;
      asio::post(completion_executor,
                 [handler = std::move(handler), result = std::move(result)]() mutable {
                   std::move(handler)(std::move(result));
                 });
      return;
    }
  }
  auto executor = default_executor();
  auto call = std::make_shared<UnaryCall>(shared_, std::move(route), std::move(method),
                                          std::move(request), std::move(options), executor,
                                          std::move(completion_executor), std::move(handler));
  {
    std::lock_guard lock(shared_->calls_mutex);
    call->registration = shared_->calls.insert(shared_->calls.end(), call);
    call->registered_ = true;
  }
  call->attach_caller_slot();
  asio::post(executor, [call] { call->start(); });
}

core::CallInvoker& Client::invoker(const transport::Address& target) {
  std::lock_guard lock(invokers_mutex_);
  auto& slot = invokers_[target.to_string()];
  if (!slot) slot = std::make_unique<EndpointInvoker>(*this, target);
  return *slot;
}

CircuitBreaker::State Client::breaker_state(const transport::Address& target) {
  std::shared_ptr<Endpoint> endpoint;
  {
    std::shared_lock lock(shared_->endpoints_mutex);
    auto it = shared_->endpoints.find(target.to_string());
    if (it == shared_->endpoints.end()) return CircuitBreaker::State::kClosed;
    endpoint = it->second;
  }
  if (!endpoint->breaker) return CircuitBreaker::State::kClosed;
  std::lock_guard lock(endpoint->mutex);
  return endpoint->breaker->state(env_.now());
}

ClientStats Client::stats() const {
  const auto& c = shared_->counters;
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  ClientStats stats;
  stats.calls = get(c.calls);
  stats.attempts = get(c.attempts);
  stats.retries = get(c.retries);
  stats.hedges = get(c.hedges);
  stats.retries_budget_denied = get(c.retries_budget_denied);
  stats.hedges_load_denied = get(c.hedges_load_denied);
  stats.pushback_stops = get(c.pushback_stops);
  stats.pushback_delays = get(c.pushback_delays);
  stats.breaker_rejections = get(c.breaker_rejections);
  stats.losers_cancelled = get(c.losers_cancelled);
  stats.circuits_opened = get(c.circuits_opened);
  return stats;
}

Status Client::check_blocking_allowed() const {
  if (env_.is_simulated()) {
    return failed_precondition_error(
        "blocking unicast under simulation would stop virtual time; use async_call");
  }
  if (env_.in_env_thread()) {
    return failed_precondition_error(
        "blocking unicast on one of the env's threads would wait on itself; use async_call");
  }
  return Status();
}

}  // namespace meshrpc::cluster
