// round_robin and weighted_round_robin (smooth, as nginx): rotations whose position is
// per-balancer state, so two services rotate independently.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>

#include "meshrpc/cluster/load_balancer.h"

namespace meshrpc::cluster {
namespace {

class RoundRobinBalancer final : public LoadBalancer {
 public:
  void update(std::vector<Provider> providers) override {
    providers_ = std::move(providers);
    panic_ = in_panic_mode(providers_);
    // Continue from the same position: a provider appended is reached within one rotation.
    if (!providers_.empty()) next_ %= providers_.size();
  }

  std::optional<size_t> pick(const PickRequest& request) override {
    const size_t count = providers_.size();
    if (count == 0) return std::nullopt;
    if (!started_) {
      next_ = request.random.uniform(count);
      started_ = true;
    }
    for (size_t step = 0; step < count; ++step) {
      const size_t index = (next_ + step) % count;
      if (!is_eligible(providers_[index], request, panic_)) continue;
      next_ = (index + 1) % count;
      return index;
    }
    return std::nullopt;
  }

  std::string_view name() const override { return "round_robin"; }

 private:
  std::vector<Provider> providers_;
  bool panic_ = false;
  bool started_ = false;
  size_t next_ = 0;  // where the next rotation step starts; < providers_.size() when non-empty
};

class WeightedRoundRobinBalancer final : public LoadBalancer {
 public:
  void update(std::vector<Provider> providers) override {
    std::unordered_map<std::string, int64_t> previous;
    for (size_t i = 0; i < providers_.size(); ++i) previous[providers_[i].node_id] = current_[i];
    providers_ = std::move(providers);
    panic_ = in_panic_mode(providers_);
    current_.assign(providers_.size(), 0);
    for (size_t i = 0; i < providers_.size(); ++i) {
      if (auto it = previous.find(providers_[i].node_id); it != previous.end()) {
        current_[i] = it->second;
      }
    }
  }

  // nginx ngx_http_upstream_get_peer: raise every eligible provider by its weight, take the
  // highest, lower it by the total. Within a fixed eligible set the current values sum to a
  // constant and stay within a total of each other, so int64 cannot overflow for uint32
  // weights.
  std::optional<size_t> pick(const PickRequest& request) override {
    std::optional<size_t> best;
    int64_t total = 0;
    for (size_t i = 0; i < providers_.size(); ++i) {
      if (!is_eligible(providers_[i], request, panic_)) continue;
      const int64_t weight = effective_weight(providers_[i]);
      current_[i] += weight;
      total += weight;
      if (!best || current_[i] > current_[*best]) best = i;
    }
    if (best) current_[*best] -= total;
    return best;
  }

  std::string_view name() const override { return "weighted_round_robin"; }

 private:
  std::vector<Provider> providers_;
  std::vector<int64_t> current_;  // nginx's current_weight, parallel to providers_
  bool panic_ = false;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_round_robin_balancer() {
  return std::make_unique<RoundRobinBalancer>();
}

std::unique_ptr<LoadBalancer> make_weighted_round_robin_balancer() {
  return std::make_unique<WeightedRoundRobinBalancer>();
}

}  // namespace meshrpc::cluster
