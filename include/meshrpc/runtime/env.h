// Env: the only door from meshrpc code to time, timers, randomness and executors
// (DESIGN.md principle 2). RealEnv runs on threads and the real clock; SimEnv runs a whole
// simulated cluster in one thread on virtual time. Code written against Env runs unchanged
// on both.
//
// Lifetime: an Env outlives every object and coroutine that uses it.
// Threading: every method is safe to call from any thread of the Env. Timer completions run
// on the handler's associated executor (or, if it has none, on one of the Env's executors).
//
//   // wait 5 ms, cancellable (e.g. by `co_await (call() || sleep())`):
//   auto [ec] = co_await env.async_wait_for(5ms, use_nothrow_awaitable);
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/runtime/disk.h"

namespace meshrpc::runtime {

class Env {
 public:
  using WaitHandler = asio::any_completion_handler<void(error_code)>;

  virtual ~Env() = default;

  // --- executors -----------------------------------------------------------------------
  // Number of independent execution contexts (io threads; 1 per simulated host).
  virtual size_t executor_count() const = 0;
  // The executor of context `index` (< executor_count()). Work posted to one executor runs
  // in order on one thread.
  virtual asio::any_io_executor executor(size_t index) = 0;
  // An executor for new, independent work: spreads work over the contexts (round robin).
  virtual asio::any_io_executor pick_executor() = 0;
  // Where code that blocks (a synchronous disk or library call) runs, off the io threads:
  // RealEnv's small worker pool. Under SimEnv nothing may block; it is the host's executor.
  virtual asio::any_io_executor blocking_executor() = 0;
  // True when the calling thread runs one of this Env's contexts, where blocking would
  // stall other work (the sync client refuses to block there). Always true under SimEnv,
  // where nothing may block.
  virtual bool in_env_thread() const = 0;
  virtual bool is_simulated() const = 0;
  // The index (< executor_count()) of the context running the calling thread, or kNoIndex on
  // a thread that is not the env's. Lets per-thread structures (a Channel's sub-connections)
  // pick their own slot without locks.
  static constexpr size_t kNoIndex = static_cast<size_t>(-1);
  virtual size_t current_executor_index() const = 0;

  // --- time ----------------------------------------------------------------------------
  // Monotonic; under SimEnv, the host's virtual clock.
  virtual TimePoint now() const = 0;

  // Completes with success at `deadline` (at once if it has passed), or with
  // asio::error::operation_aborted when cancelled through the handler's cancellation slot.
  template <typename CompletionToken>
  auto async_wait_until(TimePoint deadline, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code)>(
        [this, deadline](auto handler) {
          auto ex = asio::get_associated_executor(handler, pick_executor());
          initiate_wait(deadline, std::move(ex), WaitHandler(std::move(handler)));
        },
        token);
  }

  template <typename CompletionToken>
  auto async_wait_for(Duration duration, CompletionToken&& token) {
    return async_wait_until(now() + duration, std::forward<CompletionToken>(token));
  }

  // --- randomness ----------------------------------------------------------------------
  // A uniformly random 64-bit value. RealEnv: seeded per thread from its seed; SimEnv: drawn
  // from the simulation's seeded generator, so draws replay exactly.
  virtual uint64_t random_u64() = 0;

  // --- disk ----------------------------------------------------------------------------
  // The process's storage (disk.h). RealEnv: the file system under Options::data_dir;
  // SimEnv: the host's simulated disk, which keeps across a crash only what was synced.
  // Calls block briefly; run large ones on blocking_executor().
  virtual Disk& disk() = 0;

 protected:
  // Implementations arm a wait completing `handler` on `executor`.
  virtual void initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                             WaitHandler handler) = 0;
};

}  // namespace meshrpc::runtime
