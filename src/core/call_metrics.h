// CallMetrics: what the server and the channel record for each method (and endpoint):
// calls started and finished by code, latency, bytes. CallRecord: one call's share of them,
// and its span for the call log. Private to the core; exposed through
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
#include "meshrpc/core/call_log.h"
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
// status, or as CANCELLED if it is destroyed unfinished (its connection went away, its
// coroutine was destroyed). Finishing counts the call in its method's metrics and, when the
// record has a call log and has been described (describe()), adds the call's span to the log
// (call_log.h). Empty (metrics and log off) it costs a null check.
class CallRecord {
 public:
  CallRecord() = default;
  CallRecord(CallMetrics* metrics, runtime::Env& env, CallLog* log = nullptr)
      : metrics_(metrics),
        log_(log),
        env_(&env),
        start_(metrics != nullptr || log != nullptr ? env.now() : runtime::TimePoint{}) {
    if (metrics_ != nullptr) metrics_->started.increment();
  }
  CallRecord(CallRecord&& other) noexcept { take(other); }
  CallRecord& operator=(CallRecord&& other) noexcept {
    if (this != &other) {
      finish(StatusCode::kCancelled);
      take(other);
    }
    return *this;
  }
  CallRecord(const CallRecord&) = delete;
  CallRecord& operator=(const CallRecord&) = delete;
  ~CallRecord() { finish(StatusCode::kCancelled); }

  // What the call log shows of the call. `method` and `peer` are borrowed: they must stay
  // valid until the record finishes (or is destroyed).
  void describe(std::string_view method, const transport::Address* peer, CallSpan::Side side,
                TraceId trace_id, uint64_t span_id, uint64_t parent_span_id) {
    span_.side = side;
    span_.method = method;
    span_.peer = peer;
    span_.trace_id = trace_id;
    span_.span_id = span_id;
    span_.parent_span_id = parent_span_id;
    described_ = true;
  }
  void set_attempt(uint32_t attempt) { span_.attempt = attempt; }
  // Payload bytes of this call, for its span (metrics count bytes separately).
  void count_request_bytes(size_t bytes) { span_.request_bytes += bytes; }
  void count_response_bytes(size_t bytes) { span_.response_bytes += bytes; }

  void finish(StatusCode code) { finish(code, {}); }
  void finish(const Status& status) { finish(status.code(), status.message()); }
  void finish(StatusCode code, std::string_view message) {
    if (!active()) return;
    const runtime::TimePoint end = env_->now();
    if (metrics_ != nullptr) std::exchange(metrics_, nullptr)->finish(code, end - start_);
    if (CallLog* log = std::exchange(log_, nullptr); log != nullptr && described_) {
      span_.start = start_;
      span_.end = end;
      span_.code = code;
      span_.message = message;
      log->record(span_);
    }
  }
  // Null once finished, or when metrics are off.
  CallMetrics* metrics() const { return metrics_; }
  bool active() const { return metrics_ != nullptr || log_ != nullptr; }

 private:
  void take(CallRecord& other) {
    metrics_ = std::exchange(other.metrics_, nullptr);
    log_ = std::exchange(other.log_, nullptr);
    env_ = other.env_;
    start_ = other.start_;
    span_ = other.span_;
    described_ = other.described_;
  }

  CallMetrics* metrics_ = nullptr;
  CallLog* log_ = nullptr;
  runtime::Env* env_ = nullptr;
  runtime::TimePoint start_{};
  CallSpanView span_;
  bool described_ = false;
};

}  // namespace meshrpc::core::detail
