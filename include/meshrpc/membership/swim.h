// Swim: the SWIM membership protocol with Lifeguard's refinements, as a pure state machine
// (DESIGN.md principle 1). It reads no clock, draws no randomness of its own and does no
// I/O: time and random draws come in with each input, packets to send and events come out.
// Cluster (cluster.h) drives it over datagrams and meshrpc calls; tests drive it by hand.
//
//   Swim swim(config, self, now);
//   swim.join({seed});                          // -> take_push_pulls(): exchange with seed
//   swim.merge_push_pull(reply, now);
//   for (;;) {
//     swim.tick(now, random);                   // whatever is due by now
//     for (auto& out : swim.take_outgoing()) send(out.to, out.packet);
//     for (auto& event : swim.take_events()) publish(event);
//     wait until swim.next_deadline() or a packet arrives -> swim.receive(from, packet, ...)
//   }
//
// The protocol (formulas in config.h and docs/membership.md):
// - Probe: every probe_interval x (health score + 1) the next member of a shuffled
//   round-robin list of the others (alive and suspect) gets a kPing. No kAck within
//   probe_timeout x (score + 1): indirect_checks random other members get a kPingReq and
//   probe it for us (relaying its ack, or a kNack at nack_fraction of the timeout). No ack
//   by the end of the interval: the target becomes suspect (we gossip kSuspect from us).
// - Suspicion: a suspect is declared dead (kDead from us) once its suspicion timeout passes;
//   the timeout starts at its maximum and shrinks with each independent confirmation (a
//   kSuspect update about it from another member). A member that hears it is suspected (or
//   declared dead while it lives) refutes: it bumps its incarnation and gossips kAlive.
//   Buddy system: a ping to a suspect carries the suspicion as its first update, so the
//   suspect learns of it and refutes at once.
// - Dissemination: every update (a member's change) is queued for piggybacking; each packet
//   carries as many queued updates as fit max_packet_bytes, least-transmitted first, and an
//   update is dropped from the queue after retransmit_limit() transmissions or once a newer
//   update about the same member supersedes it. Every gossip_interval, gossip_nodes random
//   members (and, for gossip_to_the_dead, recently dead ones) get a kGossip.
// - Anti-entropy: every push_pull_interval_for(config, N) (the interval, stretched above 32
//   members), one random alive member is asked for a push-pull (take_push_pulls());
//   merge_push_pull() applies a full state as a batch of updates.
// - Partition heal (serf's reconnect): members declared or learned dead (not left) are
//   remembered with their address for reconnect_timeout, past their tombstones. Every
//   reconnect_interval, with probability min(1, failed / live others), one of them is asked
//   for a push-pull. If it lives, each side refutes what the other held about it, and the
//   refutations spread as gossip. A member alive again or learned to have left is forgotten.
// - Dead-sender notice: a packet from a member we hold dead or left gets a kGossip back
//   whose first update is that verdict, so the sender refutes at once (at most once per
//   probe_interval per member).
// - Local health (Lifeguard): the score rises by 1 when a probe of ours fails without any
//   nack, when an expected nack is missing, and when we must refute; it falls by 1 on each
//   successful probe; it stays within [0, awareness_max_multiplier - 1].
// - Tombstones: dead and left members stay for tombstone_ttl, then are forgotten.
// - Precedence: an update about a member applies only if its incarnation is higher than the
//   one known, or equal with a more severe state (alive < suspect < dead = left); anything
//   else is stale and ignored. Updates about ourselves are refuted, never applied (except
//   our own kLeft). A dead or left member comes back only with a higher incarnation.
//
// Threading: none; one owner calls everything. Lifetime: a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "meshrpc/membership/config.h"
#include "meshrpc/membership/member.h"
#include "meshrpc/membership/messages.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/runtime/random.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::membership {

// A packet for the driver to send.
struct Outgoing {
  transport::Address to;
  Packet packet;
};

// A push-pull the driver should start with `to`: send make_push_pull(join), merge the reply.
struct PushPullRequest {
  transport::Address to;
  bool join = false;
};

// Counters of what the core did, for metrics and tests.
struct SwimStats {
  uint64_t probes = 0;           // direct pings sent as probes
  uint64_t probes_failed = 0;    // probes that ended with no ack (direct or indirect)
  uint64_t indirect_probes = 0;  // kPingReq sent
  uint64_t nacks_received = 0;
  uint64_t suspicions = 0;       // members we suspected ourselves
  uint64_t refutations = 0;      // times we refuted a claim about ourselves
  uint64_t declared_dead = 0;    // members whose suspicion timed out here
  uint64_t updates_applied = 0;  // updates that changed our view
  uint64_t updates_stale = 0;    // updates ignored as older than what we know
  uint64_t reconnects = 0;       // push-pulls asked of failed members (partition heal)
  uint64_t dead_notices = 0;     // packets from members held dead or left, answered
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
};

class Swim {
 public:
  // `self` gives our node id, address and tags (incarnation and state are ours to set: we
  // start alive at incarnation 0, or `self.incarnation` if higher, for a restart that
  // remembers it).
  Swim(SwimConfig config, NodeStatus self, runtime::TimePoint now);

  // --- inputs -------------------------------------------------------------------------------
  // Asks for a join push-pull with each seed (take_push_pulls()); seeds equal to our own
  // address are skipped.
  void join(std::span<const transport::Address> seeds);
  // Runs everything due by `now`: probe rounds and their timeouts, suspicion timeouts,
  // gossip rounds, push-pull rounds, tombstone reaping.
  void tick(runtime::TimePoint now, runtime::Random& random);
  // A packet from the address `from` (where replies go).
  void receive(const transport::Address& from, const Packet& packet, runtime::TimePoint now,
               runtime::Random& random);
  // Our full state, for a push-pull (either side).
  PushPull make_push_pull(bool join) const;
  // Applies a peer's full state (its reply to our push-pull, or its request to us).
  void merge_push_pull(const PushPull& state, runtime::TimePoint now);
  // Replaces our tags: one incarnation bump, one update, however many tags change.
  void update_tags(Tags tags, runtime::TimePoint now);
  // Leaves gracefully: we become kLeft at a new incarnation and gossip it; after this we
  // stop probing and answer no pings. The driver flushes outgoing packets, then stops.
  void leave(runtime::TimePoint now);

  // --- outputs ------------------------------------------------------------------------------
  std::vector<Outgoing> take_outgoing();
  std::vector<PushPullRequest> take_push_pulls();
  std::vector<MemberEvent> take_events();
  // When tick() must next run (the earliest timer); a packet received may bring it closer.
  // O(1) (plus the few indirect probes we relay), not O(N): the driver calls it after every
  // input.
  runtime::TimePoint next_deadline() const;

  // --- queries ------------------------------------------------------------------------------
  const NodeStatus& self() const;
  // Every member known, ourselves included, tombstones too; ordered by node id.
  std::vector<NodeStatus> members() const;
  std::optional<NodeStatus> member(std::string_view node_id) const;
  // Alive and suspect members, ourselves included: the N of the formulas. O(1).
  size_t live_count() const;
  // Lifeguard's local health score, 0 (healthy) .. awareness_max_multiplier - 1.
  uint32_t health_score() const;
  // Updates waiting to be piggybacked.
  size_t pending_updates() const;
  const SwimStats& stats() const;
  const SwimConfig& config() const;

  Swim(Swim&&) noexcept;
  Swim& operator=(Swim&&) noexcept;
  ~Swim();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace meshrpc::membership
