#include "meshrpc/observe/prometheus.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <span>
#include <vector>

namespace meshrpc::observe {

namespace {

enum class Type { kCounter, kGauge, kHistogram };

std::string_view type_name(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Boundaries (`le`) by unit; see the header. Literals, so each is the double nearest its
// decimal and prints as written.
constexpr std::array kSecondsBoundaries = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
                                           2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   1e-1, 2.5e-1,
                                           5e-1,   1.0,    2.5,  5.0,    10.0,   30.0};
constexpr std::array kBytesBoundaries = {64.0,      256.0,      1024.0,    4096.0,
                                         16384.0,   65536.0,    262144.0,  1048576.0,
                                         4194304.0, 16777216.0, 67108864.0};
constexpr std::array kPlainBoundaries = {
    1.0, 2.5, 5.0,   1e1, 2.5e1, 5e1,   1e2, 2.5e2, 5e2,   1e3, 2.5e3, 5e3,   1e4, 2.5e4,
    5e4, 1e5, 2.5e5, 5e5, 1e6,   2.5e6, 5e6, 1e7,   2.5e7, 5e7, 1e8,   2.5e8, 5e8, 1e9};

std::span<const double> boundaries_for(std::string_view name) {
  if (name.ends_with("_seconds")) return kSecondsBoundaries;
  if (name.ends_with("_bytes")) return kBytesBoundaries;
  return kPlainBoundaries;
}

// The percentiles the issue asks for, as (quantile, label value).
constexpr std::array<std::pair<double, std::string_view>, 4> kPercentiles = {
    {{0.5, "p50"}, {0.9, "p90"}, {0.99, "p99"}, {0.999, "p999"}}};

std::string format_double(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, end);
}

// raw * scale, computed as raw / (1 / scale) when that is a whole number (1e-9 -> / 1e9), so
// that 3000 ns gives exactly the double nearest 3e-6.
double scaled(double raw, double scale) {
  if (scale < 1) {
    // 1 / 1e-9 is 999999999.99999988 in doubles: round it, and use it if it is the inverse.
    const double inverse = std::round(1.0 / scale);
    if (std::abs(inverse * scale - 1.0) < 1e-12) return raw / inverse;
  }
  return raw * scale;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y",extra="v"}, or nothing without labels.
std::string render_labels(const MetricLabels& labels, std::string_view extra_name = {},
                          std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  };
  for (const auto& [name, value] : labels) add(name, value);
  if (!extra_name.empty()) add(extra_name, extra_value);
  out += '}';
  return out;
}

void merge_into(HistogramSnapshot& into, const HistogramSnapshot& from) {
  if (from.count == 0) return;
  if (into.count == 0) {
    into = from;
    return;
  }
  into.min = std::min(into.min, from.min);
  into.max = std::max(into.max, from.max);
  into.count += from.count;
  into.sum += from.sum;
  into.bucket_counts.resize(std::max(into.bucket_counts.size(), from.bucket_counts.size()));
  for (size_t i = 0; i < from.bucket_counts.size(); ++i) {
    into.bucket_counts[i] += from.bucket_counts[i];
  }
}

struct Series {
  MetricLabels labels;
  double value = 0;    // gauge
  uint64_t count = 0;  // counter
  HistogramSnapshot histogram;
};

struct Family {
  Type type;
  std::string help;
  double scale = 1.0;
  std::map<std::string, Series> series;  // by rendered labels
};

// Groups what the collectors write into families.
class FamilyWriter final : public MetricWriter {
 public:
  void counter(std::string_view name, std::string_view help, const MetricLabels& labels,
               uint64_t value) override {
    if (Series* series = find(name, help, labels, Type::kCounter, 1.0)) series->count += value;
  }
  void gauge(std::string_view name, std::string_view help, const MetricLabels& labels,
             double value) override {
    if (Series* series = find(name, help, labels, Type::kGauge, 1.0)) series->value += value;
  }
  void histogram(std::string_view name, std::string_view help, const MetricLabels& labels,
                 const HistogramSnapshot& snapshot, double scale) override {
    if (Series* series = find(name, help, labels, Type::kHistogram, scale)) {
      merge_into(series->histogram, snapshot);
    }
  }

  // Adds the `<name>_percentile` gauge family of every histogram family.
  void add_percentile_families() {
    std::vector<std::pair<std::string, Family>> added;
    for (const auto& [name, family] : families_) {
      if (family.type != Type::kHistogram) continue;
      std::string percentile_name = name + "_percentile";
      if (families_.contains(percentile_name)) {
        dropped_.push_back("percentiles of " + name + ": a family " + percentile_name + " exists");
        continue;
      }
      Family percentiles{
          Type::kGauge, "Percentiles of " + name + " (from its histogram, within 6.25%).", 1.0, {}};
      for (const auto& [key, series] : family.series) {
        for (const auto& [q, label] : kPercentiles) {
          Series& s = percentiles.series[render_labels(series.labels, "percentile", label)];
          s.labels = series.labels;
          s.labels.emplace_back("percentile", label);
          s.value = series.histogram.count == 0
                        ? std::numeric_limits<double>::quiet_NaN()
                        : scaled(static_cast<double>(series.histogram.percentile(q)), family.scale);
        }
      }
      added.emplace_back(std::move(percentile_name), std::move(percentiles));
    }
    for (auto& [name, family] : added) families_.emplace(std::move(name), std::move(family));
  }

  std::string render() const {
    std::string out;
    for (const auto& [name, family] : families_) {
      out += "# HELP " + name + ' ' + escape_help(family.help) + '\n';
      out += "# TYPE " + name + ' ' + std::string(type_name(family.type)) + '\n';
      for (const auto& [labels, series] : family.series) {
        switch (family.type) {
          case Type::kCounter:
            out += name + labels + ' ' + std::to_string(series.count) + '\n';
            break;
          case Type::kGauge:
            out += name + labels + ' ' + format_double(series.value) + '\n';
            break;
          case Type::kHistogram:
            render_histogram(out, name, family.scale, series);
            break;
        }
      }
    }
    for (const std::string& why : dropped_) out += "# meshrpc dropped: " + why + '\n';
    return out;
  }

 private:
  Series* find(std::string_view name, std::string_view help, const MetricLabels& labels, Type type,
               double scale) {
    if (!is_valid_metric_name(name)) {
      dropped_.push_back("invalid metric name '" + escape_label_value(name) + "'");
      return nullptr;
    }
    const bool histogram = type == Type::kHistogram;
    for (const auto& [label, value] : labels) {
      // A histogram's own labels: le on its buckets, percentile on its _percentile family.
      if (!is_valid_metric_label_name(label) ||
          (histogram && (label == "le" || label == "percentile"))) {
        dropped_.push_back(std::string(name) + ": invalid label name '" +
                           escape_label_value(label) + "'");
        return nullptr;
      }
    }
    auto [it, inserted] =
        families_.try_emplace(std::string(name), Family{type, std::string(help), scale, {}});
    Family& family = it->second;
    if (family.type != type) {
      dropped_.push_back(std::string(name) + ": written as " + std::string(type_name(type)) +
                         " and as " + std::string(type_name(family.type)));
      return nullptr;
    }
    if (family.scale != scale) {
      dropped_.push_back(std::string(name) + ": written with two scales");
      return nullptr;
    }
    Series& series = family.series[render_labels(labels)];
    series.labels = labels;
    return &series;
  }

  static void render_histogram(std::string& out, const std::string& name, double scale,
                               const Series& series) {
    const HistogramSnapshot& histogram = series.histogram;
    std::vector<HistogramBucket> buckets;
    histogram.for_each_bucket([&](HistogramBucket bucket) { buckets.push_back(bucket); });
    size_t next = 0;
    uint64_t cumulative = 0;
    for (double boundary : boundaries_for(name)) {
      // The boundary in recorded units, as the largest whole value <= it (values are
      // integers); the tiny nudge absorbs the rounding of boundary / scale (1e-5 / 1e-9).
      const double raw = std::floor(boundary / scale * (1 + 1e-12));
      const uint64_t raw_bound =
          raw >= 1.8e19 ? std::numeric_limits<uint64_t>::max() - 1 : static_cast<uint64_t>(raw);
      while (next < buckets.size() && buckets[next].upper_bound <= raw_bound) {
        cumulative = buckets[next++].cumulative_count;
      }
      out += name + "_bucket" + render_labels(series.labels, "le", format_double(boundary)) + ' ' +
             std::to_string(cumulative) + '\n';
    }
    out += name + "_bucket" + render_labels(series.labels, "le", "+Inf") + ' ' +
           std::to_string(histogram.count) + '\n';
    const std::string labels = render_labels(series.labels);
    out += name + "_sum" + labels + ' ' +
           format_double(scaled(static_cast<double>(histogram.sum), scale)) + '\n';
    out += name + "_count" + labels + ' ' + std::to_string(histogram.count) + '\n';
  }

  std::map<std::string, Family> families_;
  std::vector<std::string> dropped_;
};

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_prometheus(const MetricRegistry& registry) {
  FamilyWriter writer;
  registry.collect(writer);
  writer.add_percentile_families();
  return writer.render();
}

std::string filter_prometheus(std::string_view text, std::string_view pattern) {
  if (pattern.empty()) return std::string(text);
  std::string out;
  std::string header;  // the # HELP and # TYPE lines of the family being read
  bool header_written = false;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.starts_with("# HELP ")) {
      header.assign(line);
      header += '\n';
      header_written = false;
    } else if (line.starts_with("# TYPE ")) {
      header.append(line);
      header += '\n';
    } else if (!line.starts_with("#") && line.find(pattern) != std::string_view::npos) {
      if (!header_written) out += header;
      header_written = true;
      out.append(line);
      out += '\n';
    }
  }
  return out;
}

}  // namespace meshrpc::observe
