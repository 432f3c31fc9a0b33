// Broadcast: one call to each of many endpoints through a cluster::Client, with bounded
// concurrency and a quorum, ending in one result per target, in target order.
//
//   cluster::Broadcaster broadcaster(client);
//   std::vector<cluster::TargetResult> results = co_await broadcaster.async_broadcast(
//       replicas, "kv.Store.Put", request, {.wait_for = cluster::Quorum::majority()},
//       asio::use_awaitable);
//   for (const cluster::TargetResult& r : results) {
//     if (!r.ok()) MESHRPC_LOG_WARN("{} failed: {}", r.target.to_string(), r.status.to_string());
//   }
//
// Seed 000's BroadcastToRPCServers returned a filtered list of errors (which server failed was
// lost) and spawned one goroutine per server. Here:
//   - results: results[i] is targets[i]'s, always; targets never called say so (CANCELLED,
//     not_processed, started = false).
//   - concurrency: at most BroadcastOptions::max_in_flight calls are outstanding at the
//     client; targets start in order, the next one when a call ends. Nothing is spawned per
//     target: a broadcast is one state object and its outstanding calls.
//   - quorum: wait_for says when the broadcast is decided (Quorum). Once it is, targets not
//     yet started are not started, and the calls still outstanding (the stragglers) are
//     cancelled (their servers get CANCEL) or, with Stragglers::kFinishInBackground, left to
//     finish with their results discarded.
//   - each target's call is an ordinary Client call with BroadcastOptions::call, so the
//     client's retries, retry budget, hedging and circuit breakers apply per target.
//   - cancelling the broadcast (its handler's cancellation slot, e.g. the awaiting
//     coroutine's) cancels every outstanding call; the broadcast still completes with one
//     result per target.
//   - memory: one request for all targets is shared by every call (copies of a Buffer share
//     its bytes), so N targets hold one copy; at most max_in_flight requests and replies are
//     in transit; a small reply is copied out of its connection's read block, so N results
//     do not pin N read blocks.
//
// Threading: any method from any thread. A broadcast's bookkeeping runs on one executor of
// the client's env (client.default_executor() when it starts: one thread, in order, by the
// Env contract), so its state needs no locks; each call's completion is bound to it. The
// completion handler runs on its associated executor (default: one of the client's env).
// Lifetime: the client outlives the Broadcaster and every broadcast until it completes;
// stragglers left in the background keep the broadcast's state alive themselves (shared_ptr)
// and only record that they finished, so they may outlive the broadcaster
// (Broadcaster::async_drain waits for them).
#pragma once

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/base/unique_function.h"
#include "meshrpc/cluster/client.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/codec/method.h"
#include "meshrpc/core/call.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::cluster {

// When a broadcast is decided, counting OK results.
//   all()          every target has a result, whatever its status (seed 000's "wait for
//                  all"). Never cuts a straggler short: only the caller or a deadline does.
//   at_least(k)    k OK results. Decided as soon as k targets answered OK (reached) or so many
//                  failed that k OK can no longer happen (unreachable); either way the rest is
//                  cut short. at_least(targets.size()) is "all must succeed, stop at the first
//                  failure". A k above the number of targets is unreachable at once.
//   majority()     at_least(targets / 2 + 1): what a replicated write needs.
class Quorum {
 public:
  enum class Kind : uint8_t { kAll, kMajority, kAtLeast };

  static Quorum all() { return Quorum(Kind::kAll, 0); }
  static Quorum majority() { return Quorum(Kind::kMajority, 0); }
  // Throws std::invalid_argument for 0 (a broadcast that waits for nothing is a bug).
  static Quorum at_least(size_t ok_results);

  Kind kind() const { return kind_; }
  // The OK results that decide a broadcast to `targets` targets; nullopt for all().
  std::optional<size_t> required_ok(size_t targets) const;
  // "all", "majority", "at least 3 OK": for logs and messages.
  std::string to_string() const;

  friend bool operator==(const Quorum&, const Quorum&) = default;

 private:
  Quorum(Kind kind, size_t count) : kind_(kind), count_(count) {}
  Kind kind_;
  size_t count_;
};

// The pure core of a broadcast's decision: fed each target's outcome, says when it is
// decided. Plain state, no I/O, one thread.
class QuorumTracker {
 public:
  enum class Decision : uint8_t {
    kPending,      // wait for more results
    kReached,      // the quorum's OK results arrived
    kUnreachable,  // too many failed for the quorum to be reached
    kAllDone,      // Quorum::all(): every target has a result
  };

  QuorumTracker(Quorum quorum, size_t targets);

  // One more target finished, OK or not. Returns the decision after it; once decided the
  // decision stays (later results are still counted).
  Decision record(bool ok);
  Decision decision() const { return decision_; }

  size_t targets() const { return targets_; }
  size_t ok() const { return ok_; }
  size_t failed() const { return failed_; }
  size_t finished() const { return ok_ + failed_; }
  std::optional<size_t> required_ok() const { return required_ok_; }

 private:
  Decision evaluate() const;

  size_t targets_;
  std::optional<size_t> required_ok_;
  size_t ok_ = 0;
  size_t failed_ = 0;
  Decision decision_ = Decision::kPending;
};

std::string_view decision_name(QuorumTracker::Decision decision);

// What happens to calls still outstanding when a broadcast is decided.
enum class Stragglers : uint8_t {
  // Cancel them (CANCEL reaches their servers). The broadcast completes once they have
  // ended, which cancellation makes prompt: no call of a completed broadcast is running.
  kCancel,
  // Leave them running and complete at once; their results are discarded when they come
  // (a write that should still reach every replica, though only a majority was awaited).
  kFinishInBackground,
};

struct BroadcastOptions {
  // Every target's call: deadline, metadata, idempotency, retry policy. `timeout` counts from
  // each target's own start (targets queued behind max_in_flight start later); `deadline`
  // bounds the whole broadcast. `parent` is read when the broadcast starts (its deadline and
  // propagated metadata are copied), so it must outlive only that. `inherit_cancellation`
  // false: the caller's cancellation does not reach the broadcast.
  CallOptions call = {};
  // Calls outstanding at once. 64: enough to keep a fan-out to 1,000+ targets moving (with a
  // 1 ms round trip, 1,000 targets take ~16 round trips, ~16 ms) while bounding what the
  // broadcast can pin at once: 64 requests and replies in memory, 64 connects in progress
  // (a burst far below listen backlogs and file-descriptor limits), 64 server slots taken
  // across the fleet. 0 is an error: every target fails with INVALID_ARGUMENT, not started.
  size_t max_in_flight = 64;
  Quorum wait_for = Quorum::all();
  Stragglers stragglers = Stragglers::kCancel;
};

// One target's outcome.
struct TargetResult {
  transport::Address target;
  Status status;
  Buffer reply;                      // when status is OK
  core::Metadata trailing_metadata;  // from the server's trailers
  // The server provably did not run the handler: the call never left (the target was never
  // started, its request did not encode, its circuit was open) or the server refused it
  // before dispatch. Safe to send again, whatever the method.
  bool not_processed = false;
  // A call was made to the target (false: the broadcast was decided or cancelled before its
  // turn, or its request did not encode).
  bool started = false;

  bool ok() const { return status.ok(); }
};

// A result from a BroadcastStream: `index` is the target's position in the broadcast.
struct IndexedResult {
  size_t index = 0;
  TargetResult result;
};

// One target's typed outcome: the decoded reply when status is OK. A reply that does not
// decode is INTERNAL naming the field, as for a unicast call.
template <typename Reply>
struct TargetReply {
  transport::Address target;
  Status status;
  std::optional<Reply> reply;
  core::Metadata trailing_metadata;
  bool not_processed = false;
  bool started = false;

  bool ok() const { return status.ok(); }
};

// A target with its own request (a different request per target).
template <typename Request = Buffer>
struct TargetRequest {
  transport::Address target;
  Request request;
};

template <codec::Encodable Reply>
TargetReply<Reply> decode_target_result(TargetResult raw) {
  TargetReply<Reply> out;
  out.target = std::move(raw.target);
  out.status = std::move(raw.status);
  out.trailing_metadata = std::move(raw.trailing_metadata);
  out.not_processed = raw.not_processed;
  out.started = raw.started;
  if (out.status.ok()) {
    Result<Reply> reply = codec::decode<Reply>(raw.reply);
    if (reply.ok()) {
      out.reply.emplace(std::move(*reply));
    } else {
      out.status =
          internal_error("reply does not decode: " + std::string(reply.status().message()));
    }
  }
  return out;
}

// Counters over a Broadcaster's life; each a relaxed snapshot. Every target of a completed
// broadcast is counted once in ok, failed, cancelled, not_started or detached.
struct BroadcastStats {
  uint64_t broadcasts = 0;          // broadcasts and streams started
  uint64_t targets = 0;             // their targets
  uint64_t started = 0;             // calls made
  uint64_t ok = 0;                  // calls that ended OK
  uint64_t failed = 0;              // calls (or encodings) that failed on their own
  uint64_t cancelled = 0;           // outstanding calls the broadcast cancelled
  uint64_t not_started = 0;         // targets skipped: decided or cancelled before their turn
  uint64_t detached = 0;            // calls left to finish in the background
  uint64_t detached_finished = 0;   // of those, how many have since ended (result discarded)
  uint64_t quorum_reached = 0;      // broadcasts decided by their quorum's OK results
  uint64_t quorum_unreachable = 0;  // broadcasts decided because too many failed
  uint64_t caller_cancelled = 0;    // broadcasts and streams cancelled by their caller
  uint64_t peak_in_flight = 0;      // most calls one broadcast had outstanding at once
};

namespace detail {

class BroadcastRun;
struct BroadcastCounters;
using BroadcastHandler = asio::any_completion_handler<void(std::vector<TargetResult>)>;
using NextHandler = asio::any_completion_handler<void(std::optional<IndexedResult>)>;
using DrainHandler = asio::any_completion_handler<void()>;
// Target i's request bytes, asked for on the broadcast's executor when target i starts, once.
// An error fails that target without a call.
using RequestSource = UniqueFunction<Result<Buffer>(size_t index)>;

RequestSource share_request(Buffer request);
RequestSource requests_per_target(std::vector<Buffer> requests);
// The executor completions run on (the handler's associated executor, found on the concrete
// handler) travels beside the type-erased handler, as in Client::start_call.
void stream_next(const std::shared_ptr<BroadcastRun>& run, asio::any_io_executor executor,
                 NextHandler handler);
asio::any_io_executor stream_executor(const std::shared_ptr<BroadcastRun>& run);
void stream_cancel(const std::shared_ptr<BroadcastRun>& run);
size_t stream_size(const std::shared_ptr<BroadcastRun>& run);

template <typename Request>
std::vector<transport::Address> take_targets(std::vector<TargetRequest<Request>>& requests) {
  std::vector<transport::Address> targets;
  targets.reserve(requests.size());
  for (auto& entry : requests) targets.push_back(std::move(entry.target));
  return targets;
}

}  // namespace detail

// A broadcast whose results are taken one at a time, as they arrive (a pull API):
//
//   cluster::BroadcastStream stream = broadcaster.stream(targets, "kv.Store.Scan", request, {});
//   while (std::optional<cluster::IndexedResult> next =
//              co_await stream.async_next(asio::use_awaitable)) {
//     merge(next->index, std::move(next->result));
//   }
//
// Every target yields exactly one result (not-started and cancelled ones included), in the
// order they finish; after the last, async_next completes with nullopt. Backpressure: a
// result waits in the stream until taken, and a finished-but-untaken result holds its call's
// place, so calls outstanding plus results waiting never exceed max_in_flight; a slow reader
// slows the broadcast instead of piling up replies. The quorum applies as for
// async_broadcast: once decided, the rest come out at once as CANCELLED.
//
// Cancelling an async_next (its handler's slot) cancels the broadcast: that async_next then
// completes promptly with the next result (a CANCELLED one, if nothing else was ready).
// cancel() does the same without a pending async_next; destroying the stream cancels what
// is outstanding. One async_next at a time is the intended use; concurrent ones are served
// in the order they were made.
//
// Threading: async_next from any thread; completions on the handler's associated executor.
class BroadcastStream {
 public:
  BroadcastStream() = default;
  explicit BroadcastStream(std::shared_ptr<detail::BroadcastRun> run) : run_(std::move(run)) {}
  BroadcastStream(BroadcastStream&& other) noexcept = default;
  BroadcastStream& operator=(BroadcastStream&& other) noexcept {
    if (this != &other) {
      reset();
      run_ = std::move(other.run_);
    }
    return *this;
  }
  BroadcastStream(const BroadcastStream&) = delete;
  BroadcastStream& operator=(const BroadcastStream&) = delete;
  ~BroadcastStream() { reset(); }

  // Completion signature void(std::optional<IndexedResult>); nullopt once every target's
  // result has been taken (and at once on an empty, default-constructed stream).
  template <typename CompletionToken>
  auto async_next(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::optional<IndexedResult>)>(
        [run = run_](auto handler) {
          if (!run) {
            auto executor = asio::get_associated_executor(handler);
            asio::post(executor, [handler = std::move(handler)]() mutable {
              std::move(handler)(std::optional<IndexedResult>());
            });
            return;
          }
          auto executor = asio::get_associated_executor(handler, detail::stream_executor(run));
          detail::stream_next(run, std::move(executor), detail::NextHandler(std::move(handler)));
        },
        token);
  }

  // Cancels the outstanding calls and skips the targets not started; their results still
  // come out (CANCELLED).
  void cancel() {
    if (run_) detail::stream_cancel(run_);
  }
  // How many results the stream yields in all (its targets).
  size_t size() const { return run_ ? detail::stream_size(run_) : 0; }

 private:
  void reset() {
    if (run_) detail::stream_cancel(run_);
    run_.reset();
  }

  std::shared_ptr<detail::BroadcastRun> run_;
};

// Starts broadcasts through one Client and counts what they do. Cheap; one per client is
// plenty. Valid while the client lives. Its stats() are exposed as meshrpc_broadcast_* in the
// client's registry (ClientOptions::metrics; docs/metrics.md).
class Broadcaster {
 public:
  explicit Broadcaster(Client& client);
  Broadcaster(const Broadcaster&) = delete;
  Broadcaster& operator=(const Broadcaster&) = delete;

  // One request for every target (each call shares its bytes: N targets hold one copy).
  // Completion signature void(std::vector<TargetResult>), one per target, in target order.
  template <typename CompletionToken>
  auto async_broadcast(std::vector<transport::Address> targets, std::string method, Buffer request,
                       BroadcastOptions options, CompletionToken&& token) {
    return initiate_raw(std::move(targets), std::move(method),
                        detail::share_request(std::move(request)), std::move(options),
                        std::forward<CompletionToken>(token));
  }

  // A request per target: results[i] is requests[i].target's.
  template <typename CompletionToken>
  auto async_broadcast(std::vector<TargetRequest<>> requests, std::string method,
                       BroadcastOptions options, CompletionToken&& token) {
    std::vector<transport::Address> targets = detail::take_targets(requests);
    std::vector<Buffer> bytes;
    bytes.reserve(requests.size());
    for (auto& entry : requests) bytes.push_back(std::move(entry.request));
    return initiate_raw(std::move(targets), std::move(method),
                        detail::requests_per_target(std::move(bytes)), std::move(options),
                        std::forward<CompletionToken>(token));
  }

  // Typed, one request for all: completion signature void(std::vector<TargetReply<Reply>>).
  // The request is encoded once, now; if it does not encode, every target fails with the
  // encoder's status, not started. The method's idempotency applies unless options set one.
  template <codec::Encodable Request, codec::Encodable Reply, typename CompletionToken>
  auto async_broadcast(std::vector<transport::Address> targets,
                       const codec::Method<Request, Reply>& method, const Request& request,
                       BroadcastOptions options, CompletionToken&& token) {
    Result<Buffer> bytes = codec::encode(request);
    detail::RequestSource source = [bytes = std::move(bytes)](size_t) -> Result<Buffer> {
      if (!bytes.ok()) return bytes.status().with_context("request does not encode");
      return *bytes;  // a copy shares the bytes
    };
    return initiate_typed<Reply>(std::move(targets), method, std::move(source), std::move(options),
                                 std::forward<CompletionToken>(token));
  }

  // Typed, a request per target. Each is encoded when its target starts, and dropped then,
  // so requests not yet started are the caller's values, not also their encodings.
  template <codec::Encodable Request, codec::Encodable Reply, typename CompletionToken>
  auto async_broadcast(std::vector<TargetRequest<Request>> requests,
                       const codec::Method<Request, Reply>& method, BroadcastOptions options,
                       CompletionToken&& token) {
    std::vector<transport::Address> targets = detail::take_targets(requests);
    std::vector<Request> values;
    values.reserve(requests.size());
    for (auto& entry : requests) values.push_back(std::move(entry.request));
    detail::RequestSource source = [values =
                                        std::move(values)](size_t i) mutable -> Result<Buffer> {
      Result<Buffer> bytes = codec::encode(values[i]);
      values[i] = Request{};
      if (!bytes.ok()) return bytes.status().with_context("request does not encode");
      return bytes;
    };
    return initiate_typed<Reply>(std::move(targets), method, std::move(source), std::move(options),
                                 std::forward<CompletionToken>(token));
  }

  // Results one at a time as they arrive (see BroadcastStream). The calls start now.
  BroadcastStream stream(std::vector<transport::Address> targets, std::string method,
                         Buffer request, BroadcastOptions options = {});
  BroadcastStream stream(std::vector<TargetRequest<>> requests, std::string method,
                         BroadcastOptions options = {});

  // Blocking, for threads that are not the env's: FAILED_PRECONDITION on one of the env's
  // threads (it would wait on itself) or under simulation (virtual time would stop).
  Result<std::vector<TargetResult>> broadcast(std::vector<transport::Address> targets,
                                              std::string method, Buffer request,
                                              BroadcastOptions options = {});
  template <codec::Encodable Request, codec::Encodable Reply>
  Result<std::vector<TargetReply<Reply>>> broadcast(std::vector<transport::Address> targets,
                                                    const codec::Method<Request, Reply>& method,
                                                    const Request& request,
                                                    BroadcastOptions options = {}) {
    if (Status usable = check_blocking_allowed(); !usable.ok()) return usable;
    std::promise<std::vector<TargetReply<Reply>>> promise;
    std::future<std::vector<TargetReply<Reply>>> future = promise.get_future();
    // A plain callback: it runs on the broadcast's executor, not on a hidden thread pool.
    async_broadcast(std::move(targets), method, request, std::move(options),
                    [&promise](std::vector<TargetReply<Reply>> replies) {
                      promise.set_value(std::move(replies));
                    });
    return future.get();
  }

  // Completes, void(), once no call this broadcaster left running in the background
  // (Stragglers::kFinishInBackground) is outstanding; at once if none is. For an orderly
  // shutdown: drain, then destroy the client.
  template <typename CompletionToken>
  auto async_drain(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void()>(
        [this](auto handler) {
          auto executor = asio::get_associated_executor(handler, client_.default_executor());
          start_drain(std::move(executor), detail::DrainHandler(std::move(handler)));
        },
        token);
  }

  BroadcastStats stats() const;
  Client& client() { return client_; }

 private:
  template <typename CompletionToken>
  auto initiate_raw(std::vector<transport::Address> targets, std::string method,
                    detail::RequestSource source, BroadcastOptions options,
                    CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::vector<TargetResult>)>(
        [this](auto handler, std::vector<transport::Address> targets, std::string method,
               detail::RequestSource source, BroadcastOptions options) {
          auto executor = asio::get_associated_executor(handler, client_.default_executor());
          start(std::move(targets), std::move(method), std::move(source), std::move(options),
                std::move(executor), detail::BroadcastHandler(std::move(handler)));
        },
        token, std::move(targets), std::move(method), std::move(source), std::move(options));
  }

  template <typename Reply, typename Request, typename CompletionToken>
  auto initiate_typed(std::vector<transport::Address> targets,
                      const codec::Method<Request, Reply>& method, detail::RequestSource source,
                      BroadcastOptions options, CompletionToken&& token) {
    if (options.call.idempotency == core::Idempotency::kUnknown) {
      options.call.idempotency = method.idempotency;
    }
    return asio::async_initiate<CompletionToken, void(std::vector<TargetReply<Reply>>)>(
        [this](auto handler, std::vector<transport::Address> targets, std::string method,
               detail::RequestSource source, BroadcastOptions options) {
          auto executor = asio::get_associated_executor(handler, client_.default_executor());
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto decode_all = [handler = std::move(handler)](std::vector<TargetResult> raw) mutable {
            std::vector<TargetReply<Reply>> replies;
            replies.reserve(raw.size());
            for (TargetResult& result : raw) {
              replies.push_back(decode_target_result<Reply>(std::move(result)));
            }
            std::move(handler)(std::move(replies));
          };
          start(std::move(targets), std::move(method), std::move(source), std::move(options),
                executor,
                detail::BroadcastHandler(asio::bind_cancellation_slot(
                    slot, asio::bind_executor(executor, std::move(decode_all)))));
        },
        token, std::move(targets), std::string(method.name), std::move(source), std::move(options));
  }

  // `completion_executor` is the handler's associated executor (default: the client's).
  void start(std::vector<transport::Address> targets, std::string method,
             detail::RequestSource source, BroadcastOptions options,
             asio::any_io_executor completion_executor, detail::BroadcastHandler handler);
  BroadcastStream start_stream(std::vector<transport::Address> targets, std::string method,
                               detail::RequestSource source, BroadcastOptions options);
  void start_drain(asio::any_io_executor completion_executor, detail::DrainHandler handler);
  Status check_blocking_allowed() const;

  Client& client_;
  std::shared_ptr<detail::BroadcastCounters> counters_;
  // Last, so destroyed first; its collector holds counters_ itself.
  MetricRegistry::Registration metrics_registration_;
};

}  // namespace meshrpc::cluster
