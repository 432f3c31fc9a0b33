// The cluster on a node's HTTP port: GET /members (what `meshctl members` prints) and the
// members table of /status.
//
//   auto http = observe::HttpService::attach(server);
//   membership::Cluster cluster(env, network, server);
//   membership::add_members_pages(*http, cluster);   // before server.start()
//
// GET /members:
//   {"self": "node-1", "health_score": 0,
//    "members": [{"node_id", "address", "state": "alive"|"suspect"|"dead"|"left",
//                 "incarnation", "tags": {...}, "since_seconds" (since its last change),
//                 "self": bool}]}                                      // sorted by node id
//
// Lifetime: the pages read the cluster weakly; once it is gone they list no members.
#pragma once

#include <string>
#include <vector>

#include "meshrpc/membership/cluster.h"
#include "meshrpc/membership/member.h"
#include "meshrpc/observe/http_service.h"

namespace meshrpc::membership {

void add_members_pages(observe::HttpService& http, Cluster& cluster);

// The JSON of /members for `members`, `self_id` and `health_score`, ages against `now`.
std::string members_json(const std::vector<NodeStatus>& members, const std::string& self_id,
                         uint32_t health_score, runtime::TimePoint now);

}  // namespace meshrpc::membership
