// UpdateQueue: the updates a Swim core piggybacks on its packets (SWIM's dissemination
// component, memberlist's TransmitLimitedQueue). Private to src/membership/.
//
// Holds at most one update per member: a newer update about a member replaces the queued
// one, which is what bounds the queue (by the member count). Each packet takes the updates
// that fit its byte budget, least-transmitted first and, among equals, newest first, so fresh
// news spreads before old news is repeated; an update leaves the queue once it has been sent
// `limit` times.
//
// Cost: the queue is kept in take order, so a packet costs O((k + kMaxMisfits) log Q) for k
// updates taken out of Q queued, not a sort of the whole queue (Q reaches N after a join
// burst, and every packet takes).
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
  // Updates too big for what is left of a packet are passed over, so a smaller one further
  // down can still fill the space (memberlist does the same); a packet stops looking after
  // passing over this many. 64: more than a whole 1,400-byte packet's worth of typical
  // updates (about 60 bytes each), so the space left unused is rarely one a later update
  // could have filled, while a packet's work stays bounded however long the queue. Those
  // passed over lose nothing: they keep their place at the front for the next packet.
  static constexpr size_t kMaxMisfits = 64;

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
  // A queued update's place in take order. `order` (enqueue order) is unique, so a rank
  // names one update.
  struct Rank {
    uint32_t transmissions = 0;
    uint64_t order = 0;
  };
  // Fewest transmissions first; among equals, the newer first.
  struct TakeOrder {
    bool operator()(const Rank& a, const Rank& b) const {
      if (a.transmissions != b.transmissions) return a.transmissions < b.transmissions;
      return a.order > b.order;
    }
  };
  struct Queued {
    Update update;
    size_t bytes = 0;  // piggyback_bytes(update), computed once
    Rank rank;
  };
  using ByNode = std::map<std::string, Queued, std::less<>>;

  ByNode queued_;
  // Every entry of queued_, in take order. Invariant: by_rank_[q.rank] points at q.
  std::map<Rank, ByNode::iterator, TakeOrder> by_rank_;
  uint64_t next_order_ = 0;
};

}  // namespace meshrpc::membership
