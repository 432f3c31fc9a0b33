#include "meshrpc/runtime/sim_env.h"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <cassert>
#include <stdexcept>

namespace meshrpc::runtime {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t fnv1a(uint64_t hash, const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= kFnvPrime;
  }
  return hash;
}

// A timer wait in flight: shared by its event and its cancellation handler; whichever
// runs first completes the handler.
struct PendingWait {
  Env::WaitHandler handler;
  asio::any_io_executor executor;
};

void complete_wait(PendingWait& wait, error_code ec) {
  asio::post(wait.executor, asio::append(std::move(wait.handler), ec));
}

// Installed in the handler's cancellation slot. It refers to the wait weakly: the slot is
// owned by the handler's own state, so a strong reference would be a cycle that keeps an
// abandoned coroutine alive forever.
struct WaitCanceller {
  SimEnv* sim;
  SimEnv::EventId id;
  std::weak_ptr<PendingWait> wait;

  void operator()(asio::cancellation_type type) {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                 asio::cancellation_type::total)) == asio::cancellation_type::none) {
      return;
    }
    std::shared_ptr<PendingWait> pending = wait.lock();
    // An empty function means the timer already fired; then there is nothing to cancel.
    if (pending && sim->cancel_event(id)) complete_wait(*pending, asio::error::operation_aborted);
  }
};

void arm_wait(SimEnv& sim, SimHost& host, TimePoint deadline, asio::any_io_executor executor,
              Env::WaitHandler handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto wait = std::make_shared<PendingWait>(PendingWait{std::move(handler), std::move(executor)});
  auto id = sim.schedule_at(host, deadline, [wait, slot]() mutable {
    if (slot.is_connected()) slot.clear();
    complete_wait(*wait, error_code{});
  });
  if (slot.is_connected()) {
    slot.template emplace<WaitCanceller>(WaitCanceller{&sim, id, std::weak_ptr(wait)});
  }
}

}  // namespace

// --- SimHost -------------------------------------------------------------------------------

SimHost::SimHost(SimEnv& sim, size_t id, std::string name)
    : sim_(sim),
      id_(id),
      name_(std::move(name)),
      io_(std::make_unique<asio::io_context>(1)),
      work_(std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
          io_->get_executor())) {}

SimHost::~SimHost() {
  work_.reset();
  io_.reset();
}

TimePoint SimHost::now() const { return sim_.now(); }

uint64_t SimHost::random_u64() { return sim_.random_u64(); }

size_t SimHost::poll(size_t max_handlers) {
  size_t ran = 0;
  while (ran < max_handlers && io_->poll_one() != 0) ++ran;
  return ran;
}

void SimHost::initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                            WaitHandler handler) {
  arm_wait(sim_, *this, deadline, std::move(executor), std::move(handler));
}

// --- SimEnv --------------------------------------------------------------------------------

SimEnv::SimEnv(uint64_t seed) : SimEnv(seed, Options{}) {}

SimEnv::SimEnv(uint64_t seed, Options options)
    : seed_(seed), options_(options), random_(seed), trace_hash_(fnv1a(kFnvOffset, &seed, 8)) {
  add_host("sim");
}

SimEnv::~SimEnv() {
  // Pending events own handlers that refer to hosts' executors: destroy them first, then
  // the hosts, newest first. Destroying a handler may cancel or schedule events, so drain.
  while (!events_.empty()) {
    auto events = std::move(events_);
    events_.clear();
  }
  while (!hosts_.empty()) hosts_.pop_back();
}

SimHost& SimEnv::add_host(std::string name) {
  if (find_host(name) != nullptr) {
    throw std::invalid_argument("SimEnv::add_host: duplicate host name " + name);
  }
  hosts_.push_back(std::make_unique<SimHost>(*this, hosts_.size(), std::move(name)));
  return *hosts_.back();
}

SimHost* SimEnv::find_host(std::string_view name) {
  for (auto& host : hosts_) {
    if (host->name() == name) return host.get();
  }
  return nullptr;
}

uint64_t SimEnv::poll() {
  uint64_t steps = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) steps += hosts_[i]->poll(options_.handlers_per_turn);
  return steps;
}

bool SimEnv::step(TimePoint limit, uint64_t& steps) {
  const uint64_t ran = poll();
  steps += ran;
  if (ran > 0) return true;
  return fire_next_events(limit, steps);
}

bool SimEnv::fire_next_events(TimePoint limit, uint64_t& steps) {
  if (events_.empty() || events_.begin()->first.first > limit) return false;
  auto node = events_.extract(events_.begin());
  if (node.key().first > now_) now_ = node.key().first;
  ++steps;
  node.mapped().fn();
  return true;
}

uint64_t SimEnv::run() { return run_for(kInfiniteFuture - now_); }

uint64_t SimEnv::run_for(Duration duration) {
  const TimePoint limit = duration >= kInfiniteFuture - now_ ? kInfiniteFuture : now_ + duration;
  uint64_t steps = 0;
  hit_step_limit_ = false;
  while (step(limit, steps)) {
    if (steps >= options_.max_steps_per_run) {
      hit_step_limit_ = true;
      return steps;
    }
  }
  // Time passes even when nothing happens, as a real sleep would.
  if (limit != kInfiniteFuture && now_ < limit) now_ = limit;
  return steps;
}

bool SimEnv::run_until(UniqueFunction<bool()> done, Duration limit) {
  const TimePoint until = limit >= kInfiniteFuture - now_ ? kInfiniteFuture : now_ + limit;
  uint64_t steps = 0;
  hit_step_limit_ = false;
  while (!done()) {
    if (!step(until, steps)) return done();
    if (steps >= options_.max_steps_per_run) {
      hit_step_limit_ = true;
      return done();
    }
  }
  return true;
}

SimEnv::EventId SimEnv::schedule_at(SimHost& host, TimePoint at, UniqueFunction<void()> fn) {
  const EventId id{at < now_ ? now_ : at, next_event_seq_++};
  events_.emplace(id, Event{host.id(), std::move(fn)});
  return id;
}

UniqueFunction<void()> SimEnv::cancel_event(EventId id) {
  auto it = events_.find(id);
  if (it == events_.end()) return nullptr;
  UniqueFunction<void()> fn = std::move(it->second.fn);
  events_.erase(it);
  return fn;
}

void SimEnv::trace(const SimHost& host, std::string_view event) {
  const int64_t time = now_.time_since_epoch().count();
  const uint64_t host_id = host.id();
  uint64_t hash = fnv1a(trace_hash_, &time, sizeof time);
  hash = fnv1a(hash, &host_id, sizeof host_id);
  trace_hash_ = fnv1a(hash, event.data(), event.size());
  if (options_.keep_trace) {
    trace_lines_.push_back(std::to_string(time) + " " + host.name() + " " + std::string(event));
  }
}

void SimEnv::initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                           WaitHandler handler) {
  arm_wait(*this, default_host(), deadline, std::move(executor), std::move(handler));
}

}  // namespace meshrpc::runtime
