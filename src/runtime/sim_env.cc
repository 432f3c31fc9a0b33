#include "meshrpc/runtime/sim_env.h"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <cassert>
#include <cmath>
#include <stdexcept>

#include "meshrpc/runtime/buggify.h"

namespace meshrpc::runtime {
namespace {

// The simulations with BUGGIFY on that this thread has built, newest last: sites ask the
// newest (tests build one at a time; a nested one takes over until it is destroyed).
std::vector<SimEnv*>& buggify_stack() {
  thread_local std::vector<SimEnv*> stack;
  return stack;
}

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
      disk_random_(sim.random().next_u64()),
      disk_(std::make_unique<SimDisk>(disk_random_)) {
  new_context();
}

SimHost::~SimHost() {
  process_.reset();
  work_.reset();
  io_.reset();
}

void SimHost::new_context() {
  work_.reset();
  io_ = std::make_unique<asio::io_context>(1);
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_->get_executor());
}

TimePoint SimHost::now() const { return local_at(sim_.now()); }

TimePoint SimHost::local_at(TimePoint sim) const {
  if (offset_ == Duration::zero() && drift_ == 0) return sim;
  const double since_base = static_cast<double>((sim - clock_base_).count());
  return sim + offset_ + Duration(static_cast<Duration::rep>(drift_ * since_base));
}

TimePoint SimHost::to_sim_time(TimePoint local) const {
  if ((offset_ == Duration::zero() && drift_ == 0) || local >= kInfiniteFuture) return local;
  // local = sim + offset + drift * (sim - base), solved for sim; then nudged up past the
  // rounding, so that when the event fires now() has reached `local`.
  const double since_base = static_cast<double>((local - offset_ - clock_base_).count());
  TimePoint sim =
      clock_base_ + Duration(static_cast<Duration::rep>(std::ceil(since_base / (1 + drift_))));
  while (local_at(sim) < local) sim += Duration(1);
  return sim;
}

void SimHost::set_clock(Duration offset, double drift) {
  if (!(drift > -0.5 && drift < 0.5)) {
    throw std::invalid_argument("SimHost::set_clock: drift must be within (-0.5, 0.5)");
  }
  const TimePoint before = now();
  clock_base_ = sim_.now();
  drift_ = drift;
  // Monotonic, like the clocks it stands for: a new offset never moves now() back.
  offset_ = std::max(offset, before - clock_base_);
}

uint64_t SimHost::random_u64() { return sim_.random_u64(); }

size_t SimHost::poll(size_t max_handlers) {
  if (state_ != State::kUp) return 0;
  size_t ran = 0;
  while (ran < max_handlers && io_->poll_one() != 0) ++ran;
  return ran;
}

void SimHost::start(ProcessFactory factory) {
  factory_ = std::move(factory);
  process_.reset();
  ++incarnation_;
  sim_.trace(*this, "start " + std::to_string(incarnation_));
  process_ = factory_(*this);
}

void SimHost::initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                            WaitHandler handler) {
  arm_wait(sim_, *this, to_sim_time(deadline), std::move(executor), std::move(handler));
}

// --- SimEnv --------------------------------------------------------------------------------

SimEnv::SimEnv(uint64_t seed) : SimEnv(seed, Options{}) {}

SimEnv::SimEnv(uint64_t seed, Options options)
    : seed_(seed),
      options_(options),
      random_(seed),
      trace_hash_(fnv1a(kFnvOffset, &seed, 8)),
      buggify_random_(seed ^ 0xb0661f7b0661f7ULL) {
  add_host("sim");
  buggify_on_ = options_.buggify;
  if (options_.buggify) buggify_stack().push_back(this);
}

SimEnv::~SimEnv() {
  if (options_.buggify) std::erase(buggify_stack(), this);
  // Pending events own handlers that refer to hosts' executors: destroy them first, then
  // the hosts, newest first. Destroying a handler may cancel or schedule events, so drain.
  while (!events_.empty() || !parked_events_.empty()) {
    auto events = std::move(events_);
    events_.clear();
    auto parked = std::move(parked_events_);
    parked_events_.clear();
  }
  // Processes before any host's context: a process may hold executors of other hosts.
  for (auto& host : hosts_) host->process_.reset();
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
  while (!events_.empty() && events_.begin()->first.first <= limit) {
    auto node = events_.extract(events_.begin());
    if (node.key().first > now_) now_ = node.key().first;
    ++steps;
    const size_t host_id = node.mapped().host_id;
    if (host_id != kNoHost && hosts_[host_id]->state() == SimHost::State::kPaused) {
      // A frozen process: the event waits for resume_node, in order with the others.
      parked_events_[node.mapped().host_id].push_back(std::move(node.mapped()));
      continue;
    }
    node.mapped().fn();
    return true;
  }
  return false;
}

std::vector<SimEnv::Event> SimEnv::take_events(const SimHost& host) {
  std::vector<Event> taken;
  for (auto it = events_.begin(); it != events_.end();) {
    if (it->second.host_id == host.id()) {
      taken.push_back(std::move(it->second));
      it = events_.erase(it);
    } else {
      ++it;
    }
  }
  auto parked = parked_events_.find(host.id());
  if (parked != parked_events_.end()) {
    for (Event& event : parked->second) taken.push_back(std::move(event));
    parked_events_.erase(parked);
  }
  return taken;
}

void SimEnv::fail_node(SimHost& host) {
  if (host.state_ == SimHost::State::kFailed) return;
  trace(host, "crash");
  host.state_ = SimHost::State::kFailed;
  // The process object first, while its executor still exists: its destructors close what
  // it owns as the kernel would at exit. Then the network forgets the host's connections,
  // and every handler, timer and pending operation of the host goes, with its coroutine
  // frame. Destroying those may post or schedule more of the same: repeat until none is left.
  host.process_.reset();
  for (auto& [id, observer] : crash_observers_) observer(host);
  for (int round = 0; round < 2; ++round) {
    while (!take_events(host).empty()) {
    }
    auto old = std::move(host.io_);
    host.new_context();  // what destroying `old` posts lands here, and goes next round
    old.reset();
  }
  while (!take_events(host).empty()) {
  }
  // Last, once nothing of the process can write any more: what was not synced is gone.
  host.disk_->crash();
}

void SimEnv::recover_node(SimHost& host) {
  if (host.state_ != SimHost::State::kFailed) return;
  host.state_ = SimHost::State::kUp;
  trace(host, "recover");
  if (host.factory_) host.start(host.factory_);
}

void SimEnv::pause_node(SimHost& host) {
  if (host.state_ != SimHost::State::kUp) return;
  trace(host, "pause");
  host.state_ = SimHost::State::kPaused;
}

void SimEnv::resume_node(SimHost& host) {
  if (host.state_ != SimHost::State::kPaused) return;
  trace(host, "resume");
  host.state_ = SimHost::State::kUp;
  auto parked = parked_events_.find(host.id());
  if (parked == parked_events_.end()) return;
  std::vector<Event> events = std::move(parked->second);
  parked_events_.erase(parked);
  for (Event& event : events) schedule_at(host, now_, std::move(event.fn));
}

uint64_t SimEnv::add_crash_observer(HostObserver observer) {
  const uint64_t id = next_observer_id_++;
  crash_observers_.emplace(id, std::move(observer));
  return id;
}

void SimEnv::remove_crash_observer(uint64_t id) { crash_observers_.erase(id); }

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

SimEnv::EventId SimEnv::schedule_at(TimePoint at, UniqueFunction<void()> fn) {
  const EventId id{at < now_ ? now_ : at, next_event_seq_++};
  events_.emplace(id, Event{kNoHost, std::move(fn)});
  return id;
}

UniqueFunction<void()> SimEnv::cancel_event(EventId id) {
  auto it = events_.find(id);
  if (it == events_.end()) return nullptr;
  UniqueFunction<void()> fn = std::move(it->second.fn);
  events_.erase(it);
  return fn;
}

bool SimEnv::buggify(const std::string& site) {
  if (!buggify_on_) return false;
  auto [it, first] = buggify_sites_.try_emplace(site, false);
  if (first) it->second = buggify_random_.bernoulli(kSiteActivation);
  if (!it->second || !buggify_random_.bernoulli(kFireProbability)) return false;
  trace(default_host(), "buggify " + site);
  return true;
}

bool buggify_fires(const char* file, int line) {
  const std::vector<SimEnv*>& stack = buggify_stack();
  if (stack.empty()) return false;
  return stack.back()->buggify(std::string(file) + ":" + std::to_string(line));
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
