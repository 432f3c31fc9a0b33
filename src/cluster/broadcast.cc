#include "meshrpc/cluster/broadcast.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/dispatch.hpp>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "meshrpc/base/logging.h"
#include "meshrpc/core/server_context.h"

namespace meshrpc::cluster {

// --- Quorum and QuorumTracker ---------------------------------------------------------------

Quorum Quorum::at_least(size_t ok_results) {
  if (ok_results == 0) {
    throw std::invalid_argument("Quorum::at_least(0): a broadcast must wait for at least 1 OK");
  }
  return Quorum(Kind::kAtLeast, ok_results);
}

std::optional<size_t> Quorum::required_ok(size_t targets) const {
  switch (kind_) {
    case Kind::kAll:
      return std::nullopt;
    case Kind::kMajority:
      return targets / 2 + 1;
    case Kind::kAtLeast:
      return count_;
  }
  return std::nullopt;
}

std::string Quorum::to_string() const {
  switch (kind_) {
    case Kind::kAll:
      return "all";
    case Kind::kMajority:
      return "majority";
    case Kind::kAtLeast:
      return "at least " + std::to_string(count_) + " OK";
  }
  return "unknown";
}

QuorumTracker::QuorumTracker(Quorum quorum, size_t targets)
    : targets_(targets), required_ok_(quorum.required_ok(targets)) {
  // Nothing to wait for: all() and majority() of no targets are done; at_least(k) is not.
  if (targets == 0 && quorum.kind() != Quorum::Kind::kAtLeast) required_ok_.reset();
  decision_ = evaluate();
}

QuorumTracker::Decision QuorumTracker::record(bool ok) {
  if (ok) {
    ++ok_;
  } else {
    ++failed_;
  }
  if (decision_ == Decision::kPending) decision_ = evaluate();
  return decision_;
}

QuorumTracker::Decision QuorumTracker::evaluate() const {
  if (!required_ok_) return finished() >= targets_ ? Decision::kAllDone : Decision::kPending;
  if (ok_ >= *required_ok_) return Decision::kReached;
  const size_t outstanding = targets_ - std::min(targets_, finished());
  if (ok_ + outstanding < *required_ok_) return Decision::kUnreachable;
  return Decision::kPending;
}

std::string_view decision_name(QuorumTracker::Decision decision) {
  switch (decision) {
    case QuorumTracker::Decision::kPending:
      return "pending";
    case QuorumTracker::Decision::kReached:
      return "reached";
    case QuorumTracker::Decision::kUnreachable:
      return "unreachable";
    case QuorumTracker::Decision::kAllDone:
      return "all done";
  }
  return "unknown";
}

namespace detail {

struct BroadcastCounters {
  std::atomic<uint64_t> next_id{1};
  std::atomic<uint64_t> broadcasts{0}, targets{0}, started{0}, ok{0}, failed{0}, cancelled{0},
      not_started{0}, detached{0}, detached_finished{0}, quorum_reached{0}, quorum_unreachable{0},
      caller_cancelled{0}, peak_in_flight{0};

  // Calls left in the background and who waits for them to end (Broadcaster::async_drain).
  // Shared by broadcasts on every executor, so under a mutex, taken twice per detached call.
  struct DrainWaiter {
    asio::any_io_executor executor;
    std::optional<DrainHandler> handler;
  };
  std::mutex background_mutex;
  uint64_t background = 0;
  std::vector<std::unique_ptr<DrainWaiter>> drain_waiters;

  void background_started() {
    std::lock_guard lock(background_mutex);
    ++background;
  }
  void background_ended() {
    std::vector<std::unique_ptr<DrainWaiter>> ready;
    {
      std::lock_guard lock(background_mutex);
      if (--background == 0) ready.swap(drain_waiters);
    }
    for (auto& waiter : ready) complete_drain(std::move(waiter));
  }
  static void complete_drain(std::unique_ptr<DrainWaiter> waiter) {
    auto executor = waiter->executor;
    asio::dispatch(executor, [waiter = std::move(waiter)]() mutable {
      DrainHandler handler(std::move(*waiter->handler));
      waiter->handler.reset();
      std::move(handler)();
    });
  }

  static void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  void observe_in_flight(uint64_t in_flight) {
    uint64_t peak = peak_in_flight.load(std::memory_order_relaxed);
    while (in_flight > peak &&
           !peak_in_flight.compare_exchange_weak(peak, in_flight, std::memory_order_relaxed)) {
    }
  }
};

RequestSource share_request(Buffer request) {
  // Copies of a Buffer share its slices: every target's call views the same bytes.
  return [request = std::move(request)](size_t) -> Result<Buffer> { return request; };
}

RequestSource requests_per_target(std::vector<Buffer> requests) {
  // Moved out when the target starts: the broadcast then no longer holds it.
  return [requests = std::move(requests)](size_t i) mutable -> Result<Buffer> {
    return std::move(requests[i]);
  };
}

// One broadcast (or stream): which targets started, what came back, what is outstanding, and
// when it is decided. Every member below the constructor's is touched on executor_ only,
// except where a comment says otherwise.
class BroadcastRun : public std::enable_shared_from_this<BroadcastRun> {
 public:
  enum class Mode : uint8_t { kCollect, kStream };

  BroadcastRun(Client& client, std::shared_ptr<BroadcastCounters> counters, Mode mode,
               std::vector<transport::Address> targets, std::string method, RequestSource requests,
               BroadcastOptions options)
      : client_(client),
        counters_(std::move(counters)),
        id_(counters_->next_id.fetch_add(1, std::memory_order_relaxed)),
        mode_(mode),
        executor_(client.default_executor()),
        size_(targets.size()),
        method_(std::move(method)),
        requests_(std::move(requests)),
        listen_to_caller_(options.call.inherit_cancellation),
        call_options_(per_target_options(std::move(options.call))),
        max_in_flight_(options.max_in_flight),
        quorum_(options.wait_for),
        stragglers_(options.stragglers),
        tracker_(options.wait_for, targets.size()) {
    results_.resize(size_);
    for (size_t i = 0; i < size_; ++i) results_[i].target = std::move(targets[i]);
  }

  size_t size() const { return size_; }
  const asio::any_io_executor& executor() const { return executor_; }

  // In the initiating function, on the caller's thread.
  void start_collect(asio::any_io_executor completion_executor, BroadcastHandler handler) {
    handler_executor_ = std::move(completion_executor);
    if (listen_to_caller_) {
      caller_slot_ = asio::get_associated_cancellation_slot(handler);
      listen(caller_slot_, "broadcast cancelled by the caller");
    }
    handler_.emplace(std::move(handler));
    asio::post(executor_, [self = shared_from_this()] { self->begin(); });
  }

  void start_stream() {
    asio::post(executor_, [self = shared_from_this()] { self->begin(); });
  }

  // On the caller's thread.
  void next(asio::any_io_executor completion_executor, NextHandler handler) {
    auto waiter = std::make_unique<Waiter>();
    waiter->executor = std::move(completion_executor);
    waiter->slot = asio::get_associated_cancellation_slot(handler);
    listen(waiter->slot, "broadcast stream cancelled: async_next was cancelled");
    waiter->handler.emplace(std::move(handler));
    asio::post(executor_, [self = shared_from_this(), waiter = std::move(waiter)]() mutable {
      self->waiters_.push_back(std::move(waiter));
      self->deliver();
      self->pump();
    });
  }

  // From any thread.
  void request_cancel(std::string reason) {
    asio::post(executor_, [self = shared_from_this(), reason = std::move(reason)]() mutable {
      self->cancel_now(std::move(reason));
    });
  }

 private:
  // How the broadcast was decided.
  enum class Ending : uint8_t { kNone, kAllDone, kReached, kUnreachable, kCancelled, kInvalid };

  // A call outstanding, with the signal that cancels it. At most max_in_flight_ of these
  // exist; a finished call's slot is reused by the next target.
  struct CallSlot {
    asio::cancellation_signal signal;
    size_t target = 0;
    bool busy = false;
    bool cancel_requested = false;
    bool detached = false;
  };

  // An async_next waiting for a result.
  struct Waiter {
    asio::any_io_executor executor;
    asio::cancellation_slot slot;
    std::optional<NextHandler> handler;
  };

  // Each target's call gets the broadcast's options, with the parent (valid only now) read
  // into them, and the broadcast's own cancellation slot, which it must listen to.
  static CallOptions per_target_options(CallOptions options) {
    if (const core::ServerContext* parent = options.parent) {
      options.deadline = std::min(options.deadline, parent->deadline());
      // The trace entries and a traceparent naming the parent's span (server_context.h).
      for (auto& entry : parent->propagated_metadata()) {
        if (core::find_metadata(options.metadata, entry.first) == nullptr) {
          options.metadata.push_back(std::move(entry));
        }
      }
      options.parent = nullptr;
    }
    options.inherit_cancellation = true;
    return options;
  }

  // Installs, in a caller's slot, a handler that cancels this broadcast. Emitted on the
  // caller's executor; the broadcast lives on executor_, so it posts over. Weak: the slot
  // belongs to the caller's handler, which the broadcast owns until it completes.
  void listen(asio::cancellation_slot& slot, std::string reason) {
    if (!slot.is_connected()) return;
    slot.assign([weak = weak_from_this(), executor = executor_,
                 reason = std::move(reason)](asio::cancellation_type type) {
      if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)) == asio::cancellation_type::none) {
        return;
      }
      asio::post(executor, [weak, reason] {
        if (auto self = weak.lock()) self->cancel_now(reason);
      });
    });
  }

  void begin() {
    begun_ = true;
    BroadcastCounters::add(counters_->broadcasts);
    BroadcastCounters::add(counters_->targets, size_);
    MESHRPC_LOG_DEBUG("broadcast #{} {}: {} targets, max_in_flight {}, wait for {}", id_, method_,
                      size_, max_in_flight_, quorum_.to_string());
    if (max_in_flight_ == 0) return reject_all();
    if (tracker_.decision() != QuorumTracker::Decision::kPending) {
      decide(ending_for(tracker_.decision()));
    } else if (pending_cancel_) {
      cancel_now(std::move(*pending_cancel_));
    }
    pump();
  }

  void reject_all() {
    ending_ = Ending::kInvalid;
    reason_ = "max_in_flight is 0";
    for (; next_ < size_; ++next_) {
      results_[next_].status =
          invalid_argument_error("broadcast not started: BroadcastOptions::max_in_flight is 0");
      results_[next_].not_processed = true;
      BroadcastCounters::add(counters_->failed);
      finished_one(next_);
    }
    maybe_complete();
  }

  // Starts targets in order while the window allows: calls outstanding plus results waiting
  // in a stream stay within max_in_flight_.
  void pump() {
    if (pumping_) return;  // a target that fails at once re-enters through settle()
    pumping_ = true;
    while (ending_ == Ending::kNone && next_ < size_ &&
           in_flight_ + ready_.size() < max_in_flight_) {
      start_target(next_++);
    }
    pumping_ = false;
    maybe_complete();
  }

  void start_target(size_t i) {
    TargetResult& result = results_[i];
    Result<Buffer> request = requests_(i);
    if (!request.ok()) {
      result.status = std::move(request).status();
      result.not_processed = true;
      BroadcastCounters::add(counters_->failed);
      MESHRPC_LOG_DEBUG("broadcast #{} target {} ({}) not started: {}", id_, i,
                        result.target.to_string(), result.status.to_string());
      return settle(i, false);
    }
    const size_t s = acquire_slot(i);
    result.started = true;
    ++started_;
    ++in_flight_;
    BroadcastCounters::add(counters_->started);
    counters_->observe_in_flight(in_flight_);
    client_.start_call(
        result.target, method_, std::move(*request), call_options_, executor_,
        Client::CallHandler(asio::bind_cancellation_slot(
            slots_[s]->signal.slot(),
            asio::bind_executor(executor_, [self = shared_from_this(), i, s](core::CallResult r) {
              self->on_call_done(i, s, std::move(r));
            }))));
  }

  void on_call_done(size_t i, size_t s, core::CallResult call) {
    const bool detached = slots_[s]->detached;
    const bool cancel_requested = slots_[s]->cancel_requested;
    release_slot(s);
    if (detached) {
      --detached_outstanding_;
      BroadcastCounters::add(counters_->detached_finished);
      counters_->background_ended();
      MESHRPC_LOG_DEBUG("broadcast #{} target {} finished in the background: {} (discarded)", id_,
                        i, call.status.to_string());
      return;
    }
    --in_flight_;
    const bool ok = call.ok();
    TargetResult& result = results_[i];
    result.not_processed = call.not_processed;
    result.trailing_metadata = std::move(call.trailing_metadata);
    if (ok) {
      result.status = Status();
      result.reply = compact(std::move(call.response));
      BroadcastCounters::add(counters_->ok);
    } else if (cancel_requested && call.status.code() == StatusCode::kCancelled) {
      result.status = cancelled_error("cancelled: " + reason_);
      BroadcastCounters::add(counters_->cancelled);
    } else {
      result.status = std::move(call.status);
      BroadcastCounters::add(counters_->failed);
      MESHRPC_LOG_DEBUG("broadcast #{} target {} ({}) failed: {}", id_, i,
                        result.target.to_string(), result.status.to_string());
    }
    settle(i, ok);
    pump();
  }

  // A small reply is a slice of its connection's read block (Block::kDefaultBytes), which
  // it would keep alive for as long as the result lives: 1,000 one-line replies would pin
  // 16 MiB until the broadcast completes. Replies up to a quarter of a block (pinning at
  // least 4 times their size) are copied instead, packed one after another into blocks of
  // this broadcast's own, so N small results cost about N times their size.
  Buffer compact(Buffer reply) {
    if (reply.empty() || reply.size() > kCompactReplyBytes) return reply;
    for (const Slice& slice : reply.slices()) reply_arena_.append_copy(slice.view());
    return reply_arena_.cut_front(reply_arena_.size());
  }
  static constexpr size_t kCompactReplyBytes = Block::kDefaultBytes / 4;

  // Target i has its result: count it toward the quorum (until decided) and hand it on.
  void settle(size_t i, bool ok) {
    QuorumTracker::Decision decision = QuorumTracker::Decision::kPending;
    if (ending_ == Ending::kNone) decision = tracker_.record(ok);
    finished_one(i);
    if (decision != QuorumTracker::Decision::kPending) decide(ending_for(decision));
  }

  static Ending ending_for(QuorumTracker::Decision decision) {
    switch (decision) {
      case QuorumTracker::Decision::kReached:
        return Ending::kReached;
      case QuorumTracker::Decision::kUnreachable:
        return Ending::kUnreachable;
      case QuorumTracker::Decision::kAllDone:
      case QuorumTracker::Decision::kPending:
        break;
    }
    return Ending::kAllDone;
  }

  std::string describe_decision(Ending ending) const {
    const std::string counts = std::to_string(tracker_.ok()) + " OK, " +
                               std::to_string(tracker_.failed()) + " failed of " +
                               std::to_string(size_) + " targets";
    switch (ending) {
      case Ending::kReached:
        return "quorum reached (" + quorum_.to_string() + ": " + counts + ")";
      case Ending::kUnreachable:
        return "quorum unreachable (" + quorum_.to_string() + ": " + counts + ")";
      case Ending::kAllDone:
        return "every target answered (" + counts + ")";
      case Ending::kCancelled:
      case Ending::kInvalid:
      case Ending::kNone:
        break;
    }
    return reason_;
  }

  void cancel_now(std::string reason) {
    if (!begun_) {
      pending_cancel_ = std::move(reason);
      return;
    }
    if (ending_ != Ending::kNone) return;  // decided already: nothing left to cut short
    reason_ = std::move(reason);
    decide(Ending::kCancelled);
    pump();
  }

  // The broadcast is decided: skip the targets not started and cut the stragglers short.
  void decide(Ending ending) {
    if (ending_ != Ending::kNone) return;
    ending_ = ending;
    reason_ = describe_decision(ending);
    switch (ending) {
      case Ending::kReached:
        BroadcastCounters::add(counters_->quorum_reached);
        break;
      case Ending::kUnreachable:
        BroadcastCounters::add(counters_->quorum_unreachable);
        break;
      case Ending::kCancelled:
        BroadcastCounters::add(counters_->caller_cancelled);
        break;
      default:
        break;
    }
    const bool cancel = ending == Ending::kCancelled || stragglers_ == Stragglers::kCancel;
    MESHRPC_LOG_DEBUG("broadcast #{} {}: {}; {} outstanding {}, {} not started", id_, method_,
                      reason_, in_flight_, cancel ? "cancelled" : "left in the background",
                      size_ - next_);
    for (; next_ < size_; ++next_) {
      results_[next_].status = cancelled_error("not started: " + reason_);
      results_[next_].not_processed = true;
      BroadcastCounters::add(counters_->not_started);
      finished_one(next_);
    }
    for (const std::unique_ptr<CallSlot>& each : slots_) {
      CallSlot& slot = *each;
      if (!slot.busy || slot.detached || slot.cancel_requested) continue;
      if (cancel) {
        // The client attached its handler to the slot when the call started, and completes
        // the call by posting to executor_, so this neither is lost nor re-enters.
        slot.cancel_requested = true;
        slot.signal.emit(asio::cancellation_type::terminal);
      } else {
        detach(slot);
      }
    }
  }

  void detach(CallSlot& slot) {
    slot.detached = true;
    --in_flight_;
    ++detached_outstanding_;
    BroadcastCounters::add(counters_->detached);
    counters_->background_started();
    TargetResult& result = results_[slot.target];
    result.status = cancelled_error("not awaited: " + reason_ +
                                    "; left to finish in the background, its result discarded");
    finished_one(slot.target);
  }

  // Stream: target i's result can be taken.
  void finished_one(size_t i) {
    if (mode_ != Mode::kStream) return;
    ready_.push_back(i);
    deliver();
  }

  // Stream: hands ready results (or the end) to waiting async_next calls.
  void deliver() {
    while (!waiters_.empty()) {
      std::optional<IndexedResult> item;
      if (!ready_.empty()) {
        const size_t i = ready_.front();
        ready_.pop_front();
        item.emplace(IndexedResult{i, std::move(results_[i])});
        ++yielded_;
      } else if (yielded_ < size_) {
        return;
      }
      std::unique_ptr<Waiter> waiter = std::move(waiters_.front());
      waiters_.pop_front();
      auto executor = waiter->executor;
      asio::dispatch(executor, [waiter = std::move(waiter), item = std::move(item)]() mutable {
        // The slot belongs to the waiter's executor, where this runs.
        if (waiter->slot.is_connected()) waiter->slot.clear();
        NextHandler handler(std::move(*waiter->handler));
        waiter->handler.reset();
        std::move(handler)(std::move(item));
      });
    }
  }

  void maybe_complete() {
    if (ending_ == Ending::kNone || in_flight_ > 0 || completed_) return;
    completed_ = true;
    MESHRPC_LOG_DEBUG(
        "broadcast #{} {} complete: {} OK, {} failed, {} started, {} left in the background", id_,
        method_, tracker_.ok(), tracker_.failed(), started_, detached_outstanding_);
    if (mode_ == Mode::kStream) return;
    std::vector<TargetResult> results = std::move(results_);
    asio::dispatch(handler_executor_,
                   [self = shared_from_this(), results = std::move(results)]() mutable {
                     // The slot belongs to the handler's executor, where this runs.
                     if (self->caller_slot_.is_connected()) self->caller_slot_.clear();
                     BroadcastHandler handler(std::move(*self->handler_));
                     self->handler_.reset();
                     std::move(handler)(std::move(results));
                   });
  }

  size_t acquire_slot(size_t target) {
    size_t s;
    if (!free_slots_.empty()) {
      s = free_slots_.back();
      free_slots_.pop_back();
    } else {
      s = slots_.size();
      slots_.push_back(std::make_unique<CallSlot>());
    }
    CallSlot& slot = *slots_[s];
    slot.target = target;
    slot.busy = true;
    slot.cancel_requested = false;
    slot.detached = false;
    return s;
  }

  void release_slot(size_t s) {
    CallSlot& slot = *slots_[s];
    // The client clears its handler when the call completes; clearing again is harmless
    // and frees what the handler held before the slot is reused.
    slot.signal.slot().clear();
    slot.busy = false;
    free_slots_.push_back(s);
  }

  // Set at construction, then read only.
  Client& client_;
  const std::shared_ptr<BroadcastCounters> counters_;
  const uint64_t id_;
  const Mode mode_;
  const asio::any_io_executor executor_;
  const size_t size_;
  const std::string method_;
  RequestSource requests_;
  const bool listen_to_caller_;
  const CallOptions call_options_;
  const size_t max_in_flight_;
  const Quorum quorum_;
  const Stragglers stragglers_;

  // Collect mode: the caller's handler, on the caller's thread until begin(), then on
  // handler_executor_ when it completes.
  std::optional<BroadcastHandler> handler_;
  asio::any_io_executor handler_executor_;
  asio::cancellation_slot caller_slot_;

  // On executor_.
  QuorumTracker tracker_;
  std::vector<TargetResult> results_;
  Buffer reply_arena_;  // the unused tail of the block small replies are packed into
  std::vector<std::unique_ptr<CallSlot>> slots_;
  std::vector<size_t> free_slots_;
  size_t next_ = 0;       // targets [0, next_) have started (or been skipped)
  size_t started_ = 0;    // calls made
  size_t in_flight_ = 0;  // calls outstanding, not counting detached ones
  size_t detached_outstanding_ = 0;
  bool begun_ = false;
  bool pumping_ = false;
  bool completed_ = false;
  Ending ending_ = Ending::kNone;
  std::string reason_;
  std::optional<std::string> pending_cancel_;
  // Stream mode: results not yet taken, in finishing order, and async_next calls waiting.
  std::deque<size_t> ready_;
  std::deque<std::unique_ptr<Waiter>> waiters_;
  size_t yielded_ = 0;
};

void stream_next(const std::shared_ptr<BroadcastRun>& run, asio::any_io_executor executor,
                 NextHandler handler) {
  run->next(std::move(executor), std::move(handler));
}

asio::any_io_executor stream_executor(const std::shared_ptr<BroadcastRun>& run) {
  return run->executor();
}

void stream_cancel(const std::shared_ptr<BroadcastRun>& run) {
  run->request_cancel("broadcast stream cancelled");
}

size_t stream_size(const std::shared_ptr<BroadcastRun>& run) { return run->size(); }

}  // namespace detail

// --- Broadcaster ----------------------------------------------------------------------------

namespace {

BroadcastStats stats_of(const detail::BroadcastCounters& c) {
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  BroadcastStats stats;
  stats.broadcasts = get(c.broadcasts);
  stats.targets = get(c.targets);
  stats.started = get(c.started);
  stats.ok = get(c.ok);
  stats.failed = get(c.failed);
  stats.cancelled = get(c.cancelled);
  stats.not_started = get(c.not_started);
  stats.detached = get(c.detached);
  stats.detached_finished = get(c.detached_finished);
  stats.quorum_reached = get(c.quorum_reached);
  stats.quorum_unreachable = get(c.quorum_unreachable);
  stats.caller_cancelled = get(c.caller_cancelled);
  stats.peak_in_flight = get(c.peak_in_flight);
  return stats;
}

void write_broadcast_metrics(const BroadcastStats& s, MetricWriter& out) {
  out.counter("meshrpc_broadcast_broadcasts_total", "Broadcasts and broadcast streams started.", {},
              s.broadcasts);
  out.counter("meshrpc_broadcast_targets_total", "Targets of the broadcasts started.", {},
              s.targets);
  out.counter("meshrpc_broadcast_calls_total", "Calls broadcasts made (targets started).", {},
              s.started);
  constexpr std::string_view kResultsHelp = "Targets of broadcasts by how they ended.";
  const std::pair<std::string_view, uint64_t> results[] = {{"ok", s.ok},
                                                           {"failed", s.failed},
                                                           {"cancelled", s.cancelled},
                                                           {"not_started", s.not_started},
                                                           {"detached", s.detached}};
  for (const auto& [result, count] : results) {
    out.counter("meshrpc_broadcast_target_results_total", kResultsHelp,
                {{"result", std::string(result)}}, count);
  }
  out.counter("meshrpc_broadcast_detached_finished_total",
              "Calls left to finish in the background that have since ended.", {},
              s.detached_finished);
  constexpr std::string_view kQuorumHelp = "Broadcasts decided by their quorum, by outcome.";
  out.counter("meshrpc_broadcast_quorum_total", kQuorumHelp, {{"outcome", "reached"}},
              s.quorum_reached);
  out.counter("meshrpc_broadcast_quorum_total", kQuorumHelp, {{"outcome", "unreachable"}},
              s.quorum_unreachable);
  out.counter("meshrpc_broadcast_caller_cancelled_total",
              "Broadcasts and streams cancelled by their caller.", {}, s.caller_cancelled);
  out.gauge("meshrpc_broadcast_peak_in_flight",
            "Most calls one broadcast has had outstanding at once.", {},
            static_cast<double>(s.peak_in_flight));
}

}  // namespace

Broadcaster::Broadcaster(Client& client)
    : client_(client), counters_(std::make_shared<detail::BroadcastCounters>()) {
  if (MetricRegistry* metrics = client_.options().metrics) {
    metrics_registration_ = metrics->add([counters = counters_](MetricWriter& out) {
      write_broadcast_metrics(stats_of(*counters), out);
    });
  }
}

void Broadcaster::start(std::vector<transport::Address> targets, std::string method,
                        detail::RequestSource source, BroadcastOptions options,
                        asio::any_io_executor completion_executor,
                        detail::BroadcastHandler handler) {
  auto run = std::make_shared<detail::BroadcastRun>(
      client_, counters_, detail::BroadcastRun::Mode::kCollect, std::move(targets),
      std::move(method), std::move(source), std::move(options));
  run->start_collect(std::move(completion_executor), std::move(handler));
}

BroadcastStream Broadcaster::start_stream(std::vector<transport::Address> targets,
                                          std::string method, detail::RequestSource source,
                                          BroadcastOptions options) {
  auto run = std::make_shared<detail::BroadcastRun>(
      client_, counters_, detail::BroadcastRun::Mode::kStream, std::move(targets),
      std::move(method), std::move(source), std::move(options));
  run->start_stream();
  return BroadcastStream(std::move(run));
}

BroadcastStream Broadcaster::stream(std::vector<transport::Address> targets, std::string method,
                                    Buffer request, BroadcastOptions options) {
  return start_stream(std::move(targets), std::move(method),
                      detail::share_request(std::move(request)), std::move(options));
}

BroadcastStream Broadcaster::stream(std::vector<TargetRequest<>> requests, std::string method,
                                    BroadcastOptions options) {
  std::vector<transport::Address> targets = detail::take_targets(requests);
  std::vector<Buffer> bytes;
  bytes.reserve(requests.size());
  for (auto& entry : requests) bytes.push_back(std::move(entry.request));
  return start_stream(std::move(targets), std::move(method),
                      detail::requests_per_target(std::move(bytes)), std::move(options));
}

Result<std::vector<TargetResult>> Broadcaster::broadcast(std::vector<transport::Address> targets,
                                                         std::string method, Buffer request,
                                                         BroadcastOptions options) {
  if (Status usable = check_blocking_allowed(); !usable.ok()) return usable;
  std::promise<std::vector<TargetResult>> promise;
  std::future<std::vector<TargetResult>> future = promise.get_future();
  // A plain callback: it runs on the broadcast's executor, not on a hidden thread pool.
  async_broadcast(
      std::move(targets), std::move(method), std::move(request), std::move(options),
      [&promise](std::vector<TargetResult> results) { promise.set_value(std::move(results)); });
  return future.get();
}

void Broadcaster::start_drain(asio::any_io_executor completion_executor,
                              detail::DrainHandler handler) {
  auto waiter = std::make_unique<detail::BroadcastCounters::DrainWaiter>();
  waiter->executor = std::move(completion_executor);
  waiter->handler.emplace(std::move(handler));
  {
    std::lock_guard lock(counters_->background_mutex);
    if (counters_->background > 0) {
      counters_->drain_waiters.push_back(std::move(waiter));
      return;
    }
  }
  // Nothing in the background: complete, but not inside the initiating function.
  auto executor = waiter->executor;
  asio::post(executor, [waiter = std::move(waiter)]() mutable {
    detail::DrainHandler handler(std::move(*waiter->handler));
    waiter->handler.reset();
    std::move(handler)();
  });
}

Status Broadcaster::check_blocking_allowed() const {
  runtime::Env& env = client_.env();
  if (env.is_simulated()) {
    return failed_precondition_error(
        "blocking broadcast under simulation would stop virtual time; use async_broadcast");
  }
  if (env.in_env_thread()) {
    return failed_precondition_error(
        "blocking broadcast on one of the env's threads would wait on itself; use "
        "async_broadcast");
  }
  return Status();
}

BroadcastStats Broadcaster::stats() const { return stats_of(*counters_); }

}  // namespace meshrpc::cluster
