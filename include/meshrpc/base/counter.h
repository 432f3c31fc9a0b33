// Counter: a monotonically increasing count (calls started, bytes sent, retries), cheap
// enough to bump on every call from every io thread.
//
// The count is spread over kShardCount cache-line-padded atomic cells; a thread always adds
// to the cell picked by its thread_shard_index(), so threads on different shards never touch
// the same cache line. value() sums the cells.
//
// Threading: add() and value() are safe from any number of threads at once. value() read
// while others add is a sum of cells read one by one: it lies between the count before and
// after the concurrent adds, and is exact once they have finished (happens-before value()).
// Lifetime: not copyable or movable; recorders hold a reference, so the Counter must outlive
// them (the metrics registry in observe/ owns counters for the life of the process).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "meshrpc/base/thread_shard.h"

namespace meshrpc {

class Counter {
 public:
  // 16 shards x 64 bytes = 1 KiB per counter. 16 covers the io threads of a typical server
  // (one per core) without sharing; beyond that threads share cells, which stays correct.
  static constexpr size_t kShardCount = 16;

  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void add(uint64_t n) {
    // Relaxed: a counter orders no other memory; readers only need an eventually exact sum.
    cells_[thread_shard_index() % kShardCount].value.fetch_add(n, std::memory_order_relaxed);
  }
  void increment() { add(1); }

  // Wraps modulo 2^64, which at 10^9 adds per second takes over 500 years.
  uint64_t value() const {
    uint64_t sum = 0;
    for (const Cell& cell : cells_) sum += cell.value.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(kCacheLineBytes) Cell {
    std::atomic<uint64_t> value{0};
  };
  static_assert(sizeof(Cell) == kCacheLineBytes);
  static_assert((kMaxThreadShardIndex + 1) % kShardCount == 0);

  std::array<Cell, kShardCount> cells_;
};

}  // namespace meshrpc
