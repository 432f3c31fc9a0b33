// Member: what one node of a gossip cluster is, as a member sees it. Plain values: the SWIM
// core (swim.h) produces them, Cluster (cluster.h) hands snapshots and events to users.
//
// States, and the vocabulary of a health checker (seed 004) they answer to:
//   kAlive    healthy: answers probes, or refuted a suspicion
//   kSuspect  unhealthy: missed a probe; dead unless it refutes within the suspicion timeout
//   kDead     dead: the suspicion timed out (or a member confirmed it); kept as a tombstone
//             for SwimConfig::tombstone_ttl so a late, stale "alive" cannot resurrect it
//   kLeft     left gracefully (Cluster::leave); a tombstone like kDead
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "meshrpc/runtime/clock.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::membership {

enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };

constexpr std::string_view member_state_name(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "unknown";
}

using Tags = std::map<std::string, std::string>;

struct NodeStatus {
  std::string node_id;
  // Where the node listens: its meshrpc server (TCP) and its gossip socket (UDP) share it.
  transport::Address address;
  // Bumped only by the node itself: to refute a suspicion, to change its tags, to leave.
  // Of two claims about a node, the higher incarnation wins; at equal incarnation the more
  // severe state wins (alive < suspect < dead/left).
  uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  // When this member last changed state or incarnation, on the local clock.
  runtime::TimePoint last_seen{};
  Tags tags;

  friend bool operator==(const NodeStatus&, const NodeStatus&) = default;
};

struct MemberEvent {
  enum class Kind : uint8_t {
    kJoined,   // first heard of (alive), or back after being dead or left
    kUpdated,  // alive, with new tags or address (a higher incarnation)
    kSuspect,  // alive -> suspect
    kAlive,    // suspect -> alive (refuted)
    kDead,     // declared dead
    kLeft,     // left gracefully
  };
  Kind kind;
  NodeStatus member;  // the member after the change
};

constexpr std::string_view member_event_name(MemberEvent::Kind kind) {
  switch (kind) {
    case MemberEvent::Kind::kJoined:
      return "joined";
    case MemberEvent::Kind::kUpdated:
      return "updated";
    case MemberEvent::Kind::kSuspect:
      return "suspect";
    case MemberEvent::Kind::kAlive:
      return "alive";
    case MemberEvent::Kind::kDead:
      return "dead";
    case MemberEvent::Kind::kLeft:
      return "left";
  }
  return "unknown";
}

}  // namespace meshrpc::membership
