// cluster::Client against servers that fail on purpose, over TCP on 127.0.0.1 (real threads)
// and over simulated links (virtual time, where timings are asserted exactly): classified
// retries, pushback, the retry budget, hedging with loser cancellation, the circuit breaker,
// deadlines, cancellation and propagation.
#include "meshrpc/cluster/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/cluster/server_pushback.h"
#include "meshrpc/core/server.h"
#include "meshrpc/resilience/pushback.h"
#include "tests/support/backends.h"

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using State = resilience::CircuitBreaker::State;

// Short fixed backoff: keeps the real-time runs fast and the virtual times exact.
resilience::RetryPolicy fixed_retry(int attempts, runtime::Duration backoff = 10ms) {
  resilience::RetryPolicy policy;
  policy.max_attempts = attempts;
  policy.backoff = {resilience::BackoffKind::kFixed, backoff, backoff, 1.0};
  return policy;
}

// Options for a call to a method declared idempotent (retried even after it was sent).
CallOptions idempotent() {
  CallOptions options;
  options.idempotency = core::Idempotency::kIdempotent;
  return options;
}

class ClusterClientTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    client_.reset();
    server_.reset();
    harness_.reset();
  }
  bool simulated() const { return GetParam().name == "sim"; }
  runtime::Env& client_env() { return harness_->client_env(); }

  void start_server_at(const transport::Address& listen) {
    server_ = std::make_unique<core::Server>(harness_->server_env(), harness_->server_network());
    // Fails with flaky_code_ (and pushback_, if set) for its first flaky_failures_ calls.
    server_->register_method(
        "/test.T/Flaky", [this](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          const int n = ++flaky_calls_;
          if (const std::string* attempt = core::find_metadata(ctx.metadata(), "meshrpc-attempt")) {
            last_attempt_header_ = std::stoi(*attempt);
          }
          if (n <= flaky_failures_) {
            if (pushback_ == "stop") {
              push_back_do_not_retry(ctx);
            } else if (!pushback_.empty()) {
              push_back_retry_after(ctx, std::chrono::milliseconds(std::stoi(pushback_)));
            }
            co_return Status(flaky_code_, "failing on purpose, call " + std::to_string(n));
          }
          co_return Buffer::copy_of("ok");
        });
    // Its first hang_calls_ calls wait until cancelled; the rest answer at once.
    server_->register_method(
        "/test.T/Hang", [this](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          const int n = ++hang_calls_seen_;
          if (n <= hang_calls_) {
            auto [ec] = co_await ctx.env().async_wait_for(1h, use_nothrow_awaitable);
            if (ec == asio::error::operation_aborted) ++hang_cancelled_;
            co_return cancelled_error("hung call ended");
          }
          co_return Buffer::copy_of("fast " + std::to_string(n));
        });
    // Answers after 10 ms, except its call number slow_hang_at_, which waits until cancelled.
    server_->register_method(
        "/test.T/Slow", [this](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          const int n = ++slow_calls_;
          const runtime::Duration wait = n == slow_hang_at_ ? runtime::Duration(1h) : 10ms;
          auto [ec] = co_await ctx.env().async_wait_for(wait, use_nothrow_awaitable);
          if (ec) co_return cancelled_error("slow call cancelled");
          co_return Buffer::copy_of("slow " + std::to_string(n));
        });
    // Reports the deadline and trace metadata it received.
    server_->register_method(
        "/test.T/Inspect", [](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          const std::string* trace = core::find_metadata(ctx.metadata(), "meshrpc-trace-id");
          std::string answer = trace != nullptr ? *trace : "-";
          answer += ctx.deadline() == runtime::kInfiniteFuture ? " no-deadline" : " deadline";
          co_return Buffer::copy_of(answer);
        });
    auto address = server_->start(listen);
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
  }
  void start_server() { start_server_at(harness_->listen_address()); }

  void make_client(ClientOptions options = {}) {
    client_ = std::make_unique<Client>(client_env(), harness_->client_network(), options);
  }

  // One call, run to completion; also records when (on the client's clock) it took.
  core::CallResult call(const std::string& method, CallOptions options = {},
                        transport::Address target = {}) {
    if (target.host.empty()) target = address_;
    core::CallResult result;
    Status run = harness_->run_client([&]() -> awaitable<Status> {
      const runtime::TimePoint start = client_env().now();
      result = co_await client_->async_call(target, method, Buffer(), options, asio::use_awaitable);
      elapsed_ = client_env().now() - start;
      co_return Status();
    });
    EXPECT_THAT(run, IsOk());
    return result;
  }

  std::unique_ptr<::meshrpc::testing::TransportHarness> harness_;
  std::unique_ptr<core::Server> server_;
  std::unique_ptr<Client> client_;
  transport::Address address_;
  runtime::Duration elapsed_{};

  std::atomic<int> flaky_calls_{0};
  int flaky_failures_ = 0;
  StatusCode flaky_code_ = StatusCode::kUnavailable;
  std::string pushback_;
  std::atomic<int> last_attempt_header_{0};
  std::atomic<int> hang_calls_seen_{0};
  int hang_calls_ = 0;
  std::atomic<int> hang_cancelled_{0};
  std::atomic<int> slow_calls_{0};
  int slow_hang_at_ = 0;
};

TEST_P(ClusterClientTest, RetriesRecoverFromUnavailableOnAnIdempotentMethod) {
  start_server();
  flaky_failures_ = 2;
  ClientOptions options;
  options.retry = fixed_retry(3, 20ms);
  make_client(options);
  CallOptions call_options = idempotent();
  core::CallResult result = call("/test.T/Flaky", call_options);
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "ok");
  EXPECT_EQ(flaky_calls_, 3);
  EXPECT_EQ(last_attempt_header_, 3);  // the third attempt said so
  EXPECT_EQ(client_->stats().retries, 2u);
  EXPECT_EQ(client_->stats().attempts, 3u);
  if (simulated()) {
    EXPECT_GE(elapsed_, 40ms);  // two fixed 20 ms backoffs, plus the round trips
    EXPECT_LT(elapsed_, 45ms);
  }
}

TEST_P(ClusterClientTest, GivesUpAfterMaxAttemptsWithTheLastStatus) {
  start_server();
  flaky_failures_ = 100;
  ClientOptions options;
  options.retry = fixed_retry(4);
  make_client(options);
  CallOptions call_options;
  call_options.idempotency = core::Idempotency::kNoSideEffects;
  core::CallResult result = call("/test.T/Flaky", call_options);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable, HasSubstr("call 4")));
  EXPECT_EQ(flaky_calls_, 4);
}

TEST_P(ClusterClientTest, InvalidArgumentIsNotRetried) {
  start_server();
  flaky_failures_ = 100;
  flaky_code_ = StatusCode::kInvalidArgument;
  make_client();
  CallOptions call_options = idempotent();
  core::CallResult result = call("/test.T/Flaky", call_options);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(flaky_calls_, 1);  // the server saw exactly one call
  EXPECT_EQ(client_->stats().retries, 0u);
}

TEST_P(ClusterClientTest, ListedApplicationCodeIsRetried) {
  start_server();
  flaky_failures_ = 1;
  flaky_code_ = StatusCode::kAborted;
  ClientOptions options;
  options.retry = fixed_retry(3);
  make_client(options);
  CallOptions call_options;
  call_options.retry = fixed_retry(3);
  call_options.retry->retryable_codes = {StatusCode::kAborted};
  EXPECT_THAT(call("/test.T/Flaky", call_options).status, IsOk());
  EXPECT_EQ(flaky_calls_, 2);
}

TEST_P(ClusterClientTest, UnavailableAfterSendingIsNotRetriedForANonIdempotentMethod) {
  start_server();
  flaky_failures_ = 100;
  make_client();
  core::CallResult result = call("/test.T/Flaky");  // idempotency unknown
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(result.origin, FailureOrigin::kServer);
  EXPECT_EQ(flaky_calls_, 1);
}

TEST_P(ClusterClientTest, ADownServerIsRetriedWhateverTheMethodBecauseNothingWasSent) {
  ClientOptions options;
  options.retry = fixed_retry(3);
  options.circuit_breaker.reset();
  make_client(options);
  core::CallResult result = call("/test.T/Flaky", {}, harness_->unused_address());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(client_->stats().attempts, 3u);
}

TEST_P(ClusterClientTest, PushbackStopStopsRetries) {
  start_server();
  flaky_failures_ = 100;
  pushback_ = "stop";
  make_client();
  CallOptions call_options = idempotent();
  EXPECT_THAT(call("/test.T/Flaky", call_options).status, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(flaky_calls_, 1);
  EXPECT_EQ(client_->stats().pushback_stops, 1u);
}

TEST_P(ClusterClientTest, PushbackDelayIsHonoured) {
  start_server();
  flaky_failures_ = 1;
  pushback_ = "300";
  ClientOptions options;
  options.retry = fixed_retry(3);
  make_client(options);
  CallOptions call_options = idempotent();
  EXPECT_THAT(call("/test.T/Flaky", call_options).status, IsOk());
  EXPECT_EQ(flaky_calls_, 2);
  EXPECT_EQ(client_->stats().pushback_delays, 1u);
  EXPECT_GE(elapsed_, 300ms);  // on either clock: the retry waited for the pushback
}

TEST_P(ClusterClientTest, AnEmptyRetryBudgetStopsRetries) {
  start_server();
  flaky_failures_ = 100;
  ClientOptions options;
  options.retry = fixed_retry(5);
  options.retry_budget.ratio = 0;
  options.retry_budget.min_retries_per_second = 0;
  make_client(options);
  CallOptions call_options = idempotent();
  EXPECT_THAT(call("/test.T/Flaky", call_options).status, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(flaky_calls_, 1);
  EXPECT_EQ(client_->stats().retries_budget_denied, 1u);
}

TEST_P(ClusterClientTest, RetriesNeverOutliveTheDeadline) {
  start_server();
  flaky_failures_ = 100;
  ClientOptions options;
  options.retry = fixed_retry(5, 100ms);
  make_client(options);
  CallOptions call_options = idempotent();
  call_options.timeout = 250ms;
  EXPECT_THAT(call("/test.T/Flaky", call_options).status, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(flaky_calls_, 3);  // at 0, 100 and 200 ms; a fourth at 300 ms would be too late
  if (simulated()) {
    EXPECT_LT(elapsed_, 250ms);
  }
}

TEST_P(ClusterClientTest, PerAttemptTimeoutRetriesAHungIdempotentCall) {
  start_server();
  hang_calls_ = 1;
  ClientOptions options;
  options.retry = fixed_retry(3);
  options.retry.per_attempt_timeout = 100ms;
  make_client(options);
  CallOptions call_options = idempotent();
  core::CallResult result = call("/test.T/Hang", call_options);
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "fast 2");
  if (simulated()) {
    EXPECT_GE(elapsed_, 110ms);  // the attempt's 100 ms, then the 10 ms backoff
    EXPECT_LT(elapsed_, 115ms);
    EXPECT_EQ(hang_cancelled_, 1);  // the timed-out attempt was cancelled on the server
  }
}

TEST_P(ClusterClientTest, HedgeFiresAfterTheDelayAndTheLoserIsCancelled) {
  start_server();
  hang_calls_ = 1;
  ClientOptions options;
  resilience::HedgingPolicy hedging;
  hedging.delay = runtime::Duration(50ms);
  hedging.max_extra_load = 1.0;  // this test's single call may hedge
  options.hedging = hedging;
  make_client(options);
  CallOptions call_options;
  call_options.idempotency = core::Idempotency::kNoSideEffects;
  core::CallResult result = call("/test.T/Hang", call_options);
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "fast 2");
  EXPECT_EQ(client_->stats().hedges, 1u);
  EXPECT_EQ(client_->stats().losers_cancelled, 1u);
  if (simulated()) {
    EXPECT_GE(elapsed_, 50ms);  // the hedge went at exactly 50 ms
    EXPECT_LT(elapsed_, 51ms);
  }
  // The loser's handler sees the cancellation (CANCEL reached its server).
  Status waited = harness_->run({{&harness_->server_env(), [&]() -> awaitable<Status> {
                                    for (int i = 0; i < 5000 && hang_cancelled_ == 0; ++i) {
                                      co_await harness_->server_env().async_wait_for(
                                          1ms, use_nothrow_awaitable);
                                    }
                                    co_return Status();
                                  }}});
  EXPECT_THAT(waited, IsOk());
  EXPECT_EQ(hang_cancelled_, 1);
}

TEST_P(ClusterClientTest, PercentileHedgeWaitsForSamplesThenFiresAtTheObservedP95) {
  if (!simulated()) GTEST_SKIP() << "exact latencies need virtual time";
  start_server();
  ClientOptions options;
  resilience::HedgingPolicy hedging;  // p95 of observed latency
  hedging.max_extra_load = 1.0;
  options.hedging = hedging;
  make_client(options);
  CallOptions call_options;
  call_options.idempotency = core::Idempotency::kNoSideEffects;
  // Fewer samples than Hedger::kMinLatencySamples: no estimate, so no hedge.
  for (size_t i = 0; i < resilience::Hedger::kMinLatencySamples; ++i) {
    ASSERT_THAT(call("/test.T/Slow", call_options).status, IsOk());
  }
  EXPECT_EQ(client_->stats().hedges, 0u);
  // Every sample was 10 ms plus a sub-millisecond round trip, so p95 is just over 10 ms:
  // the hung attempt is hedged then, and the hedge answers 10 ms later.
  slow_hang_at_ = static_cast<int>(resilience::Hedger::kMinLatencySamples) + 1;
  core::CallResult result = call("/test.T/Slow", call_options);
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(client_->stats().hedges, 1u);
  EXPECT_EQ(result.response.to_string(), "slow " + std::to_string(slow_hang_at_ + 1));
  EXPECT_GE(elapsed_, 20ms);
  EXPECT_LT(elapsed_, 21ms);
}

TEST_P(ClusterClientTest, HedgesAndRetriesShareMaxAttemptsAndGiveOneResult) {
  start_server();
  flaky_failures_ = 100;  // every attempt fails, retryably
  ClientOptions options;
  options.retry = fixed_retry(4, 10ms);
  resilience::HedgingPolicy hedging;
  hedging.delay = runtime::Duration(0ms);  // hedge at once: both copies fail together
  hedging.max_extra_load = 4.0;
  options.hedging = hedging;
  make_client(options);
  CallOptions call_options = idempotent();
  core::CallResult result = call("/test.T/Flaky", call_options);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
  // Four attempts in all, whatever mix of hedges and retries: never more than max_attempts.
  EXPECT_EQ(flaky_calls_, 4);
  const ClientStats stats = client_->stats();
  EXPECT_EQ(stats.attempts, 4u);
  EXPECT_EQ(stats.calls, 1u);
  EXPECT_GE(stats.hedges, 1u);
  EXPECT_GE(stats.retries, 1u);
}

TEST_P(ClusterClientTest, NonIdempotentMethodsAreNeverHedged) {
  start_server();
  hang_calls_ = 0;
  ClientOptions options;
  resilience::HedgingPolicy hedging;
  hedging.delay = runtime::Duration(0ms);
  hedging.max_extra_load = 1.0;
  options.hedging = hedging;
  make_client(options);
  EXPECT_THAT(call("/test.T/Hang").status, IsOk());
  EXPECT_EQ(client_->stats().hedges, 0u);
  EXPECT_EQ(hang_calls_seen_, 1);
}

TEST_P(ClusterClientTest, BreakerOpensFailsFastThenHalfOpensAndCloses) {
  start_server();
  flaky_failures_ = 3;
  ClientOptions options;
  options.retry = fixed_retry(1);
  resilience::CircuitBreakerOptions breaker;
  breaker.consecutive_failures = 3;
  breaker.open_duration = 200ms;
  breaker.half_open_probes = 1;
  breaker.half_open_successes_to_close = 1;
  options.circuit_breaker = breaker;
  make_client(options);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(call("/test.T/Flaky").status, StatusIs(StatusCode::kUnavailable));
  }
  EXPECT_EQ(client_->breaker_state(address_), State::kOpen);
  core::CallResult rejected = call("/test.T/Flaky");
  EXPECT_THAT(rejected.status, StatusIs(StatusCode::kUnavailable,
                                        HasSubstr("circuit open for " + address_.to_string())));
  EXPECT_TRUE(rejected.not_processed);
  EXPECT_EQ(flaky_calls_, 3);  // the rejected call never reached the server
  EXPECT_EQ(client_->stats().breaker_rejections, 1u);
  EXPECT_EQ(client_->stats().circuits_opened, 1u);

  // After the open period a probe goes through; it succeeds and the circuit closes.
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    co_await client_env().async_wait_for(250ms, use_nothrow_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_EQ(client_->breaker_state(address_), State::kHalfOpen);
  EXPECT_THAT(call("/test.T/Flaky").status, IsOk());
  EXPECT_EQ(client_->breaker_state(address_), State::kClosed);
  EXPECT_EQ(flaky_calls_, 4);
}

TEST_P(ClusterClientTest, ApplicationErrorsDoNotTripTheBreaker) {
  start_server();
  flaky_failures_ = 100;
  flaky_code_ = StatusCode::kNotFound;
  ClientOptions options;
  resilience::CircuitBreakerOptions breaker;
  breaker.consecutive_failures = 2;
  options.circuit_breaker = breaker;
  make_client(options);
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(call("/test.T/Flaky").status, StatusIs(StatusCode::kNotFound));
  }
  EXPECT_EQ(client_->breaker_state(address_), State::kClosed);
  EXPECT_EQ(flaky_calls_, 5);
}

TEST_P(ClusterClientTest, CallerCancellationReachesTheServer) {
  start_server();
  hang_calls_ = 1;
  make_client();
  asio::cancellation_signal cancel;
  core::CallResult result;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    auto executor = co_await asio::this_coro::executor;
    auto canceller = [&]() -> awaitable<void> {
      co_await client_env().async_wait_for(20ms, use_nothrow_awaitable);
      cancel.emit(asio::cancellation_type::terminal);
    };
    asio::co_spawn(executor, canceller, asio::detached);
    result = co_await client_->async_call(
        address_, "/test.T/Hang", Buffer(), {},
        asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
    for (int i = 0; i < 5000 && hang_cancelled_ == 0; ++i) {
      co_await client_env().async_wait_for(1ms, use_nothrow_awaitable);
    }
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kCancelled));
  EXPECT_EQ(hang_cancelled_, 1);
}

TEST_P(ClusterClientTest, InheritCancellationFalseIgnoresTheCaller) {
  start_server();
  hang_calls_ = 0;
  make_client();
  asio::cancellation_signal cancel;
  core::CallResult result;
  CallOptions call_options;
  call_options.inherit_cancellation = false;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    cancel.emit(asio::cancellation_type::terminal);  // nothing attached yet: no effect
    auto token = asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable);
    auto executor = co_await asio::this_coro::executor;
    // Cancel right after the call starts, from the caller's executor.
    asio::post(executor, [&] { cancel.emit(asio::cancellation_type::terminal); });
    result = co_await client_->async_call(address_, "/test.T/Hang", Buffer(), call_options,
                                          std::move(token));
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status, IsOk());
}

TEST_P(ClusterClientTest, ParentContextGivesDeadlineAndTraceMetadata) {
  start_server();
  make_client();
  core::Metadata incoming = {{"meshrpc-trace-id", "t-7"}, {"user", "ada"}};
  core::ServerContext parent(client_env(), "/outer/Call", incoming, client_env().now() + 5s,
                             transport::Address{"peer", 1});
  CallOptions call_options;
  call_options.parent = &parent;
  core::CallResult result = call("/test.T/Inspect", call_options);
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "t-7 deadline");
  EXPECT_EQ(call("/test.T/Inspect").response.to_string(), "- no-deadline");
}

TEST_P(ClusterClientTest, TypedCallsAndGeneratedClientsGoThroughThePolicies) {
  start_server();
  flaky_failures_ = 1;
  ClientOptions options;
  options.retry = fixed_retry(2);
  make_client(options);
  // A typed method declared idempotent: the retry needs no per-call option.
  static constexpr codec::Method<Buffer, Buffer> kFlaky{"test.T.Flaky",
                                                        core::Idempotency::kIdempotent};
  Result<Buffer> reply = internal_error("not run");
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    reply = co_await client_->async_call(address_, kFlaky, Buffer(), {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_THAT(reply.status(), IsOk());
  EXPECT_EQ(reply->to_string(), "ok");
  EXPECT_EQ(flaky_calls_, 2);

  // Through the invoker, as a generated <Service>::Client would call.
  core::CallInvoker& invoker = client_->invoker(address_);
  EXPECT_EQ(&invoker, &client_->invoker(address_));
  core::CallResult via_invoker;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    via_invoker = co_await invoker.async_call("test.T.Inspect", Buffer(), {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(via_invoker.status, IsOk());
  EXPECT_EQ(client_->stats().calls, 2u);
}

TEST_P(ClusterClientTest, BlockingUnicastFillsTheReply) {
  start_server();
  make_client();
  static constexpr codec::Method<Buffer, Buffer> kInspect{"test.T.Inspect"};
  Buffer reply;
  Status status = client_->unicast(address_, kInspect, Buffer(), &reply);
  if (simulated()) {
    EXPECT_THAT(status, StatusIs(StatusCode::kFailedPrecondition));
    return;
  }
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(reply.to_string(), "- no-deadline");
}

TEST_P(ClusterClientTest, DestroyingTheClientCancelsACallWaitingToRetry) {
  start_server();
  flaky_failures_ = 100;
  ClientOptions options;
  options.retry = fixed_retry(3, 1h);  // the retry would wait an hour
  make_client(options);
  CallOptions call_options = idempotent();
  core::CallResult result;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    auto executor = co_await asio::this_coro::executor;
    auto destroyer = [&]() -> awaitable<void> {
      while (flaky_calls_ == 0) co_await client_env().async_wait_for(1ms, use_nothrow_awaitable);
      co_await client_env().async_wait_for(5ms, use_nothrow_awaitable);
      client_.reset();
    };
    asio::co_spawn(executor, destroyer, asio::detached);
    result = co_await client_->async_call(address_, "/test.T/Flaky", Buffer(), call_options,
                                          asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kCancelled, HasSubstr("client destroyed")));
}

TEST_P(ClusterClientTest, WaitForReadyCallsQueueUntilTheServerComesUp) {
  if (!simulated()) GTEST_SKIP() << "needs a fixed address to start the server on later";
  ClientOptions options;
  options.circuit_breaker.reset();
  make_client(options);
  const transport::Address later{harness_->listen_address().host, 4242};
  CallOptions ready;
  ready.wait_for_ready = 5s;
  core::CallResult waited, failed_fast;
  Status run = harness_->run(
      {{&client_env(),
        [&]() -> awaitable<Status> {
          const runtime::TimePoint start = client_env().now();
          // Named first: GCC 12 destroys temporaries inside a co_await expression twice.
          auto fail_fast =
              client_->async_call(later, "/test.T/Inspect", Buffer(), {}, asio::use_awaitable);
          failed_fast = co_await std::move(fail_fast);
          waited = co_await client_->async_call(later, "/test.T/Inspect", Buffer(), ready,
                                                asio::use_awaitable);
          elapsed_ = client_env().now() - start;
          co_return Status();
        }},
       {&harness_->server_env(), [&]() -> awaitable<Status> {
          co_await harness_->server_env().async_wait_for(300ms, use_nothrow_awaitable);
          start_server_at(later);
          co_return Status();
        }}});
  ASSERT_THAT(run, IsOk());
  EXPECT_THAT(failed_fast.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(failed_fast.not_processed);
  ASSERT_THAT(waited.status, IsOk());
  EXPECT_EQ(waited.response.to_string(), "- no-deadline");
  EXPECT_GE(elapsed_, 300ms);
  EXPECT_LT(elapsed_, 5s);
}

TEST_P(ClusterClientTest, AnInvalidPerCallRetryPolicyIsInvalidArgumentNotAThrow) {
  start_server();
  make_client();
  CallOptions call_options;
  call_options.retry = resilience::RetryPolicy{};
  call_options.retry->per_attempt_timeout = runtime::Duration(-1ms);
  core::CallResult result = call("/test.T/Flaky", call_options);
  EXPECT_THAT(result.status,
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("CallOptions::retry")));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(flaky_calls_, 0);
}

TEST(ClusterClientOptionsTest, InvalidPoliciesThrowAtConstruction) {
  runtime::SimEnv sim(1);
  transport::SimNetwork net(sim);
  ClientOptions options;
  options.retry.max_attempts = 0;
  EXPECT_THROW(Client(sim.default_host(), net.host(sim.default_host()), options),
               std::invalid_argument);
  options = {};
  resilience::HedgingPolicy hedging;
  hedging.max_attempts = 9;
  options.hedging = hedging;
  EXPECT_THROW(Client(sim.default_host(), net.host(sim.default_host()), options),
               std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, ClusterClientTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::cluster
