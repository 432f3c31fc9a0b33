// GossipResolver: the discovery layer's view of a gossip cluster. The providers of a service
// are the members that carry the service in their "services" tag (a comma-separated list),
// so a ServiceClient over this resolver balances over the live cluster and stops calling a
// member as soon as gossip says it is suspect (unhealthy) or dead (gone from the list).
//
//   cluster.update_tags({{"services", "kv.Store,kv.Admin"}, {"zone", "a"}});
//   membership::GossipResolver resolver(env, cluster);
//   cluster::ServiceClient kv(env, network, resolver, "kv.Store");
//
// Mapping (seed 004's vocabulary): alive -> ProviderHealth::kHealthy, suspect -> kUnhealthy
// (balancers avoid it while a healthy provider exists), dead and left -> not listed. A
// member's "weight" tag, when a positive integer, is its weight.
//
// Threading and lifetime: as cluster::Resolver says; `cluster` outlives the resolver.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/cluster/provider.h"
#include "meshrpc/cluster/resolver.h"
#include "meshrpc/cluster/static_resolver.h"
#include "meshrpc/membership/cluster.h"
#include "meshrpc/membership/member.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::membership {

struct GossipResolverOptions {
  // The tag listing the services a member provides, comma-separated.
  std::string services_tag = "services";
  // The tag holding a member's weight (cluster::Provider::weight).
  std::string weight_tag = "weight";
};

class GossipResolver final : public cluster::Resolver {
 public:
  GossipResolver(runtime::Env& env, Cluster& cluster, GossipResolverOptions options = {});
  ~GossipResolver() override;
  GossipResolver(const GossipResolver&) = delete;
  GossipResolver& operator=(const GossipResolver&) = delete;

  WatchId watch(std::string service, Watcher watcher) override;
  void unwatch(WatchId id) override;
  cluster::ResolverUpdate current(std::string_view service) const override;
  void stop() override;

  // The providers of `service` among `members`, sorted by node id.
  static std::vector<cluster::Provider> providers_of(const std::vector<NodeStatus>& members,
                                                     std::string_view service,
                                                     const GossipResolverOptions& options);

 private:
  void refresh(std::string_view service);
  void refresh_all();

  Cluster& cluster_;
  const GossipResolverOptions options_;
  cluster::StaticResolver store_;
  Cluster::WatchId cluster_watch_ = 0;
};

}  // namespace meshrpc::membership
