#include "scenario.h"

#include <algorithm>

namespace meshrpc::sim {

const std::vector<Scenario>& all_scenarios() {
  static const std::vector<Scenario> scenarios = {
      unary_faults_scenario(),      failover_scenario(),
      broadcast_scenario(),         streams_scenario(),
      register_scenario(),          buggy_register_scenario(),
      gossip_crash_scenario(),      gossip_false_positives_scenario(),
      gossip_tag_spread_scenario(), gossip_partition_scenario()};
  return scenarios;
}

const Scenario* find_scenario(std::string_view name) {
  for (const Scenario& scenario : all_scenarios()) {
    if (scenario.name == name) return &scenario;
  }
  return nullptr;
}

std::string check_determinism(const Scenario& scenario, uint64_t seed) {
  ScenarioOptions options;
  options.keep_trace = true;
  const ScenarioResult first = scenario.run(seed, options);
  const ScenarioResult second = scenario.run(seed, options);
  if (first.trace_hash == second.trace_hash && first.trace == second.trace) return "";
  const size_t common = std::min(first.trace.size(), second.trace.size());
  for (size_t i = 0; i < common; ++i) {
    if (first.trace[i] != second.trace[i]) {
      return "trace line " + std::to_string(i + 1) + ": first run '" + first.trace[i] +
             "', second run '" + second.trace[i] + "'";
    }
  }
  return "the traces agree for " + std::to_string(common) + " lines, then one run has " +
         std::to_string(first.trace.size()) + " and the other " +
         std::to_string(second.trace.size());
}

std::string replay_command(const Scenario& scenario, uint64_t seed) {
  return "meshsim --scenario " + scenario.name + " --seed " + std::to_string(seed) + " --verbose";
}

}  // namespace meshrpc::sim
