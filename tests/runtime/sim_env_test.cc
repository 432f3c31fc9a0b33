#include "meshrpc/runtime/sim_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace meshrpc::runtime {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

TEST(SimEnv, OneHourTimerFiresExactlyOneVirtualHourLater) {
  SimEnv sim(1);
  const TimePoint start = sim.now();
  std::optional<TimePoint> fired_at;
  error_code result = asio::error::would_block;
  sim.async_wait_for(1h, [&](error_code ec) {
    result = ec;
    fired_at = sim.now();
  });
  // A real-time watchdog only guards against a hang; the assertion is on virtual time.
  const auto real_start = std::chrono::steady_clock::now();
  sim.run();
  EXPECT_LT(std::chrono::steady_clock::now() - real_start, 10s);
  ASSERT_TRUE(fired_at.has_value());
  EXPECT_FALSE(result);
  EXPECT_EQ(*fired_at - start, Duration(1h));
  EXPECT_EQ(sim.pending_events(), 0u);
}

TEST(SimEnv, TimersFireInDeadlineOrderAndTiesInArmingOrder) {
  SimEnv sim(1);
  std::vector<std::string> order;
  sim.async_wait_for(30ms, [&](error_code) { order.push_back("c30"); });
  sim.async_wait_for(10ms, [&](error_code) { order.push_back("a10"); });
  sim.async_wait_for(20ms, [&](error_code) { order.push_back("b20-first"); });
  sim.async_wait_for(20ms, [&](error_code) { order.push_back("b20-second"); });
  sim.run();
  EXPECT_THAT(order, ::testing::ElementsAre("a10", "b20-first", "b20-second", "c30"));
  EXPECT_EQ(sim.now().time_since_epoch(), Duration(30ms));
}

TEST(SimEnv, CancelledTimerCompletesWithOperationAbortedAtOnce) {
  SimEnv sim(1);
  asio::cancellation_signal signal;
  error_code result;
  sim.async_wait_for(
      1h, asio::bind_cancellation_slot(signal.slot(), [&](error_code ec) { result = ec; }));
  sim.run_for(5ms);
  signal.emit(asio::cancellation_type::terminal);
  sim.run();
  EXPECT_EQ(result, asio::error::operation_aborted);
  EXPECT_EQ(sim.now().time_since_epoch(), Duration(5ms));
  EXPECT_EQ(sim.pending_events(), 0u);
}

awaitable<std::string> race_timers(Env& env) {
  auto sleep = [&env](Duration d) -> awaitable<Duration> {
    co_await env.async_wait_for(d, use_nothrow_awaitable);
    co_return d;
  };
  auto winner = co_await (sleep(1h) || sleep(3ms));
  co_return winner.index() == 0 ? "hour" : "3ms";
}

TEST(SimEnv, AwaitableRaceCancelsTheLosingTimer) {
  SimEnv sim(1);
  std::string winner;
  asio::co_spawn(sim.pick_executor(), race_timers(sim),
                 [&](std::exception_ptr, std::string w) { winner = w; });
  sim.run();
  EXPECT_EQ(winner, "3ms");
  // The losing one-hour wait was cancelled, not left to fire: time stopped at 3 ms.
  EXPECT_EQ(sim.now().time_since_epoch(), Duration(3ms));
}

TEST(SimEnv, RunForAdvancesTimeAndLeavesLaterTimersPending) {
  SimEnv sim(1);
  int fired = 0;
  sim.async_wait_for(10ms, [&](error_code) { ++fired; });
  sim.async_wait_for(50ms, [&](error_code) { ++fired; });
  sim.run_for(20ms);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(sim.now().time_since_epoch(), Duration(20ms));
  EXPECT_EQ(sim.pending_events(), 1u);
}

TEST(SimEnv, RunUntilStopsWhenConditionHolds) {
  SimEnv sim(1);
  int ticks = 0;
  std::function<void(error_code)> tick = [&](error_code) {
    ++ticks;
    sim.async_wait_for(1s, tick);
  };
  sim.async_wait_for(1s, tick);
  EXPECT_TRUE(sim.run_until([&] { return ticks == 5; }, 1h));
  EXPECT_EQ(sim.now().time_since_epoch(), Duration(5s));
  EXPECT_FALSE(sim.run_until([] { return false; }, 10s));
}

TEST(SimEnv, StepLimitReportsALivelockInsteadOfHanging) {
  SimEnv::Options options;
  options.max_steps_per_run = 10'000;
  SimEnv sim(1, options);
  std::function<void()> spin = [&] { asio::post(sim.pick_executor(), spin); };
  asio::post(sim.pick_executor(), spin);
  sim.run();
  EXPECT_TRUE(sim.hit_step_limit());
}

TEST(SimEnv, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  SimEnv a(42), b(42), c(43);
  std::vector<uint64_t> da, db, dc;
  for (int i = 0; i < 100; ++i) {
    da.push_back(a.random_u64());
    db.push_back(b.random_u64());
    dc.push_back(c.random_u64());
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(SimEnv, HostsHaveTheirOwnContextsAndShareVirtualTime) {
  SimEnv sim(1);
  SimHost& a = sim.add_host("a");
  SimHost& b = sim.add_host("b");
  EXPECT_NE(&a.context(), &b.context());
  EXPECT_EQ(sim.find_host("b"), &b);
  EXPECT_EQ(sim.find_host("nobody"), nullptr);
  EXPECT_THROW(sim.add_host("a"), std::invalid_argument);
  TimePoint a_fired{}, b_fired{};
  a.async_wait_for(7ms, [&](error_code) { a_fired = a.now(); });
  b.async_wait_for(9ms, [&](error_code) { b_fired = b.now(); });
  sim.run();
  EXPECT_EQ(a_fired.time_since_epoch(), Duration(7ms));
  EXPECT_EQ(b_fired.time_since_epoch(), Duration(9ms));
}

TEST(SimEnv, TraceHashDependsOnEventsTimeAndOrder) {
  auto run = [](bool swap) {
    SimEnv sim(5);
    SimHost& h = sim.add_host("h");
    sim.trace(h, swap ? "second" : "first");
    sim.run_for(1ms);
    sim.trace(h, swap ? "first" : "second");
    return sim.trace_hash();
  };
  EXPECT_EQ(run(false), run(false));
  EXPECT_NE(run(false), run(true));
}

TEST(SimEnv, DestroyingTheSimulationDestroysPendingCoroutines) {
  std::weak_ptr<int> probe;
  {
    SimEnv sim(1);
    auto owned = std::make_shared<int>(0);
    probe = owned;
    asio::co_spawn(
        sim.pick_executor(),
        [&sim, owned = std::move(owned)]() -> awaitable<void> {
          co_await sim.async_wait_for(1h, use_nothrow_awaitable);
        },
        asio::detached);
    sim.run_for(1s);
    EXPECT_FALSE(probe.expired());  // the coroutine waits, holding `owned`
  }
  EXPECT_TRUE(probe.expired());  // its frame died with the simulation
}

}  // namespace
}  // namespace meshrpc::runtime
