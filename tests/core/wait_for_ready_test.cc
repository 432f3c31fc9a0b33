// Wait-for-ready calls (CallOptions::wait_for_ready) on a Channel whose endpoint is not
// listening: they queue instead of failing fast, start once a server listens there, and end
// at their bound, their deadline, the caller's cancel or the channel's destruction. Each test
// runs over TCP on real threads and over simulated links in virtual time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <string>

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
using ::testing::AllOf;
using ::testing::HasSubstr;

// Hands a call's result from its completion handler (on an io thread) to a coroutine of a
// later harness run, without polling. The handler keeps the slot alive, so a call that
// outlives a failed test touches nothing freed.
class ResultSlot : public std::enable_shared_from_this<ResultSlot> {
 public:
  explicit ResultSlot(asio::any_io_executor executor) : results_(std::move(executor), 1) {}

  // The completion handler for async_call.
  auto handler() {
    return [self = shared_from_this()](CallResult result) {
      self->done_ = true;
      (void)self->results_.try_send(error_code{}, std::move(result));
    };
  }
  bool done() const { return done_; }
  awaitable<CallResult> result() {
    auto [ec, result] = co_await results_.async_receive(use_nothrow_awaitable);
    if (ec) result.status = internal_error("result slot: " + ec.message());
    co_return std::move(result);
  }

 private:
  std::atomic<bool> done_{false};
  asio::experimental::concurrent_channel<void(error_code, CallResult)> results_;
};

class WaitForReadyTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    address_ = harness_->unused_address();
    make_channel({});
  }
  void make_channel(ChannelOptions options) {
    // Backoff steps of at most 200 ms: a queued call starts soon after the server is up.
    options.backoff_max = 200ms;
    channel_ = std::make_unique<Channel>(harness_->client_env(), harness_->client_network(),
                                         address_, options);
  }
  void TearDown() override {
    channel_.reset();
    server_.reset();
    harness_.reset();
  }

  // A server on the address the channel has been failing to reach.
  void start_server() {
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network());
    server_->register_method(
        "/test/Echo",
        [](ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
    auto bound = server_->start(address_);
    ASSERT_TRUE(bound.ok()) << bound.status();
    ASSERT_EQ(bound->port, address_.port);
  }

  static CallOptions waiting(runtime::Duration bound) {
    CallOptions options;
    options.wait_for_ready = bound;
    return options;
  }
  awaitable<CallResult> call(CallOptions options, std::string request = "x") {
    co_return co_await channel_->async_call("/test/Echo", Buffer::copy_of(request),
                                            std::move(options), asio::use_awaitable);
  }
  // Starts a call whose result arrives in the returned slot.
  std::shared_ptr<ResultSlot> start_call(CallOptions options, const std::string& request) {
    auto slot = std::make_shared<ResultSlot>(harness_->client_env().pick_executor());
    channel_->async_call("/test/Echo", Buffer::copy_of(request), std::move(options),
                         slot->handler());
    return slot;
  }

  runtime::TimePoint now() { return harness_->client_env().now(); }
  bool simulated() { return harness_->client_env().is_simulated(); }

  std::unique_ptr<::meshrpc::testing::TransportHarness> harness_;
  transport::Address address_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_P(WaitForReadyTest, QueuedCallsStartOnceTheServerListensWhilePlainCallsFailFast) {
  std::shared_ptr<ResultSlot> queued_at_connect, queued_in_backoff;
  CallResult refused, backing_off;
  runtime::Duration fail_fast_took{};
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    // Both wait for the first connect; when it is refused the plain call fails with its error.
    queued_at_connect = start_call(waiting(20s), "at connect");
    refused = co_await call({});
    // Backing off now: a plain call fails at once, a waiting call queues.
    queued_in_backoff = start_call(waiting(20s), "in backoff");
    const runtime::TimePoint start = now();
    backing_off = co_await call({});
    fail_fast_took = now() - start;
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(refused.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(refused.not_processed);
  EXPECT_EQ(refused.origin, FailureOrigin::kTransport);
  EXPECT_THAT(backing_off.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(backing_off.not_processed);
  if (simulated()) {
    EXPECT_EQ(fail_fast_took, runtime::Duration::zero());
  }
  EXPECT_FALSE(queued_at_connect->done());
  EXPECT_FALSE(queued_in_backoff->done());

  // No call is made from here on: the channel's own reconnect timer finds the server.
  start_server();
  CallResult first, second;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    first = co_await queued_at_connect->result();
    second = co_await queued_in_backoff->result();
    co_return Status();
  }),
              IsOk());
  ASSERT_THAT(first.status, IsOk());
  EXPECT_EQ(first.response.to_string(), "at connect");
  ASSERT_THAT(second.status, IsOk());
  EXPECT_EQ(second.response.to_string(), "in backoff");
  EXPECT_EQ(channel_->connected_count(), 1u);
}

TEST_P(WaitForReadyTest, BoundPassingWithNothingListeningIsUnavailableAndNotProcessed) {
  CallResult result;
  runtime::Duration took{};
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    CallOptions options = waiting(300ms);
    options.timeout = 20s;  // far later: the bound, not the deadline, ends the call
    const runtime::TimePoint start = now();
    result = co_await call(std::move(options));
    took = now() - start;
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status,
              StatusIs(StatusCode::kUnavailable,
                       AllOf(HasSubstr("not ready within 300 ms"),
                             HasSubstr("last connect error: connect to " + address_.to_string()))));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(result.origin, FailureOrigin::kTransport);
  EXPECT_FALSE(result.committed);
  EXPECT_GE(took, 300ms);
  if (simulated()) {  // virtual time: at the bound, not later
    EXPECT_LT(took, 301ms);
  }
}

TEST_P(WaitForReadyTest, DeadlineBeforeTheBoundIsDeadlineExceeded) {
  CallResult result;
  runtime::Duration took{};
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    CallOptions options = waiting(20s);
    options.timeout = 200ms;
    const runtime::TimePoint start = now();
    result = co_await call(std::move(options));
    took = now() - start;
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(result.origin, FailureOrigin::kTransport);
  EXPECT_GE(took, 200ms);
  if (simulated()) {
    EXPECT_LT(took, 201ms);
  }
}

TEST_P(WaitForReadyTest, CallerCancellingAQueuedCallEndsItPromptly) {
  asio::cancellation_signal cancel;
  CallResult refused, result;
  runtime::TimePoint cancelled_at{};
  runtime::Duration took{};
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    // Once the plain call has failed, the waiting call sits queued in the backoff; then the
    // caller gives up (on this executor, which the waiting call completes on).
    auto fail_then_cancel = [&]() -> awaitable<void> {
      refused = co_await call({});
      cancelled_at = now();
      cancel.emit(asio::cancellation_type::terminal);
    };
    asio::co_spawn(co_await asio::this_coro::executor, fail_then_cancel, asio::detached);
    // 1 h: only the cancel can end it within the harness's watchdog.
    result = co_await channel_->async_call(
        "/test/Echo", Buffer::copy_of("x"), waiting(1h),
        asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
    took = now() - cancelled_at;
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(refused.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(result.status, StatusIs(StatusCode::kCancelled));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(result.origin, FailureOrigin::kLocal);
  if (simulated()) {
    EXPECT_EQ(took, runtime::Duration::zero());
  }
}

TEST_P(WaitForReadyTest, DestroyingTheChannelCancelsAQueuedCall) {
  std::shared_ptr<ResultSlot> queued;
  CallResult refused;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    queued = start_call(waiting(1h), "x");
    refused = co_await call({});
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(refused.status, StatusIs(StatusCode::kUnavailable));
  ASSERT_FALSE(queued->done());
  channel_.reset();
  CallResult result;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    result = co_await queued->result();
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kCancelled, HasSubstr("channel destroyed")));
  EXPECT_TRUE(result.not_processed);
}

TEST_P(WaitForReadyTest, WaitingCallsPastMaxQueuedCallsAreResourceExhausted) {
  ChannelOptions options;
  options.max_queued_calls = 2;
  make_channel(options);
  std::shared_ptr<ResultSlot> first, second, third;
  CallResult refused, overflow;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    refused = co_await call({});
    first = start_call(waiting(1h), "1");
    second = start_call(waiting(1h), "2");
    third = start_call(waiting(1h), "3");
    overflow = co_await third->result();
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(refused.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(overflow.status,
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_queued_calls 2")));
  EXPECT_TRUE(overflow.not_processed);
  EXPECT_EQ(overflow.origin, FailureOrigin::kLocal);
  // The two within the bound still wait (the channel's destruction ends them).
  EXPECT_FALSE(first->done());
  EXPECT_FALSE(second->done());
}

INSTANTIATE_TEST_SUITE_P(Backends, WaitForReadyTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core
