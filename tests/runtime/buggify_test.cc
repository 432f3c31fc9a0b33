// BUGGIFY: sites fire only inside a simulation built with Options::buggify, at the seeded
// rates, replayably, and not after set_buggify(false).
#include "meshrpc/runtime/buggify.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "meshrpc/runtime/sim_env.h"

namespace meshrpc::runtime {
namespace {

// 200 distinct sites, each reached 100 times; returns which fired, in order.
std::vector<int> fire_pattern(SimEnv& sim) {
  std::vector<int> fired;
  for (int round = 0; round < 100; ++round) {
    for (int site = 0; site < 200; ++site) {
      if (sim.buggify("site" + std::to_string(site))) fired.push_back(site);
    }
  }
  return fired;
}

TEST(Buggify, IsCompiledIntoTestBuilds) {
#ifdef MESHRPC_BUGGIFY_ENABLED
  SUCCEED();
#else
  FAIL() << "MESHRPC_BUGGIFY is off: the simulation scenarios would run without their sites";
#endif
}

TEST(Buggify, NeverFiresOutsideABuggifiedSimulation) {
  EXPECT_FALSE(MESHRPC_BUGGIFY);  // no simulation at all
  SimEnv plain(1);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(MESHRPC_BUGGIFY);
  EXPECT_TRUE(fire_pattern(plain).empty());
}

TEST(Buggify, FiresAtTheSeededRatesAndReplaysPerSeed) {
  SimEnv::Options options;
  options.buggify = true;
  SimEnv first(7, options);
  const std::vector<int> pattern = fire_pattern(first);
  SimEnv second(7, options);
  EXPECT_EQ(fire_pattern(second), pattern) << "the same seed must fire the same sites";
  SimEnv other(8, options);
  EXPECT_NE(fire_pattern(other), pattern);

  // About a quarter of the sites are active, and an active site fires about a quarter of
  // the times it is reached: 200 * 100 * 1/16 = 1,250 firings expected.
  std::vector<int> per_site(200, 0);
  for (int site : pattern) ++per_site[site];
  int active = 0;
  for (int count : per_site) active += count > 0;
  EXPECT_GT(active, 25);
  EXPECT_LT(active, 80);
  EXPECT_GT(pattern.size(), 700u);
  EXPECT_LT(pattern.size(), 2000u);
}

TEST(Buggify, TheMacroAsksTheNewestBuggifiedSimulationAndStopsWhenTurnedOff) {
  SimEnv::Options options;
  options.buggify = true;
  SimEnv sim(3, options);
  int fired = 0;
  for (int i = 0; i < 10'000; ++i) {
    // One site reached often: if it is active, it fires about 2,500 times.
    if (MESHRPC_BUGGIFY) ++fired;
  }
  // The site is active for this seed or not (both happen across seeds): either it never
  // fired, or it fired at about its rate.
  EXPECT_TRUE(fired == 0 || (fired > 2000 && fired < 3000)) << fired;
  sim.set_buggify(false);
  for (int i = 0; i < 10'000; ++i) ASSERT_FALSE(MESHRPC_BUGGIFY);
}

TEST(Buggify, SomeSeedsActivateASiteAndOthersDoNot) {
  int activated = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SimEnv::Options options;
    options.buggify = true;
    SimEnv sim(seed, options);
    int fired = 0;
    for (int i = 0; i < 100; ++i) fired += sim.buggify("one-site") ? 1 : 0;
    activated += fired > 0;
  }
  // 25% activation over 40 seeds: about 10.
  EXPECT_GT(activated, 2);
  EXPECT_LT(activated, 25);
}

}  // namespace
}  // namespace meshrpc::runtime
