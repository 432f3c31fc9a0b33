// ClientRun: the clock and bookkeeping of one closed-loop benchmark client, shared by every
// echo client so that all frameworks are timed and reported the same way.
//
// A run has three phases: warmup (calls run, nothing is recorded), measuring (completions
// are counted and their latencies recorded; CPU time is read with getrusage at both ends)
// and done (no new calls; the client drains or abandons what is in flight and reports).
// The client's event loop calls advance() whenever it wakes, and must wake by
// next_wakeup() even when no call completes, so a stalled server cannot stall the run.
//
// Not thread-safe: owned and driven by the client's one event-loop thread.
#pragma once

#include <chrono>
#include <cstdint>

#include "echo_flags.h"
#include "latency_histogram.h"

namespace meshrpc::bench {

class ClientRun {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the warmup clock now.
  explicit ClientRun(const ClientFlags& flags);

  // Moves to the next phase once its start time has passed.
  void advance(Clock::time_point now);
  [[nodiscard]] bool issuing() const { return phase_ != Phase::kDone; }
  [[nodiscard]] Clock::time_point next_wakeup() const;
  // After done, how long outstanding calls may still take before the client gives up on them.
  [[nodiscard]] Clock::time_point drain_deadline() const;

  // A call started at `start` completed successfully at `end`.
  void on_call_done(Clock::time_point start, Clock::time_point end);
  // Stream mode: one streamed message arrived at `now` (counted as a call, no latency).
  void on_message(Clock::time_point now);
  // A call failed (connection lost, wrong echo size, deadline): counted and reported.
  void on_call_failed() { ++errors_; }

  // Prints the run's one JSON line to stdout; returns the process exit code (non-zero when
  // any call failed or none completed).
  [[nodiscard]] int report() const;

 private:
  enum class Phase { kWarmup, kMeasuring, kDone };

  struct CpuSeconds {
    double user = 0;
    double sys = 0;
  };
  static CpuSeconds cpu_now();

  Phase phase_ = Phase::kWarmup;
  Clock::time_point measure_start_;
  Clock::time_point measure_end_;
  Clock::time_point measured_from_;  // when advance() saw the measurement start
  Clock::time_point measured_to_;    // when advance() saw it end
  CpuSeconds cpu_at_start_;
  CpuSeconds cpu_at_end_;
  uint64_t calls_ = 0;
  uint64_t errors_ = 0;
  uint32_t payload_bytes_ = 0;
  LatencyHistogram latency_;
};

}  // namespace meshrpc::bench
