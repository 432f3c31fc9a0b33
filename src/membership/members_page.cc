#include "meshrpc/membership/members_page.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <utility>

namespace meshrpc::membership {

namespace {

boost::json::array members_array(const std::vector<NodeStatus>& members, const std::string& self_id,
                                 runtime::TimePoint now) {
  boost::json::array list;
  for (const NodeStatus& member : members) {
    boost::json::object entry;
    entry["node_id"] = member.node_id;
    entry["address"] = member.address.to_string();
    entry["state"] = member_state_name(member.state);
    entry["incarnation"] = member.incarnation;
    boost::json::object tags;
    for (const auto& [key, value] : member.tags) tags[key] = value;
    entry["tags"] = std::move(tags);
    entry["since_seconds"] = std::chrono::duration<double>(now - member.last_seen).count();
    entry["self"] = member.node_id == self_id;
    list.push_back(std::move(entry));
  }
  return list;
}

}  // namespace

std::string members_json(const std::vector<NodeStatus>& members, const std::string& self_id,
                         uint32_t health_score, runtime::TimePoint now) {
  boost::json::object body;
  body["self"] = self_id;
  body["health_score"] = health_score;
  body["members"] = members_array(members, self_id, now);
  return boost::json::serialize(body);
}

void add_members_pages(observe::HttpService& http, Cluster& cluster) {
  // Pages may outlive the cluster: they read it through views that go empty with it.
  auto members = cluster.members_view();
  auto self = cluster.self_view();
  runtime::Env* env = &cluster.env();
  http.add_page(
      "/members",
      [members, self, env](const observe::HttpRequest&) -> awaitable<observe::HttpResponse> {
        const auto [self_id, score] = self();
        observe::HttpResponse response;
        response.body = members_json(members(), self_id, score, env->now());
        response.headers.emplace_back("cache-control", "no-store");
        co_return response;
      });
  http.add_status_section("members", [members, self, env] {
    return boost::json::serialize(members_array(members(), self().first, env->now()));
  });
}

}  // namespace meshrpc::membership
