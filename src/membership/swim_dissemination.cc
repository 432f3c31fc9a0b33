#include "swim_dissemination.h"

#include <iterator>
#include <utility>

#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::membership {
namespace {

size_t varint_bytes(uint64_t value) {
  size_t bytes = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++bytes;
  }
  return bytes;
}

// Packet::updates is field 7, wire type LEN: its tag (7 << 3 | 2) is one byte.
constexpr size_t kUpdatesTagBytes = 1;

// No update the core queues is smaller than one naming a one-character node and nothing else
// (it never queues one without a node id): with less budget left, nothing more can fit.
size_t min_piggyback_bytes() {
  static const size_t bytes = [] {
    Update smallest;
    smallest.node_id = "x";
    return UpdateQueue::piggyback_bytes(smallest);
  }();
  return bytes;
}

}  // namespace

size_t UpdateQueue::piggyback_bytes(const Update& update) {
  const size_t body = codec::encoded_size(update);
  return kUpdatesTagBytes + varint_bytes(body) + body;
}

void UpdateQueue::enqueue(Update update) {
  const auto existing = queued_.find(update.node_id);
  if (existing != queued_.end()) {
    by_rank_.erase(existing->second.rank);
    queued_.erase(existing);
  }
  const size_t bytes = piggyback_bytes(update);
  const Rank rank{0, next_order_++};
  std::string node_id = update.node_id;
  const auto entry =
      queued_.emplace(std::move(node_id), Queued{std::move(update), bytes, rank}).first;
  by_rank_.emplace(rank, entry);
}

int64_t UpdateQueue::transmissions(std::string_view node_id) const {
  const auto it = queued_.find(node_id);
  return it == queued_.end() ? -1 : static_cast<int64_t>(it->second.rank.transmissions);
}

void UpdateQueue::take(std::vector<Update>& out, size_t budget_bytes, uint32_t limit,
                       std::string_view skip_node_id) {
  // Re-ranked after the walk, so that no update is met twice in one packet.
  std::vector<ByNode::iterator> taken;
  size_t misfits = 0;
  for (auto it = by_rank_.begin(); it != by_rank_.end(); ++it) {
    if (budget_bytes < min_piggyback_bytes() || misfits >= kMaxMisfits) break;
    const ByNode::iterator entry = it->second;
    if (entry->first == skip_node_id) continue;
    const Queued& queued = entry->second;
    if (queued.bytes > budget_bytes) {
      ++misfits;
      continue;
    }
    budget_bytes -= queued.bytes;
    out.push_back(queued.update);
    taken.push_back(entry);
  }
  for (const ByNode::iterator entry : taken) {
    Rank& rank = entry->second.rank;
    by_rank_.erase(rank);
    ++rank.transmissions;
    by_rank_.emplace(rank, entry);
  }
  // Most-transmitted last: whatever reached the limit (it may have fallen, with the member
  // count) is at the end.
  while (!by_rank_.empty() && std::prev(by_rank_.end())->first.transmissions >= limit) {
    const auto last = std::prev(by_rank_.end());
    queued_.erase(last->second);
    by_rank_.erase(last);
  }
}

}  // namespace meshrpc::membership
