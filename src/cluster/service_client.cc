#include "meshrpc/cluster/service_client.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/resilience/circuit_breaker.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::cluster {

struct ServiceClient::State {
  State(std::string s, std::unique_ptr<LoadBalancer> b, uint64_t seed,
        const std::optional<resilience::OutlierDetectionOptions>& outlier_options)
      : service(std::move(s)), balancer(std::move(b)), random(seed) {
    if (outlier_options) outliers.emplace(*outlier_options);
  }

  const std::string service;
  mutable std::mutex mutex;  // guards everything below
  std::unique_ptr<LoadBalancer> balancer;
  ProviderSnapshot providers;  // what the balancer's indices refer to
  runtime::Random random;
  std::optional<resilience::OutlierDetector> outliers;  // when outlier detection is on
  uint64_t outlier_panic_picks = 0;
  // Attempts that failed over; counted without the mutex (once per failed-over attempt).
  std::atomic<uint64_t> failovers{0};

  // Active health checks (when on): consecutive results per listed provider.
  struct Health {
    int passes = 0;
    int failures = 0;
    bool failing = false;  // out of rotation
  };
  std::map<std::string, Health, std::less<>> health;
  uint64_t health_checks = 0;
  uint64_t health_check_failures = 0;
  // Set by the ServiceClient's destructor: the checker starts no more checks. The sleep it is
  // in is interrupted on its executor, where `checker_sleeping` is read and written.
  bool closed = false;
  bool checker_sleeping = false;
  asio::cancellation_signal checker_wake;
};

namespace {

// Logs the detector's ejections and returns; called without the state's mutex held.
void log_transitions(const std::string& service,
                     const std::vector<resilience::OutlierDetector::Transition>& transitions) {
  for (const auto& t : transitions) {
    if (t.ejected) {
      MESHRPC_LOG_INFO(
          "{}: provider {} ejected for {} ms ({}, ejection {})", service, t.node_id,
          std::chrono::duration_cast<std::chrono::milliseconds>(t.ejection_time).count(),
          resilience::outlier_reason_name(t.reason), t.times_ejected);
    } else {
      MESHRPC_LOG_INFO("{}: provider {} back in rotation on probation", service, t.node_id);
    }
  }
}

// What an attempt's outcome says about its provider, for outlier detection: nothing (a local
// failure or a cancel), a failure (the breaker's notion, counts_as_breaker_failure), or a
// success (an answer, an application error included). A deadline that passes while the
// channel is still connecting ends the attempt with origin kTransport, so it is a failure:
// the brpc #348 case of a provider whose connects time out behind short call deadlines.
std::optional<bool> outlier_failure(const core::CallResult& result) {
  if (result.ok()) return false;
  if (result.origin == FailureOrigin::kLocal || result.status.code() == StatusCode::kCancelled) {
    return std::nullopt;
  }
  return resilience::counts_as_breaker_failure(result.status);
}

// Under the state's mutex: the balancer's pick avoiding `failed` (providers that failed in
// the call), the ejected ones and those failing health checks; when that leaves none,
// ejection and health are ignored (panic).
std::optional<size_t> pick_provider(ServiceClient::State& state,
                                    const std::vector<std::string>& failed, runtime::TimePoint now,
                                    std::optional<uint64_t> hash_key) {
  std::vector<std::string> ejected;
  if (state.outliers) ejected = state.outliers->ejected_node_ids(now);
  for (const auto& [node_id, health] : state.health) {
    if (health.failing) ejected.push_back(node_id);
  }
  if (!ejected.empty()) {
    std::vector<std::string> excluded = failed;
    excluded.insert(excluded.end(), ejected.begin(), ejected.end());
    PickRequest request{state.random, now, hash_key, excluded};
    if (std::optional<size_t> index = state.balancer->pick(request)) return index;
    ++state.outlier_panic_picks;
  }
  PickRequest request{state.random, now, hash_key, failed};
  return state.balancer->pick(request);
}

// A service call's attempts: a provider per attempt from the balancer, excluding the ones
// that failed in this call.
class ProviderRoute final : public Route {
 public:
  ProviderRoute(Client& client, std::shared_ptr<ServiceClient::State> state,
                std::optional<uint64_t> hash_key)
      : client_(client), state_(std::move(state)), hash_key_(hash_key) {}

  std::shared_ptr<Client::Endpoint> next(const std::vector<const Client::Endpoint*>& failed,
                                         Status* why) override {
    // Node ids of the endpoints that failed: every endpoint this route handed out is in
    // routed_, so the lookup is over at most max_attempts entries.
    std::vector<std::string> excluded;
    for (const Client::Endpoint* endpoint : failed) {
      for (const auto& [routed, node_id] : routed_) {
        if (routed == endpoint) excluded.push_back(node_id);
      }
    }
    std::vector<resilience::OutlierDetector::Transition> transitions;
    std::shared_ptr<Client::Endpoint> endpoint = pick_endpoint(excluded, why, transitions);
    log_transitions(state_->service, transitions);
    return endpoint;
  }

  bool has_alternatives() const override { return true; }

  void on_attempt_sent(const Client::Endpoint&, bool after_failure) override {
    if (after_failure) state_->failovers.fetch_add(1, std::memory_order_relaxed);
  }

  void on_attempt_finished(const Client::Endpoint& endpoint, runtime::TimePoint now,
                           runtime::Duration latency, const core::CallResult& result) override {
    auto it = std::find_if(routed_.begin(), routed_.end(),
                           [&](const auto& entry) { return entry.first == &endpoint; });
    if (it == routed_.end()) return;
    // As for the breaker: only outcomes that say the provider is unwell count against it.
    const bool ok = result.ok() || !resilience::counts_as_breaker_failure(result.status);
    std::vector<resilience::OutlierDetector::Transition> transitions;
    {
      std::lock_guard lock(state_->mutex);
      state_->balancer->on_call_finished(it->second, now, latency, ok);
      if (state_->outliers) {
        if (const std::optional<bool> failure = outlier_failure(result)) {
          state_->outliers->record(it->second, *failure, now);
        }
        transitions = state_->outliers->take_transitions();
      }
    }
    log_transitions(state_->service, transitions);
  }

 private:
  // The provider for the next attempt, or null with `*why`; the detector's transitions since
  // the last call go to `transitions`, for logging once the mutex is released.
  std::shared_ptr<Client::Endpoint> pick_endpoint(
      const std::vector<std::string>& excluded, Status* why,
      std::vector<resilience::OutlierDetector::Transition>& transitions) {
    std::lock_guard lock(state_->mutex);
    const auto& providers = state_->providers->providers;
    const std::optional<size_t> index = pick(excluded, client_.env().now());
    if (state_->outliers) transitions = state_->outliers->take_transitions();
    if (!index) {
      *why = providers.empty()
                 ? unavailable_error("no providers for service " + state_->service)
                 : unavailable_error("all " + std::to_string(providers.size()) + " providers of " +
                                     state_->service + " failed in this call");
      return nullptr;
    }
    const Provider& provider = providers[*index];
    state_->balancer->on_call_started(provider.node_id);
    std::shared_ptr<Client::Endpoint> endpoint = client_.endpoint(provider.address);
    routed_.emplace_back(endpoint.get(), provider.node_id);
    return endpoint;
  }

  std::optional<size_t> pick(const std::vector<std::string>& failed, runtime::TimePoint now) {
    return pick_provider(*state_, failed, now, hash_key_);
  }

  Client& client_;
  std::shared_ptr<ServiceClient::State> state_;
  std::optional<uint64_t> hash_key_;
  // Each attempt's endpoint and the provider it was picked as (one per attempt).
  std::vector<std::pair<const Client::Endpoint*, std::string>> routed_;
};

HealthCheckOptions checked(HealthCheckOptions options) {
  if (options.interval <= runtime::Duration::zero() ||
      options.timeout <= runtime::Duration::zero()) {
    throw std::invalid_argument("HealthCheckOptions: interval and timeout must be positive");
  }
  if (options.unhealthy_threshold < 1 || options.healthy_threshold < 1) {
    throw std::invalid_argument("HealthCheckOptions: thresholds must be at least 1");
  }
  return options;
}

// Records one health check's result for `node_id` (if still listed).
void record_health_check(ServiceClient::State& state, const HealthCheckOptions& options,
                         const std::string& node_id, const core::CallResult& result) {
  const bool passed =
      result.ok() && (result.response.empty() || result.response.to_string() == "SERVING");
  std::lock_guard lock(state.mutex);
  ++state.health_checks;
  if (!passed) ++state.health_check_failures;
  auto it = state.health.find(node_id);
  if (it == state.health.end()) return;  // delisted meanwhile
  auto& health = it->second;
  if (passed) {
    health.failures = 0;
    if (health.failing && ++health.passes >= options.healthy_threshold) {
      health.failing = false;
      health.passes = 0;
      MESHRPC_LOG_INFO("{}: provider {} passes health checks again", state.service, node_id);
    }
  } else {
    health.passes = 0;
    if (!health.failing && ++health.failures >= options.unhealthy_threshold) {
      health.failing = true;
      MESHRPC_LOG_WARN("{}: provider {} failed {} health checks in a row ({}); out of rotation",
                       state.service, node_id, health.failures, result.status.to_string());
    }
  }
}

// Every interval, one health-check call to each listed provider, until the ServiceClient is
// destroyed. Runs on one executor of the env; checks are started under the state's mutex
// while not closed, so none starts once the destructor has returned (the client may go
// then); checks in flight finish on their own (the client completes them) and touch only
// the shared state.
awaitable<void> check_health(Client& client, std::shared_ptr<ServiceClient::State> state,
                             HealthCheckOptions options) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    state->checker_sleeping = true;
    auto token = asio::bind_cancellation_slot(state->checker_wake.slot(), use_nothrow_awaitable);
    co_await client.env().async_wait_for(options.interval, token);
    state->checker_sleeping = false;
    state->checker_wake.slot().clear();

    std::lock_guard lock(state->mutex);
    if (state->closed) co_return;
    for (const Provider& provider : state->providers->providers) {
      CallOptions call;
      call.timeout = options.timeout;
      call.idempotency = core::Idempotency::kIdempotent;
      resilience::RetryPolicy once;
      once.max_attempts = 1;
      call.retry = once;
      call.allow_hedging = false;
      call.inherit_cancellation = false;
      client.async_call(provider.address, options.method, Buffer(), std::move(call),
                        asio::bind_executor(executor, [state, options, node_id = provider.node_id](
                                                          core::CallResult result) {
                          record_health_check(*state, options, node_id, result);
                        }));
    }
  }
}

std::unique_ptr<LoadBalancer> make_balancer(const ServiceClientOptions& options) {
  if (options.make_balancer) {
    auto balancer = options.make_balancer();
    if (!balancer) throw std::invalid_argument("ServiceClientOptions::make_balancer gave null");
    return balancer;
  }
  auto balancer = make_load_balancer(options.load_balancer);
  if (!balancer.ok()) throw std::invalid_argument(std::string(balancer.status().message()));
  return std::move(*balancer);
}

}  // namespace

ServiceClient::ServiceClient(Client& client, ProviderRegistry& registry, std::string service,
                             ServiceClientOptions options)
    : client_(client),
      registry_(registry),
      service_(std::move(service)),
      state_(std::make_shared<State>(service_, make_balancer(options), client.env().random_u64(),
                                     options.outlier_detection)) {
  // Called at once with the current list, then on every change: a registry update reaches
  // the balancer before the next pick.
  const bool checks_health = options.health_check.has_value();
  watch_ =
      registry_.watch(service_, [state = state_, checks_health](const ProviderSnapshot& snapshot) {
        std::lock_guard lock(state->mutex);
        state->providers = snapshot;
        state->balancer->update(snapshot->providers);
        if (state->outliers) {
          std::vector<std::string> node_ids;
          node_ids.reserve(snapshot->providers.size());
          for (const Provider& provider : snapshot->providers) node_ids.push_back(provider.node_id);
          state->outliers->set_providers(node_ids);
        }
        // Health records follow the list: new providers start healthy, delisted ones are
        // forgotten. Without health checks there are none, and picks skip them for free.
        if (!checks_health) return;
        std::map<std::string, State::Health, std::less<>> health;
        for (const Provider& provider : snapshot->providers) {
          auto it = state->health.find(provider.node_id);
          health[provider.node_id] = it != state->health.end() ? it->second : State::Health{};
        }
        state->health.swap(health);
      });
  if (options.health_check) {
    checker_executor_ = client_.env().pick_executor();
    asio::co_spawn(checker_executor_, check_health(client_, state_, checked(*options.health_check)),
                   asio::detached);
  }
  if (MetricRegistry* metrics = client_.options().metrics) {
    metrics_registration_ = metrics->add([this](MetricWriter& out) { write_metrics(out); });
  }
}

void ServiceClient::write_metrics(MetricWriter& out) const {
  const ServiceClientStats s = stats();
  const MetricLabels labels = {{"service", service_}};
  out.counter("meshrpc_service_client_ejections_total", "Providers ejected by outlier detection.",
              labels, s.outlier_ejections);
  out.counter("meshrpc_service_client_ejection_returns_total",
              "Ejected providers back in rotation after their ejection time.", labels,
              s.outlier_returns);
  out.counter("meshrpc_service_client_panic_picks_total",
              "Picks that ignored ejection and health because nothing else was left.", labels,
              s.outlier_panic_picks);
  out.gauge("meshrpc_service_client_providers_ejected", "Providers ejected now.", labels,
            static_cast<double>(s.providers_ejected));
  out.gauge("meshrpc_service_client_providers", "Providers listed now.", labels,
            static_cast<double>(s.providers));
  out.counter("meshrpc_service_client_failovers_total",
              "Attempts sent to another provider after one failed (or had its circuit open) "
              "in the same call.",
              labels, s.failovers);
  out.counter("meshrpc_service_client_health_checks_total", "Active health checks that ended.",
              labels, s.health_checks);
  out.counter("meshrpc_service_client_health_check_failures_total",
              "Active health checks that failed.", labels, s.health_check_failures);
  out.gauge("meshrpc_service_client_providers_failing_checks",
            "Providers out of rotation because they fail health checks now.", labels,
            static_cast<double>(s.providers_failing_checks));
}

core::ClientStream ServiceClient::open_stream(std::string method, core::StreamOptions options) {
  std::optional<transport::Address> address;
  {
    std::lock_guard lock(state_->mutex);
    const auto& providers = state_->providers->providers;
    if (std::optional<size_t> index = pick_provider(*state_, {}, client_.env().now(), {})) {
      address = providers[*index].address;
    }
  }
  if (!address) {
    return core::ClientStream(core::detail::failed_stream(
        client_.default_executor(), unavailable_error("no providers for service " + service_)));
  }
  return client_.invoker(*address).open_stream(std::move(method), std::move(options));
}

ServiceClientStats ServiceClient::stats() const {
  ServiceClientStats stats;
  std::lock_guard lock(state_->mutex);
  stats.outlier_panic_picks = state_->outlier_panic_picks;
  if (state_->outliers) {
    stats.outlier_ejections = state_->outliers->stats().ejections;
    stats.outlier_returns = state_->outliers->stats().returns;
    stats.providers_ejected = state_->outliers->ejected_count(client_.env().now());
  }
  stats.failovers = state_->failovers.load(std::memory_order_relaxed);
  if (state_->providers) stats.providers = state_->providers->providers.size();
  stats.health_checks = state_->health_checks;
  stats.health_check_failures = state_->health_check_failures;
  for (const auto& [node_id, health] : state_->health) {
    if (health.failing) ++stats.providers_failing_checks;
  }
  return stats;
}

ServiceClient::~ServiceClient() {
  registry_.unwatch(watch_);
  {
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
  }
  if (checker_executor_) {
    asio::post(checker_executor_, [state = state_] {
      if (state->checker_sleeping) state->checker_wake.emit(asio::cancellation_type::all);
    });
  }
}

void ServiceClient::start(std::string method, Buffer request, CallOptions options,
                          asio::any_io_executor completion_executor, CallHandler handler) {
  const std::optional<uint64_t> hash_key = options.hash_key;
  client_.start_routed_call(std::make_unique<ProviderRoute>(client_, state_, hash_key),
                            std::move(method), std::move(request), std::move(options),
                            std::move(completion_executor), std::move(handler));
}

}  // namespace meshrpc::cluster
