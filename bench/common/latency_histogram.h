// LatencyHistogram: a fixed-size log-linear histogram of nanosecond latencies, so a client
// can record every call of a run without memory growing with the run's length.
//
// Buckets are exact below 128 ns; above, each power of two is split into 128 linear
// sub-buckets, so a reported percentile is within 1/128 (0.8%) of the true sample: 0.2 µs at
// a 25 µs loopback round trip, below the run-to-run noise it is used to compare.
//
// Not thread-safe: one histogram per recording thread (the bench clients are single-threaded).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace meshrpc::bench {

class LatencyHistogram {
 public:
  void record(uint64_t latency_ns) {
    ++counts_[bucket_of(latency_ns)];
    ++total_;
  }

  [[nodiscard]] uint64_t count() const { return total_; }

  // The latency below which a fraction `quantile` (0..1] of the samples fall, in ns (the
  // middle of the bucket holding that sample); 0 when nothing was recorded.
  [[nodiscard]] double percentile_ns(double quantile) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<uint64_t>(quantile * static_cast<double>(total_));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return bucket_middle_ns(i);
    }
    return bucket_middle_ns(counts_.size() - 1);
  }

 private:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  // One row of kSubBuckets per power of two above 2^kSubBucketBits, plus the exact row.
  static constexpr size_t kBucketCount = (64 - kSubBucketBits + 1) * kSubBuckets;

  static size_t bucket_of(uint64_t v) {
    if (v < kSubBuckets) return v;
    const int shift = std::bit_width(v) - 1 - kSubBucketBits;
    return ((static_cast<size_t>(shift) + 1) << kSubBucketBits) + ((v >> shift) - kSubBuckets);
  }

  static double bucket_middle_ns(size_t index) {
    if (index < kSubBuckets) return static_cast<double>(index);
    const int shift = static_cast<int>(index >> kSubBucketBits) - 1;
    const uint64_t low = ((index & (kSubBuckets - 1)) + kSubBuckets) << shift;
    return static_cast<double>(low) + static_cast<double>(uint64_t{1} << shift) / 2;
  }

  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t total_ = 0;
};

}  // namespace meshrpc::bench
