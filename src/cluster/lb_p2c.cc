// p2c: power of two choices over (outstanding + 1) x peak-sensitive EWMA latency, the cost
// Finagle's and Linkerd's PeakEWMA balancers use.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "meshrpc/cluster/load_balancer.h"

namespace meshrpc::cluster {
namespace {

// The estimate of a provider without samples when no provider has any: all are then costed
// alike, so only outstanding counts matter and the value itself is arbitrary.
constexpr double kDefaultLatencyNs = 1e6;  // 1 ms
// Estimates below 1 ns count as 1 ns, so that outstanding attempts still raise the cost of a
// provider whose answers take no measurable time.
constexpr double kMinLatencyNs = 1.0;
// A failure raises the estimate to at most 10 s: enough to avoid the provider until it
// decays back, bounded so that repeated failures (each doubling it) leave it probable again
// within minutes; ejecting it for good is outlier detection's job.
constexpr double kMaxFailurePenaltyNs = 10e9;

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
};

struct ProviderLoad {
  uint32_t outstanding = 0;
  bool sampled = false;
  double ewma_ns = 0;
  runtime::TimePoint stamp{};  // time of the last sample
};

class P2cBalancer final : public LoadBalancer {
 public:
  explicit P2cBalancer(P2cOptions options) : options_(options) {
    if (options_.decay_time <= runtime::Duration::zero()) {
      throw std::invalid_argument("p2c decay_time must be positive");
    }
    decay_ns_ = static_cast<double>(options_.decay_time.count());
  }

  void update(std::vector<Provider> providers) override {
    providers_ = std::move(providers);
    panic_ = in_panic_mode(providers_);
    LoadMap next;
    for (const Provider& provider : providers_) {
      if (next.contains(provider.node_id)) continue;
      if (auto node = loads_.extract(provider.node_id)) {
        next.insert(std::move(node));
      } else {
        next.emplace(provider.node_id, ProviderLoad{});
      }
    }
    loads_ = std::move(next);
    by_index_.clear();
    for (const Provider& provider : providers_) by_index_.push_back(&loads_.at(provider.node_id));
    sampled_sum_ns_ = 0;
    sampled_count_ = 0;
    for (const auto& [id, load] : loads_) {
      if (!load.sampled) continue;
      sampled_sum_ns_ += load.ewma_ns;
      ++sampled_count_;
    }
  }

  std::optional<size_t> pick(const PickRequest& request) override {
    size_t eligible = 0;
    for (const Provider& p : providers_) eligible += is_eligible(p, request, panic_);
    if (eligible <= 1) return pick_uniform(providers_, request, panic_);
    // Two distinct draws among the eligible: the second skips over the first.
    const size_t first = request.random.uniform(eligible);
    size_t second = request.random.uniform(eligible - 1);
    if (second >= first) ++second;
    std::optional<size_t> a, b;
    for (size_t i = 0, n = 0; i < providers_.size() && !(a && b); ++i) {
      if (!is_eligible(providers_[i], request, panic_)) continue;
      if (n == first) a = i;
      if (n == second) b = i;
      ++n;
    }
    // On a tie the first draw wins, which is itself uniformly random.
    return cost(*b, request.now) < cost(*a, request.now) ? b : a;
  }

  void on_call_started(std::string_view node_id) override {
    if (ProviderLoad* load = find(node_id)) ++load->outstanding;
  }

  void on_call_finished(std::string_view node_id, runtime::TimePoint now, runtime::Duration latency,
                        bool ok) override {
    ProviderLoad* load = find(node_id);
    if (load == nullptr) return;
    // Saturating: an attempt started before its provider was removed and re-added finishes
    // against fresh state.
    if (load->outstanding > 0) --load->outstanding;
    double sample_ns = std::max(0.0, static_cast<double>(latency.count()));
    if (!ok) {
      sample_ns = std::max(sample_ns, std::min(2 * estimate_ns(*load, now), kMaxFailurePenaltyNs));
    }
    record(*load, now, sample_ns);
  }

  std::string_view name() const override { return "p2c"; }

 private:
  using LoadMap = std::unordered_map<std::string, ProviderLoad, TransparentHash, std::equal_to<>>;

  ProviderLoad* find(std::string_view node_id) {
    auto it = loads_.find(node_id);
    return it == loads_.end() ? nullptr : &it->second;
  }

  double prior_ns() const {
    return sampled_count_ == 0 ? kDefaultLatencyNs
                               : sampled_sum_ns_ / static_cast<double>(sampled_count_);
  }

  double decay_weight(runtime::TimePoint from, runtime::TimePoint to) const {
    const double elapsed_ns =
        static_cast<double>(std::max(to - from, runtime::Duration::zero()).count());
    return std::exp(-elapsed_ns / decay_ns_);
  }

  // The latency estimate at `now`: the EWMA, relaxed towards the service mean for as long as
  // no sample came, so an avoided provider is eventually tried again.
  double estimate_ns(const ProviderLoad& load, runtime::TimePoint now) const {
    const double prior = prior_ns();
    if (!load.sampled) return prior;
    return prior + (load.ewma_ns - prior) * decay_weight(load.stamp, now);
  }

  double cost(size_t index, runtime::TimePoint now) const {
    const ProviderLoad& load = *by_index_[index];
    return (static_cast<double>(load.outstanding) + 1) *
           std::max(estimate_ns(load, now), kMinLatencyNs);
  }

  // Peak-sensitive, time-weighted EWMA: a sample above the estimate replaces it; otherwise
  // it is blended in with weight 1 - e^(-elapsed/decay_time) since the previous sample.
  void record(ProviderLoad& load, runtime::TimePoint now, double sample_ns) {
    const double before = load.sampled ? load.ewma_ns : 0.0;
    if (!load.sampled || sample_ns >= load.ewma_ns) {
      load.ewma_ns = sample_ns;
    } else {
      const double w = decay_weight(load.stamp, now);
      load.ewma_ns = w * load.ewma_ns + (1 - w) * sample_ns;
    }
    if (!load.sampled) ++sampled_count_;
    load.sampled = true;
    sampled_sum_ns_ += load.ewma_ns - before;
    load.stamp = std::max(load.stamp, now);
  }

  P2cOptions options_;
  double decay_ns_ = 0;
  std::vector<Provider> providers_;
  bool panic_ = false;
  LoadMap loads_;                        // one per distinct node id in providers_
  std::vector<ProviderLoad*> by_index_;  // parallel to providers_, into loads_
  double sampled_sum_ns_ = 0;            // sum of ewma_ns over sampled entries of loads_
  size_t sampled_count_ = 0;
};

}  // namespace

std::unique_ptr<LoadBalancer> make_p2c_balancer(P2cOptions options) {
  return std::make_unique<P2cBalancer>(options);
}

}  // namespace meshrpc::cluster
