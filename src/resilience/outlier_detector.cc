#include "meshrpc/resilience/outlier_detector.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace meshrpc::resilience {
namespace {

OutlierDetectionOptions validated(OutlierDetectionOptions options) {
  if (options.interval <= runtime::Duration::zero()) {
    throw std::invalid_argument("outlier detection interval must be positive");
  }
  if (options.base_ejection_time <= runtime::Duration::zero()) {
    throw std::invalid_argument("outlier detection base_ejection_time must be positive");
  }
  if (!(options.max_ejection_percent >= 0.0 && options.max_ejection_percent <= 100.0)) {
    throw std::invalid_argument("outlier detection max_ejection_percent " +
                                std::to_string(options.max_ejection_percent) +
                                " is outside [0, 100]");
  }
  if (!(options.success_rate_stdev_factor >= 0.0)) {
    throw std::invalid_argument("outlier detection success_rate_stdev_factor " +
                                std::to_string(options.success_rate_stdev_factor) + " is negative");
  }
  options.max_ejection_time = std::max(options.max_ejection_time, options.base_ejection_time);
  return options;
}

}  // namespace

std::string_view outlier_reason_name(OutlierDetector::Reason reason) {
  switch (reason) {
    case OutlierDetector::Reason::kConsecutiveFailures:
      return "consecutive failures";
    case OutlierDetector::Reason::kSuccessRate:
      return "success rate";
    case OutlierDetector::Reason::kProbationFailure:
      return "failed on probation";
    case OutlierDetector::Reason::kEjectionElapsed:
      return "ejection time elapsed";
  }
  return "unknown";
}

OutlierDetector::OutlierDetector(OutlierDetectionOptions options) : options_(validated(options)) {}

void OutlierDetector::set_providers(const std::vector<std::string>& node_ids) {
  const std::unordered_set<std::string_view> listed(node_ids.begin(), node_ids.end());
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (listed.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->second.ejected) --ejected_;
    it = nodes_.erase(it);
  }
  for (const std::string& node_id : node_ids) nodes_.try_emplace(node_id);
}

void OutlierDetector::record(std::string_view node_id, bool failure, runtime::TimePoint now) {
  advance(now);
  auto it = nodes_.find(std::string(node_id));
  // Unknown: no longer listed. Ejected: the outcome of a call sent before the ejection, which
  // already had its effect.
  if (it == nodes_.end() || it->second.ejected) return;
  Node& node = it->second;
  ++node.interval_calls;
  if (!failure) {
    node.consecutive_failures = 0;
    node.on_probation = false;
    return;
  }
  ++node.interval_failures;
  ++node.consecutive_failures;
  if (node.on_probation) {
    try_eject(it->first, node, Reason::kProbationFailure, now);
  } else if (options_.consecutive_failures > 0 &&
             node.consecutive_failures >= options_.consecutive_failures) {
    try_eject(it->first, node, Reason::kConsecutiveFailures, now);
  }
}

bool OutlierDetector::is_ejected(std::string_view node_id, runtime::TimePoint now) {
  advance(now);
  auto it = nodes_.find(std::string(node_id));
  return it != nodes_.end() && it->second.ejected;
}

std::vector<std::string> OutlierDetector::ejected_node_ids(runtime::TimePoint now) {
  advance(now);
  std::vector<std::string> ids;
  if (ejected_ == 0) return ids;
  ids.reserve(ejected_);
  for (const auto& [node_id, node] : nodes_) {
    if (node.ejected) ids.push_back(node_id);
  }
  return ids;
}

size_t OutlierDetector::ejected_count(runtime::TimePoint now) {
  advance(now);
  return ejected_;
}

size_t OutlierDetector::max_ejected() const {
  if (nodes_.size() < 2 || options_.max_ejection_percent <= 0.0) return 0;
  // The epsilon keeps 10 providers at 10% from rounding to 0.99999 and so to 0.
  const double share =
      static_cast<double>(nodes_.size()) * options_.max_ejection_percent / 100.0 + 1e-9;
  return std::max<size_t>(1, static_cast<size_t>(std::floor(share)));
}

std::vector<OutlierDetector::Transition> OutlierDetector::take_transitions() {
  return std::exchange(transitions_, {});
}

void OutlierDetector::advance(runtime::TimePoint now) {
  if (!evaluation_started_) {
    evaluation_started_ = true;
    next_evaluation_ = now + options_.interval;
  }
  if (ejected_ > 0) {
    for (auto& [node_id, node] : nodes_) {
      if (!node.ejected || node.ejected_until > now) continue;
      node.ejected = false;
      node.on_probation = true;
      node.consecutive_failures = 0;
      --ejected_;
      ++stats_.returns;
      transitions_.push_back({node_id, false, Reason::kEjectionElapsed, now,
                              runtime::Duration::zero(), node.times_ejected});
    }
  }
  if (now < next_evaluation_) return;
  evaluate_success_rates(now);
  for (auto& [node_id, node] : nodes_) {
    // A provider in rotation and off probation for a whole interval: its next ejection is
    // one step shorter.
    if (!node.ejected && !node.on_probation && node.times_ejected > 0) --node.times_ejected;
    node.interval_calls = 0;
    node.interval_failures = 0;
  }
  next_evaluation_ = now + options_.interval;
}

void OutlierDetector::evaluate_success_rates(runtime::TimePoint now) {
  if (options_.success_rate_minimum_hosts == 0) return;
  std::vector<std::pair<double, const std::string*>> rates;
  for (const auto& [node_id, node] : nodes_) {
    if (node.ejected || node.interval_calls < options_.success_rate_request_volume) continue;
    const double failures = static_cast<double>(node.interval_failures);
    const double calls = static_cast<double>(node.interval_calls);
    rates.emplace_back(1.0 - failures / calls, &node_id);
  }
  if (rates.size() < options_.success_rate_minimum_hosts) return;
  double sum = 0;
  for (const auto& entry : rates) sum += entry.first;
  const double mean = sum / static_cast<double>(rates.size());
  double squares = 0;
  for (const auto& entry : rates) squares += (entry.first - mean) * (entry.first - mean);
  const double stddev = std::sqrt(squares / static_cast<double>(rates.size()));
  const double threshold = mean - options_.success_rate_stdev_factor * stddev;
  // Worst first, so that when the cap allows only some, those go; ties by node id, so a run
  // replays exactly.
  std::sort(rates.begin(), rates.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  for (const auto& [rate, node_id] : rates) {
    if (rate >= threshold) break;
    try_eject(*node_id, nodes_.find(*node_id)->second, Reason::kSuccessRate, now);
  }
}

bool OutlierDetector::try_eject(const std::string& node_id, Node& node, Reason reason,
                                runtime::TimePoint now) {
  if (ejected_ >= max_ejected()) {
    ++stats_.ejections_refused_by_cap;
    return false;
  }
  ++node.times_ejected;
  const runtime::Duration ejection_time = std::min<runtime::Duration>(
      options_.base_ejection_time * node.times_ejected, options_.max_ejection_time);
  node.ejected = true;
  node.on_probation = false;
  node.ejected_until = now + ejection_time;
  node.consecutive_failures = 0;
  ++ejected_;
  ++stats_.ejections;
  switch (reason) {
    case Reason::kConsecutiveFailures:
      ++stats_.consecutive_failure_ejections;
      break;
    case Reason::kSuccessRate:
      ++stats_.success_rate_ejections;
      break;
    case Reason::kProbationFailure:
      ++stats_.probation_ejections;
      break;
    case Reason::kEjectionElapsed:
      break;
  }
  transitions_.push_back({node_id, true, reason, now, ejection_time, node.times_ejected});
  return true;
}

}  // namespace meshrpc::resilience
