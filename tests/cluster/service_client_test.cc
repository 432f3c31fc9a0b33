// ServiceClient: calls to a named service fail over between its providers, never retrying a
// provider that already failed in the same call, over TCP on 127.0.0.1 and simulated links.
#include "meshrpc/cluster/service_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/server.h"
#include "tests/support/backends.h"

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

constexpr std::string_view kService = "test.Svc";
constexpr std::string_view kCallIdKey = "test-call-id";

// A server that answers `code` (OK: its name) and records which calls reached it.
struct Provider {
  std::unique_ptr<core::Server> server;
  transport::Address address;
  std::mutex mutex;
  std::map<std::string, int> calls_by_id;  // under mutex
  int calls = 0;                           // under mutex
  std::atomic<bool> serving{true};         // what /test.Svc/Health answers
};

class ServiceClientTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    service_.reset();
    client_.reset();
    providers_.clear();
    harness_.reset();
  }

  Provider& start_provider(std::string name, StatusCode code) {
    auto& provider = *providers_.emplace_back(std::make_unique<Provider>());
    provider.server =
        std::make_unique<core::Server>(harness_->server_env(), harness_->server_network());
    provider.server->register_method(
        "/test.Svc/Call",
        [&provider, name, code](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          {
            std::lock_guard lock(provider.mutex);
            ++provider.calls;
            if (const std::string* id = core::find_metadata(ctx.metadata(), kCallIdKey)) {
              ++provider.calls_by_id[*id];
            }
          }
          if (code != StatusCode::kOk) co_return Status(code, name + " fails on purpose");
          co_return Buffer::copy_of(name);
        });
    provider.server->register_method(
        "/test.Svc/Health", [&provider](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
          co_return provider.serving ? Buffer::copy_of("SERVING") : Buffer::copy_of("NOT_SERVING");
        });
    auto address = provider.server->start(harness_->listen_address());
    EXPECT_TRUE(address.ok()) << address.status();
    provider.address = *address;
    return provider;
  }

  void make_service(std::vector<cluster::Provider> providers, ServiceClientOptions options = {},
                    ClientOptions client_options = {}) {
    ASSERT_THAT(registry_.replace(kService, std::move(providers), "test"), IsOk());
    client_ = std::make_unique<Client>(harness_->client_env(), harness_->client_network(),
                                       client_options);
    service_ = std::make_unique<ServiceClient>(*client_, registry_, std::string(kService), options);
  }

  core::CallResult call(CallOptions options = {}) {
    core::CallResult result;
    EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
      result =
          co_await service_->async_call("test.Svc.Call", Buffer(), options, asio::use_awaitable);
      co_return Status();
    }),
                IsOk());
    return result;
  }

  static cluster::Provider listed(std::string node_id, transport::Address address) {
    cluster::Provider provider;
    provider.node_id = std::move(node_id);
    provider.address = std::move(address);
    return provider;
  }

  std::unique_ptr<::meshrpc::testing::TransportHarness> harness_;
  std::vector<std::unique_ptr<Provider>> providers_;
  ProviderRegistry registry_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<ServiceClient> service_;
};

TEST_P(ServiceClientTest, ThousandCallsSucceedWithOneProviderDownAndOneFailing) {
  Provider& good = start_provider("good", StatusCode::kOk);
  Provider& failing = start_provider("failing", StatusCode::kUnavailable);
  make_service({listed("down", harness_->unused_address()), listed("failing", failing.address),
                listed("good", good.address)});
  int ok = 0;
  std::string first_failure;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    for (int i = 0; i < 1000; ++i) {
      CallOptions options;
      options.idempotency = core::Idempotency::kIdempotent;
      options.metadata.emplace_back(kCallIdKey, std::to_string(i));
      core::CallResult result =
          co_await service_->async_call("test.Svc.Call", Buffer(), options, asio::use_awaitable);
      if (result.ok() && result.response.to_string() == "good") {
        ++ok;
      } else if (first_failure.empty()) {
        first_failure = result.status.to_string();
      }
    }
    co_return Status();
  }),
              IsOk());
  EXPECT_EQ(ok, 1000) << first_failure;
  // No call reached a provider twice: a failed provider is not tried again in the same call.
  for (Provider* provider : {&good, &failing}) {
    std::lock_guard lock(provider->mutex);
    for (const auto& [id, count] : provider->calls_by_id) EXPECT_EQ(count, 1) << "call " << id;
  }
  std::lock_guard lock(good.mutex);
  EXPECT_EQ(good.calls, 1000);
}

TEST_P(ServiceClientTest, ProviderFailingHealthChecksGetsNoCallsUntilItPassesAgain) {
  Provider& sick = start_provider("sick", StatusCode::kOk);
  Provider& well = start_provider("well", StatusCode::kOk);
  ServiceClientOptions options;
  options.load_balancer = "round_robin";
  options.outlier_detection.reset();  // only health checks judge here
  options.health_check = HealthCheckOptions{.interval = 50ms,
                                            .timeout = 1s,
                                            .unhealthy_threshold = 2,
                                            .healthy_threshold = 1,
                                            .method = "/test.Svc/Health"};
  make_service({listed("sick", sick.address), listed("well", well.address)}, options);
  auto calls_to = [](Provider& provider) {
    std::lock_guard lock(provider.mutex);
    return provider.calls;
  };
  // Polls stats() on the env's clock (virtual under simulation) for up to 10 s.
  auto wait_for_failing = [&](size_t failing) {
    Status waited = harness_->run_client([&]() -> awaitable<Status> {
      for (int i = 0; i < 1000 && service_->stats().providers_failing_checks != failing; ++i) {
        co_await harness_->client_env().async_wait_for(10ms, use_nothrow_awaitable);
      }
      co_return Status();
    });
    return waited.ok() && service_->stats().providers_failing_checks == failing;
  };

  sick.serving = false;
  ASSERT_TRUE(wait_for_failing(1));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(call().ok());
  EXPECT_EQ(calls_to(sick), 0);
  EXPECT_EQ(calls_to(well), 20);

  sick.serving = true;
  ASSERT_TRUE(wait_for_failing(0));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(call().ok());
  EXPECT_EQ(calls_to(sick), 10);  // round robin over both again
  const ServiceClientStats stats = service_->stats();
  EXPECT_GE(stats.health_check_failures, 2u);
  EXPECT_GT(stats.health_checks, stats.health_check_failures);
}

TEST_P(ServiceClientTest, StreamsGoToAListedProviderAndAnEmptyListIsUnavailable) {
  core::Server server(harness_->server_env(), harness_->server_network());
  server.register_stream_method(
      "/test.Svc/Name", [](core::ServerContext&, core::ServerStream& stream) -> awaitable<Status> {
        co_return co_await stream.async_write(Buffer::copy_of("streamer"), asio::use_awaitable);
      });
  auto address = server.start(harness_->listen_address());
  ASSERT_TRUE(address.ok());
  make_service({listed("streamer", *address)});
  ProviderRegistry empty_registry;
  ServiceClient nobody(*client_, empty_registry, "test.Nobody");
  core::ReadResult named;
  core::ReadResult none;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    core::ClientStream stream = service_->open_stream("/test.Svc/Name");
    named = co_await stream.async_read(asio::use_awaitable);
    core::ClientStream orphan = nobody.open_stream("/test.Nobody/Name");
    none = co_await orphan.async_read(asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_TRUE(named.message.has_value());
  EXPECT_EQ(named.message->to_string(), "streamer");
  ASSERT_TRUE(none.error.has_value());
  EXPECT_THAT(none.error->status, StatusIs(StatusCode::kUnavailable,
                                           HasSubstr("no providers for service test.Nobody")));
}

TEST_P(ServiceClientTest, ANonIdempotentCallDoesNotFailOverAfterTheServerRanIt) {
  Provider& failing = start_provider("failing", StatusCode::kUnavailable);
  Provider& good = start_provider("good", StatusCode::kOk);
  ServiceClientOptions options;
  options.load_balancer = "first";
  make_service({listed("failing", failing.address), listed("good", good.address)}, options);
  EXPECT_THAT(call().status, StatusIs(StatusCode::kUnavailable, HasSubstr("failing")));
  std::lock_guard lock(good.mutex);
  EXPECT_EQ(good.calls, 0);
}

TEST_P(ServiceClientTest, NoProvidersIsUnavailableSayingSo) {
  make_service({});
  EXPECT_THAT(call().status,
              StatusIs(StatusCode::kUnavailable, HasSubstr("no providers for service test.Svc")));
}

TEST_P(ServiceClientTest, AllProvidersFailedIsItsOwnMessage) {
  Provider& a = start_provider("a", StatusCode::kUnavailable);
  Provider& b = start_provider("b", StatusCode::kUnavailable);
  make_service({listed("a", a.address), listed("b", b.address)});
  CallOptions options;
  options.idempotency = core::Idempotency::kIdempotent;
  options.retry = resilience::RetryPolicy{};
  options.retry->max_attempts = 5;  // more than the providers: they run out first
  core::CallResult result = call(options);
  EXPECT_THAT(result.status,
              StatusIs(StatusCode::kUnavailable, HasSubstr("all 2 providers of test.Svc failed")));
}

TEST_P(ServiceClientTest, MaxAttemptsExceededIsItsOwnMessage) {
  ServiceClientOptions options;
  options.load_balancer = "round_robin";
  std::vector<cluster::Provider> listed_providers;
  for (int i = 0; i < 4; ++i) {
    Provider& p = start_provider("p" + std::to_string(i), StatusCode::kUnavailable);
    listed_providers.push_back(listed("p" + std::to_string(i), p.address));
  }
  ClientOptions client_options;
  client_options.retry.max_attempts = 2;
  make_service(listed_providers, options, client_options);
  CallOptions call_options;
  call_options.idempotency = core::Idempotency::kIdempotent;
  EXPECT_THAT(call(call_options).status,
              StatusIs(StatusCode::kUnavailable, HasSubstr("max_attempts 2 exceeded")));
  int reached = 0;
  for (auto& provider : providers_) {
    std::lock_guard lock(provider->mutex);
    reached += provider->calls;
  }
  EXPECT_EQ(reached, 2);
}

TEST_P(ServiceClientTest, ARegistryUpdateReachesTheNextCall) {
  Provider& one = start_provider("one", StatusCode::kOk);
  Provider& two = start_provider("two", StatusCode::kOk);
  ServiceClientOptions options;
  options.load_balancer = "first";
  make_service({listed("one", one.address)}, options);
  EXPECT_EQ(call().response.to_string(), "one");
  // "two" now comes first: the very next call goes there, no connection has to age out.
  ASSERT_THAT(
      registry_.replace(kService, {listed("two", two.address), listed("one", one.address)}, "test"),
      IsOk());
  EXPECT_EQ(call().response.to_string(), "two");
  ASSERT_TRUE(registry_.remove(kService, "two"));
  EXPECT_EQ(call().response.to_string(), "one");
}

TEST_P(ServiceClientTest, GeneratedClientsCanUseItAsTheirInvoker) {
  Provider& good = start_provider("good", StatusCode::kOk);
  make_service({listed("good", good.address)});
  core::CallInvoker& invoker = *service_;
  core::CallResult result;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    result = co_await invoker.async_call("test.Svc.Call", Buffer(), core::CallOptions{},
                                         asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "good");
}

TEST(ServiceClientOptionsTest, UnknownBalancerThrows) {
  runtime::SimEnv sim(3);
  transport::SimNetwork net(sim);
  Client client(sim.default_host(), net.host(sim.default_host()));
  ProviderRegistry registry;
  ServiceClientOptions options;
  options.load_balancer = "fastest";
  EXPECT_THROW(ServiceClient(client, registry, "x", options), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, ServiceClientTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::cluster
