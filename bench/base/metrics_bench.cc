// Microbenchmarks for the metric primitives on the hot path: Counter::add and
// Histogram::record, from one thread and from two threads sharing one metric (where sharding
// should keep the per-op cost flat instead of bouncing one cache line between cores).
#include <benchmark/benchmark.h>

#include <atomic>
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

}  // namespace
}  // namespace meshrpc

BENCHMARK_MAIN();
