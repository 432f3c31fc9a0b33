#include "meshrpc/resilience/hedging_policy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <variant>

namespace meshrpc::resilience {
namespace {

void validate_delay(runtime::Duration fixed) {
  if (fixed < runtime::Duration::zero()) {
    throw std::invalid_argument("hedge delay " + std::to_string(fixed.count()) + " ns is negative");
  }
}

void validate_delay(const PercentileDelay& delay) {
  if (!(delay.quantile > 0.0 && delay.quantile <= 1.0)) {
    throw std::invalid_argument("hedge delay quantile " + std::to_string(delay.quantile) +
                                " is not in (0, 1]");
  }
  if (delay.min_delay < runtime::Duration::zero() || delay.min_delay > delay.max_delay) {
    throw std::invalid_argument("hedge min_delay " + std::to_string(delay.min_delay.count()) +
                                " ns is not in [0, max_delay " +
                                std::to_string(delay.max_delay.count()) + " ns]");
  }
}

HedgingPolicy validated(HedgingPolicy policy) {
  if (policy.max_attempts < 1 || policy.max_attempts > kMaxHedgeAttempts) {
    throw std::invalid_argument("hedging max_attempts " + std::to_string(policy.max_attempts) +
                                " is not in [1, " + std::to_string(kMaxHedgeAttempts) + "]");
  }
  // More extra load than kMaxHedgeAttempts - 1 hedges per request could never be used.
  constexpr double kMaxExtraLoad = kMaxHedgeAttempts - 1;
  if (!(policy.max_extra_load >= 0.0 && policy.max_extra_load <= kMaxExtraLoad)) {
    throw std::invalid_argument("hedging max_extra_load " + std::to_string(policy.max_extra_load) +
                                " is not in [0, 4]");
  }
  std::visit([](const auto& delay) { validate_delay(delay); }, policy.delay);
  return policy;
}

}  // namespace

Hedger::Hedger(HedgingPolicy policy)
    : policy_(validated(policy)),
      extra_load_units_(std::llround(policy_.max_extra_load * kUnit)),
      requests_(policy_.load_window),
      hedges_(policy_.load_window) {}

void Hedger::record_request(runtime::TimePoint now) { requests_.add(now); }

void Hedger::record_latency(runtime::Duration latency) {
  samples_[next_sample_] = std::max<int64_t>(latency.count(), 0);
  next_sample_ = (next_sample_ + 1) % kLatencySampleCount;
  sample_count_ = std::min(sample_count_ + 1, kLatencySampleCount);
}

std::optional<runtime::Duration> Hedger::hedge_delay() const {
  if (const auto* fixed = std::get_if<runtime::Duration>(&policy_.delay)) return *fixed;
  if (sample_count_ < kMinLatencySamples) return std::nullopt;
  return percentile_delay(std::get<PercentileDelay>(policy_.delay));
}

runtime::Duration Hedger::percentile_delay(const PercentileDelay& delay) const {
  // Nearest rank: the smallest sample with at least quantile x n samples at or below it. The
  // epsilon keeps 0.95 x 100 at rank 95 even if the product rounds to just above 95.
  std::array<int64_t, kLatencySampleCount> sorted = samples_;
  const auto n = static_cast<double>(sample_count_);
  const auto rank = std::clamp(static_cast<size_t>(std::ceil(delay.quantile * n - 1e-9)), size_t{1},
                               sample_count_);
  const auto nth = sorted.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(sorted.begin(), nth,
                   sorted.begin() + static_cast<std::ptrdiff_t>(sample_count_));
  return std::clamp(runtime::Duration(*nth), delay.min_delay, delay.max_delay);
}

bool Hedger::try_acquire_hedge(runtime::TimePoint now) {
  const int64_t earned = requests_.sum(now) * extra_load_units_;
  if (earned - hedges_.sum(now) * kUnit < kUnit) {
    ++hedges_denied_;
    return false;
  }
  hedges_.add(now);
  ++hedges_allowed_;
  return true;
}

}  // namespace meshrpc::resilience
