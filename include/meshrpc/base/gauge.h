// Gauge: a value that goes up and down (open connections, calls in flight, queue depth).
//
// One atomic int64, not sharded: set() must be able to replace the value exactly, which a
// sharded sum cannot do without racing concurrent adds. A gauge changed from many threads per
// call (e.g. calls in flight across all io threads) contends on one cache line; where that
// shows in profiles, count the two sides with Counters (started, finished) and report the
// difference instead.
//
// Threading: every member is safe from any number of threads at once; each operation is
// atomic on its own. Lifetime: not copyable or movable; must outlive its recorders.
#pragma once

#include <atomic>
#include <cstdint>

namespace meshrpc {

class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  // Relaxed throughout: a gauge orders no other memory.
  void set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(int64_t n) { value_.fetch_sub(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

}  // namespace meshrpc
