// Every simulation scenario (tests/sim/scenarios/) over its CI seeds, plus a determinism
// check of a few seeds each. A failure names the seed and the meshsim command replaying it.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "scenarios/scenario.h"

namespace meshrpc::sim {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

class ScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(ScenarioTest, HoldsItsInvariantsOverItsSeeds) {
  const Scenario& scenario = GetParam();
  const uint64_t seeds = kSanitized ? scenario.sanitized_seeds : scenario.ci_seeds;
  double simulated = 0;
  const auto started = std::chrono::steady_clock::now();
  uint64_t operations = 0;
  uint64_t failed = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    const ScenarioResult result = scenario.run(seed, {});
    simulated += result.simulated_seconds;
    operations += result.operations;
    failed += result.failed_operations;
    if (scenario.expect_violations) {
      ASSERT_FALSE(result.violations.empty())
          << "seed " << seed << ": the deliberate bug went unnoticed ("
          << replay_command(scenario, seed) << ")";
    } else {
      ASSERT_TRUE(result.violations.empty()) << "seed " << seed << ": " << result.violations.size()
                                             << " violations; first: " << result.violations.front()
                                             << "\nreplay: " << replay_command(scenario, seed);
    }
    ASSERT_GT(result.operations, 0u) << "seed " << seed << " ran no operation";
  }
  const double real =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  RecordProperty("simulated_per_real_second", std::to_string(simulated / real));
  std::printf(
      "%s: %llu seeds, %llu operations (%llu failed under faults), %.0f simulated s in "
      "%.2f real s\n",
      scenario.name.c_str(), static_cast<unsigned long long>(seeds),
      static_cast<unsigned long long>(operations), static_cast<unsigned long long>(failed),
      simulated, real);
}

TEST_P(ScenarioTest, SameSeedReplaysExactly) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const std::string divergence = check_determinism(GetParam(), seed);
    EXPECT_EQ(divergence, "") << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ScenarioTest, ::testing::ValuesIn(all_scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace meshrpc::sim
