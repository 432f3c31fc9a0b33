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
#include "src/membership/swim_dissemination.h"

namespace meshrpc::membership {
namespace {

using runtime::Duration;
using runtime::TimePoint;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
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
  // Cuts every link between the two groups, both ways: a network partition.
  void partition(const std::vector<size_t>& left, const std::vector<size_t>& right) {
    for (size_t a : left) {
      for (size_t b : right) {
        cut(a, b);
        cut(b, a);
      }
    }
  }
  void heal() { cut_.clear(); }
  size_t size() const { return nodes_.size(); }
  bool up(size_t i) const { return nodes_[i].up; }

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

  // In the driver's order (cluster.cc): the answerer merges the request, then replies with
  // its state as merged, and the requester merges the reply.
  void push_pull(size_t from, const PushPullRequest& request) {
    const auto it = index_.find(request.to);
    const size_t to = it == index_.end() ? kNowhere : it->second;
    if (!reachable(from, to) || !reachable(to, from)) return;
    const PushPull ours = (*this)[from].make_push_pull(request.join);
    (*this)[to].merge_push_pull(ours, now_);
    const PushPull theirs = (*this)[to].make_push_pull(false);
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

TEST(SwimPushPull, IntervalStretchesWithTheClusterAbove32Members) {
  SwimConfig config = passive();
  config.push_pull_interval = seconds(30);
  config.reconnect_interval = Duration::zero();
  Swim swim(config, self_status(0), kStart);
  runtime::Random random(3);
  std::vector<Update> alive;
  for (size_t i = 1; i <= 40; ++i) alive.push_back(update(i, 0, MemberState::kAlive));
  swim.receive(address_of(1), gossip(1, alive), kStart, random);
  ASSERT_EQ(swim.live_count(), 41u);
  ASSERT_EQ(push_pull_interval_for(config, 41), seconds(60));
  EXPECT_EQ(swim.next_deadline(), kStart + seconds(30));  // scheduled when alone
  swim.tick(kStart + seconds(30), random);
  EXPECT_EQ(swim.take_push_pulls().size(), 1u);
  EXPECT_EQ(swim.next_deadline(), kStart + seconds(90));
  swim.tick(kStart + seconds(90), random);
  EXPECT_EQ(swim.take_push_pulls().size(), 1u);
}

TEST(SwimPushPull, SuspectEntryStartsSuspicionWithTheSenderAsClaimant) {
  Swim swim(lan_without_push_pull(), self_status(0), kStart);
  runtime::Random random(1);
  swim.receive(address_of(1),
               gossip(1, {update(1, 0, MemberState::kAlive), update(2, 0, MemberState::kAlive)}),
               kStart, random);
  swim.merge_push_pull(PushPull{id_of(1), false, {update(2, 0, MemberState::kSuspect)}, {}},
                       kStart);
  EXPECT_EQ(state_at(swim, 2), MemberState::kSuspect);
  // The entry had no claimant: the push-pull's sender is the suspecter.
  const PushPull state = swim.make_push_pull(false);
  const auto entry = std::find_if(state.members.begin(), state.members.end(),
                                  [](const Update& u) { return u.node_id == id_of(2); });
  ASSERT_NE(entry, state.members.end());
  EXPECT_EQ(entry->from, id_of(1));
}

TEST(SwimPushPull, DeadEntryOnlySuspectsSoALiveMemberCanRefute) {
  Swim swim(lan_without_push_pull(), self_status(0), kStart);
  runtime::Random random(1);
  swim.receive(address_of(1),
               gossip(1, {update(1, 0, MemberState::kAlive), update(2, 0, MemberState::kAlive),
                          update(3, 0, MemberState::kAlive)}),
               kStart, random);
  swim.take_events();
  swim.merge_push_pull(
      PushPull{id_of(1),
               false,
               {update(2, 0, MemberState::kDead), update(3, 4, MemberState::kDead)},
               {}},
      kStart);
  EXPECT_EQ(state_at(swim, 2), MemberState::kSuspect);
  EXPECT_EQ(state_at(swim, 3), MemberState::kSuspect);
  EXPECT_EQ(swim.member(id_of(3))->incarnation, 4u);
  EXPECT_EQ(swim.stats().declared_dead, 0u);
  // n2 refutes; n3 stays silent and our own timeout declares it.
  swim.receive(address_of(2), gossip(2, {update(2, 1, MemberState::kAlive)}), kStart + kTick,
               random);
  EXPECT_EQ(state_at(swim, 2), MemberState::kAlive);
  const Duration max = suspicion_timeout(SwimConfig::lan(), 4, 0, SwimConfig::lan().probe_interval);
  swim.tick(kStart + max + kTick, random);
  EXPECT_EQ(state_at(swim, 3), MemberState::kDead);
  EXPECT_EQ(swim.stats().declared_dead, 1u);
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
    PushPull state{id_of(1), false, {}, {}};
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

std::vector<std::string> node_ids(const std::vector<Update>& updates) {
  std::vector<std::string> ids;
  for (const Update& u : updates) ids.push_back(u.node_id);
  return ids;
}

TEST(UpdateQueue, TakesLeastTransmittedFirstAndNewestFirstAmongEquals) {
  UpdateQueue queue;
  for (size_t i : {1, 2, 3}) queue.enqueue(update(i, 0, MemberState::kAlive));
  const size_t one = UpdateQueue::piggyback_bytes(update(1, 0, MemberState::kAlive));
  std::vector<Update> out;
  queue.take(out, 2 * one, 10, "");
  EXPECT_THAT(node_ids(out), ::testing::ElementsAre(id_of(3), id_of(2)));
  out.clear();
  queue.enqueue(update(4, 0, MemberState::kAlive));
  queue.take(out, 10 * one, 10, "");
  // Never sent first (4 newer than 1), then the once-sent (3 newer than 2).
  EXPECT_THAT(node_ids(out), ::testing::ElementsAre(id_of(4), id_of(1), id_of(3), id_of(2)));
  EXPECT_EQ(queue.transmissions(id_of(3)), 2);
  EXPECT_EQ(queue.transmissions(id_of(4)), 1);
  // Replacing an update restarts its count.
  queue.enqueue(update(3, 1, MemberState::kAlive));
  EXPECT_EQ(queue.transmissions(id_of(3)), 0);
  EXPECT_EQ(queue.size(), 4u);
}

TEST(UpdateQueue, PassesOverAnUpdateTooBigForWhatIsLeftAndSkipsTheBuddysNode) {
  UpdateQueue queue;
  queue.enqueue(update(1, 0, MemberState::kAlive));
  queue.enqueue(update(2, 0, MemberState::kAlive, "", {{"big", std::string(200, 'x')}}));
  queue.enqueue(update(3, 0, MemberState::kAlive));
  const size_t small = UpdateQueue::piggyback_bytes(update(1, 0, MemberState::kAlive));
  std::vector<Update> out;
  queue.take(out, 2 * small + 10, 10, id_of(3));
  EXPECT_THAT(node_ids(out), ::testing::ElementsAre(id_of(1)));
  EXPECT_EQ(queue.transmissions(id_of(2)), 0);
  EXPECT_EQ(queue.transmissions(id_of(3)), 0);
}

TEST(UpdateQueue, DropsAnUpdateOnceSentLimitTimesOrOnceTheLimitFallsBelowItsCount) {
  UpdateQueue queue;
  queue.enqueue(update(1, 0, MemberState::kAlive));
  queue.enqueue(update(2, 0, MemberState::kAlive));
  std::vector<Update> out;
  const size_t one = UpdateQueue::piggyback_bytes(update(1, 0, MemberState::kAlive));
  for (int i = 0; i < 3; ++i) queue.take(out, one, 4, "");  // 2, 1, 2: node 2 sent twice
  EXPECT_EQ(queue.transmissions(id_of(2)), 2);
  EXPECT_EQ(queue.transmissions(id_of(1)), 1);
  queue.take(out, 0, 2, "");  // the member count fell: limit 2
  EXPECT_EQ(queue.transmissions(id_of(2)), -1);
  EXPECT_EQ(queue.transmissions(id_of(1)), 1);
  queue.take(out, one, 2, "");
  EXPECT_EQ(queue.size(), 0u);
}

TEST(UpdateQueue, StopsLookingPastUpdatesThatDoNotFitAfterKMaxMisfits) {
  const Tags big{{"big", std::string(200, 'x')}};
  for (const size_t misfits : {UpdateQueue::kMaxMisfits - 1, UpdateQueue::kMaxMisfits}) {
    UpdateQueue queue;
    queue.enqueue(update(0, 0, MemberState::kAlive));  // the oldest: taken last
    for (size_t i = 1; i <= misfits; ++i) queue.enqueue(update(i, 0, MemberState::kAlive, "", big));
    std::vector<Update> out;
    queue.take(out, 100, 10, "");
    EXPECT_EQ(out.size(), misfits < UpdateQueue::kMaxMisfits ? 1u : 0u) << misfits;
  }
}

// ---- partition heal: reconnecting to failed members -------------------------------------------

// One core whose only timers are reconnect rounds and tombstone reaping; the test plays the
// rest of the cluster by hand.
class SwimReconnect : public ::testing::Test {
 protected:
  struct Asked {
    TimePoint at;
    PushPullRequest request;
  };
  static SwimConfig config() {
    SwimConfig config = passive();
    config.reconnect_interval = seconds(30);
    config.reconnect_timeout = minutes(5);
    config.tombstone_ttl = seconds(10);
    return config;
  }

  explicit SwimReconnect(SwimConfig config = SwimReconnect::config())
      : swim_(std::move(config), self_status(0), kStart) {}

  void hear(std::vector<Update> updates) {
    swim_.receive(address_of(99), gossip(99, std::move(updates)), now_, random_);
  }
  // Runs the core's timers up to `until`: the push-pulls it asked for, by when.
  std::vector<Asked> run_until(TimePoint until) {
    std::vector<Asked> asked;
    while (swim_.next_deadline() <= until) {
      now_ = std::max(now_, swim_.next_deadline());
      swim_.tick(now_, random_);
      for (const PushPullRequest& request : swim_.take_push_pulls()) {
        asked.push_back(Asked{now_, request});
      }
    }
    now_ = until;
    return asked;
  }
  // The alive members 1..n, then node 1 declared dead by a member.
  void one_dead_among(size_t n) {
    std::vector<Update> alive;
    for (size_t i = 1; i <= n; ++i) alive.push_back(update(i, 0, MemberState::kAlive));
    hear(alive);
    hear({update(1, 0, MemberState::kDead, id_of(2))});
  }

  TimePoint now_ = kStart;
  runtime::Random random_{17};
  Swim swim_;
};

TEST_F(SwimReconnect, AsksAFailedMemberForAPushPullEveryIntervalEvenAfterItsTombstoneIsReaped) {
  one_dead_among(2);  // one failed, one live other: probability 1
  std::vector<Asked> asked = run_until(kStart + seconds(30) - kTick);
  EXPECT_TRUE(asked.empty());
  EXPECT_FALSE(swim_.member(id_of(1)).has_value());  // reaped at 10 s
  EXPECT_EQ(swim_.next_deadline(), kStart + seconds(30));
  asked = run_until(kStart + seconds(90));
  ASSERT_EQ(asked.size(), 3u);
  for (size_t i = 0; i < asked.size(); ++i) {
    EXPECT_EQ(asked[i].at, kStart + seconds(30) * static_cast<int64_t>(i + 1));
    EXPECT_EQ(asked[i].request.to, address_of(1));
    EXPECT_FALSE(asked[i].request.join);
  }
  EXPECT_EQ(swim_.stats().reconnects, 3u);
}

TEST_F(SwimReconnect, ForgetsAFailedMemberAfterReconnectTimeout) {
  one_dead_among(2);
  const std::vector<Asked> asked = run_until(kStart + minutes(10));
  ASSERT_FALSE(asked.empty());
  // Held dead since kStart: the last attempt is the last round before kStart + 5 min.
  EXPECT_EQ(asked.back().at, kStart + minutes(5) - seconds(30));
  EXPECT_EQ(asked.size(), 9u);
}

TEST_F(SwimReconnect, NeverAsksAMemberThatLeft) {
  hear({update(1, 0, MemberState::kAlive), update(2, 0, MemberState::kAlive),
        update(3, 0, MemberState::kAlive)});
  hear({update(1, 1, MemberState::kLeft, id_of(1))});
  // Dead first, then learned to have left: it meant to go after all.
  hear({update(2, 0, MemberState::kDead, id_of(3))});
  hear({update(2, 1, MemberState::kLeft, id_of(2))});
  EXPECT_TRUE(run_until(kStart + minutes(3)).empty());
}

TEST_F(SwimReconnect, NoLongerAsksAMemberAliveAgain) {
  one_dead_among(3);
  hear({update(3, 0, MemberState::kDead, id_of(2))});
  // Node 1 refutes while its tombstone stands; node 3 is reaped, then heard of afresh.
  hear({update(1, 1, MemberState::kAlive)});
  run_until(kStart + seconds(20));
  ASSERT_FALSE(swim_.member(id_of(3)).has_value());
  hear({update(3, 0, MemberState::kAlive)});
  EXPECT_TRUE(run_until(kStart + minutes(3)).empty());
}

class SwimReconnectLongMemory : public SwimReconnect {
 protected:
  static SwimConfig config() {
    SwimConfig config = SwimReconnect::config();
    config.reconnect_timeout = hours(24);
    return config;
  }
  SwimReconnectLongMemory() : SwimReconnect(config()) {}
};

TEST_F(SwimReconnectLongMemory, AttemptsScaleWithFailedOverLiveOthers) {
  constexpr size_t kAlive = 20;
  constexpr int kIntervals = 400;
  one_dead_among(kAlive + 1);  // node 1 dead, nodes 2..21 alive
  ASSERT_EQ(swim_.live_count(), kAlive + 1);
  const std::vector<Asked> asked = run_until(kStart + seconds(30) * kIntervals);
  // Expected kIntervals x 1 / 20 = 20 (binomial, sd 4.4); asking every interval would be 400.
  EXPECT_GE(asked.size(), 8u);
  EXPECT_LE(asked.size(), 35u);
  for (const Asked& a : asked) EXPECT_EQ(a.request.to, address_of(1));
}

TEST(SwimReconnectOff, ZeroIntervalNeverAsks) {
  SwimConfig config = passive();
  config.reconnect_interval = Duration::zero();
  Swim swim(config, self_status(0), kStart);
  runtime::Random random(1);
  swim.receive(address_of(2), gossip(2, {update(1, 0, MemberState::kAlive)}), kStart, random);
  swim.receive(address_of(2), gossip(2, {update(1, 0, MemberState::kDead, id_of(2))}), kStart,
               random);
  swim.tick(kStart + config.tombstone_ttl, random);
  EXPECT_EQ(swim.next_deadline(), kStart + hours(24));  // the passive probe, nothing sooner
  swim.tick(kStart + hours(24), random);
  EXPECT_TRUE(swim.take_push_pulls().empty());
}

// ---- dead-sender notice -----------------------------------------------------------------------

Packet ping_from(size_t from, size_t to, uint64_t seq) {
  Packet ping;
  ping.type = PacketType::kPing;
  ping.seq = seq;
  ping.from_id = id_of(from);
  ping.target_id = id_of(to);
  return ping;
}

// The notices among `out`: gossip to `to` led by an update about `to` itself.
std::vector<Outgoing> notices_to(const std::vector<Outgoing>& out, size_t to) {
  std::vector<Outgoing> found;
  for (const Outgoing& o : out) {
    if (o.to == address_of(to) && o.packet.type == PacketType::kGossip &&
        !o.packet.updates.empty() && o.packet.updates.front().node_id == id_of(to)) {
      found.push_back(o);
    }
  }
  return found;
}

TEST(SwimDeadNotice, SenderHeldDeadIsToldAndItsRefutationComesBack) {
  runtime::Random random(1);
  const SwimConfig config = lan_without_push_pull();
  Swim a(config, self_status(0), kStart);
  NodeStatus b_status = self_status(1);
  b_status.incarnation = 3;
  Swim b(config, b_status, kStart);
  a.receive(address_of(2), gossip(2, {update(1, 3, MemberState::kAlive)}), kStart, random);
  a.receive(address_of(2), gossip(2, {update(1, 3, MemberState::kDead, id_of(2))}), kStart, random);
  ASSERT_EQ(state_at(a, 1), MemberState::kDead);
  a.take_outgoing();
  a.take_events();

  a.receive(address_of(1), ping_from(1, 0, 5), kStart, random);
  const std::vector<Outgoing> out = a.take_outgoing();
  const std::vector<Outgoing> notices = notices_to(out, 1);
  ASSERT_EQ(notices.size(), 1u);
  const Update& verdict = notices[0].packet.updates.front();
  EXPECT_EQ(verdict.state, MemberState::kDead);
  EXPECT_EQ(verdict.incarnation, 3u);
  EXPECT_EQ(a.stats().dead_notices, 1u);
  // The ping is still answered.
  EXPECT_TRUE(std::any_of(out.begin(), out.end(), [](const Outgoing& o) {
    return o.packet.type == PacketType::kAck && o.packet.seq == 5;
  }));

  b.receive(address_of(0), notices[0].packet, kStart, random);
  EXPECT_GT(b.self().incarnation, 3u);
  EXPECT_EQ(b.stats().refutations, 1u);
  // B learnt A from the notice's piggyback; its next gossip carries the refutation to A.
  ASSERT_EQ(state_at(b, 0), MemberState::kAlive);
  const TimePoint later = kStart + config.gossip_interval;
  b.tick(later, random);
  for (const Outgoing& o : b.take_outgoing()) {
    if (o.to == address_of(0)) a.receive(address_of(1), o.packet, later, random);
  }
  EXPECT_EQ(state_at(a, 1), MemberState::kAlive);
  EXPECT_EQ(a.member(id_of(1))->incarnation, b.self().incarnation);
  const std::vector<MemberEvent> events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kJoined);
}

TEST(SwimDeadNotice, AtMostOneNoticePerMemberPerProbeInterval) {
  runtime::Random random(1);
  Swim a(lan_without_push_pull(), self_status(0), kStart);
  a.receive(address_of(2), gossip(2, {update(1, 0, MemberState::kAlive)}), kStart, random);
  a.receive(address_of(2), gossip(2, {update(1, 0, MemberState::kDead, id_of(2))}), kStart, random);
  a.take_outgoing();
  const Duration interval = a.config().probe_interval;
  for (const auto& [at, notices] : std::vector<std::pair<Duration, size_t>>{
           {Duration::zero(), 1}, {interval / 2, 0}, {interval - kTick, 0}, {interval, 1}}) {
    a.receive(address_of(1), ping_from(1, 0, 7), kStart + at, random);
    EXPECT_EQ(notices_to(a.take_outgoing(), 1).size(), notices) << "at +" << at.count() << " ns";
  }
  EXPECT_EQ(a.stats().dead_notices, 2u);
}

TEST(SwimDeadNotice, RestartedNodeHeldLeftIsToldAndComesBack) {
  runtime::Random random(1);
  Swim a(lan_without_push_pull(), self_status(0), kStart);
  a.receive(address_of(1), gossip(1, {update(1, 0, MemberState::kAlive)}), kStart, random);
  a.receive(address_of(1), gossip(1, {update(1, 2, MemberState::kLeft, id_of(1))}), kStart, random);
  EXPECT_TRUE(notices_to(a.take_outgoing(), 1).empty());            // a goodbye needs no answer
  Swim restarted(lan_without_push_pull(), self_status(1), kStart);  // incarnation 0 again
  a.receive(address_of(1), ping_from(1, 0, 1), kStart, random);
  const std::vector<Outgoing> notices = notices_to(a.take_outgoing(), 1);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].packet.updates.front().state, MemberState::kLeft);
  restarted.receive(address_of(0), notices[0].packet, kStart, random);
  EXPECT_EQ(restarted.self().incarnation, 3u);
  EXPECT_EQ(restarted.self().state, MemberState::kAlive);
}

// ---- whole-cluster runs -----------------------------------------------------------------------

size_t count_live(const Swim& swim) {
  const std::vector<NodeStatus> all = swim.members();
  return static_cast<size_t>(std::count_if(all.begin(), all.end(), [](const NodeStatus& m) {
    return m.state == MemberState::kAlive || m.state == MemberState::kSuspect;
  }));
}

// live_count() is a counter kept by every state change; it must never drift from the
// members it counts, whatever the inputs.
TEST(SwimLiveCount, EqualsAliveAndSuspectMembersAfterEveryInput) {
  constexpr size_t kNodes = 6;
  constexpr uint64_t kSeed = 31;
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  SwimConfig config = SwimConfig::local();
  config.tombstone_ttl = seconds(5);
  config.push_pull_interval = seconds(5);
  config.reconnect_interval = seconds(3);
  Net net(kNodes, config, kSeed);
  runtime::Random draws(kSeed);
  net.join_all();
  const std::vector<MemberState> states{MemberState::kAlive, MemberState::kSuspect,
                                        MemberState::kDead, MemberState::kLeft};
  for (int step = 0; step < 1500; ++step) {
    const size_t a = draws.uniform(kNodes);
    const size_t b = draws.uniform(kNodes + 2);  // two ids no node has
    switch (draws.uniform(8)) {
      case 0:
      case 1:
        net.run_for(milliseconds(draws.uniform(4000)));
        break;
      case 2:
        net.up(a) ? net.crash(a) : net.recover(a);
        break;
      case 3:
        if (b < kNodes) net.partition({a}, {b});
        if (draws.bernoulli(0.3)) net.heal();
        break;
      case 4:
      case 5: {
        const MemberState state = states[draws.uniform(states.size())];
        net.inject(a, (a + 1) % kNodes,
                   gossip((a + 1) % kNodes,
                          {update(b, draws.uniform(4), state, id_of(draws.uniform(kNodes)))}));
        break;
      }
      case 6:
        net[a].update_tags({{"step", std::to_string(step)}}, net.now());
        break;
      case 7:
        if (draws.bernoulli(0.02)) net[a].leave(net.now());
        net.flush();
        break;
    }
    for (size_t i = 0; i < kNodes; ++i) {
      ASSERT_EQ(net[i].live_count(), count_live(net[i])) << "step " << step << " at " << id_of(i);
    }
  }
}

// Six nodes in two groups of three, cut apart until each group holds the other dead (and,
// unless tombstones are kept, has forgotten it), then healed: every core must see all six
// alive again within one reconnect interval (the next round, where every node tries: 3
// failed over 2 live others) plus a few probe intervals for the news to spread.
class SwimPartitionHeal : public ::testing::TestWithParam<bool> {};

TEST_P(SwimPartitionHeal, EveryCoreSeesAllAliveWithinAReconnectIntervalOfTheHeal) {
  const bool tombstones_kept = GetParam();
  constexpr size_t kNodes = 6;
  constexpr uint64_t kSeed = 5;
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  SwimConfig config = SwimConfig::lan();
  if (tombstones_kept) config.tombstone_ttl = hours(1);
  Net net(kNodes, config, kSeed);
  net.join_all();
  net.run_for(seconds(20));
  const auto all_alive = [&] {
    for (size_t i = 0; i < kNodes; ++i) {
      if (count_live(net[i]) != kNodes || net[i].members().size() != kNodes) return false;
    }
    return true;
  };
  ASSERT_TRUE(all_alive());

  const std::vector<size_t> left{0, 1, 2};
  const std::vector<size_t> right{3, 4, 5};
  net.partition(left, right);
  net.run_for(seconds(120));
  for (size_t i = 0; i < kNodes; ++i) {
    for (size_t j = 0; j < kNodes; ++j) {
      const bool same_side = (i < 3) == (j < 3);
      const std::optional<NodeStatus> seen = net[i].member(id_of(j));
      if (same_side) {
        ASSERT_TRUE(seen.has_value());
        EXPECT_EQ(seen->state, MemberState::kAlive) << id_of(i) << " about " << id_of(j);
      } else if (tombstones_kept) {
        ASSERT_TRUE(seen.has_value());
        EXPECT_EQ(seen->state, MemberState::kDead) << id_of(i) << " about " << id_of(j);
      } else {
        EXPECT_FALSE(seen.has_value()) << id_of(i) << " still holds " << id_of(j);
      }
    }
  }

  const TimePoint healed = net.now();
  net.heal();
  const Duration bound = config.reconnect_interval + 5 * config.probe_interval;
  TimePoint converged = runtime::kInfiniteFuture;
  while (net.now() < healed + bound + seconds(30)) {
    net.run_for(milliseconds(100));
    if (all_alive()) {
      converged = net.now();
      break;
    }
  }
  ASSERT_LE(converged, healed + bound)
      << "not all alive everywhere within " << std::chrono::duration_cast<seconds>(bound).count()
      << " s of the heal";
  uint64_t reconnects = 0;
  for (size_t i = 0; i < kNodes; ++i) reconnects += net[i].stats().reconnects;
  EXPECT_GT(reconnects, 0u);
  // And it stays healed.
  net.run_for(seconds(60));
  EXPECT_TRUE(all_alive());
}

INSTANTIATE_TEST_SUITE_P(TombstonesReapedOrKept, SwimPartitionHeal, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "TombstonesKept" : "TombstonesReaped";
                         });

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

namespace meshrpc::membership {
namespace {

// The packets in `out` addressed to `to` that lead with our own alive update.
size_t refutations_to(const std::vector<Outgoing>& out, const transport::Address& to,
                      const std::string& self_id, uint64_t incarnation) {
  return static_cast<size_t>(std::count_if(out.begin(), out.end(), [&](const Outgoing& o) {
    return o.to == to && !o.packet.updates.empty() && o.packet.updates[0].node_id == self_id &&
           o.packet.updates[0].state == MemberState::kAlive &&
           o.packet.updates[0].incarnation == incarnation;
  }));
}

TEST(SwimRefutation, GoesStraightToTheAccuserAtMostOncePerProbeInterval) {
  Swim swim(lan_without_push_pull(), self_status(1), kStart);
  runtime::Random random(1);
  swim.receive(address_of(0),
               gossip(0, {update(0, 0, MemberState::kAlive), update(2, 0, MemberState::kAlive)}),
               kStart, random);
  swim.take_outgoing();
  // n2 passes on n0's suspicion of us: we refute, and n0 hears it from us directly.
  swim.receive(address_of(2), gossip(2, {update(1, 0, MemberState::kSuspect, id_of(0))}), kStart,
               random);
  ASSERT_EQ(swim.self().incarnation, 1u);
  EXPECT_EQ(refutations_to(swim.take_outgoing(), address_of(0), id_of(1), 1), 1u);
  // n0 repeats its (now stale) claim: answered again only after a probe interval.
  const Packet stale = gossip(0, {update(1, 0, MemberState::kSuspect, id_of(0))});
  swim.receive(address_of(0), stale, kStart + milliseconds(100), random);
  EXPECT_EQ(refutations_to(swim.take_outgoing(), address_of(0), id_of(1), 1), 0u);
  swim.receive(address_of(0), stale, kStart + SwimConfig::lan().probe_interval + kTick, random);
  EXPECT_EQ(refutations_to(swim.take_outgoing(), address_of(0), id_of(1), 1), 1u);
  EXPECT_EQ(swim.self().incarnation, 1u) << "a stale claim needs no new incarnation";
}

}  // namespace
}  // namespace meshrpc::membership
