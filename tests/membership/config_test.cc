#include "meshrpc/membership/config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace meshrpc::membership {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(SwimConfig, LanPresetIsMemberlistDefaultLanConfig) {
  const SwimConfig config = SwimConfig::lan();
  EXPECT_EQ(config.probe_interval, seconds(1));
  EXPECT_EQ(config.probe_timeout, milliseconds(500));
  EXPECT_EQ(config.indirect_checks, 3u);
  EXPECT_EQ(config.suspicion_mult, 4u);
  EXPECT_EQ(config.gossip_interval, milliseconds(200));
  EXPECT_EQ(config.gossip_nodes, 3u);
  EXPECT_EQ(config.retransmit_mult, 4u);
  EXPECT_EQ(config.push_pull_interval, seconds(30));
  EXPECT_EQ(config.reconnect_interval, seconds(30));
  EXPECT_EQ(config.reconnect_timeout, std::chrono::hours(24));
}

TEST(SwimConfig, WanAndLocalPresetsChangeTheirTimings) {
  const SwimConfig wan = SwimConfig::wan();
  EXPECT_EQ(wan.probe_interval, seconds(5));
  EXPECT_EQ(wan.probe_timeout, seconds(3));
  EXPECT_EQ(wan.suspicion_mult, 6u);
  const SwimConfig local = SwimConfig::local();
  EXPECT_EQ(local.probe_timeout, milliseconds(200));
  EXPECT_EQ(local.indirect_checks, 1u);
  EXPECT_EQ(local.suspicion_mult, 3u);
  EXPECT_EQ(wan.reconnect_interval, seconds(60));
  EXPECT_EQ(local.reconnect_interval, seconds(10));
  EXPECT_EQ(wan.reconnect_timeout, std::chrono::hours(24));
  EXPECT_EQ(local.reconnect_timeout, std::chrono::hours(24));
}

TEST(PushPullIntervalFor, IsTheIntervalUpTo32ThenGrowsByOneIntervalPerDoubling) {
  const SwimConfig config = SwimConfig::lan();  // 30 s
  struct Case {
    size_t n;
    seconds interval;
  };
  for (const Case& c :
       {Case{0, seconds(30)}, Case{1, seconds(30)}, Case{32, seconds(30)}, Case{33, seconds(60)},
        Case{64, seconds(60)}, Case{65, seconds(90)}, Case{1000, seconds(180)}}) {
    EXPECT_EQ(push_pull_interval_for(config, c.n), c.interval) << "n=" << c.n;
  }
  EXPECT_EQ(push_pull_interval_for(SwimConfig::wan(), 1000), seconds(360));
  SwimConfig never = config;
  never.push_pull_interval = seconds(0);
  EXPECT_EQ(push_pull_interval_for(never, 1000), seconds(0));
}

TEST(RetransmitLimit, IsMultTimesCeilLog10OfNPlusOne) {
  const SwimConfig config = SwimConfig::lan();
  struct Case {
    size_t n;
    uint32_t limit;
  };
  for (const Case& c : {Case{0, 0}, Case{1, 4}, Case{9, 4}, Case{10, 8}, Case{99, 8}, Case{100, 12},
                        Case{1000, 16}}) {
    EXPECT_EQ(retransmit_limit(config, c.n), c.limit) << "n=" << c.n;
  }
  EXPECT_EQ(retransmit_limit(SwimConfig::local(), 10), 4u);
}

TEST(SuspicionTimeoutMin, IsMultTimesLog10OfNAtLeastOneTimesInterval) {
  const SwimConfig config = SwimConfig::lan();
  EXPECT_EQ(suspicion_timeout_min(config, 0, seconds(1)), seconds(4));
  EXPECT_EQ(suspicion_timeout_min(config, 1, seconds(1)), seconds(4));
  EXPECT_EQ(suspicion_timeout_min(config, 10, seconds(1)), seconds(4));
  EXPECT_EQ(suspicion_timeout_min(config, 50, seconds(1)), nanoseconds(6'795'880'017));
  EXPECT_EQ(suspicion_timeout_min(config, 100, seconds(1)), seconds(8));
  EXPECT_EQ(suspicion_timeout_min(config, 1000, seconds(1)), seconds(12));
  EXPECT_EQ(suspicion_timeout_min(SwimConfig::wan(), 1000, seconds(5)), seconds(90));
}

TEST(ExpectedConfirmations, IsMultMinusTwoUnlessTooFewMembers) {
  const SwimConfig lan = SwimConfig::lan();  // k = 4 - 2 = 2
  EXPECT_EQ(expected_confirmations(lan, 0), 0u);
  EXPECT_EQ(expected_confirmations(lan, 1), 0u);
  EXPECT_EQ(expected_confirmations(lan, 3), 0u);  // 3 - 2 < 2
  EXPECT_EQ(expected_confirmations(lan, 4), 2u);
  EXPECT_EQ(expected_confirmations(lan, 1000), 2u);
  const SwimConfig local = SwimConfig::local();  // k = 3 - 2 = 1
  EXPECT_EQ(expected_confirmations(local, 2), 0u);
  EXPECT_EQ(expected_confirmations(local, 3), 1u);
  SwimConfig two = lan;
  two.suspicion_mult = 2;
  EXPECT_EQ(expected_confirmations(two, 100), 0u);
}

TEST(SuspicionTimeout, StartsAtMaxAndShrinksLogarithmicallyToMin) {
  const SwimConfig config = SwimConfig::lan();  // min 4 s at n = 10, max 24 s, k = 2
  EXPECT_EQ(suspicion_timeout(config, 10, 0, seconds(1)), seconds(24));
  // 24 s - 20 s x log(2) / log(3)
  EXPECT_EQ(suspicion_timeout(config, 10, 1, seconds(1)), nanoseconds(11'381'404'929));
  EXPECT_EQ(suspicion_timeout(config, 10, 2, seconds(1)), seconds(4));
  EXPECT_EQ(suspicion_timeout(config, 10, 3, seconds(1)), seconds(4));  // never below min
  // n = 100: min 8 s, max 48 s.
  EXPECT_EQ(suspicion_timeout(config, 100, 0, seconds(1)), seconds(48));
  EXPECT_EQ(suspicion_timeout(config, 100, 1, seconds(1)), nanoseconds(22'762'809'858));
}

TEST(SuspicionTimeout, IsTheMinimumWhenTooFewMembersToConfirm) {
  const SwimConfig config = SwimConfig::lan();
  EXPECT_EQ(suspicion_timeout(config, 3, 0, seconds(1)), seconds(4));
  EXPECT_EQ(suspicion_timeout(config, 2, 0, seconds(1)), seconds(4));
  const SwimConfig local = SwimConfig::local();  // min 3 s at n = 10, k = 1
  EXPECT_EQ(suspicion_timeout(local, 10, 0, seconds(1)), seconds(18));
  EXPECT_EQ(suspicion_timeout(local, 10, 1, seconds(1)), seconds(3));
}

}  // namespace
}  // namespace meshrpc::membership
