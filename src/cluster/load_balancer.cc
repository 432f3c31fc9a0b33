// Shared eligibility rules, the stable hash, the stateless balancers (first, random) and the
// factory by name. The stateful ones live beside it in lb_*.cc.
#include "meshrpc/cluster/load_balancer.h"

#include <algorithm>
#include <string>
#include <utility>

namespace meshrpc::cluster {

bool in_panic_mode(std::span<const Provider> providers) {
  return !providers.empty() && std::none_of(providers.begin(), providers.end(), [](const auto& p) {
    return p.health == ProviderHealth::kHealthy;
  });
}

bool is_eligible(const Provider& provider, const PickRequest& request, bool panic) {
  if (!panic && provider.health != ProviderHealth::kHealthy) return false;
  return std::find(request.excluded_node_ids.begin(), request.excluded_node_ids.end(),
                   provider.node_id) == request.excluded_node_ids.end();
}

std::optional<size_t> pick_uniform(std::span<const Provider> providers, const PickRequest& request,
                                   bool panic) {
  size_t eligible = 0;
  for (const Provider& provider : providers) eligible += is_eligible(provider, request, panic);
  if (eligible == 0) return std::nullopt;
  size_t remaining = request.random.uniform(eligible);
  for (size_t i = 0; i < providers.size(); ++i) {
    if (!is_eligible(providers[i], request, panic)) continue;
    if (remaining-- == 0) return i;
  }
  return std::nullopt;  // unreachable: `eligible` counted at least remaining + 1
}

uint64_t stable_hash64(std::string_view bytes) {
  // FNV-1a 64 (offset basis and prime from the FNV specification).
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  // murmur3 fmix64: every input bit affects every output bit.
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  hash *= 0xc4ceb9fe1a85ec53ULL;
  hash ^= hash >> 33;
  return hash;
}

namespace {

class FirstBalancer final : public LoadBalancer {
 public:
  void update(std::vector<Provider> providers) override {
    providers_ = std::move(providers);
    panic_ = in_panic_mode(providers_);
  }

  std::optional<size_t> pick(const PickRequest& request) override {
    for (size_t i = 0; i < providers_.size(); ++i) {
      if (is_eligible(providers_[i], request, panic_)) return i;
    }
    return std::nullopt;
  }

  std::string_view name() const override { return "first"; }

 private:
  std::vector<Provider> providers_;
  bool panic_ = false;
};

class RandomBalancer final : public LoadBalancer {
 public:
  void update(std::vector<Provider> providers) override {
    providers_ = std::move(providers);
    panic_ = in_panic_mode(providers_);
  }

  std::optional<size_t> pick(const PickRequest& request) override {
    return pick_uniform(providers_, request, panic_);
  }

  std::string_view name() const override { return "random"; }

 private:
  std::vector<Provider> providers_;
  bool panic_ = false;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_first_balancer() { return std::make_unique<FirstBalancer>(); }

std::unique_ptr<LoadBalancer> make_random_balancer() { return std::make_unique<RandomBalancer>(); }

Result<std::unique_ptr<LoadBalancer>> make_load_balancer(std::string_view name) {
  if (name == "first") return make_first_balancer();
  if (name == "random") return make_random_balancer();
  if (name == "round_robin") return make_round_robin_balancer();
  if (name == "p2c") return make_p2c_balancer();
  if (name == "ring_hash") return make_ring_hash_balancer();
  if (name == "weighted_round_robin") return make_weighted_round_robin_balancer();
  std::string known;
  for (const std::string_view known_name : kLoadBalancerNames) {
    if (!known.empty()) known += ", ";
    known += known_name;
  }
  return invalid_argument_error("unknown load balancer \"" + std::string(name) +
                                "\"; known: " + known);
}

}  // namespace meshrpc::cluster
