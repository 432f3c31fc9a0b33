#include "meshrpc/membership/gossip_resolver.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace meshrpc::membership {

namespace {

bool lists_service(std::string_view list, std::string_view service) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == service) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

uint32_t weight_of(const Tags& tags, const std::string& tag) {
  auto it = tags.find(tag);
  if (it == tags.end()) return 1;
  uint32_t weight = 0;
  const char* end = it->second.data() + it->second.size();
  auto [ptr, ec] = std::from_chars(it->second.data(), end, weight);
  return ec == std::errc() && ptr == end && weight > 0 ? weight : 1;
}

}  // namespace

GossipResolver::GossipResolver(runtime::Env& env, Cluster& cluster, GossipResolverOptions options)
    : cluster_(cluster), options_(std::move(options)), store_(env) {
  // Events arrive on the cluster's executor; each recomputes the watched lists (the store
  // tells watchers only about lists that changed).
  cluster_watch_ = cluster_.watch([this](const MemberEvent&) { refresh_all(); });
}

GossipResolver::~GossipResolver() { stop(); }

std::vector<cluster::Provider> GossipResolver::providers_of(const std::vector<NodeStatus>& members,
                                                            std::string_view service,
                                                            const GossipResolverOptions& options) {
  std::vector<cluster::Provider> providers;
  for (const NodeStatus& member : members) {
    if (member.state != MemberState::kAlive && member.state != MemberState::kSuspect) continue;
    auto services = member.tags.find(options.services_tag);
    if (services == member.tags.end() || !lists_service(services->second, service)) continue;
    cluster::Provider provider;
    provider.node_id = member.node_id;
    provider.address = member.address;
    provider.tags = member.tags;
    provider.weight = weight_of(member.tags, options.weight_tag);
    provider.health = member.state == MemberState::kAlive ? cluster::ProviderHealth::kHealthy
                                                          : cluster::ProviderHealth::kUnhealthy;
    providers.push_back(std::move(provider));
  }
  std::sort(providers.begin(), providers.end(),
            [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
  return providers;
}

void GossipResolver::refresh(std::string_view service) {
  store_.set(service, providers_of(cluster_.members(), service, options_));
}

void GossipResolver::refresh_all() {
  const std::vector<NodeStatus> members = cluster_.members();
  for (const std::string& service : store_.services()) {
    store_.set(service, providers_of(members, service, options_));
  }
}

cluster::Resolver::WatchId GossipResolver::watch(std::string service, Watcher watcher) {
  refresh(service);
  return store_.watch(std::move(service), std::move(watcher));
}

void GossipResolver::unwatch(WatchId id) { store_.unwatch(id); }

cluster::ResolverUpdate GossipResolver::current(std::string_view service) const {
  return store_.current(service);
}

void GossipResolver::stop() {
  if (cluster_watch_ != 0) {
    cluster_.unwatch(std::exchange(cluster_watch_, 0));
  }
  store_.stop();
}

}  // namespace meshrpc::membership
