// The gossip membership scenarios (issue "gossip membership", must-show): 100 nodes, each the
// unchanged meshrpc server + membership::Cluster with the LAN preset, on one SimEnv.
//   - gossip_crash: one node crashes; every live member declares it dead within the
//     detection bound (docs/membership.md, "Detection bound"), and no one else is declared.
//   - gossip_false_positives: 5% datagram loss on every link, and one node paused for two
//     probe intervals at a time, again and again: no node is ever declared dead. Then one
//     pause longer than the bound: that node is declared dead, and comes back once resumed.
//   - gossip_tag_spread: a node replaces its tags (two keys, one call): every member sees
//     both new values within the spread bound, never one without the other, at exactly one
//     incarnation more.
//   - gossip_partition: the cluster splits in halves for longer than it takes each half to
//     declare the other dead and forget it; after the heal every member sees all 100 alive
//     again within the heal bound.
#include <algorithm>
#include <cstdio>
#include <string>

#include "meshrpc/base/logging.h"
#include "meshrpc/membership/config.h"
#include "scenario.h"
#include "scenario_support.h"
#include "tests/support/gossip_cluster.h"

namespace meshrpc::sim {
namespace {

using testing::GossipCluster;
using testing::GossipClusterOptions;
using testing::seen_name;

using namespace std::chrono_literals;
using membership::MemberEvent;
using membership::SwimConfig;
using runtime::Duration;
using runtime::TimePoint;
using Seen = GossipCluster::Seen;

constexpr size_t kNodes = 100;
// Joins 10 ms apart (100 nodes in 1 s). The cluster must be whole within two push-pull
// intervals (90 s each at 100 members): gossip alone misses a joiner now and then under 5%
// loss (seed 74 of gossip_false_positives), and anti-entropy repairs it.
constexpr Duration kStagger = 10ms;
constexpr Duration kFormLimit = 180s;
// Half of the cluster gone at once: see run_partition.
constexpr Duration kApartLimit = 180s;

// The detection bound of docs/membership.md for the LAN preset: the first probe of the dead
// node (20 intervals: missed by every member with probability about e^-20), its failure
// (1), the confirmations that shrink the suspicion timeout to its minimum and the spread of
// the death (a few intervals, inside the 20), plus the minimum suspicion timeout itself.
Duration detection_bound(const SwimConfig& swim, size_t nodes) {
  return 21 * swim.probe_interval +
         membership::suspicion_timeout_min(swim, nodes, swim.probe_interval);
}

// Gossip carries an update to all but a rare member within this (docs/membership.md,
// "Spread bound"): its retransmit limit in gossip rounds, twice over for loss.
Duration spread_bound(const SwimConfig& swim, size_t nodes) {
  return 2 * membership::retransmit_limit(swim, nodes) * swim.gossip_interval;
}

// A member gossip missed (about one update in a thousand at 100 nodes and 5% loss) learns
// it from its next push-pull: every member has it within this.
Duration anti_entropy_bound(const SwimConfig& swim, size_t nodes) {
  return spread_bound(swim, nodes) + membership::push_pull_interval_for(swim, nodes);
}

// After a partition heals, every member sees everyone alive within this: one reconnect
// interval for some member to reach across, then the refutations spread (detection bound,
// which is generous for a spread).
Duration heal_bound(const SwimConfig& swim, size_t nodes) {
  return swim.reconnect_interval + detection_bound(swim, nodes);
}

struct Run {
  Run(uint64_t seed, const ScenarioOptions& options, double loss = 0)
      : options(options), cluster(seed, cluster_options(options, loss)) {
    // A hundred members each logging every event they hear would bury the run's output.
    (void)set_log_levels("info,membership=warn");
    if (options.verbose) {
      // A replay narrates every verdict about a running member (a scenario that sets its own
      // hook replaces this one).
      cluster.on_event([this](size_t observer, size_t subject, const MemberEvent& event) {
        if (event.kind != MemberEvent::Kind::kDead || !cluster.is_running(subject)) return;
        narrate("n" + std::to_string(observer) + " holds running n" + std::to_string(subject) +
                " dead at incarnation " + std::to_string(event.member.incarnation));
      });
    }
  }

  static GossipClusterOptions cluster_options(const ScenarioOptions& options, double loss) {
    GossipClusterOptions cluster_options;
    cluster_options.nodes = kNodes;
    cluster_options.link = link_with_loss(loss);
    cluster_options.sim = sim_options(options);
    return cluster_options;
  }

  bool form() {
    if (cluster.form(kStagger, kFormLimit)) return true;
    violation("the cluster did not form within " +
              std::to_string(kFormLimit.count() / 1'000'000'000) + " s");
    return false;
  }

  void violation(std::string what) { record_violation(result, cluster.sim(), std::move(what)); }
  void narrate(const std::string& what) {
    if (options.verbose) {
      std::fprintf(stderr, "t=%.3f %s\n", seconds_of(cluster.sim().now()), what.c_str());
    }
  }
  const SwimConfig& swim() const { return swim_config; }

  // Checks that no running node was declared dead so far.
  void expect_no_false_death() {
    if (cluster.false_deaths() > 0) {
      violation(std::to_string(cluster.false_deaths()) + " healthy nodes declared dead");
    }
  }

  ScenarioResult finish() {
    finish_result(cluster.sim(), result);
    return result;
  }

  ScenarioOptions options;
  SwimConfig swim_config = SwimConfig::lan();
  GossipCluster cluster;
  ScenarioResult result;
};

std::string seconds_text(Duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

size_t random_node(GossipCluster& cluster) {
  return static_cast<size_t>(cluster.sim().random().uniform(cluster.size()));
}

// Waits until every running member other than `node` sees it as `state`, at most `bound`;
// records a violation naming how many did not.
bool expect_all_see(Run& run, size_t node, Seen state, Duration bound, const std::string& what) {
  GossipCluster& cluster = run.cluster;
  const bool done = cluster.run_until(
      [&] { return cluster.count_seeing(node, state) == cluster.running_others(node); }, bound,
      10ms);
  if (!done) {
    run.violation(what + ": " + std::to_string(cluster.count_seeing(node, state)) + " of " +
                  std::to_string(cluster.running_others(node)) + " members see n" +
                  std::to_string(node) + " " + seen_name(state) + " after " + seconds_text(bound));
  }
  return done;
}

ScenarioResult run_crash(uint64_t seed, const ScenarioOptions& options) {
  Run run(seed, options);
  GossipCluster& cluster = run.cluster;
  if (!run.form()) return run.finish();
  cluster.sim().run_for(10s);
  const size_t victim = random_node(cluster);
  run.narrate("crash n" + std::to_string(victim));
  const TimePoint crashed = cluster.sim().now();
  cluster.crash(victim);
  ++run.result.operations;
  const Duration bound = detection_bound(run.swim(), kNodes);
  if (expect_all_see(run, victim, Seen::kDead, bound, "crash not detected")) {
    run.narrate("every member holds n" + std::to_string(victim) + " dead after " +
                seconds_text(cluster.sim().now() - crashed));
  }
  run.expect_no_false_death();
  return run.finish();
}

ScenarioResult run_false_positives(uint64_t seed, const ScenarioOptions& options) {
  Run run(seed, options, /*loss=*/0.05);
  GossipCluster& cluster = run.cluster;
  if (!run.form()) return run.finish();
  const SwimConfig& swim = run.swim();
  const size_t sleeper = random_node(cluster);
  // Two-interval pauses with time to recover between them, for five minutes.
  const TimePoint end = cluster.sim().now() + 300s;
  while (cluster.sim().now() < end) {
    cluster.pause(sleeper);
    cluster.sim().run_for(2 * swim.probe_interval);
    cluster.resume(sleeper);
    ++run.result.operations;
    cluster.sim().run_for(8 * swim.probe_interval);
  }
  run.narrate("n" + std::to_string(sleeper) + " paused " + std::to_string(run.result.operations) +
              " times; " + std::to_string(cluster.false_suspicions()) + " suspicions, " +
              std::to_string(cluster.false_deaths()) + " deaths");
  run.expect_no_false_death();
  // Loss keeps a member suspect here and there for a moment: agreement must come, not be
  // there at any given instant.
  if (!cluster.run_until([&] { return cluster.converged(); }, detection_bound(swim, kNodes))) {
    run.violation("members still disagree " + seconds_text(detection_bound(swim, kNodes)) +
                  " after the pauses");
  }

  // A pause past the bound: the detector must see it, and the node must come back.
  const Duration bound = detection_bound(swim, kNodes);
  cluster.pause(sleeper);
  ++run.result.operations;
  const bool declared = cluster.run_until(
      [&] { return cluster.count_seeing(sleeper, Seen::kDead) == cluster.running_others(sleeper); },
      bound, 10ms);
  if (!declared) {
    run.violation("a node paused for " + seconds_text(bound) + " is held dead by only " +
                  std::to_string(cluster.count_seeing(sleeper, Seen::kDead)) + " members");
  }
  cluster.resume(sleeper);
  expect_all_see(run, sleeper, Seen::kAlive, heal_bound(swim, kNodes),
                 "a node back from a long pause did not rejoin");
  return run.finish();
}

ScenarioResult run_tag_spread(uint64_t seed, const ScenarioOptions& options) {
  Run run(seed, options, /*loss=*/0.05);
  GossipCluster& cluster = run.cluster;
  if (!run.form()) return run.finish();
  const size_t node = random_node(cluster);
  const uint64_t incarnation = cluster.cluster(node)->self().incarnation;
  // Observers must never see half of the batch, nor more than one incarnation for it.
  cluster.on_event([&](size_t observer, size_t about, const MemberEvent& event) {
    if (about != node) return;
    const auto& tags = event.member.tags;
    const bool role = tags.contains("role");
    const bool zone = tags.contains("zone");
    if (role != zone) {
      run.violation("n" + std::to_string(observer) + " saw half of the tag update");
    }
    if (role && event.member.incarnation != incarnation + 1) {
      run.violation("n" + std::to_string(observer) + " saw the tags at incarnation " +
                    std::to_string(event.member.incarnation) + ", expected " +
                    std::to_string(incarnation + 1));
    }
  });
  cluster.cluster(node)->update_tags({{"role", "worker"}, {"zone", "a"}});
  ++run.result.operations;
  const auto missing = [&] {
    size_t count = 0;
    for (size_t observer = 0; observer < cluster.size(); ++observer) {
      count += observer != node && cluster.seen_tag(observer, node, "zone") != "a";
    }
    return count;
  };
  const TimePoint start = cluster.sim().now();
  const Duration gossip = spread_bound(run.swim(), kNodes);
  cluster.run_until([&] { return missing() == 0; }, gossip, 10ms);
  // 99% by gossip alone, and the rest by anti-entropy.
  if (missing() > (kNodes - 1 + 99) / 100) {  // 1% of the others, rounded up
    run.violation(std::to_string(missing()) + " members lack the tag update after " +
                  seconds_text(gossip));
  }
  const Duration all = anti_entropy_bound(run.swim(), kNodes);
  if (!cluster.run_until([&] { return missing() == 0; }, all - (cluster.sim().now() - start))) {
    run.violation("the tag update did not reach every member within " + seconds_text(all));
  }
  run.expect_no_false_death();
  return run.finish();
}

ScenarioResult run_partition(uint64_t seed, const ScenarioOptions& options) {
  Run run(seed, options);
  GossipCluster& cluster = run.cluster;
  if (!run.form()) return run.finish();
  const SwimConfig& swim = run.swim();
  const size_t split = kNodes / 2;
  cluster.partition(split);
  ++run.result.operations;
  // Each half holds the other dead. Not within the single-crash bound: half the cluster
  // fails at once, so every member's probes fail often, and Lifeguard stretches their probe
  // intervals (up to awareness_max_multiplier times) on the suspicion that they are the
  // problem....
  const bool apart = cluster.run_until(
      [&] {
        for (size_t a : {size_t{0}, kNodes - 1}) {
          for (size_t b = 0; b < kNodes; ++b) {
            if ((a < split) != (b < split) && cluster.seen(a, b) != Seen::kDead) return false;
          }
        }
        return true;
      },
      kApartLimit, 10ms);
  if (!apart) {
    run.violation("the halves did not declare each other dead within " + seconds_text(kApartLimit));
  }
  run.narrate("apart");
  // ...and forgets it after the tombstone time: after the heal they must find each other
  // without a single shared member left to gossip through.
  cluster.sim().run_for(swim.tombstone_ttl + 10s);
  run.narrate("heal");
  cluster.heal();
  const TimePoint healed = cluster.sim().now();
  const Duration bound = heal_bound(swim, kNodes);
  if (!cluster.run_until([&] { return cluster.converged(); }, bound)) {
    size_t wrong = 0;
    for (size_t a = 0; a < kNodes; ++a) {
      for (size_t b = 0; b < kNodes; ++b) wrong += a != b && cluster.seen(a, b) != Seen::kAlive;
    }
    run.violation("after the heal, " + std::to_string(wrong) + " of " +
                  std::to_string(kNodes * (kNodes - 1)) + " views are not alive after " +
                  seconds_text(bound));
  } else {
    run.narrate("whole again after " + seconds_text(cluster.sim().now() - healed));
  }
  return run.finish();
}

}  // namespace

Scenario gossip_crash_scenario() {
  return {.name = "gossip_crash",
          .description = "100 gossip members; one crashes; all declare it dead within the bound",
          .run = run_crash,
          .ci_seeds = 20,
          .sanitized_seeds = 2};
}

Scenario gossip_false_positives_scenario() {
  return {.name = "gossip_false_positives",
          .description =
              "100 gossip members, 5% loss, one paused 2 probe intervals at a time: "
              "nobody declared dead",
          .run = run_false_positives,
          .ci_seeds = 10,
          .sanitized_seeds = 1};
}

Scenario gossip_tag_spread_scenario() {
  return {.name = "gossip_tag_spread",
          .description = "100 gossip members, 5% loss; a two-tag update reaches all, atomically",
          .run = run_tag_spread,
          .ci_seeds = 20,
          .sanitized_seeds = 2};
}

Scenario gossip_partition_scenario() {
  return {.name = "gossip_partition",
          .description = "100 gossip members split in halves, long; after the heal all are alive",
          .run = run_partition,
          .ci_seeds = 10,
          .sanitized_seeds = 1};
}

}  // namespace meshrpc::sim
