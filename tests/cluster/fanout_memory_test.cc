// A fan-out to 1,000 targets stays within its bounds: never more than max_in_flight calls
// outstanding (seen from the servers), and live heap bytes during the broadcast bounded by
// max_in_flight requests in transit plus a small per-target cost, not by N copies of the
// request.
//
// Heap bytes are counted without fighting the sanitizers:
//   - plain builds replace the global operator new and delete for this test binary
//     (cluster_tests). The replacements forward to malloc and free and read each block's
//     size back with malloc_usable_size, so they need no header in front of blocks;
//   - ASan builds cannot replace them (the sanitizer runtimes define them, and linking fails
//     on the duplicates), so they install the sanitizer allocator's malloc and free hooks
//     instead, which see every allocation and its size;
//   - TSan builds count nothing (see MESHRPC_HEAP_COUNTING).
// Counting is a relaxed atomic add per allocation and free; the peak is tracked only while
// a test asks for it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/cluster/broadcast.h"
#include "tests/cluster/broadcast_support.h"

// How heap bytes are counted here: 0 operator new replacement, 1 sanitizer allocator hooks,
// 2 not at all (ThreadSanitizer: its aligned_alloc and posix_memalign, which Asio's handler
// allocator uses, skip the malloc hook while free still runs the free hook, so live bytes
// drift downwards; the in-flight bound is still checked there, and races looked for).
#if defined(__SANITIZE_THREAD__)
#define MESHRPC_HEAP_COUNTING 2
#elif defined(__SANITIZE_ADDRESS__)
#define MESHRPC_HEAP_COUNTING 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MESHRPC_HEAP_COUNTING 2
#elif __has_feature(address_sanitizer)
#define MESHRPC_HEAP_COUNTING 1
#endif
#endif
#ifndef MESHRPC_HEAP_COUNTING
#define MESHRPC_HEAP_COUNTING 0
#endif

#if MESHRPC_HEAP_COUNTING == 1
#include <sanitizer/allocator_interface.h>
#endif

namespace {

std::atomic<int64_t> live_heap_bytes{0};
std::atomic<int64_t> peak_heap_bytes{0};
std::atomic<bool> tracking_peak{false};

[[maybe_unused]] void note_allocated(int64_t bytes) {
  const int64_t live = live_heap_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (!tracking_peak.load(std::memory_order_relaxed)) return;
  int64_t peak = peak_heap_bytes.load(std::memory_order_relaxed);
  while (live > peak &&
         !peak_heap_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

[[maybe_unused]] void note_freed(int64_t bytes) {
  live_heap_bytes.fetch_sub(bytes, std::memory_order_relaxed);
}

}  // namespace

#if MESHRPC_HEAP_COUNTING == 1

namespace {

void on_malloc(const volatile void* p, size_t size) {
  if (p != nullptr) note_allocated(static_cast<int64_t>(size));
}
void on_free(const volatile void* p) {
  if (p != nullptr) note_freed(static_cast<int64_t>(__sanitizer_get_allocated_size(p)));
}

// Installed during static initialisation, before the test starts any thread.
const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free);

}  // namespace

#elif MESHRPC_HEAP_COUNTING == 0

namespace {

void* counted_malloc(size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p != nullptr) note_allocated(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}

void* counted_aligned_alloc(size_t size, std::align_val_t alignment) {
  const auto align = static_cast<size_t>(alignment);
  const size_t rounded = ((size == 0 ? 1 : size) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p != nullptr) note_allocated(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}

void counted_free(void* p) {
  if (p == nullptr) return;
  note_freed(static_cast<int64_t>(malloc_usable_size(p)));
  std::free(p);
}

}  // namespace

void* operator new(size_t size) {
  if (void* p = counted_malloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new(size_t size, std::align_val_t alignment) {
  if (void* p = counted_aligned_alloc(size, alignment)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size, std::align_val_t alignment) {
  return operator new(size, alignment);
}
void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, alignment);
}
void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, alignment);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, size_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p);
}

#endif  // MESHRPC_HEAP_COUNTING

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using test_fleet::SimFleet;

constexpr size_t kTargets = 1000;
constexpr size_t kServerHosts = 8;  // 125 servers (ports) per simulated host
constexpr size_t kMaxInFlight = 64;
// Large requests, small replies: the request is what a broadcast could copy N times or
// hold for targets not yet started, so it dominates the measurement; a reply is held by
// every target's result until the broadcast completes, which is the O(N) part.
constexpr size_t kRequestBytes = 64 * 1024;
constexpr size_t kReplyBytes = 16;
constexpr std::string_view kMethod = "/test.Fanout/Take";

// What the servers see: calls inside a handler right now, and the most at once.
struct FleetLoad {
  int in_flight = 0;
  int max_in_flight = 0;
  int calls = 0;
  size_t request_bytes = 0;
};

class FanoutMemoryTest : public ::testing::Test {
 protected:
  FanoutMemoryTest() : fleet_(5), client_(fleet_.client_host(), fleet_.client_network()) {
    std::vector<runtime::SimHost*> hosts;
    for (size_t h = 0; h < kServerHosts; ++h) {
      hosts.push_back(&fleet_.add_host("fleet" + std::to_string(h)));
    }
    for (size_t i = 0; i < kTargets; ++i) {
      Result<transport::Address> address =
          fleet_.add_server(*hosts[i % kServerHosts], [this](core::Server& server) {
            server.register_method(std::string(kMethod), handler());
          });
      EXPECT_TRUE(address.ok()) << address.status();
      if (address.ok()) targets_.push_back(*address);
    }
  }

  // Holds each call for 1 ms of virtual time, so that calls overlap and the window fills.
  core::Handler handler() {
    return [this](core::ServerContext& ctx, Buffer request) -> awaitable<Result<Buffer>> {
      load_.calls += 1;
      load_.request_bytes = request.size();
      load_.max_in_flight = std::max(load_.max_in_flight, ++load_.in_flight);
      co_await ctx.env().async_wait_for(1ms, use_nothrow_awaitable);
      --load_.in_flight;
      co_return Buffer::copy_of(std::string(kReplyBytes, 'r'));
    };
  }

  std::vector<TargetResult> broadcast(Broadcaster& broadcaster, Buffer request) {
    std::optional<std::vector<TargetResult>> results;
    broadcaster.async_broadcast(targets_, std::string(kMethod), std::move(request),
                                {.max_in_flight = kMaxInFlight},
                                [&](std::vector<TargetResult> r) { results = std::move(r); });
    EXPECT_TRUE(fleet_.run_until([&] { return results.has_value(); }))
        << "seed " << fleet_.sim().seed();
    return results ? std::move(*results) : std::vector<TargetResult>();
  }

  SimFleet fleet_;
  Client client_;
  std::vector<transport::Address> targets_;
  FleetLoad load_;
};

TEST_F(FanoutMemoryTest, ThousandTargetsKeepAtMostMaxInFlightCallsAndBoundedPayload) {
  ASSERT_EQ(targets_.size(), kTargets);
#if MESHRPC_HEAP_COUNTING == 1
  ASSERT_GT(hooks_installed, 0) << "the sanitizer refused the allocation hooks";
#endif
  Broadcaster broadcaster(client_);
  // Warm-up with a 1-byte request: every endpoint's channel, connection and breaker exists
  // afterwards. That per-endpoint state is the client's pool, the same before and after a
  // broadcast, so it is left out of the measurement.
  {
    std::vector<TargetResult> warm = broadcast(broadcaster, Buffer::copy_of("w"));
    ASSERT_EQ(warm.size(), kTargets);
    for (const TargetResult& result : warm) ASSERT_THAT(result.status, IsOk());
  }
  load_ = FleetLoad{};

  Buffer request = Buffer::copy_of(std::string(kRequestBytes, 'q'));
  const int64_t baseline = live_heap_bytes.load();
  peak_heap_bytes.store(baseline);
  tracking_peak.store(true);
  std::vector<TargetResult> results = broadcast(broadcaster, std::move(request));
  tracking_peak.store(false);
  const int64_t peak_bytes = peak_heap_bytes.load() - baseline;
  const int64_t results_bytes = live_heap_bytes.load() - baseline;  // what the results hold

  ASSERT_EQ(results.size(), kTargets);
  for (size_t i = 0; i < kTargets; ++i) {
    ASSERT_THAT(results[i].status, IsOk()) << "target " << i;
    ASSERT_EQ(results[i].reply.size(), kReplyBytes);
  }
  EXPECT_EQ(load_.calls, static_cast<int>(kTargets));
  EXPECT_EQ(load_.request_bytes, kRequestBytes);
  // The window was full (so the bound was exercised) and never exceeded.
  EXPECT_EQ(load_.max_in_flight, static_cast<int>(kMaxInFlight));
  EXPECT_LE(broadcaster.stats().peak_in_flight, kMaxInFlight);

  // The bound: max_in_flight x message size + O(N). Per call in flight, the request exists
  // in up to 3 places besides the one copy the broadcast shares among all calls: the
  // simulated link's buffer (a socket's send and receive buffers), the server's read buffer
  // and the server's request; plus framing and per-call state (coroutine frames, call
  // records), well under 16 KiB. Per target, the result (address, status, a 16-byte reply,
  // trailers) is a few hundred bytes: small replies are packed into the broadcast's own
  // blocks rather than pinning a 16 KiB read block each (which alone would be 16 MiB here).
  // A broadcast that copied the request per target, or ran more than 64 calls at once,
  // would need 1,000 x 64 KiB = 64 MiB or more.
  constexpr int64_t kPerCallBytes = 3 * kRequestBytes + 16 * 1024;
  constexpr int64_t kPerTargetBytes = 1024;
  const int64_t bound = kRequestBytes + kMaxInFlight * kPerCallBytes + kTargets * kPerTargetBytes;
  if (MESHRPC_HEAP_COUNTING == 2) {
    std::printf("[ fanout   ] max in flight %d of %zu; heap bytes not counted under TSan\n",
                load_.max_in_flight, kMaxInFlight);
    return;
  }
  RecordProperty("peak_live_bytes", std::to_string(peak_bytes));
  RecordProperty("bound_bytes", std::to_string(bound));
  std::printf(
      "[ fanout   ] max in flight %d of %zu; peak live heap %.2f MiB (bound %.2f MiB); "
      "results hold %.2f MiB (bound %.2f MiB)\n",
      load_.max_in_flight, kMaxInFlight, peak_bytes / 1048576.0, bound / 1048576.0,
      results_bytes / 1048576.0, kTargets * kPerTargetBytes / 1048576.0);
  EXPECT_LE(peak_bytes, bound);
  EXPECT_LE(results_bytes, static_cast<int64_t>(kTargets * kPerTargetBytes));
}

}  // namespace
}  // namespace meshrpc::cluster
