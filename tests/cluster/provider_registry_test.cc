#include "meshrpc/cluster/provider_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::cluster {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Provider make_provider(std::string node_id, uint16_t port, uint32_t weight = 1) {
  Provider provider;
  provider.node_id = std::move(node_id);
  provider.address = transport::Address{"10.0.0.1", port};
  provider.weight = weight;
  return provider;
}

std::vector<std::string> node_ids(const ProviderSnapshot& snapshot) {
  std::vector<std::string> ids;
  for (const auto& provider : snapshot->providers) ids.push_back(provider.node_id);
  return ids;
}

TEST(ProviderRegistry, UnknownServiceIsEmptyAtVersionZero) {
  ProviderRegistry registry;
  auto snapshot = registry.providers("kv.Store");
  ASSERT_NE(snapshot, nullptr);
  EXPECT_EQ(snapshot->service, "kv.Store");
  EXPECT_TRUE(snapshot->providers.empty());
  EXPECT_EQ(snapshot->version, 0u);
}

TEST(ProviderRegistry, UpsertAppendsNewNodeIdsInOrder) {
  ProviderRegistry registry;
  ASSERT_THAT(registry.upsert("kv.Store", make_provider("n1", 1)), IsOk());
  ASSERT_THAT(registry.upsert("kv.Store", make_provider("n2", 2)), IsOk());
  ASSERT_THAT(registry.upsert("kv.Store", make_provider("n3", 3)), IsOk());
  auto snapshot = registry.providers("kv.Store");
  EXPECT_THAT(node_ids(snapshot), ElementsAre("n1", "n2", "n3"));
  EXPECT_EQ(snapshot->version, 3u);
}

TEST(ProviderRegistry, UpsertUpdatesInPlaceByNodeIdKeepingOrder) {
  ProviderRegistry registry;
  for (auto id : {"n1", "n2", "n3"}) {
    ASSERT_THAT(registry.upsert("kv.Store", make_provider(id, 1)), IsOk());
  }
  ASSERT_THAT(registry.upsert("kv.Store", make_provider("n2", 9000, 5)), IsOk());
  auto snapshot = registry.providers("kv.Store");
  ASSERT_THAT(node_ids(snapshot), ElementsAre("n1", "n2", "n3"));
  EXPECT_EQ(snapshot->providers[1].address.port, 9000);
  EXPECT_EQ(snapshot->providers[1].weight, 5u);
  EXPECT_EQ(snapshot->version, 4u);
}

TEST(ProviderRegistry, UpsertOfAnEqualProviderChangesNothing) {
  ProviderRegistry registry;
  ASSERT_THAT(registry.upsert("kv.Store", make_provider("n1", 1)), IsOk());
  ASSERT_THAT(registry.upsert("kv.Store", make_provider("n1", 1)), IsOk());
  EXPECT_EQ(registry.providers("kv.Store")->version, 1u);
}

TEST(ProviderRegistry, UpsertRejectsEmptyNodeId) {
  ProviderRegistry registry;
  EXPECT_THAT(registry.upsert("kv.Store", make_provider("", 1)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty node_id")));
  EXPECT_EQ(registry.providers("kv.Store")->version, 0u);
}

TEST(ProviderRegistry, RemoveDropsOnlyTheNamedNode) {
  ProviderRegistry registry;
  for (auto id : {"n1", "n2", "n3"}) {
    ASSERT_THAT(registry.upsert("kv.Store", make_provider(id, 1)), IsOk());
  }
  ASSERT_THAT(registry.upsert("kv.Other", make_provider("n2", 1)), IsOk());
  EXPECT_TRUE(registry.remove("kv.Store", "n2"));
  EXPECT_THAT(node_ids(registry.providers("kv.Store")), ElementsAre("n1", "n3"));
  EXPECT_THAT(node_ids(registry.providers("kv.Other")), ElementsAre("n2"));
  EXPECT_FALSE(registry.remove("kv.Store", "n2"));
  EXPECT_FALSE(registry.remove("kv.Missing", "n1"));
  EXPECT_EQ(registry.providers("kv.Store")->version, 4u);
}

TEST(ProviderRegistry, ReplaceOfOneServiceKeepsOtherServices) {
  ProviderRegistry registry;
  ASSERT_THAT(registry.replace("a", {make_provider("a1", 1), make_provider("a2", 2)}, "file"),
              IsOk());
  ASSERT_THAT(registry.replace("b", {make_provider("b1", 1)}, "file"), IsOk());
  ASSERT_THAT(registry.replace("a", {make_provider("a3", 3)}, "dns"), IsOk());
  auto a = registry.providers("a");
  EXPECT_THAT(node_ids(a), ElementsAre("a3"));
  EXPECT_EQ(a->source, "dns");
  EXPECT_EQ(a->version, 2u);
  EXPECT_THAT(node_ids(registry.providers("b")), ElementsAre("b1"));
  EXPECT_EQ(registry.providers("b")->version, 1u);
  EXPECT_THAT(registry.services(), ElementsAre("a", "b"));
}

TEST(ProviderRegistry, ReplaceRejectsDuplicateNodeIdsAndKeepsTheList) {
  ProviderRegistry registry;
  ASSERT_THAT(registry.replace("a", {make_provider("a1", 1)}, "file"), IsOk());
  EXPECT_THAT(registry.replace("a", {make_provider("x", 1), make_provider("x", 2)}, "file"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("a[1]: duplicate node_id \"x\"")));
  EXPECT_THAT(registry.replace("a", {make_provider("", 1)}, "file"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("a[0]: empty node_id")));
  EXPECT_THAT(node_ids(registry.providers("a")), ElementsAre("a1"));
  EXPECT_EQ(registry.providers("a")->version, 1u);
}

TEST(ProviderRegistry, WatcherSeesCurrentSnapshotThenEachChange) {
  ProviderRegistry registry;
  ASSERT_THAT(registry.upsert("a", make_provider("a1", 1)), IsOk());
  std::vector<ProviderSnapshot> seen;
  registry.watch("a", [&](const ProviderSnapshot& snapshot) { seen.push_back(snapshot); });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]->version, 1u);

  ASSERT_THAT(registry.upsert("a", make_provider("a2", 2)), IsOk());
  ASSERT_THAT(registry.upsert("b", make_provider("b1", 1)), IsOk());  // another service
  EXPECT_TRUE(registry.remove("a", "a1"));
  ASSERT_THAT(registry.replace("a", {make_provider("a2", 2)}, "file"), IsOk());  // no change

  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1]->version, 2u);
  EXPECT_THAT(node_ids(seen[1]), ElementsAre("a1", "a2"));
  EXPECT_EQ(seen[2]->version, 3u);
  EXPECT_THAT(node_ids(seen[2]), ElementsAre("a2"));
  EXPECT_EQ(seen[2], registry.providers("a"));
}

TEST(ProviderRegistry, UnwatchStopsNotifications) {
  ProviderRegistry registry;
  int calls = 0;
  auto id = registry.watch("a", [&](const ProviderSnapshot&) { ++calls; });
  ASSERT_THAT(registry.upsert("a", make_provider("a1", 1)), IsOk());
  registry.unwatch(id);
  ASSERT_THAT(registry.upsert("a", make_provider("a2", 1)), IsOk());
  EXPECT_EQ(calls, 2);
}

TEST(ProviderRegistry, WatcherMayUnwatchItself) {
  ProviderRegistry registry;
  int calls = 0;
  ProviderRegistry::WatchId id = 0;
  id = registry.watch("a", [&](const ProviderSnapshot& snapshot) {
    ++calls;
    if (snapshot->version == 1) registry.unwatch(id);
  });
  ASSERT_THAT(registry.upsert("a", make_provider("a1", 1)), IsOk());
  ASSERT_THAT(registry.upsert("a", make_provider("a2", 1)), IsOk());
  EXPECT_EQ(calls, 2);  // version 0 at watch(), version 1, then unwatched
}

TEST(ProviderRegistry, SnapshotStaysStableWhileRegistryChanges) {
  ProviderRegistry registry;
  ASSERT_THAT(registry.replace("a", {make_provider("a1", 1), make_provider("a2", 2)}, "file"),
              IsOk());
  const ProviderSnapshot held = registry.providers("a");
  ASSERT_THAT(registry.upsert("a", make_provider("a1", 7000)), IsOk());
  EXPECT_TRUE(registry.remove("a", "a2"));
  ASSERT_THAT(registry.replace("a", {}, "file"), IsOk());
  EXPECT_EQ(held->version, 1u);
  EXPECT_THAT(node_ids(held), ElementsAre("a1", "a2"));
  EXPECT_EQ(held->providers[0].address.port, 1);
  EXPECT_TRUE(registry.providers("a")->providers.empty());
  EXPECT_EQ(registry.providers("a")->version, 4u);
}

// Writers on several threads and readers holding snapshots: run under TSan to check the
// locking; the final state must hold every writer's last provider, and each watcher must see
// versions in increasing order.
TEST(ProviderRegistry, ConcurrentWritersReadersAndWatcherSeeIncreasingVersions) {
  ProviderRegistry registry;
  std::atomic<uint64_t> last_seen{0};
  std::atomic<bool> out_of_order{false};
  registry.watch("a", [&](const ProviderSnapshot& snapshot) {
    if (snapshot->version < last_seen.load()) out_of_order = true;
    last_seen = snapshot->version;
  });
  constexpr int kWriters = 4;
  constexpr int kWrites = 500;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 1; i <= kWrites; ++i) {
        registry.upsert("a", make_provider("w" + std::to_string(w), static_cast<uint16_t>(i)))
            .ignore_error();
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < kWrites; ++i) {
      auto snapshot = registry.providers("a");
      EXPECT_LE(snapshot->providers.size(), static_cast<size_t>(kWriters));
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_FALSE(out_of_order);
  auto final_snapshot = registry.providers("a");
  ASSERT_EQ(final_snapshot->providers.size(), static_cast<size_t>(kWriters));
  for (const auto& provider : final_snapshot->providers) EXPECT_EQ(provider.address.port, kWrites);
  EXPECT_EQ(final_snapshot->version, static_cast<uint64_t>(kWriters * kWrites));
  EXPECT_EQ(last_seen.load(), final_snapshot->version);
}

}  // namespace
}  // namespace meshrpc::cluster
