#include "meshrpc/base/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace meshrpc {
namespace {

constexpr int kThreads = 4;
constexpr int kOpsPerThread = 100'000;

// Runs body(thread_index) on kThreads threads. Each starts only once all have been
// scheduled, so the bodies overlap (a plain "go" flag lets early threads finish first).
template <typename Body>
void run_concurrently(Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ready, &body, t] {
      ready.fetch_add(1, std::memory_order_acq_rel);
      while (ready.load(std::memory_order_acquire) < kThreads) std::this_thread::yield();
      body(t);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST(ThreadShard, IndexIsStablePerThreadAndDiffersAcrossThreads) {
  uint32_t mine = thread_shard_index();
  EXPECT_EQ(thread_shard_index(), mine);
  uint32_t other = 0;
  std::thread([&other] { other = thread_shard_index(); }).join();
  EXPECT_NE(other, mine);
  EXPECT_LE(other, kMaxThreadShardIndex);
}

TEST(Counter, StartsAtZeroAndAdds) {
  Counter counter;
  EXPECT_EQ(counter.value(), 0u);
  counter.increment();
  counter.add(41);
  EXPECT_EQ(counter.value(), 42u);
}

TEST(Counter, ExactUnderConcurrentIncrements) {
  Counter counter;
  run_concurrently([&counter](int) {
    for (int i = 0; i < kOpsPerThread; ++i) counter.increment();
  });
  EXPECT_EQ(counter.value(), uint64_t{kThreads} * kOpsPerThread);
}

TEST(Counter, ValueReadDuringAddsIsMonotonic) {
  Counter counter;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load(std::memory_order_acquire)) {
      uint64_t now = counter.value();
      ASSERT_GE(now, last);
      last = now;
    }
  });
  run_concurrently([&counter](int) {
    for (int i = 0; i < kOpsPerThread; ++i) counter.add(3);
  });
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(counter.value(), uint64_t{3} * kThreads * kOpsPerThread);
}

TEST(Gauge, SetAddSub) {
  Gauge gauge;
  EXPECT_EQ(gauge.value(), 0);
  gauge.add(5);
  gauge.sub(8);
  EXPECT_EQ(gauge.value(), -3);
  gauge.set(100);
  EXPECT_EQ(gauge.value(), 100);
}

TEST(Gauge, ExactUnderConcurrentAddAndSub) {
  Gauge gauge;
  gauge.set(7);
  run_concurrently([&gauge](int t) {
    for (int i = 0; i < kOpsPerThread; ++i) {
      if (t % 2 == 0) {
        gauge.add(2);
      } else {
        gauge.sub(1);
      }
    }
  });
  EXPECT_EQ(gauge.value(), 7 + (kThreads / 2) * int64_t{kOpsPerThread});
}

TEST(HistogramBuckets, SmallValuesAreExact) {
  for (uint64_t v = 0; v < 16; ++v) {
    size_t index = histogram_bucket_index(v);
    EXPECT_EQ(histogram_bucket_lower_bound(index), v);
    EXPECT_EQ(histogram_bucket_upper_bound(index), v);
  }
}

TEST(HistogramBuckets, BoundsTileTheRangeContiguously) {
  EXPECT_EQ(histogram_bucket_lower_bound(0), 0u);
  for (size_t i = 0; i + 1 < kHistogramBucketCount; ++i) {
    ASSERT_EQ(histogram_bucket_upper_bound(i) + 1, histogram_bucket_lower_bound(i + 1)) << i;
    ASSERT_EQ(histogram_bucket_index(histogram_bucket_lower_bound(i)), i);
    ASSERT_EQ(histogram_bucket_index(histogram_bucket_upper_bound(i)), i);
  }
  EXPECT_EQ(histogram_bucket_upper_bound(kHistogramOverflowBucket),
            std::numeric_limits<uint64_t>::max());
}

TEST(HistogramBuckets, WidthIsAtMostAnEighthOfLowerBound) {
  for (size_t i = 0; i < kHistogramOverflowBucket; ++i) {
    uint64_t low = histogram_bucket_lower_bound(i);
    uint64_t width = histogram_bucket_upper_bound(i) - low + 1;
    if (low < 8) {
      ASSERT_EQ(width, 1u) << "bucket " << i;
    } else {
      ASSERT_LE(width * 8, low) << "bucket " << i << " low " << low << " width " << width;
    }
  }
}

TEST(HistogramBuckets, CoverAtLeastTwoToThe44) {
  EXPECT_GE(kHistogramMaxTracked, uint64_t{1} << 44);
  EXPECT_LT(histogram_bucket_index(uint64_t{1} << 44), kHistogramOverflowBucket);
  EXPECT_LT(histogram_bucket_index(kHistogramMaxTracked), kHistogramOverflowBucket);
  EXPECT_EQ(histogram_bucket_index(kHistogramMaxTracked + 1), kHistogramOverflowBucket);
  EXPECT_EQ(histogram_bucket_index(std::numeric_limits<uint64_t>::max()), kHistogramOverflowBucket);
}

TEST(Histogram, EmptySnapshotIsAllZero) {
  Histogram histogram;
  HistogramSnapshot snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.count, 0u);
  EXPECT_EQ(snapshot.sum, 0u);
  EXPECT_EQ(snapshot.min, 0u);
  EXPECT_EQ(snapshot.max, 0u);
  EXPECT_EQ(snapshot.percentile(0.5), 0u);
  int visited = 0;
  snapshot.for_each_bucket([&visited](HistogramBucket) { ++visited; });
  EXPECT_EQ(visited, 0);
}

TEST(Histogram, CountSumMinMaxAreExact) {
  Histogram histogram;
  for (uint64_t v : {1000u, 7u, 123456789u, 0u, 42u}) histogram.record(v);
  HistogramSnapshot snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.count, 5u);
  EXPECT_EQ(snapshot.sum, 1000u + 7u + 123456789u + 0u + 42u);
  EXPECT_EQ(snapshot.min, 0u);
  EXPECT_EQ(snapshot.max, 123456789u);
  EXPECT_EQ(snapshot.percentile(0.0), 0u);
  EXPECT_EQ(snapshot.percentile(1.0), 123456789u);
}

TEST(Histogram, SingleValueIsEveryPercentile) {
  Histogram histogram;
  histogram.record(987654);
  HistogramSnapshot snapshot = histogram.snapshot();
  for (double q : {0.0, 0.01, 0.5, 0.99, 1.0}) EXPECT_EQ(snapshot.percentile(q), 987654u) << q;
}

// Relative error of an estimate against the exact nearest-rank percentile of `sorted`.
double relative_error(const std::vector<uint64_t>& sorted, double q, uint64_t estimate) {
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  uint64_t exact = sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
  return std::abs(static_cast<double>(estimate) - static_cast<double>(exact)) /
         static_cast<double>(std::max<uint64_t>(exact, 1));
}

void expect_percentiles_within_bound(std::vector<uint64_t> values) {
  Histogram histogram;
  for (uint64_t v : values) histogram.record(v);
  std::sort(values.begin(), values.end());
  HistogramSnapshot snapshot = histogram.snapshot();
  ASSERT_EQ(snapshot.count, values.size());
  EXPECT_EQ(snapshot.min, values.front());
  EXPECT_EQ(snapshot.max, values.back());
  for (double q : {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0}) {
    // The midpoint of a bucket is within half its width (1/16) of any value in it.
    EXPECT_LE(relative_error(values, q, snapshot.percentile(q)), 0.0625) << "q=" << q;
  }
}

TEST(Histogram, PercentilesOfUniformDistribution) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint64_t> latency_ns(1'000, 5'000'000);
  std::vector<uint64_t> values(50'000);
  for (uint64_t& v : values) v = latency_ns(rng);
  expect_percentiles_within_bound(std::move(values));
}

TEST(Histogram, PercentilesOfLogNormalDistribution) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> latency_ns(std::log(200'000.0), 1.5);
  std::vector<uint64_t> values(50'000);
  for (uint64_t& v : values) v = static_cast<uint64_t>(latency_ns(rng));
  expect_percentiles_within_bound(std::move(values));
}

TEST(Histogram, PercentilesOfSequence) {
  std::vector<uint64_t> values;
  for (uint64_t v = 1; v <= 10'000; ++v) values.push_back(v);
  expect_percentiles_within_bound(values);

  Histogram histogram;
  for (uint64_t v : values) histogram.record(v);
  HistogramSnapshot snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.percentile(0.0005), 5u);  // small values are exact
  EXPECT_NEAR(static_cast<double>(snapshot.percentile(0.5)), 5000.0, 5000.0 * 0.0625);
  EXPECT_NEAR(static_cast<double>(snapshot.percentile(0.99)), 9900.0, 9900.0 * 0.0625);
}

TEST(Histogram, OverflowBucketCountsHugeValues) {
  Histogram histogram;
  histogram.record(10);
  histogram.record(kHistogramMaxTracked + 1);
  histogram.record(std::numeric_limits<uint64_t>::max() / 2);
  HistogramSnapshot snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.count, 3u);
  EXPECT_EQ(snapshot.bucket_counts[kHistogramOverflowBucket], 2u);
  EXPECT_EQ(snapshot.max, std::numeric_limits<uint64_t>::max() / 2);
  EXPECT_EQ(snapshot.percentile(0.9), snapshot.max);  // overflow reports max
  EXPECT_EQ(snapshot.percentile(0.1), 10u);
}

TEST(Histogram, BucketsAreCumulativeAndEndAtCount) {
  Histogram histogram;
  for (uint64_t v : {3u, 3u, 100u, 5000u, 5001u}) histogram.record(v);
  histogram.record(std::numeric_limits<uint64_t>::max());
  std::vector<HistogramBucket> buckets;
  histogram.snapshot().for_each_bucket([&buckets](HistogramBucket b) { buckets.push_back(b); });

  ASSERT_EQ(buckets.size(), 4u);  // 5000 and 5001 share a bucket
  EXPECT_EQ(buckets[0].upper_bound, 3u);
  EXPECT_EQ(buckets[0].cumulative_count, 2u);
  EXPECT_EQ(buckets[1].upper_bound, histogram_bucket_upper_bound(histogram_bucket_index(100)));
  EXPECT_EQ(buckets[1].cumulative_count, 3u);
  EXPECT_GE(buckets[2].upper_bound, 5001u);
  EXPECT_EQ(buckets[2].cumulative_count, 5u);
  EXPECT_EQ(buckets[3].upper_bound, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(buckets[3].cumulative_count, 6u);
}

TEST(Histogram, ExactAfterConcurrentRecords) {
  auto histogram = std::make_unique<Histogram>();
  run_concurrently([&histogram](int t) {
    for (int i = 0; i < kOpsPerThread; ++i) histogram->record(uint64_t(t) * kOpsPerThread + i);
  });
  HistogramSnapshot snapshot = histogram->snapshot();
  constexpr uint64_t kTotal = uint64_t{kThreads} * kOpsPerThread;
  EXPECT_EQ(snapshot.count, kTotal);
  EXPECT_EQ(snapshot.sum, kTotal * (kTotal - 1) / 2);
  EXPECT_EQ(snapshot.min, 0u);
  EXPECT_EQ(snapshot.max, kTotal - 1);
}

// Snapshots taken while 4 threads record must each be self-consistent: counts never go
// backwards, and min/max bound every counted value (all values are in [1000, 2000]).
TEST(Histogram, SnapshotDuringConcurrentRecordsIsConsistent) {
  auto histogram = std::make_unique<Histogram>();
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last_count = 0;
    while (!done.load(std::memory_order_acquire)) {
      HistogramSnapshot s = histogram->snapshot();
      ASSERT_GE(s.count, last_count);
      last_count = s.count;
      if (s.count == 0) continue;
      ASSERT_GE(s.min, 1000u);
      ASSERT_LE(s.max, 2000u);
      ASSERT_LE(s.min, s.max);
      ASSERT_GE(s.sum, s.count * 1000);
      uint64_t p50 = s.percentile(0.5);
      ASSERT_GE(p50, s.min);
      ASSERT_LE(p50, s.max);
    }
  });
  run_concurrently([&histogram](int t) {
    for (int i = 0; i < kOpsPerThread; ++i) histogram->record(1000 + (i * 7 + t) % 1001);
  });
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_EQ(histogram->snapshot().count, uint64_t{kThreads} * kOpsPerThread);
}

}  // namespace
}  // namespace meshrpc
