// RealEnv: Env on real threads, the steady clock and a per-thread PRNG.
//
// One io_context per thread (default: one per core), each run by its own thread from
// construction until stop() or destruction. A connection or call stays on one context for
// its life, so the hot path needs no locks (DESIGN.md "Threading").
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "meshrpc/runtime/env.h"
#include "meshrpc/runtime/posix_disk.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::runtime {

class RealEnv final : public Env {
 public:
  struct Options {
    // 0: std::thread::hardware_concurrency().
    size_t threads = 0;
    // 0: seeded from std::random_device. Thread i draws from Random(seed + i).
    uint64_t seed = 0;
    // Threads of the worker pool for blocking work. 4: enough to overlap a few slow disk or
    // library calls on a small machine without oversubscribing it.
    size_t blocking_threads = 4;
    // Root of disk(): relative paths resolve under it. "." is the working directory.
    std::string data_dir = ".";
  };

  RealEnv();
  explicit RealEnv(Options options);
  // Stops and joins the threads. Handlers still queued are destroyed, not run.
  ~RealEnv() override;

  RealEnv(const RealEnv&) = delete;
  RealEnv& operator=(const RealEnv&) = delete;

  // Asks every context to stop and joins its thread. Idempotent. Must not be called from one
  // of the env's own threads (it would join itself).
  void stop();

  asio::io_context& context(size_t index) { return *contexts_[index]->io; }

  size_t executor_count() const override { return contexts_.size(); }
  asio::any_io_executor executor(size_t index) override;
  asio::any_io_executor pick_executor() override;
  asio::any_io_executor blocking_executor() override;
  bool in_env_thread() const override;
  size_t current_executor_index() const override;
  bool is_simulated() const override { return false; }
  TimePoint now() const override;
  uint64_t random_u64() override;
  Disk& disk() override { return *disk_; }

 protected:
  void initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                     WaitHandler handler) override;

 private:
  struct Context {
    std::unique_ptr<asio::io_context> io;
    std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work;
    Random random;
    std::thread thread;
  };

  std::vector<std::unique_ptr<Context>> contexts_;
  std::unique_ptr<asio::thread_pool> blocking_pool_;
  std::atomic<size_t> next_executor_{0};
  std::atomic<bool> stopped_{false};
  // Draws from threads that are not the env's own (main thread, tests).
  std::mutex outside_random_mutex_;
  Random outside_random_;
  std::unique_ptr<PosixDisk> disk_;
};

}  // namespace meshrpc::runtime
