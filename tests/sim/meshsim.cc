// meshsim: runs simulation scenarios over seeds (tests/sim/scenarios/).
//
//   meshsim --list
//   meshsim --scenario unary_faults --seeds 1000          seeds 1..1000
//   meshsim --scenario unary_faults --seed 17 --verbose   replay one seed, narrating it
//   meshsim --seeds 50 --check-determinism                every scenario; each seed twice
//
// Prints every failing seed with the command that replays it, and per scenario the seeds
// run, the failures and simulated seconds per real second. Exits 1 when any seed failed (for
// a scenario with a deliberate bug: when any seed went uncaught) or diverged.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/scenario.h"

namespace meshrpc::sim {
namespace {

struct Flags {
  std::string scenario;  // empty: all
  uint64_t seeds = 100;
  uint64_t first_seed = 1;
  std::optional<uint64_t> seed;
  bool verbose = false;
  bool check_determinism = false;
  bool list = false;
  bool trace = false;
};

// Runs one scenario over the seeds; returns how many seeds failed.
uint64_t run_scenario(const Scenario& scenario, const Flags& flags) {
  std::vector<uint64_t> seeds;
  if (flags.seed) {
    seeds.push_back(*flags.seed);
  } else {
    for (uint64_t i = 0; i < flags.seeds; ++i) seeds.push_back(flags.first_seed + i);
  }
  ScenarioOptions options;
  options.verbose = flags.verbose;
  options.keep_trace = flags.trace;
  uint64_t failures = 0;
  double simulated = 0;
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t seed : seeds) {
    const ScenarioResult result = scenario.run(seed, options);
    simulated += result.simulated_seconds;
    for (const std::string& line : result.trace) std::fprintf(stderr, "trace %s\n", line.c_str());
    const bool failed = scenario.expect_violations == result.violations.empty();
    if (failed) {
      ++failures;
      std::printf("FAIL %s seed %llu: %s\n  replay: %s\n", scenario.name.c_str(),
                  static_cast<unsigned long long>(seed),
                  result.violations.empty() ? "the deliberate bug went unnoticed"
                                            : result.violations.front().c_str(),
                  replay_command(scenario, seed).c_str());
    } else if (flags.verbose) {
      for (const std::string& violation : result.violations) {
        std::printf("  (expected) %s\n", violation.c_str());
      }
    }
    if (flags.check_determinism) {
      const std::string divergence = check_determinism(scenario, seed);
      if (!divergence.empty()) {
        ++failures;
        std::printf("DIVERGED %s seed %llu: %s\n", scenario.name.c_str(),
                    static_cast<unsigned long long>(seed), divergence.c_str());
      }
    }
  }
  const double real =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s: %zu seeds, %llu failed; %.0f simulated s in %.2f real s (%.0fx)\n",
              scenario.name.c_str(), seeds.size(), static_cast<unsigned long long>(failures),
              simulated, real, real > 0 ? simulated / real : 0.0);
  return failures;
}

}  // namespace
}  // namespace meshrpc::sim

int main(int argc, char** argv) {
  using namespace meshrpc::sim;
  CLI::App app("meshsim: simulation scenarios over seeds");
  Flags flags;
  app.add_option("--scenario", flags.scenario, "scenario to run (default: all; see --list)");
  app.add_option("--seeds", flags.seeds, "how many seeds, from --first-seed")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  app.add_option("--first-seed", flags.first_seed, "first seed of the range");
  app.add_option("--seed", flags.seed, "run only this seed (replay)");
  app.add_flag("--verbose", flags.verbose, "narrate faults and failed operations to stderr");
  app.add_flag("--check-determinism", flags.check_determinism,
               "run each seed twice more and compare the event traces");
  app.add_flag("--list", flags.list, "list the scenarios and exit");
  app.add_flag("--trace", flags.trace, "print the event trace of each seed to stderr");
  CLI11_PARSE(app, argc, argv);

  if (flags.list) {
    for (const Scenario& scenario : all_scenarios()) {
      std::printf("%-22s %s%s\n", scenario.name.c_str(), scenario.description.c_str(),
                  scenario.expect_violations ? " (deliberate bug)" : "");
    }
    return 0;
  }
  std::vector<const Scenario*> chosen;
  if (flags.scenario.empty()) {
    for (const Scenario& scenario : all_scenarios()) chosen.push_back(&scenario);
  } else if (const Scenario* scenario = find_scenario(flags.scenario)) {
    chosen.push_back(scenario);
  } else {
    std::fprintf(stderr, "meshsim: no scenario '%s' (see --list)\n", flags.scenario.c_str());
    return 2;
  }
  uint64_t failures = 0;
  for (const Scenario* scenario : chosen) failures += run_scenario(*scenario, flags);
  return failures == 0 ? 0 : 1;
}
