// A peer that goes silent (its link blackholed: no data, no end of stream, no reset) is
// found by keepalive within interval + timeout, and the calls waiting on it fail with
// UNAVAILABLE instead of hanging. Simulation only: the link must stop delivering.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(KeepaliveIntegration, BlackholedPeerIsDetectedWithinIntervalPlusTimeout) {
  ::meshrpc::testing::SimHarness harness(5);
  runtime::SimEnv& sim = harness.sim();
  KeepaliveOptions keepalive{.interval = 2s, .timeout = 1s};
  ServerOptions server_options;
  server_options.connection.keepalive = keepalive;
  Server server(harness.server_env(), harness.server_network(), server_options);
  server.register_method("/test/Forever",
                         [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                           co_await ctx.env().async_wait_for(24h, use_nothrow_awaitable);
                           co_return Buffer();
                         });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());
  ChannelOptions channel_options;
  channel_options.connection.keepalive = keepalive;
  Channel channel(harness.client_env(), harness.client_network(), *address, channel_options);

  std::optional<CallResult> result;
  asio::co_spawn(harness.client_env().pick_executor(),
                 channel.async_call("/test/Forever", Buffer(), {}, asio::use_awaitable),
                 [&](std::exception_ptr, CallResult r) { result = std::move(r); });
  sim.run_for(500ms);  // connected, call in flight, pings answered
  ASSERT_FALSE(result.has_value());

  transport::LinkConfig dead;
  dead.blackhole = true;
  harness.net().set_link("client", "server", dead);
  harness.net().set_link("server", "client", dead);
  const runtime::TimePoint blackholed_at = sim.now();
  ASSERT_TRUE(sim.run_until([&] { return result.has_value(); }, 1h));

  EXPECT_THAT(result->status, StatusIs(StatusCode::kUnavailable, HasSubstr("keepalive")));
  EXPECT_LE(sim.now() - blackholed_at, keepalive.interval + keepalive.timeout);
}

// The same for a stream waiting on a read (brpc #2680: a stream must not wait forever for a
// peer that died): the read ends with Transport(UNAVAILABLE).
TEST(KeepaliveIntegration, BlackholedPeerEndsAWaitingStreamReadWithTransportUnavailable) {
  ::meshrpc::testing::SimHarness harness(6);
  runtime::SimEnv& sim = harness.sim();
  KeepaliveOptions keepalive{.interval = 2s, .timeout = 1s};
  ServerOptions server_options;
  server_options.connection.keepalive = keepalive;
  Server server(harness.server_env(), harness.server_network(), server_options);
  server.register_stream_method("/test/Silent",
                                [](ServerContext& ctx, ServerStream&) -> awaitable<Status> {
                                  co_await ctx.env().async_wait_for(24h, use_nothrow_awaitable);
                                  co_return Status();
                                });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());
  ChannelOptions channel_options;
  channel_options.connection.keepalive = keepalive;
  Channel channel(harness.client_env(), harness.client_network(), *address, channel_options);

  ClientStream stream = channel.open_stream("/test/Silent");
  std::optional<ReadResult> read;
  stream.async_read([&](ReadResult r) { read = std::move(r); });
  sim.run_for(500ms);
  ASSERT_FALSE(read.has_value());

  transport::LinkConfig dead;
  dead.blackhole = true;
  harness.net().set_link("client", "server", dead);
  harness.net().set_link("server", "client", dead);
  const runtime::TimePoint blackholed_at = sim.now();
  ASSERT_TRUE(sim.run_until([&] { return read.has_value(); }, 1h));

  ASSERT_TRUE(read->error.has_value());
  EXPECT_EQ(read->error->kind, StreamError::Kind::kTransport);
  EXPECT_THAT(read->error->status, StatusIs(StatusCode::kUnavailable, HasSubstr("keepalive")));
  EXPECT_LE(sim.now() - blackholed_at, keepalive.interval + keepalive.timeout);
}

}  // namespace
}  // namespace meshrpc::core
