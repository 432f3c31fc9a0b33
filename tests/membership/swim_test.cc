#include "meshrpc/membership/swim.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::membership {
namespace {

using runtime::Duration;
using runtime::TimePoint;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using Kind = MemberEvent::Kind;

const TimePoint kStart = TimePoint{} + hours(1);
constexpr nanoseconds kTick{1};

transport::Address address_of(size_t i) { return {"10.0.0." + std::to_string(i + 1), 7946}; }
std::string id_of(size_t i) { return "n" + std::to_string(i); }
NodeStatus self_status(size_t i) {
  return NodeStatus{id_of(i), address_of(i), 0, MemberState::kAlive, {}, {}};
}

SwimConfig lan_without_push_pull() {
  SwimConfig config = SwimConfig::lan();
  config.push_pull_interval = Duration::zero();
  return config;
}

// Answers pings, relays ping-reqs and sends nacks (when ticked), but never probes or gossips
// on its own timers: lets a test watch one prober at a time.
SwimConfig passive() {
  SwimConfig config = lan_without_push_pull();
  config.probe_interval = hours(24);
  config.gossip_interval = hours(24);
  return config;
}

Update update(size_t node, uint64_t incarnation, MemberState state, std::string from = "",
              Tags tags = {}) {
  const transport::Address address = address_of(node);
  return Update{id_of(node), address.host,    address.port,   incarnation,
                state,       std::move(tags), std::move(from)};
}

Packet gossip(size_t from, std::vector<Update> updates) {
  Packet packet;
  packet.type = PacketType::kGossip;
  packet.from_id = id_of(from);
  packet.updates = std::move(updates);
  return packet;
}

bool carries(const Packet& packet, const std::string& node_id, uint64_t incarnation,
             MemberState state) {
  return std::any_of(packet.updates.begin(), packet.updates.end(), [&](const Update& u) {
    return u.node_id == node_id && u.incarnation == incarnation && u.state == state;
  });
}

struct Sent {
  size_t from;
  size_t to;  // kNowhere for an address no node has
  TimePoint at;
  Packet packet;
  bool delivered;
};
constexpr size_t kNowhere = SIZE_MAX;

struct Seen {
  TimePoint at;
  MemberEvent event;
};

// A perfect network of Swim cores, delivered by hand in virtual time: every packet sent is
// delivered at once unless its sender or receiver has crashed or the link is cut.
class Net {
 public:
  Net(std::vector<SwimConfig> configs, uint64_t seed) {
    for (size_t i = 0; i < configs.size(); ++i) {
      nodes_.push_back(Node{std::make_unique<Swim>(configs[i], self_status(i), now_),
                            runtime::Random(seed * 1000 + i),
                            true,
                            true,
                            {}});
      index_[address_of(i)] = i;
    }
  }
  Net(size_t n, SwimConfig config, uint64_t seed = 1)
      : Net(std::vector<SwimConfig>(n, config), seed) {}

  Swim& operator[](size_t i) { return *nodes_[i].swim; }
  runtime::Random& random(size_t i) { return nodes_[i].random; }
  TimePoint now() const { return now_; }
  const std::vector<Sent>& log() const { return log_; }
  const std::vector<Seen>& events(size_t i) const { return nodes_[i].events; }
  void crash(size_t i) { nodes_[i].up = false; }
  void recover(size_t i) { nodes_[i].up = true; }
  void set_ticking(size_t i, bool ticking) { nodes_[i].ticking = ticking; }
  void cut(size_t from, size_t to) { cut_.insert({from, to}); }

  // Every other node joins through `seed` (push-pull), in order.
  void join_all(size_t seed = 0) {
    const std::vector<transport::Address> seeds{address_of(seed)};
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (i != seed) (*this)[i].join(seeds);
      flush();
    }
  }

  // A packet arriving at `to` as if `from` sent it.
  void inject(size_t to, size_t from, const Packet& packet) {
    (*this)[to].receive(address_of(from), packet, now_, random(to));
    flush();
  }

  // Runs every ticking node's timers up to `until`, delivering as it goes. With `stop`, returns
  // the first packet sent that matches it (time stops there).
  std::optional<Sent> run_until(TimePoint until,
                                const std::function<bool(const Sent&)>& stop = nullptr) {
    for (int steps = 0; steps < 10'000'000; ++steps) {
      TimePoint next = runtime::kInfiniteFuture;
      for (Node& node : nodes_) {
        if (node.up && node.ticking) next = std::min(next, node.swim->next_deadline());
      }
      if (next > until) break;
      now_ = std::max(now_, next);
      const size_t logged = log_.size();
      for (Node& node : nodes_) {
        if (node.up && node.ticking && node.swim->next_deadline() <= now_) {
          node.swim->tick(now_, node.random);
        }
      }
      flush();
      if (!stop) continue;
      for (size_t i = logged; i < log_.size(); ++i) {
        if (stop(log_[i])) return log_[i];
      }
    }
    now_ = std::max(now_, until);
    return std::nullopt;
  }
  void run_for(Duration duration) { run_until(now_ + duration); }

  // Delivers everything outgoing (and what it causes) and runs the push-pulls asked for.
  void flush() {
    for (bool busy = true; busy;) {
      busy = false;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        Node& node = nodes_[i];
        for (MemberEvent& event : node.swim->take_events()) {
          node.events.push_back(Seen{now_, std::move(event)});
        }
        for (Outgoing& out : node.swim->take_outgoing()) {
          busy = true;
          deliver(i, std::move(out));
        }
        for (const PushPullRequest& request : node.swim->take_push_pulls()) {
          busy = true;
          push_pull(i, request);
        }
      }
    }
  }

  size_t count_events(size_t observer, Kind kind, size_t about) const {
    return static_cast<size_t>(
        std::count_if(events(observer).begin(), events(observer).end(), [&](const Seen& seen) {
          return seen.event.kind == kind && seen.event.member.node_id == id_of(about);
        }));
  }

 private:
  struct Node {
    std::unique_ptr<Swim> swim;
    runtime::Random random;
    bool up = true;
    bool ticking = true;
    std::vector<Seen> events;
  };

  bool reachable(size_t from, size_t to) const {
    return to != kNowhere && nodes_[from].up && nodes_[to].up && !cut_.contains({from, to});
  }

  void deliver(size_t from, Outgoing out) {
    const auto it = index_.find(out.to);
    const size_t to = it == index_.end() ? kNowhere : it->second;
    const bool delivered = reachable(from, to);
    log_.push_back(Sent{from, to, now_, out.packet, delivered});
    if (delivered) (*this)[to].receive(address_of(from), out.packet, now_, random(to));
  }

  void push_pull(size_t from, const PushPullRequest& request) {
    const auto it = index_.find(request.to);
    const size_t to = it == index_.end() ? kNowhere : it->second;
    if (!reachable(from, to) || !reachable(to, from)) return;
    const PushPull ours = (*this)[from].make_push_pull(request.join);
    const PushPull theirs = (*this)[to].make_push_pull(false);
    (*this)[to].merge_push_pull(ours, now_);
    (*this)[from].merge_push_pull(theirs, now_);
  }

  TimePoint now_ = kStart;
  std::vector<Node> nodes_;
  std::map<transport::Address, size_t> index_;
  std::set<std::pair<size_t, size_t>> cut_;
  std::vector<Sent> log_;
};

std::function<bool(const Sent&)> probe_of(size_t prober, size_t target) {
  return [=](const Sent& sent) {
    return sent.from == prober && sent.packet.type == PacketType::kPing &&
           sent.packet.target_id == id_of(target);
  };
}

std::vector<Sent> sent_by(const Net& net, size_t from, PacketType type, TimePoint since) {
  std::vector<Sent> found;
  for (const Sent& sent : net.log()) {
    if (sent.from == from && sent.packet.type == type && sent.at >= since) found.push_back(sent);
  }
  return found;
}

MemberState state_at(Swim& swim, size_t node) {
  const std::optional<NodeStatus> member = swim.member(id_of(node));
  EXPECT_TRUE(member.has_value()) << id_of(node) << " unknown to " << swim.self().node_id;
  return member ? member->state : MemberState::kLeft;
}

// ---- join and push-pull -----------------------------------------------------------------------

TEST(SwimJoin, AsksEachSeedForAPushPullExceptItself) {
  Swim swim(SwimConfig::lan(), self_status(1), kStart);
  const std::vector<transport::Address> seeds{address_of(0), address_of(1), address_of(2)};
  swim.join(seeds);
  const std::vector<PushPullRequest> requests = swim.take_push_pulls();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].to, address_of(0));
  EXPECT_TRUE(requests[0].join);
  EXPECT_EQ(requests[1].to, address_of(2));
}

TEST(SwimJoin, PushPullWithSeedIntroducesBothSides) {
  Net net(2, lan_without_push_pull());
  net[1].join(std::vector<transport::Address>{address_of(0)});
  net.flush();
  EXPECT_EQ(state_at(net[0], 1), MemberState::kAlive);
  EXPECT_EQ(state_at(net[1], 0), MemberState::kAlive);
  EXPECT_EQ(net.count_events(0, Kind::kJoined, 1), 1u);
  EXPECT_EQ(net.count_events(1, Kind::kJoined, 0), 1u);
  EXPECT_EQ(net[0].member(id_of(1))->address, address_of(1));
  EXPECT_EQ(net[0].live_count(), 2u);
}

TEST(SwimJoin, LaterJoinersLearnEachOtherThroughGossip) {
  Net net(3, lan_without_push_pull());
  net.join_all();
  // Node 1 joined before node 2: only gossip from node 0 can tell it about node 2.
  ASSERT_FALSE(net[1].member(id_of(2)).has_value());
  net.run_for(seconds(2));
  EXPECT_EQ(state_at(net[1], 2), MemberState::kAlive);
  EXPECT_EQ(net.count_events(1, Kind::kJoined, 2), 1u);
}

TEST(SwimPushPull, IsAskedOfOneAliveMemberEveryInterval) {
  SwimConfig config = SwimConfig::lan();
  config.push_pull_interval = seconds(30);
  Net net(3, config);
  net.join_all();
  Swim& swim = net[0];
  EXPECT_LE(swim.next_deadline(), kStart + seconds(30));
  runtime::Random random(3);
  swim.tick(kStart + seconds(30), random);
  const std::vector<PushPullRequest> requests = swim.take_push_pulls();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].join);
  EXPECT_TRUE(requests[0].to == address_of(1) || requests[0].to == address_of(2));
}

TEST(SwimPushPull, SuspectEntryStartsSuspicionAndDeadEntryIsTheSendersClaim) {
  Swim swim(lan_without_push_pull(), self_status(0), kStart);
  runtime::Random random(1);
  swim.receive(address_of(1),
               gossip(1, {update(1, 0, MemberState::kAlive), update(2, 0, MemberState::kAlive)}),
               kStart, random);
  swim.merge_push_pull(PushPull{id_of(1), false, {update(2, 0, MemberState::kSuspect)}}, kStart);
  EXPECT_EQ(state_at(swim, 2), MemberState::kSuspect);
  // The entry had no claimant: the push-pull's sender is the suspecter.
  const PushPull state = swim.make_push_pull(false);
  const auto entry = std::find_if(state.members.begin(), state.members.end(),
                                  [](const Update& u) { return u.node_id == id_of(2); });
  ASSERT_NE(entry, state.members.end());
  EXPECT_EQ(entry->from, id_of(1));

  swim.merge_push_pull(PushPull{id_of(1), false, {update(2, 0, MemberState::kDead)}}, kStart);
  EXPECT_EQ(state_at(swim, 2), MemberState::kDead);
  EXPECT_EQ(swim.stats().declared_dead, 0u);  // not our own verdict
}

TEST(SwimPushPull, StateListsEveryMemberSelfAndTombstonesIncluded) {
  Swim swim(lan_without_push_pull(), self_status(0), kStart);
  runtime::Random random(1);
  swim.receive(address_of(1),
               gossip(1, {update(1, 0, MemberState::kAlive), update(2, 0, MemberState::kAlive),
                          update(2, 0, MemberState::kDead, id_of(1))}),
               kStart, random);
  const PushPull state = swim.make_push_pull(true);
  EXPECT_EQ(state.from_id, id_of(0));
  EXPECT_TRUE(state.join);
  ASSERT_EQ(state.members.size(), 3u);
  EXPECT_EQ(state.members[0].node_id, id_of(0));
  EXPECT_EQ(state.members[2].state, MemberState::kDead);
}

// ---- probes -----------------------------------------------------------------------------------

TEST(SwimProbe, AckedProbesKeepEveryoneAliveAndHealthy) {
  Net net(3, lan_without_push_pull());
  net.join_all();
  net.run_for(seconds(10));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GE(net[i].stats().probes, 9u);
    EXPECT_EQ(net[i].stats().probes_failed, 0u);
    EXPECT_EQ(net[i].stats().indirect_probes, 0u);
    EXPECT_EQ(net[i].health_score(), 0u);
    for (size_t j = 0; j < 3; ++j) EXPECT_EQ(state_at(net[i], j), MemberState::kAlive);
  }
}

TEST(SwimProbe, ProbesEveryMemberOncePerRound) {
  Net net(std::vector<SwimConfig>{lan_without_push_pull(), passive(), passive(), passive()}, 1);
  net.join_all();
  net.run_for(seconds(3) + milliseconds(1));
  const std::vector<Sent> pings = sent_by(net, 0, PacketType::kPing, kStart);
  ASSERT_EQ(pings.size(), 3u);
  std::set<std::string> targets;
  for (const Sent& ping : pings) targets.insert(ping.packet.target_id);
  EXPECT_EQ(targets, (std::set<std::string>{id_of(1), id_of(2), id_of(3)}));
}

// Node 0 probes; node 1 is the target; nodes 2-5 can help (four, so indirect_checks = 3 is a
// choice); all but node 0 are passive so that node 0's view changes only by its own probes.
class SwimProbeFailure : public ::testing::Test {
 protected:
  static constexpr size_t kProber = 0;
  static constexpr size_t kTarget = 1;
  static constexpr size_t kNodes = 6;

  SwimProbeFailure()
      : net_({lan_without_push_pull(), passive(), passive(), passive(), passive(), passive()}, 7) {
    net_.join_all();
  }

  // Runs until node 0 pings node 1; returns that ping.
  Sent run_until_target_probed() {
    std::optional<Sent> ping = net_.run_until(kStart + seconds(30), probe_of(kProber, kTarget));
    EXPECT_TRUE(ping.has_value());
    return ping.value_or(Sent{});
  }

  // Runs the failing probe to its end: returns when node 0 suspected node 1.
  TimePoint suspect_target() {
    const Sent ping = run_until_target_probed();
    net_.run_until(ping.at + seconds(1));
    EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kSuspect);
    return ping.at + seconds(1);
  }

  Net net_;
};

TEST_F(SwimProbeFailure, MissedAckSendsPingReqsThenSuspectsAtEndOfInterval) {
  net_.crash(kTarget);
  const Sent ping = run_until_target_probed();
  const TimePoint t0 = ping.at;
  net_.run_until(t0 + milliseconds(500) - kTick);
  EXPECT_TRUE(sent_by(net_, kProber, PacketType::kPingReq, t0).empty());

  net_.run_until(t0 + milliseconds(500));
  const std::vector<Sent> requests = sent_by(net_, kProber, PacketType::kPingReq, t0);
  ASSERT_EQ(requests.size(), 3u);
  std::set<size_t> helpers;
  for (const Sent& request : requests) {
    EXPECT_EQ(request.at, t0 + milliseconds(500));
    EXPECT_EQ(request.packet.seq, ping.packet.seq);
    EXPECT_EQ(request.packet.target_id, id_of(kTarget));
    EXPECT_EQ(request.packet.target_host, address_of(kTarget).host);
    EXPECT_EQ(request.packet.target_port, address_of(kTarget).port);
    EXPECT_GE(request.to, 2u);
    helpers.insert(request.to);
  }
  EXPECT_EQ(helpers.size(), 3u);
  EXPECT_EQ(net_[kProber].stats().indirect_probes, 3u);

  net_.run_until(t0 + seconds(1) - kTick);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kAlive);
  net_.run_until(t0 + seconds(1));
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kSuspect);
  ASSERT_EQ(net_.count_events(kProber, Kind::kSuspect, kTarget), 1u);
  EXPECT_EQ(net_.events(kProber).back().at, t0 + seconds(1));
  EXPECT_EQ(net_[kProber].stats().probes_failed, 1u);
  EXPECT_EQ(net_[kProber].stats().suspicions, 1u);
}

TEST_F(SwimProbeFailure, RelayedAckPreventsSuspicion) {
  net_.cut(kProber, kTarget);  // only the direct path fails
  const Sent ping = run_until_target_probed();
  net_.run_until(ping.at + seconds(1));
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kAlive);
  EXPECT_EQ(net_[kProber].stats().probes_failed, 0u);
  EXPECT_EQ(net_[kProber].stats().indirect_probes, 3u);
  EXPECT_EQ(net_.count_events(kProber, Kind::kSuspect, kTarget), 0u);
  EXPECT_EQ(net_[kProber].health_score(), 0u);
  const auto relayed = std::count_if(net_.log().begin(), net_.log().end(), [&](const Sent& s) {
    return s.to == kProber && s.from >= 2 && s.packet.type == PacketType::kAck &&
           s.packet.seq == ping.packet.seq;
  });
  EXPECT_EQ(relayed, 3);
}

TEST_F(SwimProbeFailure, NacksFromHelpersKeepHealthScoreDown) {
  net_.crash(kTarget);
  const Sent ping = run_until_target_probed();
  net_.run_until(ping.at + seconds(1));
  const std::vector<Sent> nacks = [&] {
    std::vector<Sent> found;
    for (const Sent& s : net_.log()) {
      if (s.packet.type == PacketType::kNack && s.to == kProber) found.push_back(s);
    }
    return found;
  }();
  ASSERT_EQ(nacks.size(), 3u);
  for (const Sent& nack : nacks) {
    EXPECT_EQ(nack.packet.seq, ping.packet.seq);
    EXPECT_EQ(nack.at, ping.at + milliseconds(900));  // 500 ms + 0.8 x 500 ms
  }
  EXPECT_EQ(net_[kProber].stats().nacks_received, 3u);
  EXPECT_EQ(net_[kProber].stats().probes_failed, 1u);
  EXPECT_EQ(net_[kProber].health_score(), 0u);
}

TEST_F(SwimProbeFailure, MissingNacksRaiseHealthScoreAndSlowProbing) {
  net_.crash(kTarget);
  for (size_t helper = 2; helper < kNodes; ++helper) net_.set_ticking(helper, false);
  const Sent ping = run_until_target_probed();
  const TimePoint end = ping.at + seconds(1);
  net_.run_until(end);
  EXPECT_EQ(net_[kProber].stats().nacks_received, 0u);
  // +3, one per missing nack; then -1: the probe started at `end` was acked at once.
  EXPECT_EQ(net_[kProber].health_score(), 2u);
  // The probe started at `end` runs at (score + 1) x probe_interval: the next is 4 s later.
  net_.run_until(end + seconds(4) - kTick);
  EXPECT_EQ(sent_by(net_, kProber, PacketType::kPing, end + kTick).size(), 0u);
  net_.run_until(end + seconds(4));
  EXPECT_EQ(sent_by(net_, kProber, PacketType::kPing, end + kTick).size(), 1u);
}

TEST(SwimProbe, FailureWithoutHelpersRaisesHealthByOneAndSuccessLowersIt) {
  Net net(2, lan_without_push_pull());
  net.join_all();
  net.crash(1);
  net.run_for(seconds(1) + milliseconds(1));
  EXPECT_EQ(net[0].stats().probes_failed, 0u);
  net.run_for(seconds(1));
  EXPECT_EQ(net[0].stats().probes_failed, 1u);
  EXPECT_EQ(net[0].stats().indirect_probes, 0u);
  EXPECT_EQ(net[0].health_score(), 1u);
  EXPECT_EQ(state_at(net[0], 1), MemberState::kSuspect);
  // Back (the probe sent at 2 s is lost, so one more failure comes first): acked probes
  // bring the score down again, and the suspect refutes through the buddy ping.
  net.recover(1);
  net.run_for(seconds(8));
  EXPECT_EQ(net[0].health_score(), 0u);
  EXPECT_EQ(state_at(net[0], 1), MemberState::kAlive);
  EXPECT_GE(net[0].member(id_of(1))->incarnation, 1u);
}

TEST(SwimProbe, HealthScoreIsClampedBelowAwarenessMax) {
  SwimConfig config = lan_without_push_pull();
  config.awareness_max_multiplier = 3;
  config.suspicion_mult = 30;  // keep probing the suspect long enough to fail 3 times
  Net net(2, config);
  net.join_all();
  net.crash(1);
  net.run_for(seconds(20));
  EXPECT_GE(net[0].stats().probes_failed, 3u);
  EXPECT_EQ(net[0].health_score(), 2u);
}

TEST(SwimProbe, AnswersOnlyPingsMeantForIt) {
  Swim swim(lan_without_push_pull(), self_status(0), kStart);
  runtime::Random random(1);
  Packet ping;
  ping.type = PacketType::kPing;
  ping.seq = 42;
  ping.from_id = id_of(1);
  ping.target_id = "someone-else";
  swim.receive(address_of(1), ping, kStart, random);
  EXPECT_TRUE(swim.take_outgoing().empty());
  ping.target_id = id_of(0);
  swim.receive(address_of(1), ping, kStart, random);
  const std::vector<Outgoing> out = swim.take_outgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, address_of(1));
  EXPECT_EQ(out[0].packet.type, PacketType::kAck);
  EXPECT_EQ(out[0].packet.seq, 42u);
  EXPECT_EQ(out[0].packet.from_id, id_of(0));
}

// ---- suspicion --------------------------------------------------------------------------------

TEST_F(SwimProbeFailure, SuspectBecomesDeadExactlyWhenSuspicionTimeoutPasses) {
  net_.crash(kTarget);
  const TimePoint suspected = suspect_target();
  const Duration timeout = suspicion_timeout(net_[kProber].config(), kNodes, 0, seconds(1));
  ASSERT_EQ(timeout, seconds(24));  // 6 members: 2 confirmations expected, none came
  net_.run_until(suspected + timeout - kTick);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kSuspect);
  net_.run_until(suspected + timeout);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kDead);
  ASSERT_EQ(net_.count_events(kProber, Kind::kDead, kTarget), 1u);
  EXPECT_EQ(net_.events(kProber).back().at, suspected + timeout);
  EXPECT_EQ(net_[kProber].stats().declared_dead, 1u);
  net_.run_for(seconds(1));
  const std::vector<Sent> gossips = sent_by(net_, kProber, PacketType::kGossip, suspected);
  const bool told = std::any_of(gossips.begin(), gossips.end(), [](const Sent& s) {
    return std::any_of(s.packet.updates.begin(), s.packet.updates.end(), [](const Update& u) {
      return u.node_id == id_of(kTarget) && u.state == MemberState::kDead && u.from == id_of(0);
    });
  });
  EXPECT_TRUE(told);
}

TEST_F(SwimProbeFailure, EachIndependentConfirmationShrinksTheTimeout) {
  net_.crash(kTarget);
  const TimePoint suspected = suspect_target();
  net_.run_until(suspected + seconds(1));
  // Confirmations from two distinct members, then a repeat that must not count.
  const uint64_t stale = net_[kProber].stats().updates_stale;
  for (size_t confirmer : {2, 3, 3}) {
    net_.inject(kProber, confirmer,
                gossip(confirmer, {update(kTarget, 0, MemberState::kSuspect, id_of(confirmer))}));
  }
  EXPECT_EQ(net_[kProber].stats().updates_stale, stale + 1);
  // Two of two expected confirmations: the minimum.
  const Duration timeout = suspicion_timeout(net_[kProber].config(), kNodes, 2, seconds(1));
  ASSERT_EQ(timeout, seconds(4));
  net_.run_until(suspected + timeout - kTick);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kSuspect);
  net_.run_until(suspected + timeout);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kDead);
}

TEST_F(SwimProbeFailure, OneConfirmationGivesTheLifeguardTimeout) {
  net_.crash(kTarget);
  const TimePoint suspected = suspect_target();
  net_.run_until(suspected + seconds(1));
  net_.inject(kProber, 4, gossip(4, {update(kTarget, 0, MemberState::kSuspect, id_of(4))}));
  const Duration timeout = suspicion_timeout(net_[kProber].config(), kNodes, 1, seconds(1));
  ASSERT_EQ(timeout, nanoseconds(11'381'404'929));
  net_.run_until(suspected + timeout - kTick);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kSuspect);
  net_.run_until(suspected + timeout);
  EXPECT_EQ(state_at(net_[kProber], kTarget), MemberState::kDead);
}

TEST(SwimRefute, HearingItIsSuspectedBumpsIncarnationAndRaisesHealth) {
  Swim swim(lan_without_push_pull(), self_status(0), kStart);
  runtime::Random random(1);
  swim.receive(address_of(1), gossip(1, {update(0, 0, MemberState::kSuspect, id_of(1))}), kStart,
               random);
  EXPECT_EQ(swim.self().incarnation, 1u);
  EXPECT_EQ(swim.self().state, MemberState::kAlive);
  EXPECT_EQ(swim.health_score(), 1u);
  EXPECT_EQ(swim.stats().refutations, 1u);
  EXPECT_TRUE(swim.take_events().empty());  // never events about ourselves
  // Dead at a higher incarnation: refuted above it.
  swim.receive(address_of(1), gossip(1, {update(0, 5, MemberState::kDead, id_of(1))}), kStart,
               random);
  EXPECT_EQ(swim.self().incarnation, 6u);
  EXPECT_EQ(swim.stats().refutations, 2u);
  // An accusation older than our incarnation was refuted already.
  swim.receive(address_of(1), gossip(1, {update(0, 3, MemberState::kSuspect, id_of(1))}), kStart,
               random);
  EXPECT_EQ(swim.self().incarnation, 6u);
  EXPECT_EQ(swim.stats().refutations, 2u);
}

TEST(SwimRefute, RefutationWinsEverywhere) {
  Net net(4, lan_without_push_pull());
  net.join_all();
  net.run_for(seconds(5));
  // Node 2 tells node 0 it suspects node 1 (wrongly).
  net.inject(0, 2, gossip(2, {update(1, 0, MemberState::kSuspect, id_of(2))}));
  EXPECT_EQ(state_at(net[0], 1), MemberState::kSuspect);
  net.run_for(seconds(5));
  EXPECT_EQ(net[1].self().incarnation, 1u);
  EXPECT_EQ(net[1].stats().refutations, 1u);
  for (size_t i = 0; i < 4; ++i) {
    const NodeStatus seen = net[i].member(id_of(1)).value();
    EXPECT_EQ(seen.state, MemberState::kAlive) << "at " << id_of(i);
    EXPECT_EQ(seen.incarnation, 1u) << "at " << id_of(i);
    EXPECT_EQ(net.count_events(i, Kind::kDead, 1), 0u);
  }
  EXPECT_EQ(net.count_events(0, Kind::kSuspect, 1), 1u);
  EXPECT_EQ(net.count_events(0, Kind::kAlive, 1), 1u);
}

TEST(SwimBuddy, PingToSuspectCarriesTheSuspicionFirst) {
  SwimConfig prober = lan_without_push_pull();
  prober.gossip_interval = hours(24);  // only probes carry updates
  Net net(std::vector<SwimConfig>{prober, passive(), passive()}, 3);
  net.join_all();
  net.inject(0, 2, gossip(2, {update(1, 0, MemberState::kSuspect, id_of(2))}));
  // A fresher update of node 0's own would go first without the buddy rule.
  net[0].update_tags({{"role", "prober"}}, net.now());
  const std::optional<Sent> ping = net.run_until(kStart + seconds(10), probe_of(0, 1));
  ASSERT_TRUE(ping.has_value());
  ASSERT_FALSE(ping->packet.updates.empty());
  EXPECT_EQ(ping->packet.updates[0].node_id, id_of(1));
  EXPECT_EQ(ping->packet.updates[0].state, MemberState::kSuspect);
  // The suspect refuted at once, and its ack carried the refutation back.
  EXPECT_EQ(net[1].self().incarnation, 1u);
  EXPECT_EQ(state_at(net[0], 1), MemberState::kAlive);
  EXPECT_EQ(net[0].member(id_of(1))->incarnation, 1u);
}

// ---- precedence -------------------------------------------------------------------------------

class SwimPrecedence : public ::testing::Test {
 protected:
  void hear(std::vector<Update> updates) {
    swim_.receive(address_of(9), gossip(9, std::move(updates)), now_, random_);
  }
  std::vector<Kind> kinds() {
    std::vector<Kind> kinds;
    for (const MemberEvent& event : swim_.take_events()) kinds.push_back(event.kind);
    return kinds;
  }

  TimePoint now_ = kStart;
  runtime::Random random_{1};
  Swim swim_{lan_without_push_pull(), self_status(0), kStart};
};

TEST_F(SwimPrecedence, DeadTombstoneIgnoresAliveAtSameOrLowerIncarnation) {
  hear({update(1, 3, MemberState::kAlive)});
  hear({update(1, 3, MemberState::kDead, id_of(9))});
  EXPECT_THAT(kinds(), ::testing::ElementsAre(Kind::kJoined, Kind::kDead));
  hear({update(1, 3, MemberState::kAlive)});
  hear({update(1, 2, MemberState::kAlive)});
  hear({update(1, 3, MemberState::kSuspect, id_of(9))});
  EXPECT_EQ(state_at(swim_, 1), MemberState::kDead);
  EXPECT_EQ(swim_.stats().updates_stale, 3u);
  EXPECT_TRUE(kinds().empty());
}

TEST_F(SwimPrecedence, DeadOrLeftMemberRejoinsWithHigherIncarnation) {
  hear({update(1, 3, MemberState::kAlive), update(2, 0, MemberState::kAlive)});
  hear({update(1, 3, MemberState::kDead, id_of(9)), update(2, 1, MemberState::kLeft, id_of(2))});
  EXPECT_THAT(kinds(),
              ::testing::ElementsAre(Kind::kJoined, Kind::kJoined, Kind::kDead, Kind::kLeft));
  hear({update(1, 4, MemberState::kAlive), update(2, 2, MemberState::kAlive)});
  EXPECT_THAT(kinds(), ::testing::ElementsAre(Kind::kJoined, Kind::kJoined));
  EXPECT_EQ(state_at(swim_, 1), MemberState::kAlive);
  EXPECT_EQ(swim_.member(id_of(2))->incarnation, 2u);
}

TEST_F(SwimPrecedence, LowerIncarnationIsStale) {
  hear({update(1, 5, MemberState::kAlive)});
  const uint64_t applied = swim_.stats().updates_applied;
  hear({update(1, 4, MemberState::kSuspect, id_of(9))});
  hear({update(1, 4, MemberState::kDead, id_of(9))});
  EXPECT_EQ(state_at(swim_, 1), MemberState::kAlive);
  EXPECT_EQ(swim_.member(id_of(1))->incarnation, 5u);
  EXPECT_EQ(swim_.stats().updates_stale, 2u);
  EXPECT_EQ(swim_.stats().updates_applied, applied);
  EXPECT_THAT(kinds(), ::testing::ElementsAre(Kind::kJoined));
}

TEST_F(SwimPrecedence, EqualIncarnationMoreSevereStateWins) {
  hear({update(1, 2, MemberState::kAlive)});
  now_ += seconds(1);
  hear({update(1, 2, MemberState::kSuspect, id_of(9))});
  EXPECT_EQ(state_at(swim_, 1), MemberState::kSuspect);
  EXPECT_EQ(swim_.member(id_of(1))->last_seen, now_);
  hear({update(1, 2, MemberState::kAlive)});  // less severe: stale
  EXPECT_EQ(state_at(swim_, 1), MemberState::kSuspect);
  hear({update(1, 3, MemberState::kAlive, "", {{"zone", "b"}})});
  EXPECT_THAT(kinds(), ::testing::ElementsAre(Kind::kJoined, Kind::kSuspect, Kind::kAlive));
  hear({update(1, 4, MemberState::kAlive, "", {{"zone", "c"}})});
  hear({update(1, 5, MemberState::kAlive, "", {{"zone", "c"}})});  // nothing visible changed
  EXPECT_THAT(kinds(), ::testing::ElementsAre(Kind::kUpdated));
}

TEST_F(SwimPrecedence, SuspectOrDeadAboutUnknownNodeIsIgnored) {
  hear({update(1, 0, MemberState::kSuspect, id_of(9)), update(2, 0, MemberState::kDead)});
  EXPECT_FALSE(swim_.member(id_of(1)).has_value());
  EXPECT_FALSE(swim_.member(id_of(2)).has_value());
  EXPECT_TRUE(kinds().empty());
}

TEST_F(SwimPrecedence, TombstoneIsReapedAfterTtlWithoutEvent) {
  hear({update(1, 3, MemberState::kAlive)});
  now_ += seconds(1);
  hear({update(1, 3, MemberState::kDead, id_of(9))});
  kinds();
  const TimePoint reap = now_ + swim_.config().tombstone_ttl;
  EXPECT_LE(swim_.next_deadline(), reap);
  swim_.tick(reap - kTick, random_);
  EXPECT_TRUE(swim_.member(id_of(1)).has_value());
  swim_.tick(reap, random_);
  EXPECT_FALSE(swim_.member(id_of(1)).has_value());
  EXPECT_TRUE(kinds().empty());
  // Forgotten: any alive claim now introduces it afresh.
  now_ = reap;
  hear({update(1, 0, MemberState::kAlive)});
  EXPECT_THAT(kinds(), ::testing::ElementsAre(Kind::kJoined));
}

// ---- tags and leaving -------------------------------------------------------------------------

TEST(SwimTags, UpdateTagsIsOneIncarnationBumpAndOneUpdate) {
  Net net(4, lan_without_push_pull());
  net.join_all();
  net.run_for(seconds(10));
  ASSERT_EQ(net[1].pending_updates(), 0u);
  const TimePoint changed = net.now();
  const Tags tags{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  net[1].update_tags(tags, changed);
  EXPECT_EQ(net[1].self().incarnation, 1u);
  EXPECT_EQ(net[1].self().tags, tags);
  EXPECT_EQ(net[1].pending_updates(), 1u);
  net.run_for(seconds(5));
  for (size_t i : {0, 2, 3}) {
    std::vector<MemberEvent> about;
    for (const Seen& seen : net.events(i)) {
      if (seen.at >= changed && seen.event.member.node_id == id_of(1)) about.push_back(seen.event);
    }
    ASSERT_EQ(about.size(), 1u) << "at " << id_of(i);
    EXPECT_EQ(about[0].kind, Kind::kUpdated);
    EXPECT_EQ(about[0].member.tags, tags);
    EXPECT_EQ(about[0].member.incarnation, 1u);
  }
  for (const Sent& sent : net.log()) {
    for (const Update& u : sent.packet.updates) {
      if (sent.at >= changed && u.node_id == id_of(1)) {
        EXPECT_EQ(u.tags, tags);
      }
    }
  }
}

TEST(SwimLeave, PeersSeeLeftAndTheLeaverAnswersNothing) {
  Net net(4, lan_without_push_pull());
  net.join_all();
  net.run_for(seconds(5));
  const uint64_t probes = net[1].stats().probes;
  net[1].leave(net.now());
  EXPECT_EQ(net[1].self().state, MemberState::kLeft);
  EXPECT_EQ(net[1].self().incarnation, 1u);
  net.flush();
  net.run_for(seconds(10));
  for (size_t i : {0, 2, 3}) {
    EXPECT_EQ(state_at(net[i], 1), MemberState::kLeft) << "at " << id_of(i);
    EXPECT_EQ(net.count_events(i, Kind::kLeft, 1), 1u);
    EXPECT_EQ(net.count_events(i, Kind::kDead, 1), 0u);
    EXPECT_EQ(net.count_events(i, Kind::kSuspect, 1), 0u);
    EXPECT_EQ(net[i].live_count(), 3u);
  }
  EXPECT_EQ(net[1].stats().probes, probes);
  EXPECT_TRUE(net[1].take_events().empty());
  Packet ping;
  ping.type = PacketType::kPing;
  ping.seq = 9;
  ping.target_id = id_of(1);
  net[1].receive(address_of(0), ping, net.now(), net.random(1));
  EXPECT_TRUE(net[1].take_outgoing().empty());
}

// ---- dissemination ----------------------------------------------------------------------------

TEST(SwimDissemination, EachUpdateIsSentRetransmitLimitTimes) {
  Net net(4, lan_without_push_pull());
  net.join_all();
  net.run_for(seconds(10));
  const TimePoint changed = net.now();
  net[2].update_tags({{"k", "v"}}, changed);
  net.run_for(seconds(20));
  const uint32_t limit = retransmit_limit(net[0].config(), 4);
  ASSERT_EQ(limit, 4u);
  for (size_t i = 0; i < 4; ++i) {
    const auto sends = std::count_if(net.log().begin(), net.log().end(), [&](const Sent& s) {
      return s.from == i && s.at >= changed && carries(s.packet, id_of(2), 1, MemberState::kAlive);
    });
    EXPECT_EQ(sends, static_cast<int64_t>(limit)) << "by " << id_of(i);
    EXPECT_EQ(net[i].pending_updates(), 0u);
  }
  // Once the update is retired mid-round, the round's remaining targets get no empty packet.
  for (const Sent& sent : net.log()) {
    if (sent.packet.type == PacketType::kGossip) {
      EXPECT_FALSE(sent.packet.updates.empty());
    }
  }
}

TEST(SwimDissemination, NoGossipWhenNothingIsPending) {
  Net net(3, lan_without_push_pull());
  net.join_all();
  net.run_for(seconds(10));
  ASSERT_EQ(net[0].pending_updates(), 0u);
  const TimePoint quiet = net.now();
  net.run_for(seconds(10));
  EXPECT_TRUE(sent_by(net, 0, PacketType::kGossip, quiet).empty());
  EXPECT_FALSE(sent_by(net, 0, PacketType::kPing, quiet).empty());
}

TEST(SwimDissemination, PacketsNeverExceedMaxPacketBytes) {
  for (const size_t max_bytes : {size_t{1400}, size_t{512}}) {
    SwimConfig config = lan_without_push_pull();
    config.max_packet_bytes = max_bytes;
    Swim swim(config, self_status(0), kStart);
    runtime::Random random(5);
    PushPull state{id_of(1), false, {}};
    for (size_t i = 1; i <= 300; ++i) {
      state.members.push_back(update(i, 7, MemberState::kAlive, "",
                                     {{"zone", "zone-" + std::to_string(i)}, {"role", "storage"}}));
    }
    swim.merge_push_pull(state, kStart);
    ASSERT_EQ(swim.pending_updates(), 301u);
    size_t largest = 0;
    std::set<std::string> sent;
    for (TimePoint now = kStart; now < kStart + seconds(30); now += milliseconds(100)) {
      swim.tick(now, random);
      for (const Outgoing& out : swim.take_outgoing()) {
        const size_t bytes = codec::encoded_size(out.packet);
        EXPECT_LE(bytes, max_bytes);
        largest = std::max(largest, bytes);
        for (const Update& u : out.packet.updates) sent.insert(u.node_id);
      }
    }
    EXPECT_GT(largest, max_bytes - 80) << "packets are not being filled";
    EXPECT_EQ(sent.size(), 301u);
  }
}

// ---- whole-cluster runs -----------------------------------------------------------------------

std::string describe(const Sent& sent) {
  std::string text = std::to_string(sent.at.time_since_epoch().count()) + " " + id_of(sent.from) +
                     ">" + std::to_string(sent.to) + " t" +
                     std::to_string(static_cast<int>(sent.packet.type)) + " s" +
                     std::to_string(sent.packet.seq) + " " + sent.packet.target_id;
  for (const Update& u : sent.packet.updates) {
    text += " [" + u.node_id + " " + std::to_string(u.incarnation) + " " +
            std::string(member_state_name(u.state)) + " " + u.from + "]";
  }
  return text;
}

std::vector<std::string> trace(uint64_t seed) {
  Net net(5, SwimConfig::lan(), seed);
  net.join_all();
  net.run_for(seconds(20));
  net.crash(4);
  net.run_for(seconds(40));
  std::vector<std::string> lines;
  for (const Sent& sent : net.log()) lines.push_back(describe(sent));
  return lines;
}

TEST(SwimDeterminism, SameSeedAndInputsGiveIdenticalOutput) {
  const std::vector<std::string> first = trace(11);
  EXPECT_GT(first.size(), 100u);
  EXPECT_EQ(first, trace(11));
  EXPECT_NE(first, trace(12));  // the draws do matter
}

TEST(SwimCluster, TenNodesConvergeThenAllDetectACrashedOne) {
  constexpr size_t kNodes = 10;
  constexpr size_t kCrashed = 9;
  constexpr uint64_t kSeed = 2024;
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  Net net(kNodes, SwimConfig::lan(), kSeed);
  net.join_all();
  net.run_for(seconds(60));
  for (size_t i = 0; i < kNodes; ++i) {
    ASSERT_EQ(net[i].members().size(), kNodes) << "at " << id_of(i);
    EXPECT_EQ(net[i].live_count(), kNodes) << "at " << id_of(i);
    EXPECT_EQ(net[i].health_score(), 0u) << "at " << id_of(i);
    for (size_t j = 0; j < kNodes; ++j) {
      EXPECT_EQ(net.count_events(i, Kind::kSuspect, j), 0u) << id_of(i) << " suspected " << j;
    }
  }

  const TimePoint crash = net.now();
  net.crash(kCrashed);
  // Found by some probe within a few rounds, dead after at most the longest suspicion.
  const SwimConfig& config = net[0].config();
  const Duration bound =
      suspicion_timeout(config, kNodes, 0, config.probe_interval) + 5 * config.probe_interval;
  net.run_until(crash + bound);
  for (size_t i = 0; i < kNodes; ++i) {
    if (i == kCrashed) continue;
    EXPECT_EQ(state_at(net[i], kCrashed), MemberState::kDead) << "at " << id_of(i);
    EXPECT_EQ(net.count_events(i, Kind::kDead, kCrashed), 1u) << "at " << id_of(i);
    for (size_t j = 0; j + 1 < kNodes; ++j) {
      EXPECT_EQ(state_at(net[i], j), MemberState::kAlive) << id_of(i) << " about " << j;
    }
  }
  // And it is forgotten tombstone_ttl later.
  net.run_for(config.tombstone_ttl + seconds(1));
  EXPECT_FALSE(net[0].member(id_of(kCrashed)).has_value());
}

}  // namespace
}  // namespace meshrpc::membership
