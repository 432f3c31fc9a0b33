// Broadcast with quorum: the pure decision core (QuorumTracker), then broadcasts over TCP to
// real servers on 127.0.0.1 (some down, some that answer only after others have started,
// some that hold their call until it is cancelled), then under simulation, where virtual time
// makes "it completed when the second reply arrived" an exact assertion.
#include "meshrpc/cluster/broadcast.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/struct.h"
#include "tests/cluster/broadcast_support.h"
#include "tests/support/log_capture.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::cluster {
namespace broadcast_test_types {

struct WhoArgs {
  std::string note;
};
MESHRPC_STRUCT(WhoArgs, (note, 1));

struct WhoReply {
  std::string server;
  std::string note;
};
MESHRPC_STRUCT(WhoReply, (server, 1), (note, 2));

inline constexpr codec::Method<WhoArgs, WhoReply> kTypedWho{"test.Fleet.TypedWho",
                                                            core::Idempotency::kNoSideEffects};

}  // namespace broadcast_test_types

namespace {

using namespace std::chrono_literals;
using broadcast_test_types::kTypedWho;
using broadcast_test_types::WhoArgs;
using broadcast_test_types::WhoReply;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using Decision = QuorumTracker::Decision;
using test_fleet::AsyncLatch;
using test_fleet::kHoldMethod;
using test_fleet::kWatchdog;
using test_fleet::kWhoMethod;
using test_fleet::SimFleet;
using test_fleet::StragglerProbe;
using test_fleet::TcpFleet;

// --- QuorumTracker: the decision alone --------------------------------------------------------

struct TrackerCase {
  std::string name;
  Quorum quorum;
  size_t targets;
  Decision initial;
  std::string outcomes;         // 'o' OK, 'x' failed, one per result fed in
  std::vector<Decision> after;  // the decision after each
};

TEST(QuorumTrackerTest, DecidesAsSoonAsTheOutcomeIsKnown) {
  constexpr Decision P = Decision::kPending, R = Decision::kReached, U = Decision::kUnreachable,
                     A = Decision::kAllDone;
  const std::vector<TrackerCase> cases = {
      {"all waits for every result, failed or not", Quorum::all(), 3, P, "oxo", {P, P, A}},
      {"all of nothing is done at once", Quorum::all(), 0, A, "", {}},
      {"majority of 3 is 2 OK", Quorum::majority(), 3, P, "oo", {P, R}},
      {"majority of 3 fails after 2 failures", Quorum::majority(), 3, P, "xx", {P, U}},
      {"majority of 4 is 3 OK", Quorum::majority(), 4, P, "ooxo", {P, P, P, R}},
      {"majority of 4 fails once 2 OK are impossible", Quorum::majority(), 4, P, "oxx", {P, P, U}},
      {"majority of nothing is done at once", Quorum::majority(), 0, A, "", {}},
      {"2 of 3 ignores one failure", Quorum::at_least(2), 3, P, "xoo", {P, P, R}},
      {"3 of 3 stops at the first failure", Quorum::at_least(3), 3, P, "ox", {P, U}},
      {"5 of 3 can never be reached", Quorum::at_least(5), 3, U, "", {}},
      {"1 of nothing can never be reached", Quorum::at_least(1), 0, U, "", {}},
      {"a decision stays decided", Quorum::at_least(1), 3, P, "oxx", {R, R, R}},
  };
  for (const TrackerCase& c : cases) {
    SCOPED_TRACE(c.name);
    QuorumTracker tracker(c.quorum, c.targets);
    EXPECT_EQ(tracker.decision(), c.initial);
    ASSERT_EQ(c.outcomes.size(), c.after.size());
    for (size_t i = 0; i < c.outcomes.size(); ++i) {
      EXPECT_EQ(tracker.record(c.outcomes[i] == 'o'), c.after[i]) << "after result " << i;
    }
    EXPECT_EQ(tracker.finished(), c.outcomes.size());
  }
}

TEST(QuorumTest, MajorityIsMoreThanHalf) {
  const std::vector<std::pair<size_t, size_t>> cases = {{1, 1}, {2, 2}, {3, 2},     {4, 3},
                                                        {5, 3}, {6, 4}, {1000, 501}};
  for (auto [targets, ok] : cases) {
    EXPECT_EQ(Quorum::majority().required_ok(targets), ok) << targets << " targets";
  }
  EXPECT_EQ(Quorum::all().required_ok(7), std::nullopt);
  EXPECT_EQ(Quorum::at_least(4).required_ok(7), 4u);
}

TEST(QuorumTest, WaitingForZeroIsAProgrammerError) {
  EXPECT_THROW((void)Quorum::at_least(0), std::invalid_argument);
}

TEST(BroadcastRequestsTest, OneRequestForAllSharesItsBytes) {
  Buffer request = Buffer::copy_of(std::string(100'000, 'q'));
  const char* bytes = request.slices()[0].data();
  detail::RequestSource source = detail::share_request(std::move(request));
  for (size_t i : {0, 1, 999}) {
    Result<Buffer> each = source(i);
    ASSERT_TRUE(each.ok());
    ASSERT_EQ(each->slices().size(), 1u);
    EXPECT_EQ(each->slices()[0].data(), bytes) << "target " << i << " got a copy";
  }
}

TEST(BroadcastRequestsTest, PerTargetRequestsAreHandedOverNotCopied) {
  std::vector<Buffer> requests = {Buffer::copy_of("a"), Buffer::copy_of("b")};
  const char* second = requests[1].slices()[0].data();
  detail::RequestSource source = detail::requests_per_target(std::move(requests));
  Result<Buffer> b = source(1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->slices()[0].data(), second);
  EXPECT_EQ(b->to_string(), "b");
}

// --- Over TCP on real threads -----------------------------------------------------------------

resilience::RetryPolicy fast_retry() {
  // Two attempts, 1 ms apart: a down target fails in milliseconds, after one retry.
  resilience::RetryPolicy policy;
  policy.max_attempts = 2;
  policy.backoff = {resilience::BackoffKind::kFixed, 1ms, 1ms, 1.0};
  return policy;
}

ClientOptions test_client_options() {
  ClientOptions options;
  options.retry = fast_retry();
  return options;
}

std::string name_of(size_t i) { return "server " + std::to_string(i); }

class BroadcastTcpTest : public ::testing::Test {
 protected:
  BroadcastTcpTest() : client_(fleet_.env(), fleet_.network(), test_client_options()) {}

  // A server whose kWhoMethod is `handler`.
  transport::Address add(core::Handler handler) {
    Result<transport::Address> address = fleet_.add_server<core::Server>(
        [&](core::Server& server) { server.register_method(std::string(kWhoMethod), handler); });
    EXPECT_TRUE(address.ok()) << address.status();
    return address.ok() ? *address : transport::Address{};
  }
  transport::Address add_named(size_t i) { return add(test_fleet::answer_with_name(name_of(i))); }

  std::shared_ptr<AsyncLatch> latch(int count) {
    return std::make_shared<AsyncLatch>(fleet_.env().executor(0), count);
  }

  // Starts a broadcast with a callback and waits for it (kWatchdog guards a hang).
  std::vector<TargetResult> run(Broadcaster& broadcaster, std::vector<transport::Address> targets,
                                BroadcastOptions options, Buffer request = Buffer()) {
    // Shared with the callback, which may still run after a hung test gave up.
    auto done = std::make_shared<std::promise<std::vector<TargetResult>>>();
    std::future<std::vector<TargetResult>> future = done->get_future();
    broadcaster.async_broadcast(
        std::move(targets), std::string(kWhoMethod), std::move(request), std::move(options),
        [done](std::vector<TargetResult> results) { done->set_value(std::move(results)); });
    if (future.wait_for(kWatchdog) != std::future_status::ready) {
      ADD_FAILURE() << "broadcast did not complete within " << kWatchdog.count() << " s";
      return {};
    }
    return future.get();
  }

  TcpFleet fleet_;
  Client client_;
  Broadcaster broadcaster_{client_};
};

TEST_F(BroadcastTcpTest, HundredServersWithTenDownGiveNinetyRepliesAndTenErrorsInOrder) {
  constexpr size_t kTargets = 100;
  const std::set<size_t> down = {3, 9, 17, 28, 41, 50, 63, 77, 86, 99};
  std::vector<transport::Address> targets(kTargets);
  for (size_t i = 0; i < kTargets; ++i) {
    if (!down.contains(i)) targets[i] = add_named(i);
  }
  // Down targets, made after the live servers took their ports: half never listened, half
  // are servers that were started and shut down.
  bool alternate = false;
  for (size_t i : down) {
    alternate = !alternate;
    if (alternate) {
      targets[i] = TcpFleet::unused_address();
    } else {
      Result<transport::Address> gone = fleet_.shut_down_server();
      ASSERT_TRUE(gone.ok()) << gone.status();
      targets[i] = *gone;
    }
  }

  // The blocking form, from this (non-env) thread.
  Result<std::vector<TargetResult>> results =
      broadcaster_.broadcast(targets, std::string(kWhoMethod), Buffer());
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), kTargets);
  for (size_t i = 0; i < kTargets; ++i) {
    const TargetResult& result = (*results)[i];
    SCOPED_TRACE("target " + std::to_string(i));
    EXPECT_EQ(result.target, targets[i]);
    EXPECT_TRUE(result.started);
    if (down.contains(i)) {
      EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
      EXPECT_TRUE(result.not_processed);
      EXPECT_TRUE(result.reply.empty());
    } else {
      EXPECT_THAT(result.status, IsOk());
      EXPECT_EQ(result.reply.to_string(), name_of(i));
    }
  }
  const BroadcastStats stats = broadcaster_.stats();
  EXPECT_EQ(stats.broadcasts, 1u);
  EXPECT_EQ(stats.targets, kTargets);
  EXPECT_EQ(stats.started, kTargets);
  EXPECT_EQ(stats.ok, 90u);
  EXPECT_EQ(stats.failed, 10u);
  EXPECT_EQ(stats.cancelled + stats.not_started + stats.detached, 0u);
  EXPECT_LE(stats.peak_in_flight, BroadcastOptions{}.max_in_flight);
}

TEST_F(BroadcastTcpTest, TwoOfThreeCompletesWhenTwoAnswerAndCancelsTheThird) {
  auto probe = std::make_shared<StragglerProbe>();
  // The answers wait until the straggler's handler runs, so its request has surely reached
  // its server when the quorum cuts it short.
  auto straggler_in = latch(1);
  std::vector<transport::Address> targets = {
      add(test_fleet::answer_after(straggler_in, name_of(0))),
      add(test_fleet::hold_until_cancelled(probe, straggler_in)),
      add(test_fleet::answer_after(straggler_in, name_of(2))),
  };
  std::vector<TargetResult> results = run(broadcaster_, targets, {.wait_for = Quorum::at_least(2)});

  ASSERT_EQ(results.size(), 3u);
  EXPECT_THAT(results[0].status, IsOk());
  EXPECT_EQ(results[0].reply.to_string(), name_of(0));
  EXPECT_THAT(results[1].status, StatusIs(StatusCode::kCancelled, HasSubstr("quorum reached")));
  EXPECT_TRUE(results[1].started);
  EXPECT_EQ(results[1].target, targets[1]);
  EXPECT_THAT(results[2].status, IsOk());
  EXPECT_EQ(results[2].reply.to_string(), name_of(2));
  // The straggler's server saw the cancellation.
  ASSERT_TRUE(probe->ended.wait());
  EXPECT_TRUE(probe->saw_cancellation);
  const BroadcastStats stats = broadcaster_.stats();
  EXPECT_EQ(stats.quorum_reached, 1u);
  EXPECT_EQ(stats.ok, 2u);
  EXPECT_EQ(stats.cancelled, 1u);
}

TEST_F(BroadcastTcpTest, MajorityOfFiveCompletesOnThreeAndCancelsTwoStragglers) {
  auto first = std::make_shared<StragglerProbe>();
  auto second = std::make_shared<StragglerProbe>();
  auto stragglers_in = latch(2);
  std::vector<transport::Address> targets = {
      add(test_fleet::hold_until_cancelled(first, stragglers_in)),
      add(test_fleet::answer_after(stragglers_in, name_of(1))),
      add(test_fleet::answer_after(stragglers_in, name_of(2))),
      add(test_fleet::hold_until_cancelled(second, stragglers_in)),
      add(test_fleet::answer_after(stragglers_in, name_of(4))),
  };
  // The co_await form, from a coroutine on one of the env's threads.
  std::vector<TargetResult> results;
  BroadcastOptions options{.wait_for = Quorum::majority()};
  Status ran = meshrpc::testing::run_on_real_threads(
      {{&fleet_.env(),
        [&]() -> awaitable<Status> {
          // Arguments named first: GCC 12 destroys temporaries in a co_await expression twice.
          const std::string method(kWhoMethod);
          auto broadcast =
              broadcaster_.async_broadcast(targets, method, Buffer(), options, asio::use_awaitable);
          results = co_await std::move(broadcast);
          co_return Status();
        }}},
      kWatchdog, [this] { fleet_.env().stop(); });
  ASSERT_THAT(ran, IsOk());

  ASSERT_EQ(results.size(), 5u);
  for (size_t i : {1, 2, 4}) {
    EXPECT_THAT(results[i].status, IsOk()) << i;
    EXPECT_EQ(results[i].reply.to_string(), name_of(i));
  }
  for (size_t i : {0, 3}) {
    EXPECT_THAT(results[i].status,
                StatusIs(StatusCode::kCancelled, HasSubstr("quorum reached (majority")))
        << i;
  }
  ASSERT_TRUE(first->ended.wait());
  ASSERT_TRUE(second->ended.wait());
  EXPECT_TRUE(first->saw_cancellation);
  EXPECT_TRUE(second->saw_cancellation);
}

TEST_F(BroadcastTcpTest, UnreachableQuorumCompletesOnceTooManyFailed) {
  auto first = std::make_shared<StragglerProbe>();
  auto second = std::make_shared<StragglerProbe>();
  auto stragglers_in = latch(2);
  std::vector<transport::Address> targets = {
      add(test_fleet::fail_after(stragglers_in, name_of(0))),
      add(test_fleet::hold_until_cancelled(first, stragglers_in)),
      add(test_fleet::fail_after(stragglers_in, name_of(2))),
      add(test_fleet::hold_until_cancelled(second, stragglers_in)),
      add(test_fleet::fail_after(stragglers_in, name_of(4))),
  };
  // 3 OK of 5 is out of reach once 3 have failed: the 2 still running could not make it.
  std::vector<TargetResult> results = run(broadcaster_, targets, {.wait_for = Quorum::at_least(3)});

  ASSERT_EQ(results.size(), 5u);
  for (size_t i : {0, 2, 4}) {
    EXPECT_THAT(results[i].status,
                StatusIs(StatusCode::kFailedPrecondition, HasSubstr(name_of(i) + " refuses")))
        << i;
  }
  for (size_t i : {1, 3}) {
    EXPECT_THAT(results[i].status, StatusIs(StatusCode::kCancelled, HasSubstr("unreachable"))) << i;
  }
  ASSERT_TRUE(first->ended.wait());
  ASSERT_TRUE(second->ended.wait());
  EXPECT_TRUE(first->saw_cancellation);
  EXPECT_TRUE(second->saw_cancellation);
  EXPECT_EQ(broadcaster_.stats().quorum_unreachable, 1u);
}

TEST_F(BroadcastTcpTest, TargetsNotStartedWhenTheQuorumIsReachedSaySo) {
  std::vector<transport::Address> targets = {add_named(0), add_named(1), add_named(2)};
  // One at a time: the first answer decides, the other two never start.
  std::vector<TargetResult> results =
      run(broadcaster_, targets, {.max_in_flight = 1, .wait_for = Quorum::at_least(1)});

  ASSERT_EQ(results.size(), 3u);
  EXPECT_THAT(results[0].status, IsOk());
  for (size_t i : {1, 2}) {
    EXPECT_THAT(results[i].status,
                StatusIs(StatusCode::kCancelled, HasSubstr("not started: quorum reached")))
        << i;
    EXPECT_FALSE(results[i].started);
    EXPECT_TRUE(results[i].not_processed);
    EXPECT_EQ(results[i].target, targets[i]);
  }
  const BroadcastStats stats = broadcaster_.stats();
  EXPECT_EQ(stats.started, 1u);
  EXPECT_EQ(stats.not_started, 2u);
}

TEST_F(BroadcastTcpTest, PerTargetRequestsReachTheirOwnTargets) {
  std::vector<TargetRequest<>> requests;
  for (size_t i = 0; i < 4; ++i) {
    requests.push_back({add_named(i), Buffer::copy_of("for " + std::to_string(i))});
  }
  // The std::future form.
  std::future<std::vector<TargetResult>> future =
      broadcaster_.async_broadcast(requests, std::string(kWhoMethod), {}, asio::use_future);
  ASSERT_EQ(future.wait_for(kWatchdog), std::future_status::ready);
  std::vector<TargetResult> results = future.get();

  ASSERT_EQ(results.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_THAT(results[i].status, IsOk());
    EXPECT_EQ(results[i].reply.to_string(), name_of(i) + ": for " + std::to_string(i));
    EXPECT_EQ(results[i].target, requests[i].target);
  }
}

class TypedBroadcastTest : public BroadcastTcpTest {
 protected:
  transport::Address add_typed(size_t i) {
    Result<transport::Address> address = fleet_.add_server<codec::Server>([i](codec::Server& s) {
      s.handle(kTypedWho, [i](core::ServerContext&, const WhoArgs& args) -> Result<WhoReply> {
        return WhoReply{name_of(i), args.note};
      });
    });
    EXPECT_TRUE(address.ok()) << address.status();
    return address.ok() ? *address : transport::Address{};
  }
};

TEST_F(TypedBroadcastTest, DecodesEveryReplyAndKeepsFailuresInPlace) {
  std::vector<transport::Address> targets = {add_typed(0), TcpFleet::unused_address(),
                                             add_typed(2)};
  Result<std::vector<TargetReply<WhoReply>>> replies =
      broadcaster_.broadcast(targets, kTypedWho, WhoArgs{"hello"});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 3u);
  for (size_t i : {0, 2}) {
    const TargetReply<WhoReply>& reply = (*replies)[i];
    ASSERT_THAT(reply.status, IsOk()) << i;
    ASSERT_TRUE(reply.reply.has_value());
    EXPECT_EQ(reply.reply->server, name_of(i));
    EXPECT_EQ(reply.reply->note, "hello");
  }
  EXPECT_THAT((*replies)[1].status, StatusIs(StatusCode::kUnavailable));
  EXPECT_FALSE((*replies)[1].reply.has_value());
  EXPECT_EQ((*replies)[1].target, targets[1]);
}

TEST_F(TypedBroadcastTest, PerTargetTypedRequestsAreEncodedForTheirTarget) {
  std::vector<TargetRequest<WhoArgs>> requests;
  for (size_t i = 0; i < 3; ++i) {
    requests.push_back({add_typed(i), WhoArgs{"note " + std::to_string(i)}});
  }
  std::vector<TargetReply<WhoReply>> replies;
  Status ran =
      meshrpc::testing::run_on_real_threads({{&fleet_.env(),
                                              [&]() -> awaitable<Status> {
                                                auto broadcast = broadcaster_.async_broadcast(
                                                    requests, kTypedWho, {}, asio::use_awaitable);
                                                replies = co_await std::move(broadcast);
                                                co_return Status();
                                              }}},
                                            kWatchdog, [this] { fleet_.env().stop(); });
  ASSERT_THAT(ran, IsOk());
  ASSERT_EQ(replies.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_THAT(replies[i].status, IsOk()) << i;
    EXPECT_EQ(replies[i].reply->server, name_of(i));
    EXPECT_EQ(replies[i].reply->note, "note " + std::to_string(i));
  }
}

TEST_F(BroadcastTcpTest, BackgroundStragglerFinishesAfterTheBroadcastCompleted) {
  auto probe = std::make_shared<StragglerProbe>();
  auto straggler_in = latch(1);
  auto release = latch(1);
  std::vector<transport::Address> targets = {
      add(test_fleet::answer_after(straggler_in, name_of(0))),
      add(test_fleet::answer_after_release(release, probe, straggler_in, name_of(1))),
      add(test_fleet::answer_after(straggler_in, name_of(2))),
  };
  // A broadcaster of its own, destroyed while its straggler is still running.
  auto broadcaster = std::make_unique<Broadcaster>(client_);
  std::vector<TargetResult> results =
      run(*broadcaster, targets,
          {.wait_for = Quorum::at_least(2), .stragglers = Stragglers::kFinishInBackground});

  ASSERT_EQ(results.size(), 3u);
  EXPECT_THAT(results[0].status, IsOk());
  EXPECT_THAT(results[2].status, IsOk());
  EXPECT_THAT(results[1].status, StatusIs(StatusCode::kCancelled, HasSubstr("background")));
  EXPECT_TRUE(results[1].started);
  EXPECT_FALSE(probe->ended.is_set());  // completed without waiting for it
  EXPECT_EQ(broadcaster->stats().detached, 1u);

  // The drain's waiter lives with the straggler's state, not with the broadcaster.
  std::promise<void> drained;
  auto drained_future = drained.get_future();
  broadcaster->async_drain([&drained] { drained.set_value(); });
  results.clear();
  broadcaster.reset();
  release->arrive();
  ASSERT_TRUE(probe->ended.wait());
  EXPECT_FALSE(probe->saw_cancellation);  // left to finish, not cancelled
  ASSERT_EQ(drained_future.wait_for(kWatchdog), std::future_status::ready);
}

TEST_F(BroadcastTcpTest, AsyncDrainWaitsForBackgroundStragglers) {
  auto probe = std::make_shared<StragglerProbe>();
  auto straggler_in = latch(1);
  auto release = latch(1);
  std::vector<transport::Address> targets = {
      add(test_fleet::answer_after(straggler_in, name_of(0))),
      add(test_fleet::answer_after_release(release, probe, straggler_in, name_of(1))),
  };
  std::vector<TargetResult> results =
      run(broadcaster_, targets,
          {.wait_for = Quorum::at_least(1), .stragglers = Stragglers::kFinishInBackground});
  EXPECT_THAT(results[0].status, IsOk());
  EXPECT_THAT(results[1].status, StatusIs(StatusCode::kCancelled, HasSubstr("background")));

  std::promise<void> drained;
  auto future = drained.get_future();
  broadcaster_.async_drain([&drained] { drained.set_value(); });
  EXPECT_EQ(broadcaster_.stats().detached_finished, 0u);
  release->arrive();
  ASSERT_EQ(future.wait_for(kWatchdog), std::future_status::ready);
  EXPECT_EQ(broadcaster_.stats().detached_finished, 1u);
  EXPECT_FALSE(probe->saw_cancellation);
}

TEST_F(BroadcastTcpTest, CallerCancellationCancelsEveryOutstandingTarget) {
  std::vector<std::shared_ptr<StragglerProbe>> probes;
  std::vector<transport::Address> targets;
  for (int i = 0; i < 3; ++i) {
    probes.push_back(std::make_shared<StragglerProbe>());
    targets.push_back(add(test_fleet::hold_until_cancelled(probes.back())));
  }
  targets.push_back(add_named(3));  // waits for a slot that never frees

  asio::cancellation_signal cancel;
  auto executor = fleet_.env().executor(0);
  std::promise<std::vector<TargetResult>> done;
  auto future = done.get_future();
  broadcaster_.async_broadcast(
      targets, std::string(kWhoMethod), Buffer(), {.max_in_flight = 3},
      asio::bind_cancellation_slot(
          cancel.slot(), asio::bind_executor(executor, [&done](std::vector<TargetResult> r) {
            done.set_value(std::move(r));
          })));
  for (auto& probe : probes) ASSERT_TRUE(probe->entered.wait());
  // Emitted on the handler's executor, as Asio requires.
  asio::post(executor, [&cancel] { cancel.emit(asio::cancellation_type::terminal); });
  ASSERT_EQ(future.wait_for(kWatchdog), std::future_status::ready);
  std::vector<TargetResult> results = future.get();

  ASSERT_EQ(results.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_THAT(results[i].status,
                StatusIs(StatusCode::kCancelled, HasSubstr("cancelled by the caller")))
        << i;
    ASSERT_TRUE(probes[i]->ended.wait());
    EXPECT_TRUE(probes[i]->saw_cancellation) << i;
  }
  EXPECT_THAT(results[3].status, StatusIs(StatusCode::kCancelled, HasSubstr("not started")));
  EXPECT_FALSE(results[3].started);
  const BroadcastStats stats = broadcaster_.stats();
  EXPECT_EQ(stats.caller_cancelled, 1u);
  EXPECT_EQ(stats.cancelled, 3u);
  EXPECT_EQ(stats.not_started, 1u);
}

TEST_F(BroadcastTcpTest, StreamYieldsEveryTargetOnceThenEnds) {
  std::vector<transport::Address> targets;
  for (size_t i = 0; i < 6; ++i) targets.push_back(add_named(i));
  std::set<size_t> seen;
  bool ended = false;
  Status ran = meshrpc::testing::run_on_real_threads(
      {{&fleet_.env(),
        [&]() -> awaitable<Status> {
          const std::string method(kWhoMethod);
          BroadcastStream stream =
              broadcaster_.stream(targets, method, Buffer(), {.max_in_flight = 2});
          while (std::optional<IndexedResult> next =
                     co_await stream.async_next(asio::use_awaitable)) {
            if (!next->result.ok()) co_return next->result.status;
            if (next->result.reply.to_string() != name_of(next->index)) {
              co_return internal_error("reply of target " + std::to_string(next->index) + " is " +
                                       next->result.reply.to_string());
            }
            if (!seen.insert(next->index).second) co_return internal_error("a target came twice");
          }
          ended = true;
          co_return Status();
        }}},
      kWatchdog, [this] { fleet_.env().stop(); });
  ASSERT_THAT(ran, IsOk());
  EXPECT_TRUE(ended);
  EXPECT_EQ(seen.size(), targets.size());
}

TEST_F(BroadcastTcpTest, MaxInFlightZeroFailsEveryTargetWithoutACall) {
  std::vector<transport::Address> targets = {add_named(0), add_named(1)};
  std::vector<TargetResult> results = run(broadcaster_, targets, {.max_in_flight = 0});
  ASSERT_EQ(results.size(), 2u);
  for (const TargetResult& result : results) {
    EXPECT_THAT(result.status, StatusIs(StatusCode::kInvalidArgument, HasSubstr("max_in_flight")));
    EXPECT_FALSE(result.started);
  }
  EXPECT_EQ(client_.stats().calls, 0u);
}

TEST_F(BroadcastTcpTest, NoTargetsCompletesWithNoResults) {
  EXPECT_TRUE(run(broadcaster_, {}, {}).empty());
  EXPECT_TRUE(run(broadcaster_, {}, {.wait_for = Quorum::majority()}).empty());
}

// --- Under simulation: exact virtual times ------------------------------------------------

// A fixed one-way delay, so that "when the reply arrived" is a number.
constexpr auto kLinkDelay = 100us;
transport::LinkConfig fixed_delay_link() {
  transport::LinkConfig link;
  link.delay_min = kLinkDelay;
  link.delay_max = kLinkDelay;
  return link;
}

class BroadcastSimTest : public ::testing::Test {
 protected:
  BroadcastSimTest()
      : fleet_(7, fixed_delay_link()),
        client_(fleet_.client_host(), fleet_.client_network(), test_client_options()),
        broadcaster_(std::make_unique<Broadcaster>(client_)) {}

  transport::Address add(core::Handler handler) {
    runtime::SimHost& host = fleet_.add_host("s" + std::to_string(hosts_++));
    Result<transport::Address> address = fleet_.add_server(host, [&](core::Server& server) {
      server.register_method(std::string(kWhoMethod), handler);
    });
    EXPECT_TRUE(address.ok()) << address.status();
    return address.ok() ? *address : transport::Address{};
  }

  // Starts a broadcast and runs the simulation until it completes; notes when it did.
  std::vector<TargetResult> run(std::vector<transport::Address> targets, BroadcastOptions options) {
    std::optional<std::vector<TargetResult>> results;
    broadcaster_->async_broadcast(std::move(targets), std::string(kWhoMethod), Buffer(),
                                  std::move(options), [&](std::vector<TargetResult> r) {
                                    completed_at_ = fleet_.sim().now();
                                    results = std::move(r);
                                  });
    EXPECT_TRUE(fleet_.run_until([&] { return results.has_value(); }))
        << "seed " << fleet_.sim().seed();
    return results ? std::move(*results) : std::vector<TargetResult>();
  }

  SimFleet fleet_;
  Client client_;
  std::unique_ptr<Broadcaster> broadcaster_;
  size_t hosts_ = 0;
  runtime::TimePoint completed_at_{};
};

TEST_F(BroadcastSimTest, TwoOfThreeCompletesAtTheVirtualTimeTheSecondReplyArrives) {
  auto first_answered = std::make_shared<runtime::TimePoint>();
  auto second_answered = std::make_shared<runtime::TimePoint>();
  auto probe = std::make_shared<StragglerProbe>();
  std::vector<transport::Address> targets = {
      add(test_fleet::answer_later(10ms, name_of(0), first_answered)),
      add(test_fleet::hold_until_cancelled(probe)),
      add(test_fleet::answer_later(20ms, name_of(2), second_answered)),
  };
  // The debug lines say what was decided.
  std::vector<TargetResult> results;
  std::string log_lines;
  {
    ::meshrpc::testing::LogCapture logs(spdlog::level::debug);
    results = run(targets, {.wait_for = Quorum::at_least(2)});
    log_lines = logs.text();
  }

  ASSERT_EQ(results.size(), 3u);
  EXPECT_THAT(results[0].status, IsOk());
  EXPECT_THAT(results[2].status, IsOk());
  EXPECT_THAT(results[1].status, StatusIs(StatusCode::kCancelled, HasSubstr("quorum reached")));
  EXPECT_LT(*first_answered, *second_answered);
  // Not a moment later than the second reply's arrival, one link delay after it was sent.
  EXPECT_EQ(completed_at_, *second_answered + kLinkDelay);
  // The CANCEL reaches the straggler's server one link delay after that.
  ASSERT_TRUE(fleet_.run_until([&] { return probe->ended.is_set(); }));
  EXPECT_TRUE(probe->saw_cancellation);
  EXPECT_THAT(log_lines, HasSubstr("quorum reached (at least 2 OK: 2 OK, 0 failed of 3"));
}

TEST_F(BroadcastSimTest, UnreachableQuorumCompletesAtTheThirdFailure) {
  auto fail_at = [](runtime::Duration delay, std::shared_ptr<runtime::TimePoint> when) {
    return [delay, when](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
      co_await ctx.env().async_wait_for(delay, use_nothrow_awaitable);
      *when = ctx.env().now();
      co_return failed_precondition_error("refused");
    };
  };
  auto third_failure = std::make_shared<runtime::TimePoint>();
  auto scratch = std::make_shared<runtime::TimePoint>();
  auto hold = std::make_shared<StragglerProbe>();
  std::vector<transport::Address> targets = {
      add(fail_at(10ms, scratch)),
      add(test_fleet::hold_until_cancelled(hold)),
      add(fail_at(20ms, scratch)),
      add(fail_at(30ms, third_failure)),
      add(test_fleet::answer_later(1h, name_of(4))),
  };
  std::vector<TargetResult> results = run(targets, {.wait_for = Quorum::at_least(3)});
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(completed_at_, *third_failure + kLinkDelay);
  for (size_t i : {0, 2, 3}) {
    EXPECT_THAT(results[i].status, StatusIs(StatusCode::kFailedPrecondition)) << i;
  }
  for (size_t i : {1, 4}) {
    EXPECT_THAT(results[i].status, StatusIs(StatusCode::kCancelled, HasSubstr("unreachable"))) << i;
  }
}

TEST_F(BroadcastSimTest, StreamYieldsResultsInArrivalOrderWithTheirIndex) {
  const std::vector<runtime::Duration> delays = {30ms, 10ms, 40ms, 20ms};
  std::vector<transport::Address> targets;
  for (size_t i = 0; i < delays.size(); ++i) {
    targets.push_back(add(test_fleet::answer_later(delays[i], name_of(i))));
  }
  BroadcastStream stream = broadcaster_->stream(targets, std::string(kWhoMethod), Buffer());
  EXPECT_EQ(stream.size(), 4u);
  std::vector<size_t> order;
  std::vector<runtime::TimePoint> times;
  bool ended = false;
  asio::co_spawn(
      fleet_.client_host().pick_executor(),
      [&]() -> awaitable<void> {
        while (std::optional<IndexedResult> next =
                   co_await stream.async_next(asio::use_awaitable)) {
          EXPECT_THAT(next->result.status, IsOk());
          EXPECT_EQ(next->result.reply.to_string(), name_of(next->index));
          order.push_back(next->index);
          times.push_back(fleet_.sim().now());
        }
        ended = true;
      },
      asio::detached);
  ASSERT_TRUE(fleet_.run_until([&] { return ended; }));
  EXPECT_THAT(order, ::testing::ElementsAre(1u, 3u, 0u, 2u));
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  EXPECT_LT(times.front() + 15ms, times.back());  // each came when it arrived, not at the end
}

TEST_F(BroadcastSimTest, StreamHoldsAtMostMaxInFlightForAReaderThatDoesNotRead) {
  auto calls = std::make_shared<int>(0);
  std::vector<transport::Address> targets;
  for (size_t i = 0; i < 10; ++i) {
    targets.push_back(add([calls, i](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
      ++*calls;
      co_return Buffer::copy_of(name_of(i));
    }));
  }
  BroadcastStream stream =
      broadcaster_->stream(targets, std::string(kWhoMethod), Buffer(), {.max_in_flight = 3});
  fleet_.sim().run_for(1s);
  EXPECT_EQ(*calls, 3);  // 3 results wait to be taken; nothing more starts

  std::vector<size_t> taken;
  bool ended = false;
  std::function<void()> take_one = [&] {
    stream.async_next([&](std::optional<IndexedResult> next) {
      if (!next) {
        ended = true;
        return;
      }
      taken.push_back(next->index);
    });
  };
  take_one();
  fleet_.sim().run_for(1s);
  EXPECT_EQ(taken.size(), 1u);
  EXPECT_EQ(*calls, 4);  // one taken, one more started
  for (int i = 0; i < 10; ++i) {
    take_one();
    fleet_.sim().run_for(1s);
  }
  EXPECT_TRUE(ended);
  EXPECT_EQ(taken.size(), 10u);
  EXPECT_EQ(*calls, 10);
}

TEST_F(BroadcastSimTest, BackgroundStragglerIsDiscardedWhenItFinishesLater) {
  auto straggler_answered = std::make_shared<runtime::TimePoint>();
  auto second_answered = std::make_shared<runtime::TimePoint>();
  std::vector<transport::Address> targets = {
      add(test_fleet::answer_later(10ms, name_of(0))),
      add(test_fleet::answer_later(50ms, name_of(1), straggler_answered)),
      add(test_fleet::answer_later(20ms, name_of(2), second_answered)),
  };
  std::vector<TargetResult> results = run(
      targets, {.wait_for = Quorum::at_least(2), .stragglers = Stragglers::kFinishInBackground});
  EXPECT_EQ(completed_at_, *second_answered + kLinkDelay);
  EXPECT_THAT(results[1].status, StatusIs(StatusCode::kCancelled, HasSubstr("background")));
  EXPECT_EQ(broadcaster_->stats().detached, 1u);
  EXPECT_EQ(broadcaster_->stats().detached_finished, 0u);

  std::optional<runtime::TimePoint> drained_at;
  broadcaster_->async_drain([&] { drained_at = fleet_.sim().now(); });
  ASSERT_TRUE(fleet_.run_until([&] { return drained_at.has_value(); }));
  EXPECT_EQ(*drained_at, *straggler_answered + kLinkDelay);
  EXPECT_EQ(broadcaster_->stats().detached_finished, 1u);

  // Again, with the broadcaster and the results gone before the straggler answers.
  results = run(targets,
                {.wait_for = Quorum::at_least(2), .stragglers = Stragglers::kFinishInBackground});
  results.clear();
  broadcaster_.reset();
  const runtime::TimePoint before = *straggler_answered;
  ASSERT_TRUE(fleet_.run_until([&] { return *straggler_answered != before; }));
  fleet_.sim().run_for(1s);
}

TEST_F(BroadcastSimTest, BlockingBroadcastUnderSimulationIsRefused) {
  Result<std::vector<TargetResult>> results = broadcaster_->broadcast(
      {add(test_fleet::answer_with_name("x"))}, std::string(kWhoMethod), Buffer());
  EXPECT_THAT(results.status(), StatusIs(StatusCode::kFailedPrecondition, HasSubstr("simulation")));
}

}  // namespace
}  // namespace meshrpc::cluster
