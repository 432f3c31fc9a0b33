// Handlers marked blocking run on the env's worker pool: the io thread stays free for other
// calls on the same connection, and the pool's queue is bounded. Real threads only: under
// simulation nothing may block.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <future>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

class BlockingHandlerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(harness_.server_env(), harness_.server_network(), options);
    server_->register_method(
        "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
    // The dotted form: calls to "/test/Block" must find it (names are canonicalized).
    server_->register_blocking_method("test.Block",
                                      [this](ServerContext& ctx, Buffer) -> Result<Buffer> {
                                        on_io_thread_ = on_io_thread_ || ctx.env().in_env_thread();
                                        ++started_;
                                        release_.wait();  // really blocks this thread
                                        return Buffer::copy_of("unblocked");
                                      });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok());
    channel_ =
        std::make_unique<Channel>(harness_.client_env(), harness_.client_network(), *address);
  }
  void TearDown() override {
    release_promise_.set_value();  // never leave a worker blocked
    channel_.reset();
    server_.reset();
  }

  ::meshrpc::testing::TcpHarness harness_;
  std::promise<void> release_promise_;
  std::shared_future<void> release_ = release_promise_.get_future().share();
  std::atomic<int> started_{0};
  std::atomic<bool> on_io_thread_{false};
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(BlockingHandlerTest, RunsOffTheIoThreadWhichKeepsServingTheConnection) {
  start();
  CallResult blocked, echoed;
  ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    bool blocked_done = false;
    channel_->async_call("/test/Block", Buffer(), {}, [&](CallResult r) {
      blocked = std::move(r);
      blocked_done = true;
    });
    while (started_ == 0) co_await harness_.client_env().async_wait_for(1ms, use_nothrow_awaitable);
    // The blocking handler holds a worker; the same connection still answers.
    echoed = co_await channel_->async_call("/test/Echo", Buffer::copy_of("free"), {},
                                           asio::use_awaitable);
    release_promise_.set_value();
    release_promise_ = std::promise<void>();
    while (!blocked_done) co_await harness_.client_env().async_wait_for(1ms, use_nothrow_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_THAT(echoed.status, IsOk());
  EXPECT_EQ(echoed.response.to_string(), "free");
  ASSERT_THAT(blocked.status, IsOk());
  EXPECT_EQ(blocked.response.to_string(), "unblocked");
  EXPECT_FALSE(on_io_thread_);
}

TEST_F(BlockingHandlerTest, CallsPastMaxBlockingCallsAreRejectedBeforeDispatch) {
  ServerOptions options;
  options.max_blocking_calls = 2;
  start(options);
  int ok = 0, exhausted = 0, done = 0;
  ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    for (int i = 0; i < 4; ++i) {
      channel_->async_call("/test/Block", Buffer(), {}, [&](CallResult r) {
        if (r.ok()) ++ok;
        if (r.status.code() == StatusCode::kResourceExhausted && r.not_processed &&
            r.status.message().find("max_blocking_calls 2") != std::string_view::npos) {
          ++exhausted;
        }
        ++done;
      });
    }
    while (exhausted < 2 || started_ < 2) {
      co_await harness_.client_env().async_wait_for(1ms, use_nothrow_awaitable);
    }
    release_promise_.set_value();
    release_promise_ = std::promise<void>();
    while (done < 4) co_await harness_.client_env().async_wait_for(1ms, use_nothrow_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(exhausted, 2);
  EXPECT_EQ(started_.load(), 2);
}

}  // namespace
}  // namespace meshrpc::core
