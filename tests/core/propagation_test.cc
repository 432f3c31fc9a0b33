// Call context propagation: a handler's deadline and trace metadata reach the calls it
// makes (explicitly, through child_call_options), and its cancellation reaches them too
// (carried by the coroutine), also when the handler hops to another executor first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/backends.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;

class PropagationTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    client_.reset();
    downstream_.reset();
    server_.reset();
    harness_.reset();
  }

  // "/test/A" calls "/test/B" on the same server, after hopping to another executor.
  void start(Handler b) {
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network());
    server_->register_method(
        "/test/A", [this](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          runtime::Env& env = ctx.env();
          const size_t here = env.current_executor_index();
          auto other = env.executor((here + 1) % env.executor_count());
          CallOptions options = ctx.child_call_options();
          // A named lambda, not a temporary: GCC 12 destroys temporaries in a co_await twice.
          auto call_b = [this, options]() -> awaitable<CallResult> {
            co_return co_await downstream_->async_call("/test/B", Buffer(), options,
                                                       asio::use_awaitable);
          };
          CallResult result = co_await asio::co_spawn(other, call_b, asio::use_awaitable);
          co_return std::move(result).into_result();
        });
    server_->register_method("/test/B", std::move(b));
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok());
    downstream_ =
        std::make_unique<Channel>(harness_->server_env(), harness_->server_network(), *address);
    client_ =
        std::make_unique<Channel>(harness_->client_env(), harness_->client_network(), *address);
  }

  std::unique_ptr<::meshrpc::testing::TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> downstream_;
  std::unique_ptr<Channel> client_;
};

TEST_P(PropagationTest, DeadlineAndTraceMetadataReachTheDownstreamCall) {
  std::atomic<bool> b_saw_trace{false}, b_had_deadline{false};
  std::atomic<bool> other_metadata_leaked{false};
  start([&](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
    const std::string* trace = find_metadata(ctx.metadata(), "meshrpc-trace-id");
    b_saw_trace = trace != nullptr && *trace == "t-42";
    other_metadata_leaked = find_metadata(ctx.metadata(), "user") != nullptr;
    // The client gave 10 s end to end; what is left here is less, never more.
    b_had_deadline = ctx.deadline() != runtime::kInfiniteFuture && ctx.remaining() <= 10s;
    co_return Buffer::copy_of("from B");
  });
  CallResult result;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    CallOptions options;
    options.timeout = 10s;
    options.metadata = {{"meshrpc-trace-id", "t-42"}, {"user", "ada"}};
    result = co_await client_->async_call("/test/A", Buffer(), options, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "from B");
  EXPECT_TRUE(b_saw_trace);
  EXPECT_TRUE(b_had_deadline);
  EXPECT_FALSE(other_metadata_leaked);
}

TEST_P(PropagationTest, CancellingTheCallerCancelsTheDownstreamHandler) {
  std::atomic<bool> b_cancelled{false};
  asio::cancellation_signal cancel;
  asio::any_io_executor client_executor;
  start([&](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
    // B is running: now the outermost caller gives up.
    asio::post(client_executor, [&] { cancel.emit(asio::cancellation_type::terminal); });
    auto [ec] = co_await ctx.env().async_wait_for(1h, use_nothrow_awaitable);
    b_cancelled = ec == asio::error::operation_aborted;
    co_return Buffer();
  });
  CallResult result;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    client_executor = co_await asio::this_coro::executor;
    result = co_await client_->async_call(
        "/test/A", Buffer(), {}, asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
    for (int i = 0; i < 2000 && !b_cancelled; ++i) {
      co_await harness_->client_env().async_wait_for(1ms, use_nothrow_awaitable);
    }
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kCancelled));
  EXPECT_TRUE(b_cancelled);
}

INSTANTIATE_TEST_SUITE_P(Backends, PropagationTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core
