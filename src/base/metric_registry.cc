#include "meshrpc/base/metric_registry.h"

#include <stdexcept>

namespace meshrpc {

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

enum Kind { kCounterKind = 0, kGaugeKind = 1, kHistogramKind = 2 };

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_name_start(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!is_name_start(c) && !is_digit(c) && c != ':') return false;
  }
  return true;
}

bool is_valid_metric_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0]) || name.starts_with("__")) return false;
  for (char c : name) {
    if (!is_name_start(c) && !is_digit(c)) return false;
  }
  return true;
}

// --- Registration ---------------------------------------------------------------------------

void MetricRegistry::Registration::reset() {
  if (registry_ == nullptr) return;
  std::exchange(registry_, nullptr)->remove(id_);
}

// --- MetricRegistry -------------------------------------------------------------------------

struct MetricRegistry::OwnedMetric {
  std::string help;
  int kind;
  double scale = 1.0;
  // One of them, by kind; the others stay null.
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

MetricRegistry::MetricRegistry() {
  owned_registration_ = add([this](MetricWriter& writer) { write_owned(writer); });
}

MetricRegistry::~MetricRegistry() = default;

MetricRegistry& MetricRegistry::global() {
  // Leaked on purpose: servers and channels with static lifetime unregister from it during
  // static destruction, in an order nothing controls.
  static MetricRegistry* const registry = new MetricRegistry();
  return *registry;
}

MetricRegistry::Registration MetricRegistry::add(Collector collector) {
  std::unique_lock lock(collectors_mutex_);
  const uint64_t id = next_id_++;
  collectors_.emplace(id, std::move(collector));
  return Registration(this, id);
}

void MetricRegistry::remove(uint64_t id) {
  Collector removed;  // destroyed outside the lock: it may own what it reads
  std::unique_lock lock(collectors_mutex_);
  auto it = collectors_.find(id);
  if (it == collectors_.end()) return;
  removed = std::move(it->second);
  collectors_.erase(it);
  lock.unlock();
}

void MetricRegistry::collect(MetricWriter& writer) const {
  std::shared_lock lock(collectors_mutex_);
  for (const auto& [id, collector] : collectors_) collector(writer);
}

size_t MetricRegistry::collector_count() const {
  std::shared_lock lock(collectors_mutex_);
  return collectors_.size();
}

MetricRegistry::OwnedMetric& MetricRegistry::owned(std::string name, std::string help,
                                                   MetricLabels labels, int kind, double scale) {
  if (!is_valid_metric_name(name)) {
    throw std::invalid_argument("MetricRegistry: invalid metric name '" + name + "'");
  }
  for (const auto& [label, value] : labels) {
    if (!is_valid_metric_label_name(label)) {
      throw std::invalid_argument("MetricRegistry: invalid label name '" + label + "' of " + name);
    }
  }
  std::lock_guard lock(owned_mutex_);
  auto key = std::make_pair(name, std::move(labels));
  auto it = owned_.find(key);
  if (it != owned_.end()) {
    if (it->second->kind != kind) {
      throw std::invalid_argument("MetricRegistry: metric '" + name +
                                  "' already exists with another type");
    }
    return *it->second;
  }
  auto metric = std::make_unique<OwnedMetric>();
  metric->help = std::move(help);
  metric->kind = kind;
  metric->scale = scale;
  if (kind == kCounterKind) metric->counter = std::make_unique<Counter>();
  if (kind == kGaugeKind) metric->gauge = std::make_unique<Gauge>();
  if (kind == kHistogramKind) metric->histogram = std::make_unique<Histogram>();
  return *owned_.emplace(std::move(key), std::move(metric)).first->second;
}

Counter& MetricRegistry::counter(std::string name, std::string help, MetricLabels labels) {
  return *owned(std::move(name), std::move(help), std::move(labels), kCounterKind, 1.0).counter;
}

Gauge& MetricRegistry::gauge(std::string name, std::string help, MetricLabels labels) {
  return *owned(std::move(name), std::move(help), std::move(labels), kGaugeKind, 1.0).gauge;
}

Histogram& MetricRegistry::histogram(std::string name, std::string help, MetricLabels labels,
                                     double scale) {
  return *owned(std::move(name), std::move(help), std::move(labels), kHistogramKind, scale)
              .histogram;
}

void MetricRegistry::write_owned(MetricWriter& writer) const {
  std::lock_guard lock(owned_mutex_);
  for (const auto& [key, metric] : owned_) {
    const auto& [name, labels] = key;
    switch (metric->kind) {
      case kCounterKind:
        writer.counter(name, metric->help, labels, metric->counter->value());
        break;
      case kGaugeKind:
        writer.gauge(name, metric->help, labels, static_cast<double>(metric->gauge->value()));
        break;
      default:
        writer.histogram(name, metric->help, labels, metric->histogram->snapshot(), metric->scale);
        break;
    }
  }
}

}  // namespace meshrpc
