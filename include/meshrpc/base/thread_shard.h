// Per-thread shard selection for metric primitives (Counter, Histogram).
//
// Every thread gets a small index the first time it records into any sharded metric; a metric
// with N shards uses `index % N`. Indices are handed out round-robin, so the first N threads
// each get a shard of their own and later threads share evenly. Sharing a shard is always
// correct (cells are atomics); it only costs some cache-line contention.
//
// Threading: thread_shard_index() is safe from any thread; the index never changes for the
// life of the thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meshrpc {

// Bytes per cache line, used to pad shards so two threads never write the same line.
// 64 on x86-64 and most ARM cores. (Not std::hardware_destructive_interference_size: GCC
// warns that its value may differ between compilers, and shard layout is part of the ABI.)
inline constexpr size_t kCacheLineBytes = 64;

// Indices wrap at 2^16; every shard count used with them must divide 2^16 (be a power of two
// no larger than it) so that wrapping keeps the round-robin spread even.
inline constexpr uint32_t kMaxThreadShardIndex = (1u << 16) - 1;

namespace internal {

// 0 until the thread first asks for its index; then the index plus 1. constinit, so reading it
// is a plain TLS load with no initialization guard on the hot path.
extern constinit thread_local uint32_t thread_shard_slot;

// Out of line: runs once per thread.
uint32_t assign_thread_shard_slot();

}  // namespace internal

// This thread's shard index, in [0, kMaxThreadShardIndex].
inline uint32_t thread_shard_index() {
  uint32_t slot = internal::thread_shard_slot;
  if (slot == 0) [[unlikely]] {
    slot = internal::assign_thread_shard_slot();
  }
  return slot - 1;
}

}  // namespace meshrpc
