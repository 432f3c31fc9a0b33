#include "swim_dissemination.h"

#include <algorithm>
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

}  // namespace

size_t UpdateQueue::piggyback_bytes(const Update& update) {
  const size_t body = codec::encoded_size(update);
  return kUpdatesTagBytes + varint_bytes(body) + body;
}

void UpdateQueue::enqueue(Update update) {
  std::string node_id = update.node_id;
  queued_.insert_or_assign(std::move(node_id), Queued{std::move(update), 0, next_order_++});
}

int64_t UpdateQueue::transmissions(std::string_view node_id) const {
  const auto it = queued_.find(node_id);
  return it == queued_.end() ? -1 : static_cast<int64_t>(it->second.transmissions);
}

void UpdateQueue::take(std::vector<Update>& out, size_t budget_bytes, uint32_t limit,
                       std::string_view skip_node_id) {
  std::vector<Queued*> order;
  order.reserve(queued_.size());
  for (auto& [node_id, queued] : queued_) {
    if (node_id != skip_node_id) order.push_back(&queued);
  }
  std::sort(order.begin(), order.end(), [](const Queued* a, const Queued* b) {
    if (a->transmissions != b->transmissions) return a->transmissions < b->transmissions;
    return a->order > b->order;
  });
  for (Queued* queued : order) {
    const size_t bytes = piggyback_bytes(queued->update);
    // Too big for what is left: a smaller one further down may still fit (memberlist too).
    if (bytes > budget_bytes) continue;
    budget_bytes -= bytes;
    out.push_back(queued->update);
    ++queued->transmissions;
  }
  std::erase_if(queued_,
                [limit](const auto& entry) { return entry.second.transmissions >= limit; });
}

}  // namespace meshrpc::membership
