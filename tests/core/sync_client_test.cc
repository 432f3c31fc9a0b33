// sync::Client: blocking calls from a plain thread, and refusals where blocking would hang.
#include "meshrpc/core/sync_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"
#include "meshrpc/transport/tcp.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::sync {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

constexpr std::string_view kEcho = "/test.Echo/Say";

class SyncClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.register_method(std::string(kEcho),
                            [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> {
                              co_return request;
                            });
    auto address = server_.start({"127.0.0.1", 0});
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
  }

  runtime::RealEnv env_{runtime::RealEnv::Options{.threads = 2}};
  transport::TcpNetwork network_{env_};
  core::Server server_{env_, network_};
  transport::Address address_;
};

TEST_F(SyncClientTest, RoundTripsAgainstAServer) {
  Client client(env_);
  Result<Buffer> reply = client.call(address_, std::string(kEcho), "hello");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->to_string(), "hello");

  // A second call reuses the address's channel; call_detailed carries the whole result.
  core::CallResult detailed =
      client.call_detailed(address_, std::string(kEcho), Buffer::copy_of("again"));
  ASSERT_TRUE(detailed.ok()) << detailed.status;
  EXPECT_EQ(detailed.response.to_string(), "again");
}

TEST_F(SyncClientTest, UnknownMethodKeepsTheServersCode) {
  Client client(env_, network_);
  core::CallResult result = client.call_detailed(address_, "/test.Echo/Nope", Buffer());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnimplemented));
  EXPECT_TRUE(result.not_processed);
}

TEST_F(SyncClientTest, RefusesToBlockAnIoThread) {
  Client client(env_);
  std::promise<Status> reported;
  asio::post(env_.executor(0),
             [&] { reported.set_value(client.call(address_, std::string(kEcho), "x").status()); });
  std::future<Status> status = reported.get_future();
  ASSERT_EQ(status.wait_for(testing::kRealTaskWatchdog), std::future_status::ready);
  EXPECT_THAT(status.get(), StatusIs(StatusCode::kFailedPrecondition, HasSubstr("io thread")));
}

TEST_F(SyncClientTest, UnreachableAddressIsUnavailable) {
  ClientOptions options;
  options.channel.connect_timeout = 5s;
  Client client(env_, options);
  // A port that was just free: bound, then released.
  transport::Address unused = testing::TcpHarness().unused_address();
  core::CallResult result = client.call_detailed(unused, std::string(kEcho), Buffer());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(result.not_processed);
}

TEST(SyncClientSimTest, RefusesToBlockASimulation) {
  runtime::SimEnv sim(1);
  transport::SimNetwork net(sim);
  runtime::SimHost& host = sim.add_host("client");
  Client client(host, net.host(host));
  Result<Buffer> reply = client.call({"server", 7000}, std::string(kEcho), "x");
  EXPECT_THAT(reply.status(), StatusIs(StatusCode::kFailedPrecondition, HasSubstr("simulated")));
}

TEST(SyncClientSimTest, WithoutANetworkANonRealEnvFailsEveryCall) {
  runtime::SimEnv sim(1);
  runtime::SimHost& host = sim.add_host("client");
  Client client(host);
  EXPECT_THAT(client.call({"server", 7000}, std::string(kEcho), "x").status(),
              StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace meshrpc::sync
