// A channel whose server said GOAWAY and then came back (a restart on the same address):
// calls still running on the old connection complete there, and cancelling one of them
// reaches the old connection only, never the call with the same stream id on the new one.
// Simulated links in virtual time: the restart needs a fixed address and exact ordering.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;

class GoAwayDrainTest : public ::testing::Test {
 protected:
  GoAwayDrainTest() : harness_(21) {}
  ~GoAwayDrainTest() override {
    channel_.reset();
    old_server_.reset();
    new_server_.reset();
  }

  // A server on the fixed address whose "/t/Slow" answers `answer` after `delay`.
  std::unique_ptr<Server> make_server(runtime::Duration delay, std::string answer) {
    auto server = std::make_unique<Server>(harness_.server_env(), harness_.server_network());
    server->register_method(
        "/t/Slow", [delay, answer](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          auto [ec] = co_await ctx.env().async_wait_for(delay, use_nothrow_awaitable);
          if (ec) co_return cancelled_error("cancelled");
          co_return Buffer::copy_of(answer);
        });
    EXPECT_TRUE(server->start(address_).ok());
    return server;
  }

  // Call A goes to the old server (answering after `old_delay`) with `a_deadline`; at 50 ms
  // the old server shuts down (GOAWAY, A keeps running), at 60 ms a new server listens on
  // the same address, and at 100 ms call B opens a new connection to it (B answers after
  // 400 ms, so it is in flight on stream 1 of the new connection while A is on stream 1 of
  // the old one).
  void run(runtime::Duration old_delay, runtime::Duration a_deadline) {
    old_server_ = make_server(old_delay, "old");
    channel_ =
        std::make_unique<Channel>(harness_.client_env(), harness_.client_network(), address_);
    Status run = harness_.run(
        {{&harness_.client_env(),
          [&]() -> awaitable<Status> {
            runtime::Env& env = harness_.client_env();
            auto call_a = [&]() -> awaitable<void> {
              CallOptions options;
              options.timeout = a_deadline;
              a_ = co_await channel_->async_call("/t/Slow", Buffer(), options, asio::use_awaitable);
            };
            asio::co_spawn(co_await asio::this_coro::executor, call_a, asio::detached);
            co_await env.async_wait_for(100ms, use_nothrow_awaitable);
            CallOptions options;
            options.timeout = 5s;
            b_ = co_await channel_->async_call("/t/Slow", Buffer(), options, asio::use_awaitable);
            while (!a_) co_await env.async_wait_for(10ms, use_nothrow_awaitable);
            co_return Status();
          }},
         {&harness_.server_env(), [&]() -> awaitable<Status> {
            runtime::Env& env = harness_.server_env();
            co_await env.async_wait_for(50ms, use_nothrow_awaitable);
            old_server_->shutdown(10s, [] {});
            co_await env.async_wait_for(10ms, use_nothrow_awaitable);
            new_server_ = make_server(400ms, "new");
            co_return Status();
          }}});
    ASSERT_THAT(run, IsOk());
  }

  ::meshrpc::testing::SimHarness harness_;
  transport::Address address_{"server", 5000};
  std::unique_ptr<Server> old_server_;
  std::unique_ptr<Server> new_server_;
  std::unique_ptr<Channel> channel_;
  std::optional<CallResult> a_;
  CallResult b_;
};

TEST_F(GoAwayDrainTest, CallsOnTheReplacedConnectionStillComplete) {
  run(/*old_delay=*/500ms, /*a_deadline=*/5s);
  ASSERT_THAT(b_.status, IsOk());
  EXPECT_EQ(b_.response.to_string(), "new");
  ASSERT_TRUE(a_.has_value());
  ASSERT_THAT(a_->status, IsOk());  // not left hanging on a dropped connection
  EXPECT_EQ(a_->response.to_string(), "old");
}

TEST_F(GoAwayDrainTest, CancellingACallOnTheOldConnectionLeavesTheNewOneAlone) {
  // A's deadline (300 ms) passes while B, with the same stream id on the new connection,
  // is in flight: the CANCEL must go to the old connection.
  run(/*old_delay=*/1s, /*a_deadline=*/300ms);
  ASSERT_TRUE(a_.has_value());
  EXPECT_THAT(a_->status, StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_THAT(b_.status, IsOk());
  EXPECT_EQ(b_.response.to_string(), "new");
}

}  // namespace
}  // namespace meshrpc::core
