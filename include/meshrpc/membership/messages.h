// The messages of the gossip protocol, as plain structs on the protobuf wire format
// (codec/struct.h). One datagram carries one Packet (optionally sealed by a Keyring,
// keyring.h); a push-pull exchange carries a PushPull each way as a meshrpc unary call.
// Field numbers are the wire contract (docs/membership.md draws them); never renumber.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "meshrpc/codec/struct.h"
#include "meshrpc/membership/member.h"

namespace meshrpc::membership {

// One claim about one member: memberlist's alive / suspect / dead messages in one shape.
struct Update {
  std::string node_id;
  std::string host;
  uint32_t port = 0;
  uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  // The full tag set (never a delta): an update replaces the member's tags atomically.
  Tags tags;
  // Who claims it: for kSuspect, the suspecting member (independent confirmations are
  // counted by distinct `from`, Lifeguard); for kDead, who declared it.
  std::string from;
};
MESHRPC_STRUCT(Update, (node_id, 1), (host, 2), (port, 3), (incarnation, 4), (state, 5), (tags, 6),
               (from, 7));

enum class PacketType : uint8_t {
  kPing = 0,     // probe `target_id`; answer with kAck (seq)
  kAck = 1,      // answers kPing `seq` (direct, or relayed by an indirect prober)
  kPingReq = 2,  // ask the receiver to probe `target_id` at target_host:target_port for us
  kNack = 3,     // an indirect prober got no ack in time (Lifeguard: the asker is fine)
  kGossip = 4,   // updates only
};

struct Packet {
  PacketType type = PacketType::kPing;
  // The sender's probe sequence number this packet starts or answers.
  uint64_t seq = 0;
  // The sender's node id: a packet from a node the receiver does not know is still
  // processed (its updates may introduce it).
  std::string from_id;
  // kPing: who the sender believes it is probing (a node answers only pings meant for it:
  // an address reused by a restarted node must not ack for the old one). kPingReq: whom to
  // probe, at target_host:target_port.
  std::string target_id;
  std::string target_host;
  uint32_t target_port = 0;
  // Piggybacked updates, most urgent first (fewest transmissions so far).
  std::vector<Update> updates;
};
MESHRPC_STRUCT(Packet, (type, 1), (seq, 2), (from_id, 3), (target_id, 4), (target_host, 5),
               (target_port, 6), (updates, 7));

// A full-state exchange (anti-entropy), and the way a node joins: it sends its state to a
// seed and merges the seed's reply.
struct PushPull {
  std::string from_id;
  bool join = false;
  // Every member the sender knows, itself included, tombstones too.
  std::vector<Update> members;
  // With a keyring (cluster.h), the only field set: the encoding of the PushPull above,
  // sealed with Keyring::seal_message. A join or anti-entropy exchange then proves, like a
  // datagram, that its sender holds a key.
  std::string sealed;
};
MESHRPC_STRUCT(PushPull, (from_id, 1), (join, 2), (members, 3), (sealed, 4));

}  // namespace meshrpc::membership
