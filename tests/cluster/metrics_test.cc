// The resilience and cluster layers' metrics (docs/metrics.md, "Resilience and cluster"):
// after a known sequence of calls in virtual time (retries, a hedge, a budget refusal, a
// circuit breaker opening, half-opening and closing, a provider ejected and failed over),
// what a private registry collects is exact.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <memory>
#include <string>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/cluster/broadcast.h"
#include "meshrpc/cluster/client.h"
#include "meshrpc/cluster/service_client.h"
#include "meshrpc/core/server.h"
#include "tests/support/metric_capture.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;

using ::meshrpc::testing::CapturingWriter;
using ::meshrpc::testing::collect;

resilience::RetryPolicy fixed_retry(int attempts, runtime::Duration backoff = 10ms) {
  resilience::RetryPolicy policy;
  policy.max_attempts = attempts;
  policy.backoff = {resilience::BackoffKind::kFixed, backoff, backoff, 1.0};
  return policy;
}

CallOptions with_idempotency(core::Idempotency idempotency) {
  CallOptions options;
  options.idempotency = idempotency;
  return options;
}

class ClusterMetricsTest : public ::testing::Test {
 protected:
  ClusterMetricsTest() : harness_(std::make_unique<::meshrpc::testing::SimHarness>(11)) {}
  void TearDown() override {
    broadcaster_.reset();
    service_.reset();
    client_.reset();
    providers_.clear();
    server_.reset();
    harness_.reset();
  }

  runtime::Env& client_env() { return harness_->client_env(); }

  void start_server() {
    server_ = std::make_unique<core::Server>(harness_->server_env(), harness_->server_network());
    // Fails UNAVAILABLE while flaky_calls_ <= flaky_failures_.
    server_->register_method("/test.T/Flaky",
                             [this](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                               const int n = ++flaky_calls_;
                               if (n <= flaky_failures_) {
                                 co_return unavailable_error("failing on purpose");
                               }
                               co_return Buffer::copy_of("ok");
                             });
    // Its first hang_calls_ calls wait until cancelled; the rest answer at once.
    server_->register_method("/test.T/Hang",
                             [this](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               if (++hang_calls_seen_ <= hang_calls_) {
                                 co_await ctx.env().async_wait_for(1h, use_nothrow_awaitable);
                                 co_return cancelled_error("hung call ended");
                               }
                               co_return Buffer::copy_of("fast");
                             });
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
  }

  // A client recording into the test's registry only (its channels record nowhere).
  void make_client(ClientOptions options = {}) {
    options.metrics = &registry_;
    options.channel.metrics = nullptr;
    client_ = std::make_unique<Client>(client_env(), harness_->client_network(), options);
  }

  core::CallResult call(const std::string& method, CallOptions options = {}) {
    core::CallResult result;
    EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
      result =
          co_await client_->async_call(address_, method, Buffer(), options, asio::use_awaitable);
      co_return Status();
    }),
                IsOk());
    return result;
  }

  void advance(runtime::Duration duration) {
    ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
      co_await client_env().async_wait_for(duration, use_nothrow_awaitable);
      co_return Status();
    }),
                IsOk());
  }

  std::string circuit_state(const std::string& state) const {
    return "meshrpc_client_circuit_state{endpoint=" + address_.to_string() + ",state=" + state +
           "}";
  }
  std::string transitions_to(const std::string& state) const {
    return "meshrpc_client_circuit_transitions_total{endpoint=" + address_.to_string() +
           ",to=" + state + "}";
  }

  // The breaker's gauge must say exactly `state`.
  void expect_circuit(const CapturingWriter& m, const std::string& state) {
    for (const std::string s : {"closed", "open", "half_open"}) {
      EXPECT_EQ(m.at(circuit_state(s)), s == state ? 1 : 0) << s;
    }
  }

  std::unique_ptr<::meshrpc::testing::SimHarness> harness_;
  MetricRegistry registry_;
  std::unique_ptr<core::Server> server_;
  std::vector<std::unique_ptr<core::Server>> providers_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<ServiceClient> service_;
  std::unique_ptr<Broadcaster> broadcaster_;
  ProviderRegistry provider_registry_;
  transport::Address address_;

  std::atomic<int> flaky_calls_{0};
  int flaky_failures_ = 0;
  std::atomic<int> hang_calls_seen_{0};
  int hang_calls_ = 0;
};

TEST_F(ClusterMetricsTest, RetriesAndABreakerOpeningHalfOpeningAndClosingAreExact) {
  start_server();
  ClientOptions options;
  options.retry = fixed_retry(3);
  resilience::CircuitBreakerOptions breaker;
  breaker.consecutive_failures = 3;
  breaker.open_duration = 200ms;
  breaker.half_open_probes = 1;
  breaker.half_open_successes_to_close = 1;
  options.circuit_breaker = breaker;
  make_client(options);

  // Nothing called yet: the counters exist at zero, no endpoint has a breaker.
  CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 0);
  EXPECT_EQ(m.at(circuit_state("closed")), -1);

  // One call that fails twice with UNAVAILABLE and succeeds on its third attempt.
  flaky_failures_ = 2;
  ASSERT_THAT(call("/test.T/Flaky", with_idempotency(core::Idempotency::kIdempotent)).status,
              IsOk());
  m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_client_cluster_calls_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 3);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 2);
  EXPECT_EQ(m.at("meshrpc_client_hedges_total{}"), 0);
  EXPECT_EQ(m.at("meshrpc_client_retry_budget_refusals_total{}"), 0);
  expect_circuit(m, "closed");  // the success reset the two failures
  EXPECT_EQ(m.at(transitions_to("open")), 0);

  // Three single-attempt calls fail in a row: the circuit opens.
  flaky_failures_ = flaky_calls_ + 3;
  CallOptions once;
  once.retry = fixed_retry(1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(call("/test.T/Flaky", once).status, StatusIs(StatusCode::kUnavailable));
    if (i < 2) expect_circuit(collect(registry_), "closed");
  }
  m = collect(registry_);
  expect_circuit(m, "open");
  EXPECT_EQ(m.at(transitions_to("open")), 1);
  EXPECT_EQ(m.at(transitions_to("half_open")), 0);
  EXPECT_EQ(m.at(transitions_to("closed")), 0);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 6);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 2);

  // A call while open is refused without an attempt.
  EXPECT_THAT(call("/test.T/Flaky", once).status, StatusIs(StatusCode::kUnavailable));
  m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_client_circuit_rejections_total{endpoint=" + address_.to_string() + "}"),
            1);
  EXPECT_EQ(m.at("meshrpc_client_cluster_calls_total{}"), 5);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 6);
  EXPECT_EQ(flaky_calls_, 6);  // the refused call never reached the server

  // Past the open period the breaker is half-open (a scrape sees it too) ...
  advance(250ms);
  m = collect(registry_);
  expect_circuit(m, "half_open");
  EXPECT_EQ(m.at(transitions_to("half_open")), 1);
  EXPECT_EQ(m.at(transitions_to("closed")), 0);

  // ... and one successful probe closes it.
  ASSERT_THAT(call("/test.T/Flaky", once).status, IsOk());
  m = collect(registry_);
  expect_circuit(m, "closed");
  EXPECT_EQ(m.at(transitions_to("open")), 1);
  EXPECT_EQ(m.at(transitions_to("half_open")), 1);
  EXPECT_EQ(m.at(transitions_to("closed")), 1);
  EXPECT_EQ(m.at("meshrpc_client_cluster_calls_total{}"), 6);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 7);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 2);
  // The same numbers as the client's own stats.
  const ClientStats stats = client_->stats();
  EXPECT_EQ(stats.attempts, 7u);
  EXPECT_EQ(stats.circuits_opened, 1u);
  EXPECT_EQ(stats.breaker_rejections, 1u);
}

TEST_F(ClusterMetricsTest, AHedgeAndTheCancelledLoserAreCounted) {
  start_server();
  hang_calls_ = 1;
  ClientOptions options;
  resilience::HedgingPolicy hedging;
  hedging.delay = runtime::Duration(50ms);
  hedging.max_extra_load = 1.0;
  options.hedging = hedging;
  make_client(options);
  core::CallResult result =
      call("/test.T/Hang", with_idempotency(core::Idempotency::kNoSideEffects));
  ASSERT_THAT(result.status, IsOk());
  const CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_client_cluster_calls_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 2);
  EXPECT_EQ(m.at("meshrpc_client_hedges_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 0);
  EXPECT_EQ(m.at("meshrpc_client_attempts_cancelled_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_client_hedge_load_refusals_total{}"), 0);
}

TEST_F(ClusterMetricsTest, ARetryBudgetRefusalIsCounted) {
  start_server();
  flaky_failures_ = 100;
  ClientOptions options;
  options.retry = fixed_retry(5);
  options.retry_budget.ratio = 0;
  options.retry_budget.min_retries_per_second = 0;
  make_client(options);
  EXPECT_THAT(call("/test.T/Flaky", with_idempotency(core::Idempotency::kIdempotent)).status,
              StatusIs(StatusCode::kUnavailable));
  const CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_client_retry_budget_refusals_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 0);
}

TEST_F(ClusterMetricsTest, CollectorsComeAndGoWithTheirObjectsAndNullptrRegistersNone) {
  const size_t before = registry_.collector_count();
  make_client();
  broadcaster_ = std::make_unique<Broadcaster>(*client_);
  EXPECT_EQ(registry_.collector_count(), before + 2);
  broadcaster_.reset();
  client_.reset();
  EXPECT_EQ(registry_.collector_count(), before);

  ClientOptions off;
  off.metrics = nullptr;
  off.channel.metrics = nullptr;
  const size_t global_before = MetricRegistry::global().collector_count();
  Client quiet(client_env(), harness_->client_network(), off);
  Broadcaster quiet_broadcaster(quiet);
  EXPECT_EQ(registry_.collector_count(), before);
  EXPECT_EQ(MetricRegistry::global().collector_count(), global_before);
}

TEST_F(ClusterMetricsTest, AServiceClientExposesItsEjectionAndFailovers) {
  // Providers "bad" (always UNAVAILABLE) and "good", round robin, no breakers: the detector
  // ejects "bad" after its second failure, and every call that met it failed over to "good".
  int bad_calls = 0;
  std::vector<cluster::Provider> listed;
  for (const std::string name : {"bad", "good"}) {
    auto& server = *providers_.emplace_back(
        std::make_unique<core::Server>(harness_->server_env(), harness_->server_network()));
    const bool bad = name == "bad";
    server.register_method(
        "/test.Svc/Call",
        [bad, &bad_calls](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
          if (bad) {
            ++bad_calls;
            co_return unavailable_error("bad fails");
          }
          co_return Buffer::copy_of("good");
        });
    auto address = server.start(harness_->listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    cluster::Provider provider;
    provider.node_id = name;
    provider.address = *address;
    listed.push_back(std::move(provider));
  }
  ASSERT_THAT(provider_registry_.replace("test.Svc", std::move(listed), "test"), IsOk());
  ClientOptions client_options;
  client_options.circuit_breaker.reset();
  make_client(client_options);
  ServiceClientOptions options;
  options.load_balancer = "round_robin";
  resilience::OutlierDetectionOptions outliers;
  outliers.consecutive_failures = 2;
  options.outlier_detection = outliers;
  service_ = std::make_unique<ServiceClient>(*client_, provider_registry_, "test.Svc", options);

  const std::string labels = "{service=test.Svc}";
  CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_service_client_providers" + labels), 2);
  EXPECT_EQ(m.at("meshrpc_service_client_ejections_total" + labels), 0);
  EXPECT_EQ(m.at("meshrpc_service_client_failovers_total" + labels), 0);

  auto call_service = [&] {
    core::CallResult result;
    EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
      result = co_await service_->async_call("test.Svc.Call", Buffer(),
                                             with_idempotency(core::Idempotency::kIdempotent),
                                             asio::use_awaitable);
      co_return Status();
    }),
                IsOk());
    return result;
  };
  for (int i = 0; i < 6; ++i) {
    core::CallResult result = call_service();
    ASSERT_THAT(result.status, IsOk());
    EXPECT_EQ(result.response.to_string(), "good");
  }
  m = collect(registry_);
  EXPECT_EQ(bad_calls, 2);
  EXPECT_EQ(m.at("meshrpc_service_client_ejections_total" + labels), 1);
  EXPECT_EQ(m.at("meshrpc_service_client_providers_ejected" + labels), 1);
  EXPECT_EQ(m.at("meshrpc_service_client_failovers_total" + labels), 2);
  EXPECT_EQ(m.at("meshrpc_service_client_ejection_returns_total" + labels), 0);
  EXPECT_EQ(m.at("meshrpc_service_client_health_checks_total" + labels), 0);
  // Each failover was a retry of the client's.
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 2);
  EXPECT_EQ(m.at("meshrpc_client_attempts_total{}"), 8);
  EXPECT_EQ(service_->stats().failovers, 2u);

  // Destroying the service client removes its series; the client's stay.
  service_.reset();
  m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_service_client_failovers_total" + labels), -1);
  EXPECT_EQ(m.at("meshrpc_client_retries_total{}"), 2);
}

TEST_F(ClusterMetricsTest, ABroadcastsTargetsAreCountedByResult) {
  start_server();
  ClientOptions options;
  options.retry = fixed_retry(1);
  make_client(options);
  broadcaster_ = std::make_unique<Broadcaster>(*client_);
  std::vector<TargetResult> results;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    std::vector<transport::Address> targets = {address_, harness_->unused_address()};
    results = co_await broadcaster_->async_broadcast(std::move(targets), "/test.T/Flaky", Buffer(),
                                                     {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_EQ(results.size(), 2u);
  const CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_broadcast_broadcasts_total{}"), 1);
  EXPECT_EQ(m.at("meshrpc_broadcast_targets_total{}"), 2);
  EXPECT_EQ(m.at("meshrpc_broadcast_calls_total{}"), 2);
  EXPECT_EQ(m.at("meshrpc_broadcast_target_results_total{result=ok}"), 1);
  EXPECT_EQ(m.at("meshrpc_broadcast_target_results_total{result=failed}"), 1);
  EXPECT_EQ(m.at("meshrpc_broadcast_target_results_total{result=cancelled}"), 0);
  EXPECT_EQ(m.at("meshrpc_broadcast_target_results_total{result=not_started}"), 0);
  EXPECT_EQ(m.at("meshrpc_broadcast_quorum_total{outcome=reached}"), 0);
  EXPECT_EQ(m.at("meshrpc_broadcast_peak_in_flight{}"), 2);
  EXPECT_EQ(m.at("meshrpc_client_cluster_calls_total{}"), 2);
}

}  // namespace
}  // namespace meshrpc::cluster
