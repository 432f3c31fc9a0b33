// meshctl bench: closed-loop load through the JSON gateway. Each of `concurrency` coroutines
// owns one keep-alive connection and sends the next call as soon as the previous one ends;
// the coroutines are spread over the io threads of a RealEnv. Latencies of
// successful calls go to a meshrpc::Histogram; failures are counted by code.
#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <string>

#include "args.h"
#include "commands.h"
#include "http_client.h"
#include "meshrpc/base/histogram.h"

namespace meshrpc::meshctl {

namespace {

// After a transport failure a connection waits this long before reconnecting, so a dead or
// refusing server is not hammered in a tight loop (and the error count stays meaningful).
constexpr std::chrono::milliseconds kReconnectPause(10);

// What every connection records into. Thread-safe.
class BenchTally {
 public:
  void record(const Status& status, runtime::Duration latency) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    if (status.ok()) {
      latency_.record(static_cast<uint64_t>(latency.count()));
      return;
    }
    const auto code = static_cast<size_t>(status.code());
    if (errors_[code].fetch_add(1, std::memory_order_relaxed) == 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      first_error_.emplace(code, std::string(status.message()));
    }
  }

  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }
  uint64_t errors(size_t code) const { return errors_[code].load(std::memory_order_relaxed); }
  uint64_t total_errors() const {
    uint64_t total = 0;
    for (size_t code = 0; code < errors_.size(); ++code) total += errors(code);
    return total;
  }
  HistogramSnapshot latency() const { return latency_.snapshot(); }
  std::string first_error(size_t code) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = first_error_.find(code);
    return it == first_error_.end() ? "" : it->second;
  }

 private:
  Histogram latency_;
  std::atomic<uint64_t> calls_{0};
  std::array<std::atomic<uint64_t>, kStatusCodeCount> errors_{};
  mutable std::mutex mutex_;
  std::map<size_t, std::string> first_error_;  // guarded by mutex_
};

awaitable<void> run_connection(runtime::Env& env, const Target& target,
                               const HttpRequestSpec& request, std::chrono::nanoseconds timeout,
                               runtime::TimePoint end, BenchTally& tally) {
  HttpConnection connection(co_await asio::this_coro::executor, target);
  while (env.now() < end) {
    const runtime::TimePoint start = env.now();
    Result<HttpReply> reply = co_await connection.send(request, timeout);
    tally.record(reply.ok() ? reply_status(*reply) : reply.status(), env.now() - start);
    if (!reply.ok()) co_await env.async_wait_for(kReconnectPause, use_nothrow_awaitable);
  }
}

// The calls recorded between two snapshots of one histogram, for the progress line's p99.
HistogramSnapshot interval(const HistogramSnapshot& before, const HistogramSnapshot& now) {
  HistogramSnapshot delta = now;
  delta.count = now.count - before.count;
  for (size_t i = 0; i < delta.bucket_counts.size() && i < before.bucket_counts.size(); ++i) {
    delta.bucket_counts[i] -= before.bucket_counts[i];
  }
  return delta;
}

void print_progress(int second, uint64_t calls_per_second, const HistogramSnapshot& window,
                    uint64_t errors) {
  const std::string p99 =
      window.count == 0 ? "-" : format_latency(std::chrono::nanoseconds(window.percentile(0.99)));
  // Trailing spaces wipe what a longer previous line left behind the carriage return.
  std::fprintf(stderr, "\r  %ds  %s calls/s  p99 %s  errors %s    ", second,
               with_thousands(calls_per_second).c_str(), p99.c_str(),
               with_thousands(errors).c_str());
  std::fflush(stderr);
}

// Waits until `end`, printing a progress line at every whole second.
awaitable<void> show_progress(runtime::Env& env, const BenchTally& tally, runtime::TimePoint start,
                              runtime::TimePoint end) {
  HistogramSnapshot previous = tally.latency();
  uint64_t previous_calls = 0;
  bool printed = false;
  for (int second = 1; start + std::chrono::seconds(second) <= end; ++second) {
    co_await env.async_wait_until(start + std::chrono::seconds(second), use_nothrow_awaitable);
    HistogramSnapshot now = tally.latency();
    const uint64_t calls = tally.calls();
    print_progress(second, calls - previous_calls, interval(previous, now), tally.total_errors());
    previous = std::move(now);
    previous_calls = calls;
    printed = true;
  }
  if (printed) std::fprintf(stderr, "\n");
}

// Prints the report; returns the exit code.
int report(const BenchFlags& flags, size_t threads, const BenchTally& tally,
           runtime::Duration elapsed) {
  const HistogramSnapshot latency = tally.latency();
  const uint64_t calls = tally.calls();
  const uint64_t errors = tally.total_errors();
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::printf("bench %s at %s: %d connections on %zu threads for %.2fs\n",
              flags.call.method_path.c_str(), flags.call.address.to_string().c_str(),
              flags.concurrency, threads, seconds);
  std::printf("  calls      %s\n", with_thousands(calls).c_str());
  std::printf("  calls/s    %s\n",
              with_thousands(static_cast<uint64_t>(static_cast<double>(calls) / seconds)).c_str());
  if (latency.count == 0) {
    std::printf("  latency    (no successful calls)\n");
  } else {
    auto at = [&](double q) {
      return format_latency(std::chrono::nanoseconds(latency.percentile(q)));
    };
    std::printf("  latency    p50 %s  p90 %s  p99 %s  p999 %s  max %s\n", at(0.5).c_str(),
                at(0.9).c_str(), at(0.99).c_str(), at(0.999).c_str(),
                format_latency(std::chrono::nanoseconds(latency.max)).c_str());
  }
  std::printf("  errors     %s\n", with_thousands(errors).c_str());
  int exit_code = 0;
  uint64_t most = 0;
  for (size_t code = 1; code < static_cast<size_t>(kStatusCodeCount); ++code) {
    const uint64_t count = tally.errors(code);
    if (count == 0) continue;
    std::printf("    %-20s %s  (first: %s)\n",
                std::string(status_code_name(static_cast<StatusCode>(code))).c_str(),
                with_thousands(count).c_str(), tally.first_error(code).c_str());
    if (count > most) {
      most = count;
      exit_code = static_cast<int>(code);
    }
  }
  if (exit_code != 0) {
    const auto code = static_cast<size_t>(exit_code);
    report_error(Status(static_cast<StatusCode>(code), tally.first_error(code)));
  }
  return exit_code;
}

}  // namespace

int run_bench(const BenchFlags& flags) {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = static_cast<size_t>(flags.threads),
                                                 .blocking_threads = 1});
  const size_t threads = std::min(env.executor_count(), static_cast<size_t>(flags.concurrency));
  Result<Target> target = run_blocking<Result<Target>>(env, [&]() -> awaitable<Result<Target>> {
    co_return co_await resolve_target(flags.call.address);
  });
  if (!target.ok()) return report_error(target.status());
  const HttpRequestSpec request = gateway_request(flags.call);
  BenchTally tally;

  // Every connection coroutine and the progress coroutine count down; the last one wakes us.
  std::promise<void> all_done;
  std::atomic<int> running{flags.concurrency + 1};
  auto finished = [&running, &all_done](const std::exception_ptr&) {
    if (running.fetch_sub(1) == 1) all_done.set_value();
  };
  const runtime::TimePoint start = env.now();
  const runtime::TimePoint end = start + flags.duration;
  for (int i = 0; i < flags.concurrency; ++i) {
    asio::co_spawn(env.executor(static_cast<size_t>(i) % threads),
                   run_connection(env, *target, request, flags.call.timeout, end, tally), finished);
  }
  asio::co_spawn(env.executor(0), show_progress(env, tally, start, end), finished);
  all_done.get_future().wait();
  return report(flags, threads, tally, env.now() - start);
}

}  // namespace meshrpc::meshctl
