#include "client_run.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

namespace meshrpc::bench {
namespace {

// In-flight calls get this long after the run ends: far above any loopback round trip, short
// enough that a wedged server costs a run seconds, not minutes.
constexpr std::chrono::seconds kDrainTimeout{2};

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

std::chrono::nanoseconds to_duration(double seconds) {
  return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
}

}  // namespace

ClientRun::ClientRun(const ClientFlags& flags) : payload_bytes_(flags.payload_bytes) {
  const auto now = Clock::now();
  measure_start_ = now + to_duration(flags.warmup_s);
  measure_end_ = measure_start_ + to_duration(flags.duration_s);
  measured_from_ = measured_to_ = measure_start_;
  advance(now);
}

ClientRun::CpuSeconds ClientRun::cpu_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return {seconds_of(usage.ru_utime), seconds_of(usage.ru_stime)};
}

void ClientRun::advance(Clock::time_point now) {
  if (phase_ == Phase::kWarmup && now >= measure_start_) {
    phase_ = Phase::kMeasuring;
    measured_from_ = now;
    cpu_at_start_ = cpu_now();
  }
  if (phase_ == Phase::kMeasuring && now >= measure_end_) {
    phase_ = Phase::kDone;
    measured_to_ = now;
    cpu_at_end_ = cpu_now();
  }
}

ClientRun::Clock::time_point ClientRun::next_wakeup() const {
  switch (phase_) {
    case Phase::kWarmup:
      return measure_start_;
    case Phase::kMeasuring:
      return measure_end_;
    case Phase::kDone:
      break;
  }
  return drain_deadline();
}

ClientRun::Clock::time_point ClientRun::drain_deadline() const {
  return measure_end_ + kDrainTimeout;
}

void ClientRun::on_call_done(Clock::time_point start, Clock::time_point end) {
  if (phase_ != Phase::kMeasuring || end < measured_from_) return;
  ++calls_;
  latency_.record(static_cast<uint64_t>((end - start).count()));
}

void ClientRun::on_message(Clock::time_point now) {
  if (phase_ != Phase::kMeasuring || now < measured_from_) return;
  ++calls_;
}

int ClientRun::report() const {
  // A run cut short (its server died mid-measurement) reports up to now, not a negative span.
  const bool ended = phase_ == Phase::kDone;
  const Clock::time_point to = ended ? measured_to_ : std::max(Clock::now(), measured_from_);
  const CpuSeconds cpu_end =
      ended ? cpu_at_end_ : (phase_ == Phase::kMeasuring ? cpu_now() : cpu_at_start_);
  const double seconds = std::chrono::duration<double>(to - measured_from_).count();
  const double rate = seconds > 0 ? static_cast<double>(calls_) / seconds : 0;
  // Payload megabytes (10^6) per second one way: in stream mode the server-to-client rate.
  const double megabytes = rate * payload_bytes_ / 1e6;
  std::printf(
      "{\"calls\": %llu, \"seconds\": %.6f, \"calls_per_sec\": %.1f, \"mb_per_sec\": %.2f, "
      "\"p50_us\": %.2f, \"p99_us\": %.2f, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, "
      "\"errors\": %llu}\n",
      static_cast<unsigned long long>(calls_), seconds, rate, megabytes,
      latency_.percentile_ns(0.50) / 1e3, latency_.percentile_ns(0.99) / 1e3,
      cpu_end.user - cpu_at_start_.user, cpu_end.sys - cpu_at_start_.sys,
      static_cast<unsigned long long>(errors_));
  std::fflush(stdout);
  if (errors_ > 0) {
    std::fprintf(stderr, "%llu calls failed\n", static_cast<unsigned long long>(errors_));
    return 1;
  }
  if (calls_ == 0) {
    std::fprintf(stderr, "no call completed during the %.3f s measurement\n", seconds);
    return 1;
  }
  return 0;
}

}  // namespace meshrpc::bench
