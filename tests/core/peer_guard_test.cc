#include "meshrpc/core/peer_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Violation = PeerGuard::Violation;

const runtime::TimePoint kStart = runtime::TimePoint{} + 1000s;

TEST(PeerGuard, AllowsABurstOfPingsThenTheSteadyRate) {
  PeerLimits limits;
  limits.pings = {.per_second = 2, .burst = 5};
  PeerGuard guard(limits, kStart);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(guard.on_ping(kStart), Violation::kNone) << i;
  EXPECT_EQ(guard.on_ping(kStart), Violation::kPingFlood);
  EXPECT_THAT(guard.describe(Violation::kPingFlood),
              HasSubstr("6 PINGs exceed the limit of 5 at once, then 2/s"));
}

TEST(PeerGuard, RefillsAtTheSteadyRateUpToTheBurst) {
  PeerLimits limits;
  limits.settings = {.per_second = 2, .burst = 3};
  PeerGuard guard(limits, kStart);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(guard.on_settings(kStart), Violation::kNone);
  // Half a second buys one more.
  EXPECT_EQ(guard.on_settings(kStart + 500ms), Violation::kNone);
  EXPECT_EQ(guard.on_settings(kStart + 500ms), Violation::kSettingsFlood);
  // A long quiet refills only up to the burst.
  const runtime::TimePoint later = kStart + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(guard.on_settings(later), Violation::kNone);
  EXPECT_EQ(guard.on_settings(later), Violation::kSettingsFlood);
}

TEST(PeerGuard, ASenderAtTheSteadyRateIsNeverCutOff) {
  PeerLimits limits;
  limits.cancels = {.per_second = 100, .burst = 10};
  PeerGuard guard(limits, kStart);
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(guard.on_cancel(kStart + i * 10ms), Violation::kNone) << i;
  }
}

TEST(PeerGuard, ZeroRateAndBurstMeanUnlimited) {
  PeerLimits limits;
  limits.pings = {};
  PeerGuard guard(limits, kStart);
  for (int i = 0; i < 100'000; ++i) ASSERT_EQ(guard.on_ping(kStart), Violation::kNone);
}

TEST(PeerGuard, ASlowSenderWithAFrameHalfSentIsCutOffAtTheEndOfTheWindow) {
  PeerLimits limits;
  limits.min_receive_bytes_per_second = 100;
  limits.slow_sender_window = 10s;
  PeerGuard guard(limits, kStart);
  EXPECT_EQ(guard.next_check(), kStart + 10s);
  guard.on_bytes_received(999);  // under 100 B/s x 10 s
  EXPECT_EQ(guard.on_timer(kStart + 10s, /*frame_incomplete=*/true, 0, 0), Violation::kSlowSender);
  EXPECT_THAT(guard.describe(Violation::kSlowSender),
              HasSubstr("999 bytes in 10 s with a frame half-sent"));
}

TEST(PeerGuard, ASlowWindowWithNoFrameHalfSentIsJustQuiet) {
  PeerLimits limits;
  limits.min_receive_bytes_per_second = 100;
  limits.slow_sender_window = 10s;
  PeerGuard guard(limits, kStart);
  EXPECT_EQ(guard.on_timer(kStart + 10s, /*frame_incomplete=*/false, 0, 0), Violation::kNone);
  // Each window is judged on its own bytes.
  guard.on_bytes_received(1000);
  EXPECT_EQ(guard.on_timer(kStart + 20s, true, 0, 0), Violation::kNone);
  guard.on_bytes_received(10);
  EXPECT_EQ(guard.on_timer(kStart + 30s, true, 0, 0), Violation::kSlowSender);
}

TEST(PeerGuard, AConnectionWithNoStreamsIsIdleAfterTheTimeout) {
  PeerLimits limits;
  limits.min_receive_bytes_per_second = 0;
  limits.idle_timeout = 60s;
  PeerGuard guard(limits, kStart);
  EXPECT_EQ(guard.next_check(), kStart + 60s);
  EXPECT_EQ(guard.on_timer(kStart + 59s, false, 0, 0), Violation::kNone);
  EXPECT_EQ(guard.on_timer(kStart + 60s, false, 0, 0), Violation::kIdle);
  EXPECT_THAT(guard.describe(Violation::kIdle), HasSubstr("no stream for 60 s"));
}

TEST(PeerGuard, OpenOrRecentStreamsKeepAConnectionFromIdling) {
  PeerLimits limits;
  limits.min_receive_bytes_per_second = 0;
  limits.idle_timeout = 60s;
  PeerGuard guard(limits, kStart);
  // A stream open at the check: in use.
  EXPECT_EQ(guard.on_timer(kStart + 60s, false, 1, 1), Violation::kNone);
  EXPECT_EQ(guard.next_check(), kStart + 120s);
  // Streams opened and finished between two checks count as use too.
  EXPECT_EQ(guard.on_timer(kStart + 120s, false, 0, 5), Violation::kNone);
  EXPECT_EQ(guard.on_timer(kStart + 179s, false, 0, 5), Violation::kNone);
  EXPECT_EQ(guard.on_timer(kStart + 180s, false, 0, 5), Violation::kIdle);
}

TEST(PeerGuard, NothingToCheckWhenTimeLimitsAreOff) {
  PeerLimits limits;
  limits.min_receive_bytes_per_second = 0;
  limits.idle_timeout = 0s;
  PeerGuard guard(limits, kStart);
  EXPECT_EQ(guard.next_check(), runtime::kInfiniteFuture);
}

TEST(PeerGuard, EveryViolationHasALabelAndADescription) {
  PeerGuard guard(PeerLimits{}, kStart);
  for (size_t i = 1; i < PeerGuard::kViolationCount; ++i) {
    const auto violation = static_cast<Violation>(i);
    EXPECT_FALSE(PeerGuard::label(violation).empty()) << i;
    EXPECT_FALSE(guard.describe(violation).empty()) << i;
  }
  EXPECT_EQ(PeerGuard::label(Violation::kCancelFlood), "cancel_flood");
}

}  // namespace
}  // namespace meshrpc::core
