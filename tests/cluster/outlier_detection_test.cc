// Outlier detection in ServiceClient over simulated links: a provider that keeps failing is
// ejected and gets no calls while ejected, the max-ejection cap holds when every provider
// fails, and a provider whose connects black-hole is ejected by calls whose deadline is
// shorter than the connect timeout (brpc #348).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/cluster/service_client.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;

constexpr std::string_view kService = "test.Svc";

// One simulated host per provider, so that links to each can be configured apart.
struct SimProvider {
  std::string node_id;
  std::unique_ptr<core::Server> server;
  transport::Address address;
  int calls = 0;
};

class OutlierDetectionTest : public ::testing::Test {
 protected:
  OutlierDetectionTest() : sim_(7), net_(sim_), client_host_(sim_.add_host("client")) {}

  void TearDown() override {
    service_.reset();
    client_.reset();
    providers_.clear();
  }

  // Provider p<index> on its own host, answering `code` (OK: its node id).
  void add_provider(StatusCode code) {
    auto& provider = *providers_.emplace_back(std::make_unique<SimProvider>());
    provider.node_id = "p" + std::to_string(providers_.size() - 1);
    runtime::SimHost& host = sim_.add_host(provider.node_id);
    provider.server = std::make_unique<core::Server>(host, net_.host(host));
    provider.server->register_method(
        "/test.Svc/Call",
        [&provider, code](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
          ++provider.calls;
          if (code != StatusCode::kOk) co_return Status(code, provider.node_id + " fails");
          co_return Buffer::copy_of(provider.node_id);
        });
    auto address = provider.server->start({host.name(), 0});
    ASSERT_TRUE(address.ok()) << address.status();
    provider.address = *address;
  }

  // Round robin, so that every provider's turn comes predictably. The client's circuit
  // breakers are off unless asked for: what keeps calls away is then the detector alone.
  void make_service(bool breakers = false) {
    std::vector<cluster::Provider> listed;
    for (const auto& provider : providers_) {
      cluster::Provider p;
      p.node_id = provider->node_id;
      p.address = provider->address;
      listed.push_back(std::move(p));
    }
    ASSERT_THAT(registry_.replace(kService, std::move(listed), "test"), IsOk());
    ClientOptions client_options;
    if (!breakers) client_options.circuit_breaker.reset();
    client_ = std::make_unique<Client>(client_host_, net_.host(client_host_), client_options);
    ServiceClientOptions options;
    options.load_balancer = "round_robin";
    service_ = std::make_unique<ServiceClient>(*client_, registry_, std::string(kService), options);
  }

  core::CallResult call(CallOptions options = {}) {
    std::optional<core::CallResult> result;
    asio::co_spawn(
        client_host_.pick_executor(),
        [&]() -> awaitable<void> {
          core::CallResult r = co_await service_->async_call("test.Svc.Call", Buffer(), options,
                                                             asio::use_awaitable);
          result = std::move(r);
        },
        asio::detached);
    EXPECT_TRUE(sim_.run_until([&] { return result.has_value(); }, std::chrono::hours(1)));
    return result ? std::move(*result) : core::CallResult{};
  }

  static CallOptions idempotent() {
    CallOptions options;
    options.idempotency = core::Idempotency::kIdempotent;
    return options;
  }

  void advance(runtime::Duration duration) { sim_.run_for(duration); }

  runtime::SimEnv sim_;
  transport::SimNetwork net_;
  runtime::SimHost& client_host_;
  std::vector<std::unique_ptr<SimProvider>> providers_;
  ProviderRegistry registry_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<ServiceClient> service_;
};

TEST_F(OutlierDetectionTest, AFailingProviderIsEjectedThenTriedAgainAfterItsEjection) {
  for (int i = 0; i < 3; ++i) add_provider(StatusCode::kOk);
  add_provider(StatusCode::kUnavailable);
  make_service();
  SimProvider& failing = *providers_.back();
  for (int i = 0; i < 100 && service_->stats().outlier_ejections == 0; ++i) {
    EXPECT_THAT(call(idempotent()).status, IsOk());  // failover to a good provider
  }
  ASSERT_EQ(service_->stats().outlier_ejections, 1u);
  EXPECT_EQ(failing.calls, 5);
  EXPECT_EQ(service_->stats().providers_ejected, 1u);

  // Ejected for 30 s: no call reaches it, every call succeeds on the others.
  const int calls_at_ejection = failing.calls;
  for (int i = 0; i < 200; ++i) ASSERT_THAT(call(idempotent()).status, IsOk());
  EXPECT_EQ(failing.calls, calls_at_ejection);
  advance(25s);
  for (int i = 0; i < 20; ++i) ASSERT_THAT(call(idempotent()).status, IsOk());
  EXPECT_EQ(failing.calls, calls_at_ejection);

  // After the ejection time it is tried again, on probation: its first failure ejects it
  // again at once, for 60 s.
  advance(6s);
  for (int i = 0; i < 20 && failing.calls == calls_at_ejection; ++i) {
    ASSERT_THAT(call(idempotent()).status, IsOk());
  }
  EXPECT_EQ(failing.calls, calls_at_ejection + 1);
  const ServiceClientStats stats = service_->stats();
  EXPECT_EQ(stats.outlier_returns, 1u);
  EXPECT_EQ(stats.outlier_ejections, 2u);
  EXPECT_EQ(stats.providers_ejected, 1u);
  advance(45s);  // still out: the second ejection is 60 s
  for (int i = 0; i < 20; ++i) ASSERT_THAT(call(idempotent()).status, IsOk());
  EXPECT_EQ(failing.calls, calls_at_ejection + 1);
}

TEST_F(OutlierDetectionTest, WithEveryProviderFailingNotAllAreEjected) {
  for (int i = 0; i < 5; ++i) add_provider(StatusCode::kUnavailable);
  make_service(/*breakers=*/true);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(call(idempotent()).status.code(), StatusCode::kUnavailable);
    // 10% of 5 rounds to 0: the cap is at least one, and no more.
    ASSERT_LE(service_->stats().providers_ejected, 1u) << "call " << i;
    if (i % 20 == 19) advance(3s);  // let ejections and open circuits run out now and then
  }
  EXPECT_GE(service_->stats().outlier_ejections, 1u);
}

TEST_F(OutlierDetectionTest, AProviderWhoseConnectsTimeOutIsEjectedByShortDeadlines) {
  for (int i = 0; i < 3; ++i) add_provider(StatusCode::kOk);
  add_provider(StatusCode::kOk);
  SimProvider& unreachable = *providers_.back();
  transport::LinkConfig blackhole;
  blackhole.blackhole = true;
  net_.set_link("client", unreachable.node_id, blackhole);
  make_service();

  // 200 ms deadlines, far below the channel's 5 s connect timeout: each call that lands on the
  // unreachable provider ends DEADLINE_EXCEEDED while its channel is still connecting.
  CallOptions options;
  options.timeout = 200ms;
  const runtime::TimePoint start = sim_.default_host().now();
  int deadline_failures = 0;
  for (int i = 0; i < 100 && service_->stats().outlier_ejections == 0; ++i) {
    const core::CallResult result = call(options);
    if (!result.ok()) {
      EXPECT_EQ(result.status.code(), StatusCode::kDeadlineExceeded) << result.status;
      EXPECT_TRUE(result.not_processed);
      ++deadline_failures;
    }
  }
  ASSERT_EQ(service_->stats().outlier_ejections, 1u);
  EXPECT_EQ(deadline_failures, 5);
  EXPECT_LT(sim_.default_host().now() - start, 5s);  // all within one connect timeout
  // Later calls go elsewhere and succeed.
  for (int i = 0; i < 100; ++i) ASSERT_THAT(call(options).status, IsOk()) << "call " << i;
  EXPECT_EQ(unreachable.calls, 0);
}

TEST_F(OutlierDetectionTest, OffWhenTheOptionIsUnset) {
  for (int i = 0; i < 3; ++i) add_provider(StatusCode::kOk);
  add_provider(StatusCode::kUnavailable);
  std::vector<cluster::Provider> listed;
  for (const auto& provider : providers_) {
    cluster::Provider p;
    p.node_id = provider->node_id;
    p.address = provider->address;
    listed.push_back(std::move(p));
  }
  ASSERT_THAT(registry_.replace(kService, std::move(listed), "test"), IsOk());
  ClientOptions client_options;
  client_options.circuit_breaker.reset();
  client_ = std::make_unique<Client>(client_host_, net_.host(client_host_), client_options);
  ServiceClientOptions options;
  options.load_balancer = "round_robin";
  options.outlier_detection.reset();
  service_ = std::make_unique<ServiceClient>(*client_, registry_, std::string(kService), options);
  for (int i = 0; i < 40; ++i) ASSERT_THAT(call(idempotent()).status, IsOk());
  EXPECT_EQ(service_->stats().outlier_ejections, 0u);
  EXPECT_GT(providers_.back()->calls, 5);  // ejection would have stopped it at 5
}

}  // namespace
}  // namespace meshrpc::cluster
