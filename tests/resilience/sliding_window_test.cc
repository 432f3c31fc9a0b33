#include "meshrpc/resilience/sliding_window.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

namespace meshrpc::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(SlidingWindowCounter, SumsEventsInsideTheWindow) {
  SlidingWindowCounter counter(seconds(10));
  runtime::TimePoint now{};
  counter.add(now, 3);
  now += seconds(4);
  counter.add(now, 2);
  EXPECT_EQ(counter.sum(now), 5);
}

TEST(SlidingWindowCounter, ForgetsAnEventBetweenNineTenthsAndOneWindowLater) {
  SlidingWindowCounter counter(seconds(10));
  runtime::TimePoint start{};
  counter.add(start + milliseconds(500));  // in bucket [0 s, 1 s)
  EXPECT_EQ(counter.sum(start + milliseconds(9999)), 1);
  EXPECT_EQ(counter.sum(start + seconds(10)), 0);
}

TEST(SlidingWindowCounter, EmptiesCompletelyAfterALongQuietGap) {
  SlidingWindowCounter counter(seconds(10));
  runtime::TimePoint now{};
  for (int i = 0; i < 10; ++i) counter.add(now + seconds(i), 7);
  EXPECT_EQ(counter.sum(now + seconds(9)), 70);
  EXPECT_EQ(counter.sum(now + std::chrono::hours(1000)), 0);
}

TEST(SlidingWindowCounter, TreatsTimeGoingBackwardsAsTheLatestTime) {
  SlidingWindowCounter counter(seconds(10));
  runtime::TimePoint now = runtime::TimePoint{} + seconds(100);
  counter.add(now);
  counter.add(now - seconds(50));  // lands in the current bucket
  EXPECT_EQ(counter.sum(now), 2);
  EXPECT_EQ(counter.sum(now + seconds(10)), 0);
}

TEST(SlidingWindowCounter, WorksBeforeTheEpoch) {
  SlidingWindowCounter counter(seconds(10));
  runtime::TimePoint now = runtime::TimePoint{} - seconds(5);
  counter.add(now);
  EXPECT_EQ(counter.sum(now + seconds(9)), 1);
  EXPECT_EQ(counter.sum(now + seconds(11)), 0);
}

TEST(SlidingWindowCounter, ClearForgetsEverything) {
  SlidingWindowCounter counter(seconds(10));
  counter.add(runtime::TimePoint{}, 4);
  counter.clear();
  EXPECT_EQ(counter.sum(runtime::TimePoint{}), 0);
}

TEST(SlidingWindowCounter, RejectsAWindowShorterThanItsBuckets) {
  EXPECT_THROW(SlidingWindowCounter(runtime::Duration(9)), std::invalid_argument);
  EXPECT_THROW(SlidingWindowCounter(runtime::Duration(-1)), std::invalid_argument);
}

}  // namespace
}  // namespace meshrpc::resilience
