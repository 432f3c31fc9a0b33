#include "meshrpc/membership/swim.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <string>
#include <utility>

#include "meshrpc/codec/struct_codec.h"
#include "swim_dissemination.h"

namespace meshrpc::membership {
namespace {

using runtime::Duration;
using runtime::kInfiniteFuture;
using runtime::TimePoint;

// Indirect probes we run for others at once. A member receives about indirect_checks
// ping-reqs per failing member per probe interval, each held for one probe_timeout; 256
// covers dozens of members failing together, and bounds what a misbehaving peer can pin.
constexpr size_t kMaxRelays = 256;

// Failed members remembered for reconnecting (SwimConfig::reconnect_interval). Records live
// for reconnect_timeout, so the count is the members that died within it: a partition of
// the 1,000-node clusters this core is simulated at stays far below 16,384, which leaves
// room for churn (nodes killed and replaced without leaving) at ~100 bytes a record,
// under 2 MB. When full, the oldest record goes: it is the nearest to expiring anyway.
constexpr size_t kMaxFailed = 16'384;
// Accusers answered in the last probe interval (answer_accuser): a few per suspicion; 1,024
// bounds what a flood of forged accusations can make us remember.
constexpr size_t kMaxAnswered = 1'024;

bool is_live(MemberState state) {
  return state == MemberState::kAlive || state == MemberState::kSuspect;
}

bool is_down(MemberState state) { return !is_live(state); }

// alive < suspect < dead = left (swim.h, Precedence).
int severity(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return 0;
    case MemberState::kSuspect:
      return 1;
    case MemberState::kDead:
    case MemberState::kLeft:
      return 2;
  }
  return 0;
}

bool supersedes(const Update& update, const NodeStatus& known) {
  if (update.incarnation != known.incarnation) return update.incarnation > known.incarnation;
  return severity(update.state) > severity(known.state);
}

transport::Address address_of(const Update& update) {
  return {update.host, static_cast<uint16_t>(update.port)};
}

// Partial Fisher-Yates: the first min(k, size) elements become a uniform random sample.
template <typename T>
void sample(std::vector<T>& items, size_t k, runtime::Random& random) {
  k = std::min(k, items.size());
  for (size_t i = 0; i < k; ++i) {
    const size_t j = i + static_cast<size_t>(random.uniform(items.size() - i));
    std::swap(items[i], items[j]);
  }
  items.resize(k);
}

// min(k, n) distinct indices drawn uniformly from [0, n), in random order: sample() over the
// implicit list 0..n-1, storing only the slots it moves. O(k log k) however large n, so a
// caller need not list its candidates; the same draws as sample() over n items.
std::vector<size_t> sample_indices(size_t n, size_t k, runtime::Random& random) {
  k = std::min(k, n);
  std::map<size_t, size_t> moved;  // slot -> index now there, where not the slot's own
  const auto at = [&](size_t slot) {
    const auto it = moved.find(slot);
    return it == moved.end() ? slot : it->second;
  };
  std::vector<size_t> picked;
  picked.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    const size_t j = i + static_cast<size_t>(random.uniform(n - i));
    picked.push_back(at(j));
    moved[j] = at(i);  // slot i, now holding at(j), is never read again
  }
  return picked;
}

}  // namespace

struct Swim::State {
  struct Suspicion {
    TimePoint start;
    // Who suspected first; the confirmations are the other distinct suspecters (Lifeguard).
    std::string first_from;
    std::set<std::string> confirmations;
    TimePoint deadline;
  };
  struct Member {
    NodeStatus status;
    // Set exactly while status.state is kSuspect.
    std::optional<Suspicion> suspicion;
    // When it became dead or left: the tombstone's age.
    TimePoint down_since{};
    // Its index in live_others while it is live (not for ourselves).
    size_t live_slot = 0;
  };
  // Our probe in flight.
  struct Probe {
    uint64_t seq = 0;
    std::string target_id;
    TimePoint timeout_at;  // no ack by then: ask others (kPingReq)
    TimePoint end_at;      // no ack by then: the probe failed
    bool indirect_sent = false;
    uint32_t nacks_expected = 0;
    uint32_t nacks_received = 0;
  };
  // An indirect probe we run for a member that sent us a kPingReq, keyed by our ping's seq.
  struct Relay {
    transport::Address asker;
    uint64_t asker_seq = 0;
    TimePoint nack_at;
    TimePoint expires_at;  // a late ack is still relayed until then
    bool nack_sent = false;
  };
  // A member declared or learned dead, remembered (past its tombstone) for reconnecting.
  struct Failed {
    transport::Address address;
    uint64_t incarnation = 0;
    TimePoint since;  // when first held dead: the record expires reconnect_timeout later
  };
  // A member timer: when, and whose (a member lives in a map node, which does not move).
  // Ties break by node id, not by address, so that a run is a function of its inputs.
  using TimerKey = std::pair<TimePoint, Member*>;
  struct TimerOrder {
    bool operator()(const TimerKey& a, const TimerKey& b) const {
      if (a.first != b.first) return a.first < b.first;
      return a.second->status.node_id < b.second->status.node_id;
    }
  };
  using Timers = std::set<TimerKey, TimerOrder>;
  enum class Outcome { kApplied, kStale, kIgnored };

  State(SwimConfig config_in, NodeStatus self_in, TimePoint now);

  // --- queries ---
  bool left() const { return self->status.state == MemberState::kLeft; }
  size_t live_count() const { return live_others.size() + (left() ? 0 : 1); }
  Duration scaled(Duration d) const { return d * (health + 1); }
  Member* find_live(std::string_view node_id);
  Update to_update(const Member& member) const;
  TimePoint next_deadline() const;

  // --- output ---
  void emit(MemberEvent::Kind kind, const Member& member) {
    events.push_back(MemberEvent{kind, member.status});
  }
  bool send(const transport::Address& to, Packet packet, bool require_updates = false);
  void notify_if_down(const transport::Address& from, const Packet& packet, TimePoint now);
  void adjust_health(int64_t delta);

  // --- applying updates (precedence) ---
  void count(Outcome outcome);
  Outcome apply(const Update& update, TimePoint now, const std::string& fallback_from);
  Outcome apply_about_self(const Update& update, TimePoint now);
  void answer_accuser(const std::string& accuser_id, TimePoint now);
  Outcome apply_suspect(Member& member, const Update& update, TimePoint now);
  Outcome confirm(Member& member, const Update& update);
  void add_member(const Update& update, TimePoint now);
  void set_alive(Member& member, const Update& update, TimePoint now);
  void start_suspicion(Member& member, const Update& update, TimePoint now);
  void set_down(Member& member, const Update& update, TimePoint now);
  void refute(uint64_t claimed_incarnation, TimePoint now);
  void set_state(Member& member, MemberState state, TimePoint now);
  void arm_suspicion(Member& member, Suspicion suspicion);
  TimerKey reap_key(Member& member) const {
    return {member.down_since + config.tombstone_ttl, &member};
  }
  void add_live(Member& member);
  void remove_live(Member& member);
  void remember_failed(const Member& member, TimePoint now);
  void forget(const std::string& node_id);
  void suspect_locally(const std::string& node_id, TimePoint now);

  // --- timers ---
  void tick(TimePoint now, runtime::Random& random);
  void place_new_members(runtime::Random& random);
  void reshuffle(runtime::Random& random);
  Member* next_probe_target(runtime::Random& random);
  void start_probe(TimePoint now, runtime::Random& random);
  void run_probe(TimePoint now, runtime::Random& random);
  void send_ping_reqs(runtime::Random& random);
  void fail_probe(TimePoint now);
  void run_relays(TimePoint now);
  void expire_suspicions(TimePoint now);
  void reap_tombstones(TimePoint now);
  void gossip_round(TimePoint now, runtime::Random& random);
  void push_pull_round(runtime::Random& random);
  void reconnect_round(TimePoint now, runtime::Random& random);

  // --- packets ---
  void receive(const transport::Address& from, const Packet& packet, TimePoint now,
               runtime::Random& random);
  void on_ping(const transport::Address& from, const Packet& packet);
  void on_ack(const Packet& packet);
  void on_nack(const Packet& packet);
  void on_ping_req(const transport::Address& from, const Packet& packet, TimePoint now);

  void merge_push_pull(const PushPull& state, TimePoint now);
  void update_tags(Tags tags, TimePoint now);
  void leave(TimePoint now);

  SwimConfig config;
  std::string self_id;
  std::map<std::string, Member, std::less<>> members;
  Member* self = nullptr;  // into `members`: map nodes do not move, and self is never reaped
  // Invariant: the alive and suspect members other than ourselves, in no order (each knows
  // its live_slot), kept by set_state() and add_member(): live_count(), read for every
  // packet sent, is O(1), and gossip draws its targets without scanning the members.
  std::vector<Member*> live_others;
  // Invariant: one entry per suspect (at its suspicion deadline) and per tombstone other
  // than ourselves (at its reap time), so that next_deadline() and tick() find what is due
  // without scanning the members.
  Timers suspicion_timers;
  Timers reap_timers;
  // Members declared or learned dead, by node id; outlive their tombstones (reconnect).
  std::map<std::string, Failed, std::less<>> failed;
  // When each tombstone last got a dead-sender notice (receive()); at most one entry per
  // tombstone, dropped with it.
  std::map<std::string, TimePoint, std::less<>> notices;
  UpdateQueue queue;

  // Round-robin probe order: members from probe_order[probe_index] on are still to be
  // probed this round. New members wait in `unplaced` for a random draw to place them.
  std::vector<std::string> probe_order;
  size_t probe_index = 0;
  // Invariant: the ids in probe_order[probe_index..] (which holds none twice), so that
  // placing a new member need not search the rest of the round.
  std::set<std::string, std::less<>> unprobed;
  std::vector<std::string> unplaced;
  std::optional<Probe> probe;
  std::map<uint64_t, Relay> relays;
  // Accusers we sent our refutation to directly, and when (answer_accuser).
  std::map<std::string, TimePoint, std::less<>> answered;
  uint64_t next_seq = 1;
  uint32_t health = 0;

  TimePoint next_probe_at;
  TimePoint next_gossip_at;
  TimePoint next_push_pull_at;
  TimePoint next_reconnect_at;

  std::vector<Outgoing> outgoing;
  std::vector<PushPullRequest> push_pulls;
  std::vector<MemberEvent> events;
  SwimStats stats;
};

Swim::State::State(SwimConfig config_in, NodeStatus self_in, TimePoint now)
    : config(std::move(config_in)), self_id(self_in.node_id) {
  self_in.state = MemberState::kAlive;
  self_in.last_seen = now;
  self = &members.emplace(self_id, Member{std::move(self_in), std::nullopt, {}}).first->second;
  // Announce ourselves: whoever we meet first passes it on (memberlist does the same).
  queue.enqueue(to_update(*self));
  next_probe_at = now + config.probe_interval;
  next_gossip_at = now + config.gossip_interval;
  next_push_pull_at = config.push_pull_interval > Duration::zero() ? now + config.push_pull_interval
                                                                   : kInfiniteFuture;
  next_reconnect_at = config.reconnect_interval > Duration::zero() ? now + config.reconnect_interval
                                                                   : kInfiniteFuture;
}

// ---- queries ----------------------------------------------------------------------------------

Swim::State::Member* Swim::State::find_live(std::string_view node_id) {
  const auto it = members.find(node_id);
  if (it == members.end() || it->second.status.node_id == self_id) return nullptr;
  return is_live(it->second.status.state) ? &it->second : nullptr;
}

Update Swim::State::to_update(const Member& member) const {
  const NodeStatus& s = member.status;
  Update update{s.node_id, s.address.host, s.address.port, s.incarnation, s.state, s.tags, {}};
  if (member.suspicion) update.from = member.suspicion->first_from;
  if (s.node_id == self_id && s.state == MemberState::kLeft) update.from = self_id;
  return update;
}

TimePoint Swim::State::next_deadline() const {
  TimePoint deadline = next_gossip_at;
  if (!left()) {
    deadline = std::min({deadline, next_probe_at, next_push_pull_at, next_reconnect_at});
  }
  if (probe) {
    deadline = std::min(deadline, probe->indirect_sent ? probe->end_at : probe->timeout_at);
  }
  // At most kMaxRelays, and rarely more than a few.
  for (const auto& [seq, relay] : relays) {
    deadline = std::min(deadline, relay.nack_sent ? relay.expires_at : relay.nack_at);
  }
  if (!suspicion_timers.empty()) deadline = std::min(deadline, suspicion_timers.begin()->first);
  if (!reap_timers.empty()) deadline = std::min(deadline, reap_timers.begin()->first);
  return deadline;
}

// ---- output -----------------------------------------------------------------------------------

// Fills `packet` with piggybacked updates up to max_packet_bytes and queues it for `to`.
// An update already in `packet` goes first, and the queue's update about the same node is
// left for later (a statement the receiver must see: a notice, a leave). A kPing to a
// suspect carries that suspicion first (buddy system). With require_updates, a packet that
// would carry no update is not sent (gossip).
bool Swim::State::send(const transport::Address& to, Packet packet, bool require_updates) {
  packet.from_id = self_id;
  const size_t base = codec::encoded_size(packet);
  size_t budget = config.max_packet_bytes > base ? config.max_packet_bytes - base : 0;
  std::string skip;  // a copy: packet.updates grows below
  if (!packet.updates.empty()) {
    skip = packet.updates.front().node_id;
  } else if (packet.type == PacketType::kPing) {
    const auto it = members.find(packet.target_id);
    if (it != members.end() && it->second.status.state == MemberState::kSuspect) {
      Update buddy = to_update(it->second);
      const size_t bytes = UpdateQueue::piggyback_bytes(buddy);
      if (bytes <= budget) {
        budget -= bytes;
        packet.updates.push_back(std::move(buddy));
        skip = packet.target_id;
      }
    }
  }
  queue.take(packet.updates, budget, retransmit_limit(config, live_count()), skip);
  if (require_updates && packet.updates.empty()) return false;
  outgoing.push_back(Outgoing{to, std::move(packet)});
  ++stats.packets_sent;
  return true;
}

void Swim::State::adjust_health(int64_t delta) {
  const int64_t max = std::max<int64_t>(config.awareness_max_multiplier, 1) - 1;
  health = static_cast<uint32_t>(std::clamp<int64_t>(int64_t{health} + delta, 0, max));
}

// ---- applying updates -------------------------------------------------------------------------

void Swim::State::count(Outcome outcome) {
  if (outcome == Outcome::kApplied) ++stats.updates_applied;
  if (outcome == Outcome::kStale) ++stats.updates_stale;
}

Swim::State::Outcome Swim::State::apply(const Update& update, TimePoint now,
                                        const std::string& fallback_from) {
  if (update.node_id.empty() || update.port > 0xFFFF) return Outcome::kIgnored;  // malformed
  if (update.node_id == self_id) return apply_about_self(update, now);
  Update claim = update;
  // A push-pull entry without a claimant is its sender's claim.
  if (claim.from.empty() && claim.state != MemberState::kAlive) claim.from = fallback_from;
  const auto it = members.find(claim.node_id);
  if (it == members.end()) {
    // Members are learnt from alive claims only: a suspect or dead node we never knew adds
    // nothing worth tracking (memberlist ignores them too).
    if (claim.state != MemberState::kAlive) return Outcome::kIgnored;
    add_member(claim, now);
    return Outcome::kApplied;
  }
  Member& member = it->second;
  if (claim.state == MemberState::kSuspect) return apply_suspect(member, claim, now);
  if (!supersedes(claim, member.status)) return Outcome::kStale;
  if (claim.state == MemberState::kAlive) {
    set_alive(member, claim, now);
  } else {
    set_down(member, claim, now);
  }
  return Outcome::kApplied;
}

Swim::State::Outcome Swim::State::apply_about_self(const Update& update, TimePoint now) {
  const NodeStatus& me = self->status;
  if (left()) return Outcome::kIgnored;  // we are gone; our kLeft stands
  if (update.state == MemberState::kAlive) {
    // Our own alive coming back is an echo; a higher one is an impostor or our past self.
    if (update.incarnation <= me.incarnation) return Outcome::kIgnored;
  } else if (update.incarnation < me.incarnation) {
    // An accusation we already refuted: its author has not heard the refutation yet.
    answer_accuser(update.from, now);
    return Outcome::kStale;
  }
  refute(update.incarnation, now);
  answer_accuser(update.from, now);
  return Outcome::kIgnored;
}

// Every member that holds us suspect runs a timer that declares us dead, and gossip misses a
// given member now and then (at 100 members and 5% loss, about once in 10^5 updates: a few
// times an hour across a busy cluster). The accuser named in the claim gets our refutation
// directly as well, at most once per probe interval, so the member most sure of our death
// hears otherwise (and a stale accuser learns at once that it is behind).
void Swim::State::answer_accuser(const std::string& accuser_id, TimePoint now) {
  if (accuser_id.empty() || accuser_id == self_id) return;
  const Member* accuser = find_live(accuser_id);
  if (accuser == nullptr) return;
  if (answered.size() >= kMaxAnswered) {
    std::erase_if(answered,
                  [&](const auto& entry) { return now >= entry.second + config.probe_interval; });
    if (answered.size() >= kMaxAnswered) return;
  }
  const auto [last, first] = answered.try_emplace(accuser_id, now);
  if (!first) {
    if (now < last->second + config.probe_interval) return;
    last->second = now;
  }
  Packet packet;
  packet.type = PacketType::kGossip;
  packet.updates.push_back(to_update(*self));
  send(accuser->status.address, std::move(packet));
}

Swim::State::Outcome Swim::State::apply_suspect(Member& member, const Update& update,
                                                TimePoint now) {
  const NodeStatus& known = member.status;
  // A dead or left member comes back only with an alive claim (memberlist too).
  if (is_down(known.state) || update.incarnation < known.incarnation) return Outcome::kStale;
  if (known.state == MemberState::kSuspect && update.incarnation == known.incarnation) {
    return confirm(member, update);
  }
  start_suspicion(member, update, now);
  return Outcome::kApplied;
}

// Another member suspects an existing suspect: an independent confirmation shortens the
// timeout (Lifeguard), and is passed on so others count it too.
Swim::State::Outcome Swim::State::confirm(Member& member, const Update& update) {
  Suspicion& suspicion = *member.suspicion;
  if (update.from.empty() || update.from == suspicion.first_from ||
      !suspicion.confirmations.insert(update.from).second) {
    return Outcome::kStale;
  }
  const auto confirmations = static_cast<uint32_t>(suspicion.confirmations.size());
  suspicion_timers.erase({suspicion.deadline, &member});
  suspicion.deadline = suspicion.start + suspicion_timeout(config, live_count(), confirmations,
                                                           config.probe_interval);
  suspicion_timers.insert({suspicion.deadline, &member});
  queue.enqueue(update);
  return Outcome::kApplied;
}

void Swim::State::add_member(const Update& update, TimePoint now) {
  NodeStatus status{
      update.node_id, address_of(update), update.incarnation, MemberState::kAlive, now,
      update.tags};
  Member& member =
      members.emplace(update.node_id, Member{std::move(status), std::nullopt, {}}).first->second;
  add_live(member);
  // Forgotten while still remembered as failed (a healed partition): not failed any more.
  failed.erase(update.node_id);
  unplaced.push_back(update.node_id);
  queue.enqueue(update);
  emit(MemberEvent::Kind::kJoined, member);
}

void Swim::State::set_alive(Member& member, const Update& update, TimePoint now) {
  NodeStatus& status = member.status;
  const MemberState previous = status.state;
  const transport::Address address = address_of(update);
  const bool changed = address != status.address || update.tags != status.tags;
  status.address = address;
  status.tags = update.tags;
  status.incarnation = update.incarnation;
  set_state(member, MemberState::kAlive, now);
  queue.enqueue(update);
  if (is_down(previous)) {
    forget(status.node_id);
    unplaced.push_back(status.node_id);
    emit(MemberEvent::Kind::kJoined, member);
  } else if (previous == MemberState::kSuspect) {
    emit(MemberEvent::Kind::kAlive, member);
  } else if (changed) {
    emit(MemberEvent::Kind::kUpdated, member);
  }
}

void Swim::State::start_suspicion(Member& member, const Update& update, TimePoint now) {
  const bool was_alive = member.status.state == MemberState::kAlive;
  member.status.incarnation = update.incarnation;
  set_state(member, MemberState::kSuspect, now);
  const TimePoint deadline =
      now + suspicion_timeout(config, live_count(), 0, config.probe_interval);
  arm_suspicion(member, Suspicion{now, update.from, {}, deadline});
  queue.enqueue(update);
  if (was_alive) emit(MemberEvent::Kind::kSuspect, member);
}

void Swim::State::set_down(Member& member, const Update& update, TimePoint now) {
  const MemberState previous = member.status.state;
  member.status.incarnation = update.incarnation;
  set_state(member, update.state, now);
  if (update.state == MemberState::kDead) {
    remember_failed(member, now);
  } else {
    failed.erase(member.status.node_id);  // it meant to go: no reconnecting
  }
  queue.enqueue(update);
  // Dead after left (or the reverse) tells observers nothing new.
  if (is_down(previous)) return;
  emit(update.state == MemberState::kDead ? MemberEvent::Kind::kDead : MemberEvent::Kind::kLeft,
       member);
}

// Every change of a member's state goes through here, keeping live_others, the member
// timers and last_seen in step with it. A suspicion ends with any change (a new one is
// armed by the caller).
void Swim::State::set_state(Member& member, MemberState state, TimePoint now) {
  const MemberState previous = member.status.state;
  const bool reapable = &member != self;  // we never forget ourselves
  if (is_down(previous) && reapable) reap_timers.erase(reap_key(member));
  if (member.suspicion) {
    suspicion_timers.erase({member.suspicion->deadline, &member});
    member.suspicion.reset();
  }
  if (&member != self && is_live(previous) != is_live(state)) {
    is_live(state) ? add_live(member) : remove_live(member);
  }
  member.status.state = state;
  member.status.last_seen = now;
  if (is_down(state)) {
    member.down_since = now;
    if (reapable) reap_timers.insert(reap_key(member));
  }
}

void Swim::State::arm_suspicion(Member& member, Suspicion suspicion) {
  suspicion_timers.insert({suspicion.deadline, &member});
  member.suspicion = std::move(suspicion);
}

void Swim::State::add_live(Member& member) {
  member.live_slot = live_others.size();
  live_others.push_back(&member);
}

void Swim::State::remove_live(Member& member) {
  Member* last = live_others.back();
  live_others[member.live_slot] = last;
  last->live_slot = member.live_slot;
  live_others.pop_back();
}

void Swim::State::remember_failed(const Member& member, TimePoint now) {
  const NodeStatus& status = member.status;
  const auto it = failed.find(status.node_id);
  if (it != failed.end()) {
    // Dead again at a higher incarnation: same failure, the clock keeps running.
    it->second.address = status.address;
    it->second.incarnation = status.incarnation;
    return;
  }
  if (failed.size() >= kMaxFailed) {
    failed.erase(std::min_element(failed.begin(), failed.end(), [](const auto& a, const auto& b) {
      return a.second.since < b.second.since;
    }));
  }
  failed.emplace(status.node_id, Failed{status.address, status.incarnation, now});
}

// The member is alive again (or gone for good): nothing to reconnect to or notify.
void Swim::State::forget(const std::string& node_id) {
  failed.erase(node_id);
  notices.erase(node_id);
}

void Swim::State::refute(uint64_t claimed_incarnation, TimePoint now) {
  NodeStatus& me = self->status;
  me.incarnation = std::max(claimed_incarnation, me.incarnation) + 1;
  me.last_seen = now;
  queue.enqueue(to_update(*self));
  adjust_health(+1);  // being suspected hints that we are the slow one (Lifeguard)
  ++stats.refutations;
}

void Swim::State::suspect_locally(const std::string& node_id, TimePoint now) {
  Member* member = find_live(node_id);
  if (member == nullptr) return;
  if (member->status.state == MemberState::kAlive) ++stats.suspicions;
  Update claim = to_update(*member);
  claim.state = MemberState::kSuspect;
  claim.from = self_id;
  if (member->status.state == MemberState::kSuspect) {
    confirm(*member, claim);
  } else {
    start_suspicion(*member, claim, now);
  }
}

// ---- timers -----------------------------------------------------------------------------------

void Swim::State::tick(TimePoint now, runtime::Random& random) {
  place_new_members(random);
  reap_tombstones(now);
  run_relays(now);
  run_probe(now, random);
  expire_suspicions(now);
  if (!left() && now >= next_probe_at) start_probe(now, random);
  if (now >= next_gossip_at) {
    gossip_round(now, random);
    next_gossip_at = now + config.gossip_interval;
  }
  if (!left() && now >= next_push_pull_at) {
    push_pull_round(random);
    next_push_pull_at = now + push_pull_interval_for(config, live_count());
  }
  if (!left() && now >= next_reconnect_at) {
    reconnect_round(now, random);
    next_reconnect_at = now + config.reconnect_interval;
  }
}

// New members go to a random place among those not yet probed this round, so each is
// probed within about one round and the order stays unpredictable.
void Swim::State::place_new_members(runtime::Random& random) {
  for (std::string& node_id : unplaced) {
    if (find_live(node_id) == nullptr || !unprobed.insert(node_id).second) continue;
    const uint64_t slots = probe_order.size() - probe_index + 1;
    const size_t at = probe_index + static_cast<size_t>(random.uniform(slots));
    probe_order.insert(probe_order.begin() + static_cast<ptrdiff_t>(at), std::move(node_id));
  }
  unplaced.clear();
}

void Swim::State::reshuffle(runtime::Random& random) {
  probe_order.clear();
  for (const auto& [node_id, member] : members) {
    if (node_id != self_id && is_live(member.status.state)) probe_order.push_back(node_id);
  }
  for (size_t i = probe_order.size(); i > 1; --i) {
    std::swap(probe_order[i - 1], probe_order[random.uniform(i)]);
  }
  probe_index = 0;
  unprobed = std::set<std::string, std::less<>>(probe_order.begin(), probe_order.end());
  unplaced.clear();
}

Swim::State::Member* Swim::State::next_probe_target(runtime::Random& random) {
  for (int pass = 0; pass < 2; ++pass) {
    while (probe_index < probe_order.size()) {
      const std::string& node_id = probe_order[probe_index++];
      unprobed.erase(node_id);
      if (Member* member = find_live(node_id)) return member;
    }
    reshuffle(random);
  }
  return nullptr;
}

void Swim::State::start_probe(TimePoint now, runtime::Random& random) {
  next_probe_at = now + scaled(config.probe_interval);
  Member* target = next_probe_target(random);
  if (target == nullptr) return;
  const uint64_t seq = next_seq++;
  probe = Probe{seq, target->status.node_id, now + scaled(config.probe_timeout), next_probe_at};
  Packet ping;
  ping.type = PacketType::kPing;
  ping.seq = seq;
  ping.target_id = target->status.node_id;
  send(target->status.address, std::move(ping));
  ++stats.probes;
}

void Swim::State::run_probe(TimePoint now, runtime::Random& random) {
  if (!probe) return;
  // Gone or forgotten meanwhile: nothing left to conclude about it.
  if (find_live(probe->target_id) == nullptr) {
    probe.reset();
    return;
  }
  if (now >= probe->end_at) {
    fail_probe(now);
  } else if (!probe->indirect_sent && now >= probe->timeout_at) {
    send_ping_reqs(random);
  }
}

void Swim::State::send_ping_reqs(runtime::Random& random) {
  const Member& target = *find_live(probe->target_id);
  std::vector<const Member*> helpers;
  for (const auto& [node_id, member] : members) {
    if (node_id != self_id && node_id != probe->target_id &&
        member.status.state == MemberState::kAlive) {
      helpers.push_back(&member);
    }
  }
  sample(helpers, config.indirect_checks, random);
  for (const Member* helper : helpers) {
    Packet request;
    request.type = PacketType::kPingReq;
    request.seq = probe->seq;
    request.target_id = target.status.node_id;
    request.target_host = target.status.address.host;
    request.target_port = target.status.address.port;
    send(helper->status.address, std::move(request));
  }
  probe->indirect_sent = true;
  probe->nacks_expected = static_cast<uint32_t>(helpers.size());
  stats.indirect_probes += helpers.size();
}

void Swim::State::fail_probe(TimePoint now) {
  ++stats.probes_failed;
  // Lifeguard: with helpers, each missing nack means our own network lost it; with none,
  // the failure itself may be ours.
  const Probe& p = *probe;
  adjust_health(p.nacks_expected == 0 ? 1 : p.nacks_expected - p.nacks_received);
  const std::string target = p.target_id;
  probe.reset();
  suspect_locally(target, now);
}

void Swim::State::run_relays(TimePoint now) {
  for (auto it = relays.begin(); it != relays.end();) {
    Relay& relay = it->second;
    if (!relay.nack_sent && now >= relay.nack_at) {
      Packet nack;
      nack.type = PacketType::kNack;
      nack.seq = relay.asker_seq;
      send(relay.asker, std::move(nack));
      relay.nack_sent = true;
    }
    it = now >= relay.expires_at ? relays.erase(it) : std::next(it);
  }
}

void Swim::State::expire_suspicions(TimePoint now) {
  // set_down() removes each from suspicion_timers.
  while (!suspicion_timers.empty() && suspicion_timers.begin()->first <= now) {
    Member& member = *suspicion_timers.begin()->second;
    Update claim = to_update(member);
    claim.state = MemberState::kDead;
    claim.from = self_id;
    set_down(member, claim, now);
    ++stats.declared_dead;
  }
}

// The failed-member record (reconnect) outlives the tombstone; the notice record does not.
void Swim::State::reap_tombstones(TimePoint now) {
  while (!reap_timers.empty() && reap_timers.begin()->first <= now) {
    const std::string node_id = reap_timers.begin()->second->status.node_id;
    reap_timers.erase(reap_timers.begin());
    notices.erase(node_id);
    members.erase(node_id);
  }
}

// gossip_nodes targets drawn uniformly from the live members and the tombstones younger than
// gossip_to_the_dead, without scanning the members (this runs every gossip_interval while
// anything is queued): the live are live_others, the recently dead the newest tombstones, at
// the end of reap_timers (reap time = down_since + tombstone_ttl: down_since order).
void Swim::State::gossip_round(TimePoint now, runtime::Random& random) {
  if (queue.size() == 0) return;
  std::vector<const Member*> recently_dead;
  for (auto it = reap_timers.rbegin(); it != reap_timers.rend(); ++it) {
    if (now >= it->second->down_since + config.gossip_to_the_dead) break;
    recently_dead.push_back(it->second);
  }
  const size_t live = live_others.size();
  for (const size_t i : sample_indices(live + recently_dead.size(), config.gossip_nodes, random)) {
    const Member* target = i < live ? live_others[i] : recently_dead[i - live];
    Packet gossip;
    gossip.type = PacketType::kGossip;
    if (!send(target->status.address, std::move(gossip), /*require_updates=*/true)) break;
  }
}

void Swim::State::push_pull_round(runtime::Random& random) {
  std::vector<const Member*> candidates;
  for (const auto& [node_id, member] : members) {
    if (node_id != self_id && member.status.state == MemberState::kAlive) {
      candidates.push_back(&member);
    }
  }
  sample(candidates, 1, random);
  if (!candidates.empty()) push_pulls.push_back({candidates.front()->status.address, false});
}

// serf's reconnect: one remembered failed member, with probability failed / live others, so
// the cluster as a whole tries each failed member about once per interval; a member alive
// again answers, and the push-pull merges both sides back together (each refutes what the
// other holds about it, and the refutations spread by gossip like any update).
void Swim::State::reconnect_round(TimePoint now, runtime::Random& random) {
  std::erase_if(failed, [&](const auto& entry) {
    return now >= entry.second.since + config.reconnect_timeout;
  });
  if (failed.empty()) return;
  const size_t others = live_count() - 1;  // we are alive: not left()
  const double probability =
      others == 0 ? 1.0 : static_cast<double>(failed.size()) / static_cast<double>(others);
  if (!random.bernoulli(probability)) return;
  const auto pick =
      std::next(failed.begin(), static_cast<ptrdiff_t>(random.uniform(failed.size())));
  push_pulls.push_back({pick->second.address, false});
  ++stats.reconnects;
}

// ---- packets ----------------------------------------------------------------------------------

void Swim::State::receive(const transport::Address& from, const Packet& packet, TimePoint now,
                          runtime::Random& random) {
  ++stats.packets_received;
  if (left()) return;
  for (const Update& update : packet.updates) count(apply(update, now, packet.from_id));
  notify_if_down(from, packet, now);
  switch (packet.type) {
    case PacketType::kPing:
      on_ping(from, packet);
      break;
    case PacketType::kAck:
      on_ack(packet);
      break;
    case PacketType::kPingReq:
      on_ping_req(from, packet, now);
      break;
    case PacketType::kNack:
      on_nack(packet);
      break;
    case PacketType::kGossip:
      break;
  }
  place_new_members(random);
}

// A member we hold dead or left is talking to us (a healed partition, a pause, a restart
// under the same id): tell it at once, so that it refutes now rather than at the next
// push-pull (Lifeguard's buddy system, extended to the dead). Its own updates in the packet
// were applied first: a refutation it carried already brought it back, and a packet that
// carries our very verdict (a leaver's goodbye) needs no answer. At most once per
// probe_interval per member: enough to be heard over a lossy link, and a chatty node cannot
// make us answer every packet.
void Swim::State::notify_if_down(const transport::Address& from, const Packet& packet,
                                 TimePoint now) {
  const std::string& from_id = packet.from_id;
  if (from_id == self_id) return;
  const auto it = members.find(from_id);
  if (it == members.end() || is_live(it->second.status.state)) return;
  const NodeStatus& held = it->second.status;
  const bool knows = std::any_of(packet.updates.begin(), packet.updates.end(), [&](const auto& u) {
    return u.node_id == from_id && u.incarnation == held.incarnation && u.state == held.state;
  });
  if (knows) return;
  const auto [last, first] = notices.try_emplace(from_id, now);
  if (!first) {
    if (now < last->second + config.probe_interval) return;
    last->second = now;
  }
  Packet notice;
  notice.type = PacketType::kGossip;
  notice.updates.push_back(to_update(it->second));
  send(from, std::move(notice));
  ++stats.dead_notices;
}

void Swim::State::on_ping(const transport::Address& from, const Packet& packet) {
  // A ping meant for a previous node at our address must not make it look alive.
  if (!packet.target_id.empty() && packet.target_id != self_id) return;
  Packet ack;
  ack.type = PacketType::kAck;
  ack.seq = packet.seq;
  send(from, std::move(ack));
}

void Swim::State::on_ack(const Packet& packet) {
  if (probe && packet.seq == probe->seq) {
    probe.reset();
    adjust_health(-1);
    return;
  }
  const auto it = relays.find(packet.seq);
  if (it == relays.end()) return;  // late, or not ours
  Packet ack;
  ack.type = PacketType::kAck;
  ack.seq = it->second.asker_seq;
  const transport::Address asker = it->second.asker;
  relays.erase(it);
  send(asker, std::move(ack));
}

void Swim::State::on_nack(const Packet& packet) {
  if (!probe || packet.seq != probe->seq || !probe->indirect_sent) return;
  ++stats.nacks_received;
  probe->nacks_received = std::min(probe->nacks_received + 1, probe->nacks_expected);
}

void Swim::State::on_ping_req(const transport::Address& from, const Packet& packet, TimePoint now) {
  if (packet.target_id.empty() || packet.target_id == self_id || packet.target_port > 0xFFFF) {
    return;
  }
  if (relays.size() >= kMaxRelays) return;  // the asker counts the missing nack against itself
  const uint64_t seq = next_seq++;
  const auto nack_after = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, std::nano>(config.probe_timeout) * config.nack_fraction);
  relays.emplace(seq, Relay{from, packet.seq, now + nack_after, now + config.probe_timeout});
  Packet ping;
  ping.type = PacketType::kPing;
  ping.seq = seq;
  ping.target_id = packet.target_id;
  send({packet.target_host, static_cast<uint16_t>(packet.target_port)}, std::move(ping));
}

void Swim::State::merge_push_pull(const PushPull& state, TimePoint now) {
  if (left()) return;
  for (const Update& update : state.members) {
    if (update.state == MemberState::kDead && update.node_id != self_id) {
      // A dead entry in a full state is its sender's view, which may be stale or wrong (the
      // other half of a healed partition holds all of us dead; a node whose own network
      // failed holds everyone dead). Suspect instead, as memberlist does: a member that
      // lives refutes, one that does not is declared dead by our own timeout.
      Update suspicion = update;
      suspicion.state = MemberState::kSuspect;
      count(apply(suspicion, now, state.from_id));
      continue;
    }
    count(apply(update, now, state.from_id));
  }
}

void Swim::State::update_tags(Tags tags, TimePoint now) {
  // Unchanged tags need no new incarnation: observers would see nothing change.
  if (left() || tags == self->status.tags) return;
  self->status.tags = std::move(tags);
  ++self->status.incarnation;
  self->status.last_seen = now;
  queue.enqueue(to_update(*self));
}

void Swim::State::leave(TimePoint now) {
  if (left()) return;
  ++self->status.incarnation;
  set_state(*self, MemberState::kLeft, now);
  probe.reset();
  relays.clear();
  queue.enqueue(to_update(*self));
  // Tell every live member now, the update carried explicitly rather than through the
  // queue's retransmit count: leaving happens once, and a member that missed it would
  // suspect us and report us dead instead of left. N small packets, once.
  const Update left_update = to_update(*self);
  for (const auto& [node_id, member] : members) {
    if (find_live(node_id) == nullptr || node_id == self_id) continue;
    Packet gossip;
    gossip.type = PacketType::kGossip;
    gossip.updates.push_back(left_update);
    send(member.status.address, std::move(gossip));
  }
}

// ---- Swim -------------------------------------------------------------------------------------

Swim::Swim(SwimConfig config, NodeStatus self, runtime::TimePoint now)
    : state_(std::make_unique<State>(std::move(config), std::move(self), now)) {}

Swim::Swim(Swim&&) noexcept = default;
Swim& Swim::operator=(Swim&&) noexcept = default;
Swim::~Swim() = default;

void Swim::join(std::span<const transport::Address> seeds) {
  for (const transport::Address& seed : seeds) {
    if (seed != state_->self->status.address) state_->push_pulls.push_back({seed, true});
  }
}

void Swim::tick(runtime::TimePoint now, runtime::Random& random) { state_->tick(now, random); }

void Swim::receive(const transport::Address& from, const Packet& packet, runtime::TimePoint now,
                   runtime::Random& random) {
  state_->receive(from, packet, now, random);
}

PushPull Swim::make_push_pull(bool join) const {
  PushPull state{state_->self_id, join, {}, {}};
  state.members.reserve(state_->members.size());
  for (const auto& [node_id, member] : state_->members) {
    state.members.push_back(state_->to_update(member));
  }
  return state;
}

void Swim::merge_push_pull(const PushPull& state, runtime::TimePoint now) {
  state_->merge_push_pull(state, now);
}

void Swim::update_tags(Tags tags, runtime::TimePoint now) {
  state_->update_tags(std::move(tags), now);
}

void Swim::leave(runtime::TimePoint now) { state_->leave(now); }

std::vector<Outgoing> Swim::take_outgoing() { return std::exchange(state_->outgoing, {}); }

std::vector<PushPullRequest> Swim::take_push_pulls() {
  return std::exchange(state_->push_pulls, {});
}

std::vector<MemberEvent> Swim::take_events() { return std::exchange(state_->events, {}); }

runtime::TimePoint Swim::next_deadline() const { return state_->next_deadline(); }

const NodeStatus& Swim::self() const { return state_->self->status; }

std::vector<NodeStatus> Swim::members() const {
  std::vector<NodeStatus> all;
  all.reserve(state_->members.size());
  for (const auto& [node_id, member] : state_->members) all.push_back(member.status);
  return all;
}

std::optional<NodeStatus> Swim::member(std::string_view node_id) const {
  const auto it = state_->members.find(node_id);
  if (it == state_->members.end()) return std::nullopt;
  return it->second.status;
}

size_t Swim::live_count() const { return state_->live_count(); }

uint32_t Swim::health_score() const { return state_->health; }

size_t Swim::pending_updates() const { return state_->queue.size(); }

const SwimStats& Swim::stats() const { return state_->stats; }

const SwimConfig& Swim::config() const { return state_->config; }

}  // namespace meshrpc::membership
