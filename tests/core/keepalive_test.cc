#include "meshrpc/core/keepalive.h"

#include <gtest/gtest.h>

#include <random>

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using Action = KeepaliveMonitor::Action;
using runtime::Duration;
using runtime::TimePoint;

TimePoint at(Duration d) { return TimePoint(d); }

TEST(KeepaliveMonitor, PingsAfterAQuietIntervalAndIsSatisfiedByAnyFrame) {
  KeepaliveMonitor monitor({.interval = 10s, .timeout = 5s}, at(0s));
  EXPECT_EQ(monitor.next_check(), at(10s));
  EXPECT_EQ(monitor.on_timer(at(9s)).action, Action::kNone);
  const auto ping = monitor.on_timer(at(10s));
  EXPECT_EQ(ping.action, Action::kSendPing);
  EXPECT_EQ(ping.next_check, at(15s));
  monitor.on_frame_received(at(12s));  // a DATA frame answers as well as the ack
  EXPECT_FALSE(monitor.ping_outstanding());
  EXPECT_EQ(monitor.on_timer(at(15s)).action, Action::kNone);
  EXPECT_EQ(monitor.next_check(), at(22s));
}

TEST(KeepaliveMonitor, DeclaresThePeerDeadWhenThePingGoesUnanswered) {
  KeepaliveMonitor monitor({.interval = 10s, .timeout = 5s}, at(0s));
  EXPECT_EQ(monitor.on_timer(at(10s)).action, Action::kSendPing);
  EXPECT_EQ(monitor.on_timer(at(14s)).action, Action::kNone);
  EXPECT_EQ(monitor.on_timer(at(15s)).action, Action::kPeerDead);
}

TEST(KeepaliveMonitor, TrafficPostponesThePing) {
  KeepaliveMonitor monitor({.interval = 10s, .timeout = 5s}, at(0s));
  monitor.on_frame_received(at(8s));
  const auto decision = monitor.on_timer(at(10s));
  EXPECT_EQ(decision.action, Action::kNone);
  EXPECT_EQ(decision.next_check, at(18s));
}

TEST(KeepaliveMonitor, EachPingCarriesAFreshPayload) {
  KeepaliveMonitor monitor({.interval = 1s, .timeout = 1s}, at(0s));
  const auto first = monitor.on_timer(at(1s));
  monitor.on_frame_received(at(1500ms));
  const auto second = monitor.on_timer(at(2500ms));
  ASSERT_EQ(first.action, Action::kSendPing);
  ASSERT_EQ(second.action, Action::kSendPing);
  EXPECT_NE(first.ping_payload, second.ping_payload);
}

// Property: a peer that answers each ping within the timeout is never declared dead; once
// it goes silent at t0, death is declared no later than t0 + interval + timeout.
TEST(KeepaliveMonitor, DetectsSilenceWithinIntervalPlusTimeoutAndNeverEarly) {
  std::mt19937_64 rng(2026);
  for (int trial = 0; trial < 500; ++trial) {
    const Duration interval =
        Duration(std::uniform_int_distribution<int64_t>(1, 20)(rng) * 1'000'000'000LL);
    const Duration timeout =
        Duration(std::uniform_int_distribution<int64_t>(1, 10)(rng) * 1'000'000'000LL);
    KeepaliveMonitor monitor({interval, timeout}, at(0s));
    const TimePoint silent_from =
        at(Duration(std::uniform_int_distribution<int64_t>(0, 300)(rng) * 1'000'000'000LL));
    TimePoint last_frame = at(0s);
    TimePoint now = at(0s);
    std::uniform_int_distribution<int64_t> gap_ms(0, 2 * interval.count() / 1'000'000);
    TimePoint next_frame = now + std::chrono::milliseconds(gap_ms(rng));
    bool dead = false;
    while (!dead) {
      TimePoint check = monitor.next_check();
      if (next_frame < check && next_frame < silent_from) {
        now = next_frame;
        monitor.on_frame_received(now);
        last_frame = now;
        next_frame = now + std::chrono::milliseconds(gap_ms(rng));
        continue;
      }
      now = check;
      const auto decision = monitor.on_timer(now);
      if (decision.action == Action::kPeerDead) {
        dead = true;
      } else if (decision.action == Action::kSendPing && now + timeout / 2 < silent_from) {
        next_frame = std::min(next_frame, now + timeout / 2);  // the ack, within the timeout
      }
    }
    ASSERT_GE(now, silent_from) << "declared dead while the peer answered, trial " << trial;
    ASSERT_LE(now, std::max(silent_from, last_frame) + interval + timeout) << "trial " << trial;
  }
}

}  // namespace
}  // namespace meshrpc::core
