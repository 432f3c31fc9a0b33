// GossipResolver's mapping from members to providers, and the /members JSON: pure functions
// of a member list.
#include "meshrpc/membership/gossip_resolver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>
#include <vector>

#include "meshrpc/membership/members_page.h"

namespace meshrpc::membership {
namespace {

NodeStatus member(std::string id, uint16_t port, MemberState state, Tags tags) {
  NodeStatus status;
  status.node_id = std::move(id);
  status.address = {"10.0.0.1", port};
  status.state = state;
  status.tags = std::move(tags);
  return status;
}

TEST(GossipResolverProviders, AliveAreHealthySuspectUnhealthyDeadAndLeftAbsent) {
  const std::vector<NodeStatus> members = {
      member("d", 4, MemberState::kDead, {{"services", "kv.Store"}}),
      member("c", 3, MemberState::kSuspect, {{"services", "kv.Store"}}),
      member("a", 1, MemberState::kAlive, {{"services", "kv.Store"}}),
      member("l", 5, MemberState::kLeft, {{"services", "kv.Store"}}),
  };
  const auto providers = GossipResolver::providers_of(members, "kv.Store", {});
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0].node_id, "a");
  EXPECT_EQ(providers[0].health, cluster::ProviderHealth::kHealthy);
  EXPECT_EQ(providers[0].address.port, 1);
  EXPECT_EQ(providers[1].node_id, "c");
  EXPECT_EQ(providers[1].health, cluster::ProviderHealth::kUnhealthy);
}

TEST(GossipResolverProviders, ServicesTagIsACommaSeparatedListMatchedWholeNames) {
  const std::vector<NodeStatus> members = {
      member("a", 1, MemberState::kAlive, {{"services", "kv.Admin, kv.Store"}}),
      member("b", 2, MemberState::kAlive, {{"services", "kv.StoreV2"}}),
      member("c", 3, MemberState::kAlive, {{"role", "kv.Store"}}),
  };
  const auto providers = GossipResolver::providers_of(members, "kv.Store", {});
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0].node_id, "a");
  GossipResolverOptions by_role;
  by_role.services_tag = "role";
  EXPECT_EQ(GossipResolver::providers_of(members, "kv.Store", by_role).size(), 1u);
}

TEST(GossipResolverProviders, WeightTagSetsAPositiveWeightAndIgnoresGarbage) {
  const std::vector<NodeStatus> members = {
      member("a", 1, MemberState::kAlive, {{"services", "s"}, {"weight", "5"}}),
      member("b", 2, MemberState::kAlive, {{"services", "s"}, {"weight", "0"}}),
      member("c", 3, MemberState::kAlive, {{"services", "s"}, {"weight", "lots"}}),
  };
  const auto providers = GossipResolver::providers_of(members, "s", {});
  ASSERT_EQ(providers.size(), 3u);
  EXPECT_EQ(providers[0].weight, 5u);
  EXPECT_EQ(providers[1].weight, 1u);
  EXPECT_EQ(providers[2].weight, 1u);
  EXPECT_EQ(providers[0].tags.at("weight"), "5") << "tags travel with the provider";
}

TEST(MembersJson, ListsEveryMemberWithStateTagsAgeAndSelf) {
  std::vector<NodeStatus> members = {
      member("a", 1, MemberState::kAlive, {{"zone", "x"}}),
      member("b", 2, MemberState::kDead, {}),
  };
  members[1].incarnation = 3;
  const runtime::TimePoint now = runtime::TimePoint{} + std::chrono::seconds(10);
  members[1].last_seen = now - std::chrono::seconds(4);
  const boost::json::value body = boost::json::parse(members_json(members, "a", 2, now));
  EXPECT_EQ(body.at("self").as_string(), "a");
  EXPECT_EQ(body.at("health_score").to_number<int64_t>(), 2);
  const auto& list = body.at("members").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("node_id").as_string(), "a");
  EXPECT_TRUE(list[0].at("self").as_bool());
  EXPECT_EQ(list[0].at("tags").at("zone").as_string(), "x");
  EXPECT_EQ(list[0].at("address").as_string(), "10.0.0.1:1");
  EXPECT_EQ(list[1].at("state").as_string(), "dead");
  EXPECT_EQ(list[1].at("incarnation").to_number<int64_t>(), 3);
  EXPECT_FALSE(list[1].at("self").as_bool());
  EXPECT_DOUBLE_EQ(list[1].at("since_seconds").to_number<double>(), 4.0);
}

}  // namespace
}  // namespace meshrpc::membership
