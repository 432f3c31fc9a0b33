// SimEnv: a deterministic twin of RealEnv. A whole cluster runs in one thread on virtual
// time; a run is a pure function of its seed (DESIGN.md "Threading", FoundationDB's Sim2).
//
// The simulation holds hosts. Each SimHost is an Env with its own execution context, so
// simulated components are written exactly like real ones; SimEnv itself is also an Env
// (its built-in host, named "sim") for single-host tests.
//
// Scheduling: run() executes every ready handler of every host, hosts in creation order,
// each host's handlers in FIFO order; when nothing is ready it jumps virtual time to the
// earliest pending event (timer or scheduled delivery). Events at the same virtual time fire
// in the order they were scheduled. Nothing reads the real clock, so a one-hour timer fires
// after exactly one virtual hour and no real time.
//
// Trace: components record events with trace(); the running hash (over virtual time, host
// and text, in order) identifies a run: same seed, same hash.
//
// Host faults (FoundationDB's Sim2 machine model):
//   - fail_node / recover_node: a process crash. What runs on a host is a SimProcess, built
//     by the host's factory (start()). A crash destroys the process object, then every
//     handler, timer and pending operation of the host (so every coroutine frame of it),
//     and gives the host a fresh execution context; crash observers (the simulated network)
//     reset its connections. recover_node builds a new process from the factory. Nothing
//     in memory survives; the disk keeps what was synced.
//   - pause_node / resume_node: a frozen process (a long GC pause, SIGSTOP). Its handlers
//     and events wait; on resume they run, late, in their order.
//   - clock skew and drift per host (set_clock): the host's now() and its timers run on
//     its own clock, offset and running fast or slow by a bounded rate.
//
// Threading: everything, including the driving calls (run, run_for, ...), on one thread.
// Lifetime: hosts live as long as the SimEnv; destroy objects that use a host before it.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/base/unique_function.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/runtime/random.h"
#include "meshrpc/runtime/sim_disk.h"

namespace meshrpc::runtime {

class SimEnv;
class SimHost;

// What runs on a simulated host: its servers, clients and in-memory state. Built by the
// host's factory; a crash destroys it.
class SimProcess {
 public:
  virtual ~SimProcess() = default;
};
using ProcessFactory = std::function<std::unique_ptr<SimProcess>(SimHost&)>;

class SimHost final : public Env {
 public:
  SimHost(SimEnv& sim, size_t id, std::string name);
  ~SimHost() override;

  SimHost(const SimHost&) = delete;
  SimHost& operator=(const SimHost&) = delete;

  size_t id() const { return id_; }
  const std::string& name() const { return name_; }
  SimEnv& sim() { return sim_; }
  asio::io_context& context() { return *io_; }

  size_t executor_count() const override { return 1; }
  asio::any_io_executor executor(size_t) override { return io_->get_executor(); }
  asio::any_io_executor pick_executor() override { return io_->get_executor(); }
  asio::any_io_executor blocking_executor() override { return io_->get_executor(); }
  bool in_env_thread() const override { return true; }
  bool is_simulated() const override { return true; }
  size_t current_executor_index() const override { return 0; }
  TimePoint now() const override;
  uint64_t random_u64() override;
  // The host's simulated disk: it outlives crashes, losing what was not synced (sim_disk.h).
  Disk& disk() override { return *disk_; }
  SimDisk& sim_disk() { return *disk_; }

  // Runs up to `max_handlers` ready handlers; returns how many ran. Bounded so that a host
  // whose handlers keep re-posting themselves cannot starve the others or the step limit.
  // A paused or failed host runs nothing.
  size_t poll(size_t max_handlers);

  // --- the process and its faults ----------------------------------------------------
  enum class State { kUp, kPaused, kFailed };
  State state() const { return state_; }
  bool is_up() const { return state_ == State::kUp; }
  // Builds the host's process with `factory` (kept for recover_node). A host may also be
  // used without a process, as a bare Env.
  void start(ProcessFactory factory);
  // The current process (nullptr when failed or never started).
  SimProcess* process() { return process_.get(); }
  template <typename T>
  T& process_as() {
    return dynamic_cast<T&>(*process_);
  }
  // How many times the process has been (re)built.
  uint64_t incarnation() const { return incarnation_; }

  // This host's clock: `offset` ahead of the simulation's (negative: behind), and running
  // `drift` fast (e.g. 1e-4: 100 µs per second; negative: slow; |drift| < 0.5). now() and
  // this host's timers follow it. Changing it never moves now() backwards.
  void set_clock(Duration offset, double drift);

 protected:
  void initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                     WaitHandler handler) override;

 private:
  friend class SimEnv;
  void new_context();
  // This host's clock reading at simulation time `sim`, and the (earliest) simulation time
  // at which it reads `local`.
  TimePoint local_at(TimePoint sim) const;
  TimePoint to_sim_time(TimePoint local) const;

  SimEnv& sim_;
  size_t id_;
  std::string name_;
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  State state_ = State::kUp;
  ProcessFactory factory_;
  std::unique_ptr<SimProcess> process_;
  uint64_t incarnation_ = 0;
  // Clock: local = sim + offset_ + drift_ * (sim - clock_base_).
  Duration offset_{};
  double drift_ = 0;
  TimePoint clock_base_{};
  // The disk's own generator (seeded from the simulation's), so turning disk faults on
  // does not shift the network's draws.
  Random disk_random_;
  std::unique_ptr<SimDisk> disk_;
};

class SimEnv final : public Env {
 public:
  struct Options {
    // How many handlers and events a single run*() call may execute before it gives up and
    // reports a livelock; a deterministic guard, unlike a wall-clock watchdog.
    uint64_t max_steps_per_run = 1'000'000'000;
    // Keep the text of every trace() call (for finding the first divergence between runs).
    bool keep_trace = false;
    // Handlers one host runs before the others get a turn.
    size_t handlers_per_turn = 256;
    // BUGGIFY sites (buggify.h) fire while this simulation runs on the calling thread.
    bool buggify = false;
  };

  explicit SimEnv(uint64_t seed);
  SimEnv(uint64_t seed, Options options);
  ~SimEnv() override;

  SimEnv(const SimEnv&) = delete;
  SimEnv& operator=(const SimEnv&) = delete;

  uint64_t seed() const { return seed_; }

  // --- hosts ---------------------------------------------------------------------------
  // Adds a host; `name` is also its network address host part. Names are unique.
  SimHost& add_host(std::string name);
  // nullptr when there is no such host.
  SimHost* find_host(std::string_view name);
  SimHost& default_host() { return *hosts_.front(); }
  size_t host_count() const { return hosts_.size(); }
  SimHost& host(size_t id) { return *hosts_[id]; }

  // --- driving -------------------------------------------------------------------------
  // Runs until nothing is ready and no event is pending (quiescence). Returns steps taken.
  uint64_t run();
  // Runs until virtual time reaches now() + duration; events due later stay pending.
  uint64_t run_for(Duration duration);
  // Runs until `done()` holds (checked after every step) or virtual time passes `limit`
  // from now. Returns whether done() held.
  bool run_until(UniqueFunction<bool()> done, Duration limit);
  // Runs every ready handler without advancing time.
  uint64_t poll();
  // True if the last run*() stopped because it hit max_steps_per_run.
  bool hit_step_limit() const { return hit_step_limit_; }

  // --- host faults (see the top of this file) -------------------------------------------
  // Crashes the host's process. No-op on a failed host.
  void fail_node(SimHost& host);
  // Builds a new process from the host's factory (if it has one) on a failed host.
  void recover_node(SimHost& host);
  void pause_node(SimHost& host);
  void resume_node(SimHost& host);
  // Told about every crash, after the process object is gone and before the host's
  // handlers and events are destroyed (the network resets its connections here).
  using HostObserver = std::function<void(SimHost&)>;
  uint64_t add_crash_observer(HostObserver observer);
  void remove_crash_observer(uint64_t id);

  // --- events --------------------------------------------------------------------------
  using EventId = std::pair<TimePoint, uint64_t>;
  // Calls `fn` on the simulation thread at virtual time `at` (now, if `at` has passed), as
  // an event of `host`. Returns an id that cancel_event() accepts.
  EventId schedule_at(SimHost& host, TimePoint at, UniqueFunction<void()> fn);
  // An event of no host: the simulated network and kernels (deliveries, connection
  // requests). Pausing or failing a host neither delays nor drops it.
  EventId schedule_at(TimePoint at, UniqueFunction<void()> fn);
  // Removes a pending event and returns its function (empty if it already fired).
  UniqueFunction<void()> cancel_event(EventId id);
  size_t pending_events() const { return events_.size(); }

  // --- BUGGIFY (buggify.h) -------------------------------------------------------------
  // Whether the site at `site` ("file:line") fires now; false unless Options::buggify.
  bool buggify(const std::string& site);
  // Turns the sites off (or back on) for the rest of the run: a scenario's quiet period
  // checks liveness without them, as FoundationDB's does. No effect without Options::buggify.
  void set_buggify(bool on) { buggify_on_ = on && options_.buggify; }

  // --- determinism ---------------------------------------------------------------------
  Random& random() { return random_; }
  void trace(const SimHost& host, std::string_view event);
  uint64_t trace_hash() const { return trace_hash_; }
  const std::vector<std::string>& trace_lines() const { return trace_lines_; }

  // --- Env (the default host) ----------------------------------------------------------
  size_t executor_count() const override { return 1; }
  asio::any_io_executor executor(size_t) override { return default_host().pick_executor(); }
  asio::any_io_executor pick_executor() override { return default_host().pick_executor(); }
  asio::any_io_executor blocking_executor() override { return default_host().pick_executor(); }
  bool in_env_thread() const override { return true; }
  bool is_simulated() const override { return true; }
  size_t current_executor_index() const override { return 0; }
  TimePoint now() const override { return now_; }
  uint64_t random_u64() override { return random_.next_u64(); }
  Disk& disk() override { return default_host().disk(); }

 protected:
  void initiate_wait(TimePoint deadline, asio::any_io_executor executor,
                     WaitHandler handler) override;

 private:
  friend class SimHost;
  static constexpr size_t kNoHost = static_cast<size_t>(-1);
  struct Event {
    size_t host_id;  // kNoHost: a network event
    UniqueFunction<void()> fn;
  };

  // One step: a round of ready handlers, or else the earliest events. False when idle.
  bool step(TimePoint limit, uint64_t& steps);
  // Fires every event due at the earliest pending time (<= limit). False if none is.
  bool fire_next_events(TimePoint limit, uint64_t& steps);
  SimHost& default_host() const { return *hosts_.front(); }
  // Removes and returns every pending (and parked) event of `host`.
  std::vector<Event> take_events(const SimHost& host);

  uint64_t seed_;
  Options options_;
  Random random_;
  TimePoint now_{};
  uint64_t next_event_seq_ = 0;
  std::map<EventId, Event> events_;
  // Events of paused hosts that came due, per host id, in order; rescheduled on resume.
  std::map<size_t, std::vector<Event>> parked_events_;
  std::vector<std::unique_ptr<SimHost>> hosts_;
  std::map<uint64_t, HostObserver> crash_observers_;
  uint64_t next_observer_id_ = 1;
  bool hit_step_limit_ = false;
  uint64_t trace_hash_;
  std::vector<std::string> trace_lines_;
  // BUGGIFY's own generator (so turning it on leaves the network's draws alone) and each
  // reached site's activation.
  Random buggify_random_;
  std::map<std::string, bool, std::less<>> buggify_sites_;
  bool buggify_on_ = false;
};

}  // namespace meshrpc::runtime
