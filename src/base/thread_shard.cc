#include "meshrpc/base/thread_shard.h"

#include <atomic>

namespace meshrpc::internal {

constinit thread_local uint32_t thread_shard_slot = 0;

uint32_t assign_thread_shard_slot() {
  // Relaxed: the counter only has to hand out distinct-ish numbers; it orders nothing.
  static std::atomic<uint32_t> next_index{0};
  uint32_t index = next_index.fetch_add(1, std::memory_order_relaxed) & kMaxThreadShardIndex;
  thread_shard_slot = index + 1;
  return thread_shard_slot;
}

}  // namespace meshrpc::internal
