#include "call_metrics.h"

namespace meshrpc::core::detail {

void CallMetrics::write(MetricWriter& writer, std::string_view prefix,
                        const MetricLabels& labels) const {
  const std::string p(prefix);
  // Finished before started: a call is counted started before it finishes, so this order
  // never shows more finished than started (in flight stays >= 0).
  uint64_t finished_total = 0;
  MetricLabels with_code = labels;
  with_code.emplace_back("code", std::string(status_code_name(StatusCode::kOk)));
  const uint64_t ok = finished_ok.value();
  finished_total += ok;
  const std::string finished_help =
      "Calls finished, by status code (including those rejected "
      "before dispatch and those cancelled).";
  writer.counter(p + "_calls_finished_total", finished_help, with_code, ok);
  for (int code = 1; code < kStatusCodeCount; ++code) {
    const uint64_t count =
        finished_error[static_cast<size_t>(code)].load(std::memory_order_relaxed);
    if (count == 0) continue;  // only codes that happened: 16 zero series per method are noise
    finished_total += count;
    with_code.back().second = std::string(status_code_name(static_cast<StatusCode>(code)));
    writer.counter(p + "_calls_finished_total", finished_help, with_code, count);
  }
  const uint64_t started_total = started.value();
  writer.counter(p + "_calls_started_total",
                 "Calls started (every call, including those "
                 "rejected before dispatch).",
                 labels, started_total);
  writer.gauge(
      p + "_calls_in_flight", "Calls started and not yet finished.", labels,
      started_total > finished_total ? static_cast<double>(started_total - finished_total) : 0.0);
  writer.histogram(p + "_call_duration_seconds",
                   "Call latency, from the call's start to its status, of every finished call.",
                   labels, latency_ns.snapshot(), 1e-9);
  writer.counter(p + "_request_bytes_total", "Bytes of request messages (payload only).", labels,
                 request_bytes.value());
  writer.counter(p + "_response_bytes_total", "Bytes of response messages (payload only).", labels,
                 response_bytes.value());
}

}  // namespace meshrpc::core::detail
