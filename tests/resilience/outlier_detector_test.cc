#include "meshrpc/resilience/outlier_detector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace meshrpc::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Reason = OutlierDetector::Reason;

std::vector<std::string> node_ids(int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back("n" + std::to_string(i));
  return ids;
}

// A detector over providers n0..n<count-1>, driven by hand in virtual time.
class OutlierDetectorTest : public ::testing::Test {
 protected:
  void list(int count) { detector_.set_providers(node_ids(count)); }

  void fail(const std::string& node_id, int times = 1) {
    for (int i = 0; i < times; ++i) detector_.record(node_id, true, now_);
  }
  void succeed(const std::string& node_id, int times = 1) {
    for (int i = 0; i < times; ++i) detector_.record(node_id, false, now_);
  }
  // Fails `node_id` until it is ejected (at most 10 failures).
  void fail_until_ejected(const std::string& node_id) {
    for (int i = 0; i < 10 && !detector_.is_ejected(node_id, now_); ++i) fail(node_id);
    ASSERT_TRUE(detector_.is_ejected(node_id, now_));
  }

  OutlierDetector detector_;
  runtime::TimePoint now_ = runtime::TimePoint{} + seconds(1000);
};

TEST_F(OutlierDetectorTest, FiveConsecutiveFailuresEject) {
  list(4);
  fail("n1", 4);
  EXPECT_FALSE(detector_.is_ejected("n1", now_));
  fail("n1");
  EXPECT_TRUE(detector_.is_ejected("n1", now_));
  EXPECT_THAT(detector_.ejected_node_ids(now_), ElementsAre("n1"));
  const auto transitions = detector_.take_transitions();
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].node_id, "n1");
  EXPECT_TRUE(transitions[0].ejected);
  EXPECT_EQ(transitions[0].reason, Reason::kConsecutiveFailures);
  EXPECT_EQ(transitions[0].ejection_time, seconds(30));
  EXPECT_EQ(transitions[0].times_ejected, 1u);
  EXPECT_EQ(detector_.stats().ejections, 1u);
  EXPECT_EQ(detector_.stats().consecutive_failure_ejections, 1u);
  EXPECT_THAT(detector_.take_transitions(), IsEmpty());
}

TEST_F(OutlierDetectorTest, ASuccessResetsTheRun) {
  list(4);
  fail("n0", 4);
  succeed("n0");
  fail("n0", 4);
  EXPECT_FALSE(detector_.is_ejected("n0", now_));
  fail("n0");
  EXPECT_TRUE(detector_.is_ejected("n0", now_));
}

TEST_F(OutlierDetectorTest, AnEjectedProviderReturnsAfterItsEjectionTime) {
  list(4);
  fail_until_ejected("n2");
  detector_.take_transitions();
  now_ += seconds(30) - milliseconds(1);
  EXPECT_TRUE(detector_.is_ejected("n2", now_));
  now_ += milliseconds(1);
  EXPECT_FALSE(detector_.is_ejected("n2", now_));
  const auto transitions = detector_.take_transitions();
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_FALSE(transitions[0].ejected);
  EXPECT_EQ(transitions[0].reason, Reason::kEjectionElapsed);
  EXPECT_EQ(detector_.stats().returns, 1u);
}

TEST_F(OutlierDetectorTest, AFailureOnProbationEjectsAtOnceForLonger) {
  list(4);
  fail_until_ejected("n0");
  std::vector<runtime::Duration> ejection_times;
  for (int round = 0; round < 12; ++round) {
    for (const auto& t : detector_.take_transitions()) {
      if (t.ejected) ejection_times.push_back(t.ejection_time);
    }
    // Back after exactly its ejection time, then one failure sends it out again.
    now_ += ejection_times.back();
    ASSERT_FALSE(detector_.is_ejected("n0", now_));
    fail("n0");
    ASSERT_TRUE(detector_.is_ejected("n0", now_)) << "round " << round;
  }
  for (const auto& t : detector_.take_transitions()) {
    if (t.ejected) ejection_times.push_back(t.ejection_time);
  }
  // 30, 60, 90 s ... capped at 300 s.
  ASSERT_EQ(ejection_times.size(), 13u);
  for (size_t i = 0; i < ejection_times.size(); ++i) {
    EXPECT_EQ(ejection_times[i], std::min<runtime::Duration>(seconds(30) * (i + 1), seconds(300)))
        << "ejection " << i + 1;
  }
  EXPECT_EQ(detector_.stats().probation_ejections, 12u);
}

TEST_F(OutlierDetectorTest, ASuccessOnProbationEndsIt) {
  list(4);
  fail_until_ejected("n0");
  now_ += seconds(30);
  succeed("n0");
  fail("n0", 4);
  EXPECT_FALSE(detector_.is_ejected("n0", now_));  // off probation: needs 5 in a row again
  fail("n0");
  EXPECT_TRUE(detector_.is_ejected("n0", now_));
}

TEST_F(OutlierDetectorTest, TheEjectionTimeShrinksAgainWhileTheProviderIsHealthy) {
  list(4);
  fail_until_ejected("n0");  // 30 s
  now_ += seconds(30);
  fail("n0");  // on probation: 60 s
  now_ += seconds(60);
  succeed("n0");
  // Two evaluation intervals healthy: the multiplier falls from 2 to 0.
  for (int i = 0; i < 2; ++i) {
    now_ += seconds(10);
    succeed("n0");
  }
  detector_.take_transitions();
  fail_until_ejected("n0");
  const auto transitions = detector_.take_transitions();
  ASSERT_FALSE(transitions.empty());
  EXPECT_EQ(transitions.back().ejection_time, seconds(30));
}

TEST_F(OutlierDetectorTest, TenFailingProvidersAtMostOneEjectedAtOnce) {
  list(10);
  EXPECT_EQ(detector_.max_ejected(), 1u);
  for (int round = 0; round < 10; ++round) {
    for (const std::string& id : node_ids(10)) {
      fail(id);
      ASSERT_LE(detector_.ejected_count(now_), 1u);
    }
  }
  EXPECT_EQ(detector_.ejected_count(now_), 1u);
  EXPECT_GT(detector_.stats().ejections_refused_by_cap, 0u);
}

TEST_F(OutlierDetectorTest, TheCapIsTenPercentButAtLeastOneAndNoneForALoneProvider) {
  list(1);
  EXPECT_EQ(detector_.max_ejected(), 0u);
  fail("n0", 20);
  EXPECT_FALSE(detector_.is_ejected("n0", now_));
  list(2);
  EXPECT_EQ(detector_.max_ejected(), 1u);
  list(19);
  EXPECT_EQ(detector_.max_ejected(), 1u);
  list(20);
  EXPECT_EQ(detector_.max_ejected(), 2u);
  list(100);
  EXPECT_EQ(detector_.max_ejected(), 10u);
}

TEST_F(OutlierDetectorTest, ZeroPercentTurnsEjectionOff) {
  OutlierDetectionOptions options;
  options.max_ejection_percent = 0;
  OutlierDetector detector(options);
  detector.set_providers(node_ids(10));
  for (int i = 0; i < 20; ++i) detector.record("n0", true, now_);
  EXPECT_FALSE(detector.is_ejected("n0", now_));
}

TEST_F(OutlierDetectorTest, ARefusedEjectionHappensOnceThereIsRoom) {
  list(4);  // one at a time
  fail_until_ejected("n0");
  fail("n1", 5);
  EXPECT_FALSE(detector_.is_ejected("n1", now_));
  now_ += seconds(30);  // n0 returns
  EXPECT_FALSE(detector_.is_ejected("n0", now_));
  fail("n1");
  EXPECT_TRUE(detector_.is_ejected("n1", now_));
}

TEST_F(OutlierDetectorTest, ProvidersLeavingTheListAreForgotten) {
  list(4);
  fail_until_ejected("n3");
  fail("n2", 4);
  detector_.set_providers({"n0", "n1", "n2"});
  EXPECT_EQ(detector_.ejected_count(now_), 0u);
  EXPECT_FALSE(detector_.is_ejected("n3", now_));
  fail("n3", 10);  // no longer listed: ignored
  EXPECT_FALSE(detector_.is_ejected("n3", now_));
  // Coming back, it starts with no history (and n2 kept its run of 4).
  detector_.set_providers(node_ids(4));
  fail("n3", 4);
  EXPECT_FALSE(detector_.is_ejected("n3", now_));
  fail("n2");
  EXPECT_TRUE(detector_.is_ejected("n2", now_));
}

TEST_F(OutlierDetectorTest, ASuccessRateOutlierIsEjectedAtTheInterval) {
  OutlierDetectionOptions options;
  options.consecutive_failures = 0;  // only the success-rate check
  options.max_ejection_percent = 50;
  OutlierDetector detector(options);
  detector.set_providers(node_ids(6));
  detector.record("n0", false, now_);  // starts the interval clock
  // n0..n4 fail 1 call in 100; n5 fails every third call.
  for (int i = 0; i < 150; ++i) {
    for (int n = 0; n < 5; ++n) detector.record("n" + std::to_string(n), i % 100 == 7, now_);
    detector.record("n5", i % 3 == 0, now_);
  }
  EXPECT_FALSE(detector.is_ejected("n5", now_));  // not before the evaluation
  const runtime::TimePoint evaluation = now_ + seconds(10);
  EXPECT_TRUE(detector.is_ejected("n5", evaluation));
  EXPECT_THAT(detector.ejected_node_ids(evaluation), ElementsAre("n5"));
  EXPECT_EQ(detector.stats().success_rate_ejections, 1u);
  const auto transitions = detector.take_transitions();
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].reason, Reason::kSuccessRate);
}

TEST_F(OutlierDetectorTest, NoSuccessRateCheckWithFewerThanFiveBusyProviders) {
  OutlierDetectionOptions options;
  options.consecutive_failures = 0;
  options.max_ejection_percent = 50;
  OutlierDetector detector(options);
  detector.set_providers(node_ids(6));
  detector.record("n0", false, now_);
  for (int i = 0; i < 150; ++i) {
    for (int n = 0; n < 3; ++n) detector.record("n" + std::to_string(n), false, now_);
    detector.record("n5", i % 3 == 0, now_);
  }
  for (int i = 0; i < 99; ++i) detector.record("n3", false, now_);  // one short of the volume
  EXPECT_THAT(detector.ejected_node_ids(now_ + seconds(10)), IsEmpty());
}

TEST_F(OutlierDetectorTest, OutcomesOfAnEjectedProviderAreIgnored) {
  list(4);
  fail_until_ejected("n0");
  succeed("n0", 3);
  fail("n0", 3);
  EXPECT_TRUE(detector_.is_ejected("n0", now_));
  EXPECT_EQ(detector_.stats().ejections, 1u);
}

TEST_F(OutlierDetectorTest, InvalidOptionsThrow) {
  OutlierDetectionOptions zero_interval;
  zero_interval.interval = seconds(0);
  EXPECT_THROW(OutlierDetector{zero_interval}, std::invalid_argument);
  OutlierDetectionOptions zero_ejection;
  zero_ejection.base_ejection_time = seconds(0);
  EXPECT_THROW(OutlierDetector{zero_ejection}, std::invalid_argument);
  OutlierDetectionOptions percent;
  percent.max_ejection_percent = 101;
  EXPECT_THROW(OutlierDetector{percent}, std::invalid_argument);
  OutlierDetectionOptions factor;
  factor.success_rate_stdev_factor = -1;
  EXPECT_THROW(OutlierDetector{factor}, std::invalid_argument);
  EXPECT_THAT(OutlierDetector{}.take_transitions(), IsEmpty());
}

}  // namespace
}  // namespace meshrpc::resilience
