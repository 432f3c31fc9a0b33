// CapturingWriter: one collection of a MetricRegistry as a map, for tests that check exact
// metric values. Keys are "name{label=value,...}" with labels in the order written; a
// histogram is captured as its "<name>_count" and "<name>_sum" (raw units). A key written twice
// (two sources of one series) adds up, as the Prometheus exposition does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "meshrpc/base/metric_registry.h"

namespace meshrpc::testing {

class CapturingWriter final : public MetricWriter {
 public:
  void counter(std::string_view name, std::string_view, const MetricLabels& labels,
               uint64_t value) override {
    values[key(name, labels)] += static_cast<double>(value);
  }
  void gauge(std::string_view name, std::string_view, const MetricLabels& labels,
             double value) override {
    values[key(name, labels)] += value;
  }
  void histogram(std::string_view name, std::string_view, const MetricLabels& labels,
                 const HistogramSnapshot& snapshot, double scale) override {
    values[key(std::string(name) + "_count", labels)] += static_cast<double>(snapshot.count);
    values[key(std::string(name) + "_sum", labels)] += static_cast<double>(snapshot.sum);
    scales[std::string(name)] = scale;
  }

  static std::string key(std::string_view name, const MetricLabels& labels) {
    std::string out(name);
    out += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out += ',';
      out += labels[i].first + "=" + labels[i].second;
    }
    return out + '}';
  }

  // The value, or -1 if nothing was written under `key` (so a missing series fails EXPECT_EQ).
  double at(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? -1 : it->second;
  }

  std::map<std::string, double> values;
  std::map<std::string, double> scales;  // histogram name -> the scale it was written with
};

inline CapturingWriter collect(const MetricRegistry& registry) {
  CapturingWriter writer;
  registry.collect(writer);
  return writer;
}

}  // namespace meshrpc::testing
