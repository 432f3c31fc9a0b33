// Provider: one process that serves a service, as a resolver reports it and a load balancer
// picks it. A plain value: resolvers produce lists of them, the provider registry stores and
// updates them by node id, and LoadBalancer::update() receives them. Copying one is cheap
// enough for lists that change at resolver speed (seconds), not per call.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "meshrpc/transport/address.h"

namespace meshrpc::cluster {

// Whether a provider should receive new calls. Load balancers pick only kHealthy providers
// while any provider of the service is kHealthy; when none is, they pick among all of them
// ("panic mode", see load_balancer.h).
enum class ProviderHealth : uint8_t {
  // Serving: takes new calls.
  kHealthy,
  // Shutting down gracefully: finishes the calls it has but should get no new ones. Distinct
  // from kUnhealthy so that status pages and metrics can tell a deploy from a failure.
  kDraining,
  // Failed a health check or was reported down by its resolver: takes no new calls.
  kUnhealthy,
};

constexpr std::string_view provider_health_name(ProviderHealth health) {
  switch (health) {
    case ProviderHealth::kHealthy:
      return "healthy";
    case ProviderHealth::kDraining:
      return "draining";
    case ProviderHealth::kUnhealthy:
      return "unhealthy";
  }
  return "unknown";
}

struct Provider {
  // Identifies the provider across updates; unique within one service's list (the provider
  // registry keeps it so). A provider that moves to another address keeps its node id, so
  // per-provider balancer state (p2c latency, weighted round robin position) follows it.
  std::string node_id;
  // Where to connect.
  transport::Address address;
  // Free-form labels from the resolver (zone, version, shard). Ordered so that two equal
  // providers compare and print the same.
  std::map<std::string, std::string> tags;
  // Relative capacity, used by weighted_round_robin (share of picks) and ring_hash (share of
  // the ring). 1 by default so that unweighted sources (static lists, DNS) mean "equal".
  // A weight of 0 is read as 1: a listed provider is meant to serve; to take one out of
  // rotation mark it kDraining instead.
  uint32_t weight = 1;
  ProviderHealth health = ProviderHealth::kHealthy;

  friend bool operator==(const Provider&, const Provider&) = default;
};

}  // namespace meshrpc::cluster
