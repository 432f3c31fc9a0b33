// OutlierDetector: takes the providers of one service that keep failing out of rotation for
// a while (ejects them), so calls stop paying for them, then lets them back in on probation.
// Modelled on Envoy's outlier detection, with its defaults.
//
//   not ejected --(consecutive_failures in a row)----------------------------> ejected
//   not ejected --(success rate below mean - factor x stddev at an evaluation)--> ejected
//   ejected --(ejection time elapsed)--> not ejected, on probation
//   on probation --(a failure)--> ejected again at once, for longer
//   on probation --(a success)--> not ejected, off probation
//
// Ejection time: base_ejection_time x the number of times the provider has been ejected
// (30 s, 60 s, 90 s, ...), capped at max_ejection_time. The count falls by one for every
// evaluation interval the provider spends in rotation off probation, so a provider that has
// been healthy for a while is ejected for the base time again (Envoy's rule).
//
// Max ejection: at most max(1, floor(providers x max_ejection_percent / 100)) providers are
// ejected at once when there are at least 2 providers, so a bad deploy cannot eject them
// all; a provider whose turn is refused by the cap stays in rotation and is ejected by a
// later failure once there is room. At least one, as Envoy does: with 10% of fewer than 10
// providers the cap would otherwise round to zero and outlier detection would do nothing for
// small services, which are most of them. A lone provider is never ejected: there is nothing
// to send its calls to instead. max_ejection_percent = 0 turns ejection off.
//
// Which outcomes are failures is the caller's decision, as for the circuit breaker: those
// that say something about the provider's health (counts_as_breaker_failure), not local
// failures or cancels, which say nothing about it (do not record those at all).
//
// A pure state machine (DESIGN.md principle 1): `now` is an argument of every call, and
// expiries and evaluations happen when a call passes a `now` at or past them. Providers are
// keyed by node id; the list follows set_providers(), and outcomes for node ids not in it
// are ignored. Every ejection and return is queued as a Transition for the driver to log and
// count (principle 7). Threading: not thread-safe; its owner serialises calls to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

struct OutlierDetectionOptions {
  // Eject after 5 failures in a row (Envoy's consecutive_5xx): a dead provider is out within
  // 5 calls even at low traffic; 5 unrelated failures in a row of a healthy one are rare.
  // 0 disables this trigger.
  uint32_t consecutive_failures = 5;
  // The success-rate check runs every 10 s (Envoy's interval), over the outcomes recorded
  // since the last one: long enough to hold request_volume calls at modest traffic, short
  // enough to act on a provider that fails a fraction of its calls. Also the step at which
  // the ejection count decays. Must be positive.
  runtime::Duration interval = std::chrono::seconds(10);
  // Success-rate check (Envoy's success_rate_*): among providers with at least
  // success_rate_request_volume outcomes in the interval, eject those whose success rate is
  // below mean - success_rate_stdev_factor x stddev. Only when at least
  // success_rate_minimum_hosts providers have that volume: with fewer, mean and stddev say
  // little. 100 outcomes make a rate worth comparing; 1.9 stddevs flags about the worst 3%
  // of a normal spread. 0 minimum hosts disables the check.
  uint32_t success_rate_minimum_hosts = 5;
  uint32_t success_rate_request_volume = 100;
  double success_rate_stdev_factor = 1.9;
  // First ejection 30 s (Envoy's base_ejection_time): long enough for a restarting process
  // to come back, short enough that a recovered provider is not missed for long. Must be
  // positive.
  runtime::Duration base_ejection_time = std::chrono::seconds(30);
  // Ejections grow to at most 300 s (Envoy's max_ejection_time): a provider that keeps
  // failing is still tried every 5 minutes. Raised to base_ejection_time if below it.
  runtime::Duration max_ejection_time = std::chrono::seconds(300);
  // At most 10% of the providers ejected at once (but at least one, see above). In [0, 100].
  double max_ejection_percent = 10.0;
};

class OutlierDetector {
 public:
  enum class Reason {
    kConsecutiveFailures,  // ejected: consecutive_failures in a row
    kSuccessRate,          // ejected: success rate far below the others'
    kProbationFailure,     // ejected: failed on its first call back
    kEjectionElapsed,      // returned: its ejection time is over
  };

  struct Transition {
    std::string node_id;
    bool ejected = false;  // true: taken out; false: back in rotation (on probation)
    Reason reason = Reason::kConsecutiveFailures;
    runtime::TimePoint at{};
    // When ejected: for how long, and how many times it has now been ejected (the multiplier).
    runtime::Duration ejection_time{};
    uint32_t times_ejected = 0;
  };

  struct Stats {
    uint64_t ejections = 0;  // every ejection, by any reason
    uint64_t consecutive_failure_ejections = 0;
    uint64_t success_rate_ejections = 0;
    uint64_t probation_ejections = 0;
    uint64_t returns = 0;                   // ejection times that ran out
    uint64_t ejections_refused_by_cap = 0;  // ejections max_ejection_percent did not allow
  };

  // Throws std::invalid_argument on options that cannot work (a zero interval or ejection
  // time, a percent outside [0, 100], a negative stddev factor): a setup-time error.
  explicit OutlierDetector(OutlierDetectionOptions options = {});

  // The providers now listed. New node ids start in rotation with no history; node ids no
  // longer listed are forgotten (an ejected one stops counting against the cap).
  void set_providers(const std::vector<std::string>& node_ids);

  // One outcome of a call to `node_id` that says something about its health.
  void record(std::string_view node_id, bool failure, runtime::TimePoint now);

  bool is_ejected(std::string_view node_id, runtime::TimePoint now);
  // The node ids ejected at `now`, in no particular order.
  std::vector<std::string> ejected_node_ids(runtime::TimePoint now);
  size_t ejected_count(runtime::TimePoint now);
  // Ejections allowed at once with the current list (the cap described above).
  size_t max_ejected() const;

  // Transitions since the last call, oldest first.
  std::vector<Transition> take_transitions();

  const OutlierDetectionOptions& options() const { return options_; }
  const Stats& stats() const { return stats_; }

 private:
  struct Node {
    bool ejected = false;
    bool on_probation = false;
    runtime::TimePoint ejected_until{};
    uint32_t times_ejected = 0;  // the multiplier; decays while healthy
    uint32_t consecutive_failures = 0;
    uint64_t interval_calls = 0;
    uint64_t interval_failures = 0;
  };

  void advance(runtime::TimePoint now);
  void evaluate_success_rates(runtime::TimePoint now);
  bool try_eject(const std::string& node_id, Node& node, Reason reason, runtime::TimePoint now);

  OutlierDetectionOptions options_;
  std::unordered_map<std::string, Node> nodes_;
  size_t ejected_ = 0;  // nodes_ with ejected set
  bool evaluation_started_ = false;
  runtime::TimePoint next_evaluation_{};
  std::vector<Transition> transitions_;
  Stats stats_;
};

std::string_view outlier_reason_name(OutlierDetector::Reason reason);

}  // namespace meshrpc::resilience
