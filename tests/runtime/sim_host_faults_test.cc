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
  int ticks = 0;
  int destroyed = 0;  // before the SimEnv: its teardown destroys what a frame still holds
  SimEnv sim(1);
  SimHost& host = sim.add_host("node");
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
  int ticks_a = 0, ticks_b = 0, destroyed = 0;
  SimEnv sim(2);
  SimHost& a = sim.add_host("a");
  SimHost& b = sim.add_host("b");
  a.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks_a, &destroyed); });
  b.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks_b, &destroyed); });
  sim.run_for(2500ms);
  sim.fail_node(a);
  sim.run_for(3s);
  EXPECT_EQ(ticks_a, 2);
  EXPECT_EQ(ticks_b, 5);
}

TEST(SimHostFaults, PausedHostRunsNothingThenCatchesUpInOrderOnResume) {
  int ticks = 0, destroyed = 0;
  std::vector<int> order;
  SimEnv sim(3);
  SimHost& host = sim.add_host("node");
  host.start([&](SimHost& h) { return std::make_unique<TickerProcess>(h, &ticks, &destroyed); });
  sim.run_for(2500ms);
  ASSERT_EQ(ticks, 2);
  sim.pause_node(host);
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

// On start, records what the previous incarnation left on disk; then writes one file durably
// (written, synced, its directory synced) and one only into the page cache.
class DiskProcess final : public SimProcess {
 public:
  DiskProcess(SimHost& host, std::vector<std::string>& seen) {
    Disk& disk = host.disk();
    seen.push_back(content(disk, "synced") + " " + content(disk, "unsynced"));
    const std::string mark = "written-by-" + std::to_string(host.incarnation());
    EXPECT_TRUE(write_file_atomically(disk, "synced", mark).ok());
    auto file = disk.open("unsynced", OpenMode::create_or_truncate());
    EXPECT_TRUE(file.ok());
    if (file.ok()) {
      EXPECT_TRUE((*file)->append(mark).ok());
    }
  }

 private:
  static std::string content(Disk& disk, std::string_view path) {
    auto bytes = read_file(disk, path);
    return bytes.ok() ? *bytes : "(none)";
  }
};

TEST(SimHostFaults, RecoverNodeKeepsOnlyWhatWasSynced) {
  std::vector<std::string> seen;
  SimEnv sim(6);
  SimHost& host = sim.add_host("node");
  host.start([&](SimHost& h) { return std::make_unique<DiskProcess>(h, seen); });
  sim.run_for(1s);
  // Before the crash both files are readable: the page cache has the unsynced one.
  EXPECT_EQ(*read_file(host.disk(), "unsynced"), "written-by-1");

  sim.fail_node(host);
  sim.recover_node(host);
  sim.run_for(1s);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "(none) (none)");
  EXPECT_EQ(seen[1], "written-by-1 (none)") << "the crash must lose the unsynced file";
}

}  // namespace
}  // namespace meshrpc::runtime
