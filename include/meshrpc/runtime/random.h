// Random: a small, fast, seedable generator (xoshiro256**), identical on every platform so a
// simulation seed replays exactly. Not thread-safe: one per thread or per simulation.
// Pure cores take draws from it as arguments; they never own one.
#pragma once

#include <array>
#include <cstdint>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::runtime {

class Random {
 public:
  explicit Random(uint64_t seed);

  uint64_t next_u64();
  // Uniform in [0, bound); bound 0 gives 0. Unbiased (rejection sampling).
  uint64_t uniform(uint64_t bound);
  // Uniform in [lo, hi] inclusive.
  int64_t uniform_int(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double next_double();
  // True with probability p (p <= 0 never, p >= 1 always).
  bool bernoulli(double p);
  // Uniform in [lo, hi].
  Duration uniform_duration(Duration lo, Duration hi);

 private:
  std::array<uint64_t, 4> state_;
};

}  // namespace meshrpc::runtime
