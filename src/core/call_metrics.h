// CallMetrics: what the server and the channel record for each method (and endpoint):
// calls started and finished by code, latency, bytes. Private to the core; exposed through
// the MetricRegistry collectors of Server and Channel (names in docs/metrics.md).
//
// Hot path: a call costs one Counter add when it starts and, when it ends, one Counter add
// (OK; other codes bump one unsharded atomic: errors are rarer and 16 sharded counters would
// cost 16 KiB per method), one Histogram record and a clock read; bytes are a Counter add per
// message. No lock, no allocation, no label strings: labels are built only when collected.
// Calls in flight are started - finished, computed when collected, so that no single
// cache line is written by every thread on every call.
//
// Threading: every member is thread-safe. Lifetime: held by the server's or channel's
// shared metrics, which outlive every call recording into them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::core::detail {

// Unregistered methods are counted under this method label, never under the name the peer
// sent: that would let any peer create unbounded series (gRPC's OpenTelemetry does the same).
inline constexpr std::string_view kOtherMethodLabel = "other";

struct CallMetrics {
  Counter started;
  Counter finished_ok;
  std::array<std::atomic<uint64_t>, kStatusCodeCount> finished_error{};  // [0] unused
  Histogram latency_ns;
  Counter request_bytes;
  Counter response_bytes;

  void finish(StatusCode code, runtime::Duration latency) {
    if (code == StatusCode::kOk) {
      finished_ok.increment();
    } else {
      finished_error[static_cast<size_t>(code) % kStatusCodeCount].fetch_add(
          1, std::memory_order_relaxed);
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count();
    latency_ns.record(ns > 0 ? static_cast<uint64_t>(ns) : 0);
  }

  // Writes this method's samples as `<prefix>_calls_started_total` etc. with `labels`.
  void write(MetricWriter& writer, std::string_view prefix, const MetricLabels& labels) const;
};

// One call's record: started when constructed, finished once by finish() with the call's
// code, or as CANCELLED if it is destroyed unfinished (its connection went away, its
// coroutine was destroyed). Empty (metrics off) it costs a null check.
class CallRecord {
 public:
  CallRecord() = default;
  CallRecord(CallMetrics* metrics, runtime::Env& env)
      : metrics_(metrics),
        env_(&env),
        start_(metrics != nullptr ? env.now() : runtime::TimePoint{}) {
    if (metrics_ != nullptr) metrics_->started.increment();
  }
  CallRecord(CallRecord&& other) noexcept
      : metrics_(std::exchange(other.metrics_, nullptr)), env_(other.env_), start_(other.start_) {}
  CallRecord& operator=(CallRecord&& other) noexcept {
    if (this != &other) {
      finish(StatusCode::kCancelled);
      metrics_ = std::exchange(other.metrics_, nullptr);
      env_ = other.env_;
      start_ = other.start_;
    }
    return *this;
  }
  CallRecord(const CallRecord&) = delete;
  CallRecord& operator=(const CallRecord&) = delete;
  ~CallRecord() { finish(StatusCode::kCancelled); }

  void finish(StatusCode code) {
    if (metrics_ == nullptr) return;
    std::exchange(metrics_, nullptr)->finish(code, env_->now() - start_);
  }
  // Null once finished, or when metrics are off.
  CallMetrics* metrics() const { return metrics_; }

 private:
  CallMetrics* metrics_ = nullptr;
  runtime::Env* env_ = nullptr;
  runtime::TimePoint start_{};
};

}  // namespace meshrpc::core::detail
