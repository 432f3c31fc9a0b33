// MetricRegistry: the set of metric sources a process exposes (on /metrics, say), each a
// *collector* that writes its current values into a MetricWriter when asked.
//
//   MetricRegistry::Registration registration = MetricRegistry::global().add(
//       [&queue](MetricWriter& out) {
//         out.gauge("myapp_queue_depth", "Items waiting in the queue.", {}, queue.size());
//       });
//
// Sources record into the primitives of metrics.h (Counter, Gauge, Histogram) on their hot
// paths and only *read* them in their collector, so recording never touches the registry:
// a core::Server resolves its per-method metrics once, at registration, and its collector
// names and labels them only when someone scrapes. Adding a source (a retry policy, a circuit
// breaker) is one add() in its constructor, holding the Registration as a member.
//
// For application metrics, counter()/gauge()/histogram() return a metric that the registry
// owns and exposes for its whole life:
//
//   Counter& hits = MetricRegistry::global().counter("myapp_cache_hits_total", "Cache hits.");
//   hits.increment();
//
// Names and labels follow Prometheus (the exposition, observe/prometheus.h, checks them):
// names [a-zA-Z_:][a-zA-Z0-9_:]*, `_total` for counters, units at the end (`_seconds`,
// `_bytes`). Labels are few and bounded: a label value per method or endpoint is fine, one
// per request id or user is not (every distinct label set is a series that lives forever).
//
// Threading: every member is safe from any thread. collect() may run concurrently with
// itself, with add() and with a Registration's destruction; destroying a Registration waits
// for any collect() running its collector, so once the destructor returns the collector
// will not run again and what it reads may go. Hence a collector must not add or remove
// registrations of the same registry, nor collect() it (that deadlocks).
// Lifetime: a registry outlives its Registrations and the metrics it handed out. global() is
// never destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/base/metrics.h"

namespace meshrpc {

// (name, value) pairs, in the order they should print. Label names are
// [a-zA-Z_][a-zA-Z0-9_]* and never start with "__"; values are any UTF-8.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Receives one collection's samples. A collector may write the same name from several
// places (or several collectors may), with different labels; a writer groups them.
// The name and help of a family must be the same each time it is written.
class MetricWriter {
 public:
  virtual ~MetricWriter() = default;
  // A monotonically increasing count; `name` ends in "_total".
  virtual void counter(std::string_view name, std::string_view help, const MetricLabels& labels,
                       uint64_t value) = 0;
  // A value that goes up and down.
  virtual void gauge(std::string_view name, std::string_view help, const MetricLabels& labels,
                     double value) = 0;
  // A distribution: every value v of `snapshot` is exposed as v * scale (1e-9 turns
  // nanoseconds into the seconds of a `_seconds` name).
  virtual void histogram(std::string_view name, std::string_view help, const MetricLabels& labels,
                         const HistogramSnapshot& snapshot, double scale) = 0;
};

class MetricRegistry {
 public:
  using Collector = std::function<void(MetricWriter&)>;

  // Keeps one collector registered; destroying (or reset()) removes it, after any collect()
  // running it has finished. Move-only; a default-constructed one registers nothing.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept
        : registry_(std::exchange(other.registry_, nullptr)), id_(other.id_) {}
    Registration& operator=(Registration&& other) noexcept {
      if (this != &other) {
        reset();
        registry_ = std::exchange(other.registry_, nullptr);
        id_ = other.id_;
      }
      return *this;
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { reset(); }

    void reset();
    bool active() const { return registry_ != nullptr; }

   private:
    friend class MetricRegistry;
    Registration(MetricRegistry* registry, uint64_t id) : registry_(registry), id_(id) {}

    MetricRegistry* registry_ = nullptr;
    uint64_t id_ = 0;
  };

  MetricRegistry();
  ~MetricRegistry();
  MetricRegistry(const MetricRegistry&) = delete;
  MetricRegistry& operator=(const MetricRegistry&) = delete;

  // The process's registry: what core::Server and core::Channel record into by default and
  // what /metrics shows. Never destroyed, so objects with static lifetime may use it.
  static MetricRegistry& global();

  // Registers `collector`; it runs in every collect() until the Registration goes.
  [[nodiscard]] Registration add(Collector collector);

  // Runs every registered collector on `writer`, in the order they were added.
  void collect(MetricWriter& writer) const;

  // Collectors registered now (for tests and status pages).
  size_t collector_count() const;

  // Application metrics owned by the registry, exposed under `name` with `labels`. The same
  // (name, labels) returns the same metric; asking for it with another type throws
  // std::invalid_argument (a setup-time programmer error), as does an invalid name.
  // The reference stays valid for the registry's life: look it up once, record often.
  Counter& counter(std::string name, std::string help, MetricLabels labels = {});
  Gauge& gauge(std::string name, std::string help, MetricLabels labels = {});
  // `scale` as in MetricWriter::histogram: 1e-9 to record nanoseconds under a `_seconds` name.
  Histogram& histogram(std::string name, std::string help, MetricLabels labels = {},
                       double scale = 1.0);

 private:
  struct OwnedMetric;
  void remove(uint64_t id);
  OwnedMetric& owned(std::string name, std::string help, MetricLabels labels, int kind,
                     double scale);
  void write_owned(MetricWriter& writer) const;

  // Held shared by collect(), exclusively by add() and remove(): a removal waits for the
  // collections that may be running its collector.
  mutable std::shared_mutex collectors_mutex_;
  std::map<uint64_t, Collector> collectors_;
  uint64_t next_id_ = 1;

  // Application metrics; never removed. Guarded by owned_mutex_ (the metrics themselves are
  // thread-safe and recorded without it).
  mutable std::mutex owned_mutex_;
  std::map<std::pair<std::string, MetricLabels>, std::unique_ptr<OwnedMetric>> owned_;
  Registration owned_registration_;
};

// True if `name` is a valid Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool is_valid_metric_name(std::string_view name);
// True if `name` is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
bool is_valid_metric_label_name(std::string_view name);

}  // namespace meshrpc
