// Microbenchmarks for the metric primitives on the hot path: Counter::add and
// Histogram::record, from one thread and from two threads sharing one metric (where sharding
// should keep the per-op cost flat instead of bouncing one cache line between cores), and
// BM_CallRecord: everything one side of a unary call records (what core's CallRecord and
// CallMetrics do per call; docs/performance.md, "Metrics overhead").
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "meshrpc/base/metrics.h"

namespace meshrpc {
namespace {

// Shared by all threads of a run, like a per-method metric shared by all io threads.
Counter shared_counter;
Histogram shared_histogram;

void BM_CounterAdd(benchmark::State& state) {
  for (auto _ : state) shared_counter.add(1);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterAdd)->Threads(1)->Threads(2);

// The unsharded baseline that Counter is meant to beat from 2 threads.
std::atomic<uint64_t> shared_atomic{0};

void BM_SingleAtomicAdd(benchmark::State& state) {
  for (auto _ : state) shared_atomic.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SingleAtomicAdd)->Threads(1)->Threads(2);

void BM_HistogramRecord(benchmark::State& state) {
  // Latency-like values spread over many buckets; a cheap LCG so value generation does not
  // dominate the measurement.
  uint64_t x = 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(state.thread_index());
  for (auto _ : state) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    shared_histogram.record((x >> 40) + 1000);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord)->Threads(1)->Threads(2);

void BM_HistogramSnapshot(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(shared_histogram.snapshot());
}
BENCHMARK(BM_HistogramSnapshot);

// The per-call work of one side (server or channel) with metrics on, mirroring
// src/core/call_metrics.h with the public primitives: a clock read and `started` when the
// call starts, request and response bytes, and at the end a clock read, `finished_ok` and
// the latency record. A call records this twice (client and server side). Metrics off, the
// same call costs a null check instead.
struct CallMetricsLike {
  Counter started;
  Counter finished_ok;
  Histogram latency_ns;
  Counter request_bytes;
  Counter response_bytes;
};
CallMetricsLike shared_call_metrics;

void BM_CallRecord(benchmark::State& state) {
  CallMetricsLike& m = shared_call_metrics;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    m.started.increment();
    m.request_bytes.add(64);
    m.response_bytes.add(64);
    const auto end = std::chrono::steady_clock::now();
    m.finished_ok.increment();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
    m.latency_ns.record(ns > 0 ? static_cast<uint64_t>(ns) : 0);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CallRecord)->Threads(1)->Threads(2);

// The two clock reads are most of BM_CallRecord: this is one of them.
void BM_SteadyClockNow(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(std::chrono::steady_clock::now());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SteadyClockNow);

}  // namespace
}  // namespace meshrpc

BENCHMARK_MAIN();
