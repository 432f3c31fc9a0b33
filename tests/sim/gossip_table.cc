// gossip_table: measures the gossip membership layer on simulated clusters and prints the
// table docs/membership.md publishes. Every cell is a cluster of N nodes (the unchanged
// membership::Cluster over SimNetwork, LAN preset) whose every link loses `loss` of its
// datagrams; each is a pure function of its seed, so the table reproduces exactly.
//
//   gossip_table                                  the published table (N 10/100/1000, loss 0/5/10%)
//   gossip_table --nodes 100 --loss 0.05 --trials 5 --steady 600
//   gossip_table --json table.json                also write every trial
//
// Per cell: form the cluster, then
//   - steady: run `steady` seconds (longer for small N: --node-hours) with no failure: false
//   positives (healthy nodes declared
//     dead, summed over all members) and false suspicions per node-hour, and bytes sent per
//     node per second (gossip datagrams plus push-pull messages, encoded, no IP headers);
//   - update trials: one random node changes a tag; the time until 99.9% and 100% of the
//     other members have seen the new value;
//   - failure trials: one random node crashes; the time until the first member declares it
//     dead (detection), and until 99.9% and 100% of the live members hold it dead.
// Times are medians over the trials (the JSON has each trial).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/base/logging.h"
#include "tests/support/gossip_cluster.h"

namespace meshrpc::sim {
namespace {

using testing::GossipCluster;
using testing::GossipClusterOptions;
using testing::seen_name;

using namespace std::chrono_literals;
using membership::MemberEvent;
using runtime::Duration;
using runtime::TimePoint;

struct Flags {
  std::vector<size_t> nodes = {10, 100, 1000};
  std::vector<double> loss = {0, 0.05, 0.10};
  uint64_t seed = 1;
  int trials = 3;
  double steady_seconds = 300;
  // Small clusters run longer, so every cell's false-positive rate rests on at least this
  // many node-hours.
  double node_hours = 100;
  std::string json;
};

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// The time by which `fraction` of `times` had happened (times sorted; nearest rank).
double quantile(std::vector<double> times, double fraction) {
  if (times.empty()) return NAN;
  std::sort(times.begin(), times.end());
  const auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(times.size())));
  return times[std::clamp<size_t>(rank, 1, times.size()) - 1];
}

double median(std::vector<double> values) { return quantile(std::move(values), 0.5); }

struct Spread {
  double first = NAN;  // seconds after the change
  double p999 = NAN;
  double all = NAN;
  bool complete = false;  // every member got there within the limit
};

struct Cell {
  size_t nodes = 0;
  double loss = 0;
  double formed_after = NAN;  // seconds, or NAN if the cluster never converged
  double steady_seconds = 0;
  double steady_node_hours = 0;
  uint64_t false_deaths = 0;
  uint64_t false_suspicions = 0;
  double bytes_per_node_second = 0;
  std::vector<Spread> updates;
  std::vector<Spread> failures;
};

// Runs until every running member other than `subject` has an entry in `times`, at most
// `limit`; returns the spread of those times after `start`.
Spread wait_for_spread(GossipCluster& cluster, size_t subject, const std::vector<double>& times,
                       TimePoint start, Duration limit) {
  const auto everyone = [&] {
    return std::count_if(times.begin(), times.end(), [](double t) { return !std::isnan(t); }) >=
           static_cast<std::ptrdiff_t>(cluster.running_others(subject));
  };
  Spread spread;
  spread.complete = cluster.run_until(everyone, limit, 10ms);
  std::vector<double> seen;
  for (size_t observer = 0; observer < times.size(); ++observer) {
    if (observer != subject && cluster.is_running(observer) && !std::isnan(times[observer])) {
      seen.push_back(times[observer] - seconds(start.time_since_epoch()));
    }
  }
  if (seen.empty()) return spread;
  spread.first = quantile(seen, 0);
  // Over all members that should have seen it: a missing one counts as never.
  const size_t expected = cluster.running_others(subject);
  while (seen.size() < expected) seen.push_back(INFINITY);
  spread.p999 = quantile(seen, 0.999);
  spread.all = quantile(seen, 1.0);
  return spread;
}

Cell run_cell(size_t nodes, double loss, const Flags& flags) {
  Cell cell;
  cell.nodes = nodes;
  cell.loss = loss;
  GossipClusterOptions options;
  options.nodes = nodes;
  options.link.loss_rate = loss;
  GossipCluster cluster(flags.seed * 1'000'003 + nodes * 101 + static_cast<uint64_t>(loss * 1000),
                        options);
  const TimePoint begin = cluster.sim().now();
  // Joins 10 ms apart: 1,000 nodes arrive over 10 s, about as fast as an orchestrator starts
  // them, without every join hitting one member in the same instant.
  if (!cluster.form(10ms, 600s)) return cell;
  cell.formed_after = seconds(cluster.sim().now() - begin);

  // Every event's time, per observer, for the change being measured.
  std::vector<double> times(nodes, NAN);
  std::optional<size_t> subject;
  std::string wanted_tag;
  MemberEvent::Kind wanted_kind = MemberEvent::Kind::kDead;
  cluster.on_event([&](size_t observer, size_t about, const MemberEvent& event) {
    if (!subject || about != *subject || !std::isnan(times[observer])) return;
    const auto tag = event.member.tags.find("version");
    const bool match = wanted_kind == MemberEvent::Kind::kUpdated
                           ? tag != event.member.tags.end() && tag->second == wanted_tag
                           : event.kind == wanted_kind;
    if (match) times[observer] = seconds(cluster.sim().now().time_since_epoch());
  });

  // Steady state: no change, only loss.
  const uint64_t deaths_before = cluster.false_deaths();
  const uint64_t suspicions_before = cluster.false_suspicions();
  const uint64_t bytes_before = cluster.bytes_sent();
  const double steady_seconds =
      std::max(flags.steady_seconds, flags.node_hours * 3600.0 / static_cast<double>(nodes));
  cluster.sim().run_for(
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(steady_seconds)));
  cell.steady_seconds = steady_seconds;
  cell.steady_node_hours = static_cast<double>(nodes) * steady_seconds / 3600.0;
  cell.false_deaths = cluster.false_deaths() - deaths_before;
  cell.false_suspicions = cluster.false_suspicions() - suspicions_before;
  cell.bytes_per_node_second = static_cast<double>(cluster.bytes_sent() - bytes_before) /
                               static_cast<double>(nodes) / steady_seconds;

  runtime::Random& random = cluster.sim().random();
  for (int trial = 0; trial < flags.trials; ++trial) {
    std::fill(times.begin(), times.end(), NAN);
    subject = static_cast<size_t>(random.uniform(nodes));
    wanted_kind = MemberEvent::Kind::kUpdated;
    wanted_tag = std::to_string(trial + 1);
    const TimePoint start = cluster.sim().now();
    cluster.cluster(*subject)->update_tags({{"version", wanted_tag}});
    cell.updates.push_back(wait_for_spread(cluster, *subject, times, start, 120s));
    cluster.sim().run_for(5s);
  }
  for (int trial = 0; trial < flags.trials; ++trial) {
    std::fill(times.begin(), times.end(), NAN);
    do {
      subject = static_cast<size_t>(random.uniform(nodes));
    } while (!cluster.is_running(*subject));
    wanted_kind = MemberEvent::Kind::kDead;
    const TimePoint start = cluster.sim().now();
    cluster.crash(*subject);
    cell.failures.push_back(wait_for_spread(cluster, *subject, times, start, 300s));
    cluster.sim().run_for(5s);
  }
  return cell;
}

std::string cell_time(const std::vector<Spread>& spreads, double Spread::*field) {
  std::vector<double> values;
  for (const Spread& spread : spreads) values.push_back(spread.*field);
  if (values.empty()) return "-";
  const double value = median(values);
  if (std::isinf(value) || std::isnan(value)) return "never";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", value);
  return text;
}

void print_table(const std::vector<Cell>& cells, const Flags& flags) {
  std::printf(
      "\n| N | loss | detect (first) | dead at 99.9%% | dead at 100%% | update at 99.9%% | "
      "update at 100%% | false positives / node-hour | false suspicions / node-hour | "
      "bytes / node / s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Cell& cell : cells) {
    if (std::isnan(cell.formed_after)) {
      std::printf("| %zu | %.0f%% | cluster did not form |||||||\n", cell.nodes, cell.loss * 100);
      continue;
    }
    std::printf("| %zu | %.0f%% | %s | %s | %s | %s | %s | %.3f | %.3f | %.0f |\n", cell.nodes,
                cell.loss * 100, cell_time(cell.failures, &Spread::first).c_str(),
                cell_time(cell.failures, &Spread::p999).c_str(),
                cell_time(cell.failures, &Spread::all).c_str(),
                cell_time(cell.updates, &Spread::p999).c_str(),
                cell_time(cell.updates, &Spread::all).c_str(),
                static_cast<double>(cell.false_deaths) / cell.steady_node_hours,
                static_cast<double>(cell.false_suspicions) / cell.steady_node_hours,
                cell.bytes_per_node_second);
  }
  std::printf(
      "\nLAN preset (memberlist's defaults), seed %llu, %d update and %d failure trials per "
      "cell (medians); steady state per cell: at least %.0f s and %.0f node-hours.\n",
      static_cast<unsigned long long>(flags.seed), flags.trials, flags.trials, flags.steady_seconds,
      flags.node_hours);
}

boost::json::value to_json(const Spread& spread) {
  const auto number = [](double v) -> boost::json::value {
    if (std::isnan(v) || std::isinf(v)) return nullptr;
    return v;
  };
  return {{"first_s", number(spread.first)},
          {"p999_s", number(spread.p999)},
          {"all_s", number(spread.all)},
          {"complete", spread.complete}};
}

void write_json(const std::vector<Cell>& cells, const Flags& flags) {
  boost::json::array out;
  for (const Cell& cell : cells) {
    boost::json::array updates;
    boost::json::array failures;
    for (const Spread& s : cell.updates) updates.push_back(to_json(s));
    for (const Spread& s : cell.failures) failures.push_back(to_json(s));
    out.push_back(
        {{"nodes", cell.nodes},
         {"loss", cell.loss},
         {"formed_after_s", std::isnan(cell.formed_after) ? boost::json::value(nullptr)
                                                          : boost::json::value(cell.formed_after)},
         {"steady_s", cell.steady_seconds},
         {"steady_node_hours", cell.steady_node_hours},
         {"false_deaths", cell.false_deaths},
         {"false_suspicions", cell.false_suspicions},
         {"bytes_per_node_second", cell.bytes_per_node_second},
         {"updates", std::move(updates)},
         {"failures", std::move(failures)}});
  }
  boost::json::object root{{"seed", flags.seed},
                           {"trials", flags.trials},
                           {"steady_s", flags.steady_seconds},
                           {"node_hours", flags.node_hours},
                           {"cells", std::move(out)}};
  std::ofstream(flags.json) << boost::json::serialize(root) << "\n";
}

}  // namespace
}  // namespace meshrpc::sim

int main(int argc, char** argv) {
  using namespace meshrpc::sim;
  CLI::App app("gossip_table: failure detection and dissemination of the gossip layer, simulated");
  Flags flags;
  app.add_option("--nodes", flags.nodes, "cluster sizes")->delimiter(',');
  app.add_option("--loss", flags.loss, "datagram loss rates (0.05 = 5%)")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 0.9));
  app.add_option("--seed", flags.seed, "seed of the whole table");
  app.add_option("--trials", flags.trials, "update and failure trials per cell")
      ->check(CLI::Range(1, 1000));
  app.add_option("--steady", flags.steady_seconds, "seconds of steady state per cell")
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--node-hours", flags.node_hours,
                 "at least this many node-hours of steady state per cell (longer for small N)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--json", flags.json, "also write every trial as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  // Thousands of members each logging every event they see would drown the table.
  (void)meshrpc::set_log_levels("warn");

  std::vector<Cell> cells;
  for (size_t nodes : flags.nodes) {
    for (double loss : flags.loss) {
      const auto started = std::chrono::steady_clock::now();
      cells.push_back(run_cell(nodes, loss, flags));
      const double real =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "gossip_table: N=%zu loss=%.0f%% done in %.1f s\n", nodes, loss * 100,
                   real);
    }
  }
  print_table(cells, flags);
  if (!flags.json.empty()) write_json(cells, flags);
  return 0;
}
