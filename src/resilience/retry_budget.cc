#include "meshrpc/resilience/retry_budget.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace meshrpc::resilience {
namespace {

// Beyond this a ratio or floor is a typo, and the unit arithmetic could overflow.
constexpr double kMaxRatio = 1000.0;
constexpr double kMaxRetriesPerSecond = 1e9;
// A floor past a billion retries per window is no floor at all; capping it keeps the balance
// far from int64 overflow however long the window.
constexpr double kMaxReserveUnits = 1e15;

RetryBudgetOptions validated(RetryBudgetOptions options) {
  if (!(options.ratio >= 0.0 && options.ratio <= kMaxRatio)) {
    throw std::invalid_argument("retry budget ratio " + std::to_string(options.ratio) +
                                " is not in [0, 1000]");
  }
  if (!(options.min_retries_per_second >= 0.0 &&
        options.min_retries_per_second <= kMaxRetriesPerSecond)) {
    throw std::invalid_argument("retry budget min_retries_per_second " +
                                std::to_string(options.min_retries_per_second) +
                                " is not in [0, 1e9]");
  }
  return options;
}

}  // namespace

RetryBudget::RetryBudget(RetryBudgetOptions options)
    : options_(validated(options)),
      ratio_units_(std::llround(options_.ratio * kUnit)),
      reserve_units_(std::llround(std::min(
          kMaxReserveUnits, options_.min_retries_per_second *
                                std::chrono::duration<double>(options_.window).count() * kUnit))),
      requests_(options_.window),
      retries_(options_.window) {}

void RetryBudget::record_request(runtime::TimePoint now) { requests_.add(now); }

int64_t RetryBudget::balance_units(runtime::TimePoint now) {
  return reserve_units_ + requests_.sum(now) * ratio_units_ - retries_.sum(now) * kUnit;
}

bool RetryBudget::try_acquire_retry(runtime::TimePoint now) {
  if (balance_units(now) < kUnit) {
    ++retries_denied_;
    return false;
  }
  retries_.add(now);
  ++retries_allowed_;
  return true;
}

double RetryBudget::available(runtime::TimePoint now) {
  return static_cast<double>(balance_units(now)) / kUnit;
}

}  // namespace meshrpc::resilience
