// A peer that goes silent (its link blackholed: no data, no end of stream, no reset) is
// found by keepalive within interval + timeout, and the calls waiting on it fail with
// UNAVAILABLE instead of hanging. Simulation only: the link must stop delivering.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

// A server with a call and a stream that never answer, and a channel to it, both with
// keepalive every 2 s and a 1 s answer timeout, on simulated hosts.
class KeepaliveIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions server_options;
    server_options.connection.keepalive = keepalive_;
    server_ =
        std::make_unique<Server>(harness_.server_env(), harness_.server_network(), server_options);
    server_->register_method("/test/Forever",
                             [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               co_await ctx.env().async_wait_for(24h, use_nothrow_awaitable);
                               co_return Buffer();
                             });
    server_->register_stream_method("/test/Silent",
                                    [](ServerContext& ctx, ServerStream&) -> awaitable<Status> {
                                      co_await ctx.env().async_wait_for(24h, use_nothrow_awaitable);
                                      co_return Status();
                                    });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok());
    ChannelOptions channel_options;
    channel_options.connection.keepalive = keepalive_;
    channel_ = std::make_unique<Channel>(harness_.client_env(), harness_.client_network(), *address,
                                         channel_options);
  }
  void TearDown() override {
    channel_.reset();
    server_.reset();
  }

  // Both directions stop delivering: no data, no end of stream, no reset. Returns when.
  runtime::TimePoint blackhole() {
    transport::LinkConfig dead;
    dead.blackhole = true;
    harness_.net().set_link("client", "server", dead);
    harness_.net().set_link("server", "client", dead);
    return harness_.sim().now();
  }

  ::meshrpc::testing::SimHarness harness_{5};
  KeepaliveOptions keepalive_{.interval = 2s, .timeout = 1s};
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(KeepaliveIntegration, BlackholedPeerIsDetectedWithinIntervalPlusTimeout) {
  runtime::SimEnv& sim = harness_.sim();
  std::optional<CallResult> result;
  asio::co_spawn(harness_.client_env().pick_executor(),
                 channel_->async_call("/test/Forever", Buffer(), {}, asio::use_awaitable),
                 [&](std::exception_ptr, CallResult r) { result = std::move(r); });
  sim.run_for(500ms);  // connected, call in flight, pings answered
  ASSERT_FALSE(result.has_value());

  const runtime::TimePoint blackholed_at = blackhole();
  ASSERT_TRUE(sim.run_until([&] { return result.has_value(); }, 1h));

  EXPECT_THAT(result->status, StatusIs(StatusCode::kUnavailable, HasSubstr("keepalive")));
  EXPECT_LE(sim.now() - blackholed_at, keepalive_.interval + keepalive_.timeout);
}

// The same for a stream waiting on a read (brpc #2680: a stream must not wait forever for a
// peer that died): the read ends with Transport(UNAVAILABLE).
TEST_F(KeepaliveIntegration, BlackholedPeerEndsAWaitingStreamReadWithTransportUnavailable) {
  runtime::SimEnv& sim = harness_.sim();
  ClientStream stream = channel_->open_stream("/test/Silent");
  std::optional<ReadResult> read;
  stream.async_read([&](ReadResult r) { read = std::move(r); });
  sim.run_for(500ms);
  ASSERT_FALSE(read.has_value());

  const runtime::TimePoint blackholed_at = blackhole();
  ASSERT_TRUE(sim.run_until([&] { return read.has_value(); }, 1h));

  ASSERT_TRUE(read->error.has_value());
  EXPECT_EQ(read->error->kind, StreamError::Kind::kTransport);
  EXPECT_THAT(read->error->status, StatusIs(StatusCode::kUnavailable, HasSubstr("keepalive")));
  EXPECT_LE(sim.now() - blackholed_at, keepalive_.interval + keepalive_.timeout);
}

}  // namespace
}  // namespace meshrpc::core
