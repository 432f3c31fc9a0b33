// UpdateQueue: the updates a Swim core piggybacks on its packets (SWIM's dissemination
// component, memberlist's TransmitLimitedQueue). Private to src/membership/.
//
// Holds at most one update per member: a newer update about a member replaces the queued
// one, which is what bounds the queue (by the member count). Each packet takes the updates
// that fit its byte budget, least-transmitted first and, among equals, newest first, so fresh
// news spreads before old news is repeated; an update leaves the queue once it has been sent
// `limit` times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/membership/messages.h"

namespace meshrpc::membership {

class UpdateQueue {
 public:
  // Queues `update`, replacing any queued update about the same node.
  void enqueue(Update update);
  // Appends to `out` the queued updates that fit in `budget_bytes` (as Packet::updates
  // entries, see piggyback_bytes), counts one transmission for each, and drops those sent
  // `limit` times. Updates about `skip_node_id` are left alone (the caller already put a
  // fresher statement about that node first: the buddy system).
  void take(std::vector<Update>& out, size_t budget_bytes, uint32_t limit,
            std::string_view skip_node_id);
  size_t size() const { return queued_.size(); }
  // How many times the queued update about `node_id` has been sent; -1 if none is queued.
  int64_t transmissions(std::string_view node_id) const;

  // The bytes `update` adds to an encoded Packet: its field tag, length prefix and body.
  static size_t piggyback_bytes(const Update& update);

 private:
  struct Queued {
    Update update;
    uint32_t transmissions = 0;
    // Enqueue order: the newer of two equally-sent updates goes first.
    uint64_t order = 0;
  };
  std::map<std::string, Queued, std::less<>> queued_;
  uint64_t next_order_ = 0;
};

}  // namespace meshrpc::membership
