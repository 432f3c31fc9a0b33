// Host faults of SimEnv: process crash and recovery from the host's factory, pause and
// resume, and per-host clock skew and drift.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <memory>
#include <vector>

#include "meshrpc/runtime/sim_env.h"

namespace meshrpc::runtime {
namespace {

using namespace std::chrono_literals;

// Counts its ticks (one per virtual second) into a counter that outlives it, and records
// its own destruction.
struct Ticker {
  Ticker(int* ticks, int* destroyed) : ticks(ticks), destroyed(destroyed) {}
  ~Ticker() { ++*destroyed; }
  int* ticks;
  int* destroyed;
};

awaitable<void> tick_forever(Env& env, std::shared_ptr<Ticker> ticker) {
  for (;;) {
    auto [ec] = co_await env.async_wait_for(1s, use_nothrow_awaitable);
    if (ec) co_return;
    ++*ticker->ticks;
  }
}

// A process that runs one ticker coroutine on its host.
class TickerProcess final : public SimProcess {
 public:
  TickerProcess(SimHost& host, int* ticks, int* destroyed) {
    asio::co_spawn(host.pick_executor(),
                   tick_forever(host, std::make_shared<Ticker>(ticks, destroyed)), asio::detached);
  }
};

TEST(SimHostFaults, CrashDestroysTheProcessAndItsCoroutinesAndRecoverRebuildsIt) {
  SimEnv sim(1);
  SimHost& host = sim.add_host("node");
  int ticks = 0;
  int destroyed = 0;
  host.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks, &destroyed); });
  EXPECT_EQ(host.incarnation(), 1u);
  sim.run_for(5500ms);
  EXPECT_EQ(ticks, 5);

  sim.fail_node(host);
  EXPECT_EQ(host.state(), SimHost::State::kFailed);
  EXPECT_EQ(host.process(), nullptr);
  EXPECT_EQ(destroyed, 1) << "the coroutine's frame (holding the ticker) must be gone";
  sim.run_for(10s);
  EXPECT_EQ(ticks, 5) << "a crashed host runs nothing";

  sim.recover_node(host);
  EXPECT_TRUE(host.is_up());
  EXPECT_EQ(host.incarnation(), 2u);
  ASSERT_NE(host.process(), nullptr);
  sim.run_for(3500ms);
  EXPECT_EQ(ticks, 8) << "the rebuilt process ticks again";
}

TEST(SimHostFaults, OtherHostsRunOnWhileOneIsFailed) {
  SimEnv sim(2);
  SimHost& a = sim.add_host("a");
  SimHost& b = sim.add_host("b");
  int ticks_a = 0, ticks_b = 0, destroyed = 0;
  a.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks_a, &destroyed); });
  b.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks_b, &destroyed); });
  sim.run_for(2500ms);
  sim.fail_node(a);
  sim.run_for(3s);
  EXPECT_EQ(ticks_a, 2);
  EXPECT_EQ(ticks_b, 5);
}

TEST(SimHostFaults, PausedHostRunsNothingThenCatchesUpInOrderOnResume) {
  SimEnv sim(3);
  SimHost& host = sim.add_host("node");
  int ticks = 0, destroyed = 0;
  host.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks, &destroyed); });
  sim.run_for(2500ms);
  ASSERT_EQ(ticks, 2);
  sim.pause_node(host);
  std::vector<int> order;
  asio::post(host.pick_executor(), [&] { order.push_back(1); });
  asio::post(host.pick_executor(), [&] { order.push_back(2); });
  sim.run_for(10s);
  EXPECT_EQ(ticks, 2) << "a paused host's timers wait";
  EXPECT_TRUE(order.empty()) << "a paused host's handlers wait";
  EXPECT_EQ(destroyed, 0) << "a pause loses nothing";

  sim.resume_node(host);
  sim.run_for(100ms);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(ticks, 3) << "the overdue timer fires once, late; the next is a second later";
  sim.run_for(1s);
  EXPECT_EQ(ticks, 4);
}

TEST(SimHostFaults, ClockOffsetAndDriftApplyToNowAndTimers) {
  SimEnv sim(4);
  SimHost& fast = sim.add_host("fast");
  SimHost& plain = sim.add_host("plain");
  fast.set_clock(5s, 0.01);  // 5 s ahead, running 1% fast
  EXPECT_EQ(fast.now() - plain.now(), 5s);
  sim.run_for(100s);
  EXPECT_EQ(fast.now() - plain.now(), 6s) << "1% of 100 s gained";

  // A 10 s timer on the fast host fires after 10/1.01 s of simulation time.
  const TimePoint start = sim.now();
  const TimePoint local_deadline = fast.now() + 10s;
  TimePoint fired_at{};
  TimePoint local_at_fire{};
  fast.async_wait_until(local_deadline, [&](error_code ec) {
    EXPECT_FALSE(ec);
    fired_at = sim.now();
    local_at_fire = fast.now();
  });
  sim.run();
  EXPECT_GE(local_at_fire, local_deadline);
  EXPECT_LT(fired_at - start, 10s);
  EXPECT_NEAR(std::chrono::duration<double>(fired_at - start).count(), 10 / 1.01, 1e-6);
}

TEST(SimHostFaults, ClockNeverMovesBackwards) {
  SimEnv sim(5);
  SimHost& host = sim.add_host("node");
  host.set_clock(10s, 0);
  const TimePoint before = host.now();
  host.set_clock(-10s, 0);
  EXPECT_GE(host.now(), before);
  EXPECT_THROW(host.set_clock(0s, 0.9), std::invalid_argument);
}

}  // namespace
}  // namespace meshrpc::runtime
