// Simulation scenarios: whole clusters of the unchanged meshrpc stack on SimEnv under faults,
// each a pure function of its seed. sim_tests runs every scenario over its seeds in CI, and
// `meshsim` (tests/sim/meshsim.cc) runs any of them over any seeds, prints the failing ones
// with the command that replays each, checks determinism and reports simulated time per
// real second.
//
// A scenario records what it saw go wrong as violations (an invariant broken during or after
// the run). It never asserts: the driver decides how to report.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace meshrpc::sim {

struct ScenarioOptions {
  // Keep every trace line (for finding the first divergence between two runs).
  bool keep_trace = false;
  // Print each fault and failed operation to stderr (for reading a replay).
  bool verbose = false;
};

struct ScenarioResult {
  std::vector<std::string> violations;
  uint64_t trace_hash = 0;
  std::vector<std::string> trace;  // with keep_trace
  double simulated_seconds = 0;
  uint64_t operations = 0;         // client operations started
  uint64_t failed_operations = 0;  // ended with an error (allowed while faults run)
};

struct Scenario {
  std::string name;
  std::string description;
  std::function<ScenarioResult(uint64_t seed, const ScenarioOptions& options)> run;
  // Seeds CI runs: plain build, and sanitizer builds (ten times slower).
  uint64_t ci_seeds = 200;
  uint64_t sanitized_seeds = 20;
  // A scenario with a deliberate bug: it passes when every seed reports a violation (the
  // proof that its checker can fail).
  bool expect_violations = false;
};

// Every scenario, in a fixed order.
const std::vector<Scenario>& all_scenarios();
const Scenario* find_scenario(std::string_view name);

// Runs `seed` twice with traces kept; empty if both runs agree, else where they diverged
// first (line number and both lines).
std::string check_determinism(const Scenario& scenario, uint64_t seed);

// The command line that replays one seed of a scenario.
std::string replay_command(const Scenario& scenario, uint64_t seed);

// Scenario registration (scenario files define these; all_scenarios() lists them).
Scenario unary_faults_scenario();
Scenario failover_scenario();
Scenario broadcast_scenario();
Scenario streams_scenario();
Scenario register_scenario();
Scenario buggy_register_scenario();
Scenario gossip_crash_scenario();
Scenario gossip_false_positives_scenario();
Scenario gossip_tag_spread_scenario();
Scenario gossip_partition_scenario();

}  // namespace meshrpc::sim
