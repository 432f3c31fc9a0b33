#include "meshrpc/runtime/real_env.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/consign.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <random>

namespace meshrpc::runtime {
namespace {

// Which env and context the current thread runs, so in_env_thread() and random_u64() need no
// lock. Identifies the thread only; it carries no call context.
struct ThreadIdentity {
  const RealEnv* env = nullptr;
  size_t index = 0;
};
thread_local ThreadIdentity this_thread_identity;

uint64_t resolve_seed(uint64_t seed) {
  if (seed != 0) return seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

size_t resolve_threads(size_t threads) {
  if (threads != 0) return threads;
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : hardware;
}

}  // namespace

RealEnv::RealEnv() : RealEnv(Options{}) {}

RealEnv::RealEnv(Options options)
    : outside_random_(0), disk_(std::make_unique<PosixDisk>(options.data_dir)) {
  const uint64_t seed = resolve_seed(options.seed);
  outside_random_ = Random(seed ^ 0xa5a5a5a5a5a5a5a5ULL);
  const size_t threads = resolve_threads(options.threads);
  for (size_t i = 0; i < threads; ++i) {
    auto context = std::make_unique<Context>(Context{
        // Concurrency hint 1: each context is run by exactly one thread.
        std::make_unique<asio::io_context>(1),
        nullptr,
        Random(seed + i),
        {}});
    context->work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        context->io->get_executor());
    contexts_.push_back(std::move(context));
  }
  blocking_pool_ =
      std::make_unique<asio::thread_pool>(std::max<size_t>(1, options.blocking_threads));
  for (size_t i = 0; i < threads; ++i) {
    contexts_[i]->thread = std::thread([this, i] {
      this_thread_identity = ThreadIdentity{this, i};
      contexts_[i]->io->run();
    });
  }
}

RealEnv::~RealEnv() { stop(); }

void RealEnv::stop() {
  if (stopped_.exchange(true)) return;
  for (auto& context : contexts_) {
    context->work.reset();
    context->io->stop();
  }
  for (auto& context : contexts_) {
    if (context->thread.joinable()) context->thread.join();
  }
  blocking_pool_->stop();
  blocking_pool_->join();
}

asio::any_io_executor RealEnv::blocking_executor() { return blocking_pool_->get_executor(); }

asio::any_io_executor RealEnv::executor(size_t index) {
  return contexts_[index]->io->get_executor();
}

asio::any_io_executor RealEnv::pick_executor() {
  if (this_thread_identity.env == this) return executor(this_thread_identity.index);
  const size_t next = next_executor_.fetch_add(1, std::memory_order_relaxed);
  return executor(next % contexts_.size());
}

bool RealEnv::in_env_thread() const { return this_thread_identity.env == this; }

size_t RealEnv::current_executor_index() const {
  return this_thread_identity.env == this ? this_thread_identity.index : kNoIndex;
}

TimePoint RealEnv::now() const {
  return TimePoint(
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

uint64_t RealEnv::random_u64() {
  if (this_thread_identity.env == this) {
    return contexts_[this_thread_identity.index]->random.next_u64();
  }
  std::lock_guard lock(outside_random_mutex_);
  return outside_random_.next_u64();
}

void RealEnv::initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                            WaitHandler handler) {
  // TimePoint shares steady_clock's epoch (see now()), so the conversion is exact.
  const auto expiry = std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline.time_since_epoch()));
  // The timer lives on the handler's executor, so the handler's cancellation slot (emitted
  // on that executor's thread) and the timer are touched by one thread only.
  auto timer = std::make_shared<asio::steady_timer>(executor, expiry);
  timer->async_wait(asio::consign(std::move(handler), timer));
}

}  // namespace meshrpc::runtime
