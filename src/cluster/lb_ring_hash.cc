// ring_hash: consistent hashing on the request's hash key (Karger et al. 1997; ketama).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "meshrpc/cluster/load_balancer.h"

namespace meshrpc::cluster {
namespace {

// murmur3 fmix64: spreads sequential keys (user ids 1, 2, 3) over the whole ring.
uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Golden-ratio increment (splitmix64's): point j of a provider sits at
// mix64(hash(node_id) + (j + 1) x kGolden), so its points depend only on its node id and
// count, and stay put when other providers come and go.
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

class RingHashBalancer final : public LoadBalancer {
 public:
  explicit RingHashBalancer(RingHashOptions options) : options_(options) {
    if (options_.points_per_weight == 0) {
      throw std::invalid_argument("ring_hash points_per_weight must be positive");
    }
    if (options_.max_ring_points == 0) {
      throw std::invalid_argument("ring_hash max_ring_points must be at least 1");
    }
  }

  void update(std::vector<Provider> providers) override {
    providers_ = std::move(providers);
    panic_ = in_panic_mode(providers_);
    build_ring();
  }

  std::optional<size_t> pick(const PickRequest& request) override {
    if (!request.hash_key) return pick_uniform(providers_, request, panic_);
    // Checked first so that the walk below always ends, and ends within one lap.
    const bool any_eligible = std::any_of(providers_.begin(), providers_.end(), [&](const auto& p) {
      return is_eligible(p, request, panic_);
    });
    if (!any_eligible) return std::nullopt;
    const uint64_t position = mix64(*request.hash_key);
    auto it =
        std::lower_bound(ring_.begin(), ring_.end(), position,
                         [](const Point& point, uint64_t key) { return point.position < key; });
    size_t at = static_cast<size_t>(it - ring_.begin());
    for (size_t step = 0; step < ring_.size(); ++step, ++at) {
      const uint32_t index = ring_[at % ring_.size()].index;
      if (is_eligible(providers_[index], request, panic_)) return index;
    }
    return std::nullopt;  // unreachable: every provider has at least one point
  }

  std::string_view name() const override { return "ring_hash"; }

 private:
  struct Point {
    uint64_t position;
    uint32_t index;  // into providers_
  };

  void build_ring() {
    ring_.clear();
    uint64_t wanted = 0;
    for (const Provider& p : providers_) {
      wanted += uint64_t{effective_weight(p)} * options_.points_per_weight;
    }
    const double scale =
        wanted > options_.max_ring_points
            ? static_cast<double>(options_.max_ring_points) / static_cast<double>(wanted)
            : 1.0;
    for (size_t i = 0; i < providers_.size(); ++i) {
      const double share =
          static_cast<double>(effective_weight(providers_[i])) * options_.points_per_weight * scale;
      const uint64_t points = std::max<uint64_t>(1, static_cast<uint64_t>(share));
      const uint64_t base = stable_hash64(providers_[i].node_id);
      for (uint64_t j = 0; j < points; ++j) {
        ring_.push_back({mix64(base + (j + 1) * kGolden), static_cast<uint32_t>(i)});
      }
    }
    // Ties (two points at one 64-bit position) are broken by node id, not list order, so the
    // ring does not depend on the order the resolver listed providers in.
    std::sort(ring_.begin(), ring_.end(), [&](const Point& a, const Point& b) {
      if (a.position != b.position) return a.position < b.position;
      return providers_[a.index].node_id < providers_[b.index].node_id;
    });
  }

  RingHashOptions options_;
  std::vector<Provider> providers_;
  std::vector<Point> ring_;  // sorted by position
  bool panic_ = false;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_ring_hash_balancer(RingHashOptions options) {
  return std::make_unique<RingHashBalancer>(options);
}

}  // namespace meshrpc::cluster
