// AdaptiveConcurrencyLimiter: how many calls a server should run at once, learned from the
// latency of the calls it serves, so that under overload it sheds the excess before queueing
// makes every call slow (brpc's "auto" max_concurrency, Netflix concurrency-limits' gradient
// limits, Envoy's adaptive concurrency filter).
//
// Little's law: a server that keeps more calls in flight than its cores (or its database)
// can work on does not get more done, it only queues them, and queueing shows up as latency
// above the no-load latency. So:
//   - Completed calls are aggregated over a window (at least `window` and 4 no-load latencies
//     long, with at least min_window_samples calls). The window's latency is its average.
//   - The no-load latency is the lowest window latency seen since it was last re-measured.
//   - At the end of each window: gradient = tolerance x no_load / window_latency, clamped to
//     [min_gradient, tolerance]; the limit moves `smoothing` of the way to limit x gradient,
//     within [min_limit, max_limit]. It grows while latency is within tolerance of no-load
//     and shrinks once queueing pushes it beyond, settling where latency is tolerance x
//     no-load. It grows only if the window's peak in-flight reached half the limit: a limit
//     far above what the load ever used has no evidence behind it.
//   - The no-load latency is re-measured right after the first window (a server often
//     starts under the very load it was added to relieve, so its first estimate may include
//     a queue) and then every probe_interval (Envoy's min RTT recalculation, BBR's ProbeRTT):
//     the limit drops to probe_ratio of itself until the calls in flight drain to it, the
//     next window's latency (less the calls left from before the drain) becomes the no-load
//     latency whether higher or lower than before, and the limit is restored (scaled down by new /
//     old estimate if that fell, bounded by min_gradient). A probe that finds the estimate was well
//     too high probes again 10 windows later, from the lower limit the new estimate settles on.
//     Without probes, a service that became slower for good (a slower dependency, bigger requests)
//     would read its new normal as queueing and shed down to min_limit; and an estimate that
//     followed the observed latency upward instead would drift up with the queue it is meant
//     to detect (Gradient2's long-term average does).
//
// Failed calls (brpc's fail punishment): their latency is added to the window's total but
// they are not counted as served, so the window's latency is total time / calls served. A
// failure that took long (a handler timing out) raises it like queueing does; one that
// failed fast neither raises nor lowers it. A window in which every call failed holds the
// limit, unless those failures were slow (beyond tolerance x no-load): then the limit is
// cut by min_gradient.
//
// Use: try_acquire() before running a call; if false, reject it before dispatch. After an
// admitted call ends, report exactly one of on_success or on_failure with its latency.
//
// A pure state machine (DESIGN.md principle 1): `now` and latencies are arguments, nothing is
// read from a clock. Memory is O(1). Threading: not thread-safe. A server's calls run on
// several io threads, so its driver (cluster/adaptive_limit.h) guards it; it is touched
// twice per call.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

struct AdaptiveLimitOptions {
  // 20 (Netflix's default): enough calls at once for a small server to start without
  // shedding; the limit moves to what is measured within a few windows.
  size_t initial_limit = 20;
  // 8: the server keeps running about as many calls as a typical server has cores however
  // slow they get, so it keeps measuring latency and can grow back; a limit of 1 would
  // serialise a multi-core server on one slow call. At least 1.
  size_t min_limit = 8;
  // 1000 (Netflix's and Envoy's cap): far above what a server with a few cores runs usefully
  // at once, so the cap only matters when latency carries no signal (calls waiting on
  // something that does not queue). ServerOptions::max_concurrent_calls still applies.
  size_t max_limit = 1000;
  // 1.5 (Gradient2's rttTolerance): the limit settles where latency is 1.5 x no-load, i.e.
  // about a third of the time in flight spent queueing, which keeps every core busy through
  // bursts while latency stays near its floor. At least 1.
  double tolerance = 1.5;
  // At most halve the limit per window (Netflix's and Envoy's bound): one window of outliers
  // (a GC pause, a slow disk) cannot collapse it, and real overload still halves it every
  // few windows. In (0, 1].
  double min_gradient = 0.5;
  // Move half way to each window's target: a single noisy window moves the limit half as far,
  // and a real change is followed to within 1/16 in 4 windows. In (0, 1]; 1 jumps to it.
  double smoothing = 0.5;
  // 100 ms (Envoy's update interval): at the load a server needs a limiter for, a window
  // holds hundreds of calls, and the limit reacts to overload within a fraction of a second.
  // The window is also at least 4 no-load latencies long, so that most of its calls were
  // admitted under the limit the previous window set.
  runtime::Duration window = std::chrono::milliseconds(100);
  // 20 calls: an average over fewer swings with single slow calls. A quiet server's window
  // lasts until it has them.
  size_t min_window_samples = 20;
  // Successful calls' latencies under 100 us count as 100 us: below a datacenter round trip
  // the differences are scheduling noise, not queueing a client would notice, and a no-load
  // latency of a few microseconds would turn them into large gradients. Zero counts as 1 ns.
  runtime::Duration latency_floor = std::chrono::microseconds(100);
  // Re-measure the no-load latency every 10 s (BBR's ProbeRTT interval): a service that got
  // slower for good is re-learned within seconds. A probe lasts a drain and one window at
  // probe_ratio of the limit: about 1% of capacity when overloaded, nothing otherwise.
  runtime::Duration probe_interval = std::chrono::seconds(10);
  // Probe at a quarter of the limit: at the settled latency (1.5 x no-load) a third of the
  // calls in flight are queued, and a quarter of them run without queueing even when the
  // estimate the limit was settled with is 2.5 x too high (as one taken under startup load can
  // be), so a single probe finds the true no-load latency. In (0, 1].
  double probe_ratio = 0.25;
};

class AdaptiveConcurrencyLimiter {
 public:
  // Throws std::invalid_argument on options no limiter can honour (min_limit 0, limits out of
  // order, tolerance below 1, a gradient, smoothing or probe ratio outside (0, 1], a
  // non-positive window or probe interval, zero window samples, a negative latency floor):
  // a setup-time programmer error.
  explicit AdaptiveConcurrencyLimiter(AdaptiveLimitOptions options = {});

  // True, counting one call in flight, if fewer than limit() are; false (counted in
  // calls_shed) otherwise: reject the call before it runs.
  [[nodiscard]] bool try_acquire();

  // An admitted call ended at `now`, `latency` after it was admitted, with (on_success) or
  // without (on_failure) a result. Negative latencies count as 0.
  void on_success(runtime::TimePoint now, runtime::Duration latency);
  void on_failure(runtime::TimePoint now, runtime::Duration latency);

  // Calls that may run at once now (in [min_limit, max_limit]).
  size_t limit() const { return static_cast<size_t>(limit_); }
  size_t in_flight() const { return in_flight_; }
  // Zero until the first window has ended.
  runtime::Duration no_load_latency() const { return no_load_; }
  // True from the start of a probe until its measurement is taken.
  bool probing() const { return phase_ != Phase::kNormal; }

  uint64_t calls_admitted() const { return calls_admitted_; }
  uint64_t calls_shed() const { return calls_shed_; }
  uint64_t windows() const { return windows_; }
  uint64_t probes() const { return probes_; }
  const AdaptiveLimitOptions& options() const { return options_; }

 private:
  enum class Phase {
    kNormal,
    kProbeDraining,   // limit cut, waiting for the calls in flight to drain to it
    kProbeMeasuring,  // the current window's latency becomes the no-load latency
  };

  void record(runtime::TimePoint now, double latency_ns, bool succeeded);
  runtime::Duration window_length() const;
  void close_window(runtime::TimePoint now);
  void update_limit();
  void start_probe(runtime::TimePoint now);
  void finish_probe(runtime::TimePoint now);
  void finish_draining_if_drained(runtime::TimePoint now);
  void reset_window();
  void set_limit(double limit);

  AdaptiveLimitOptions options_;
  double limit_;
  size_t in_flight_ = 0;
  runtime::Duration no_load_{};
  Phase phase_ = Phase::kNormal;
  runtime::TimePoint next_probe_{};
  runtime::TimePoint probe_started_{};
  double limit_before_probe_ = 0;
  size_t probe_skips_ = 0;  // samples left out at the start of a probe's measurement

  // The current window. It starts at its first sample, so idle time is not in it.
  runtime::TimePoint window_start_{};
  size_t window_successes_ = 0;
  size_t window_failures_ = 0;
  double window_success_ns_ = 0;  // latencies of successes, each at least latency_floor
  double window_failure_ns_ = 0;
  size_t window_peak_in_flight_ = 0;

  uint64_t calls_admitted_ = 0;
  uint64_t calls_shed_ = 0;
  uint64_t windows_ = 0;
  uint64_t probes_ = 0;
};

}  // namespace meshrpc::resilience
