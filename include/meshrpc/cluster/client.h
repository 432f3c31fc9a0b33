// cluster::Client: calls to an address with the resilience policies applied: classified
// retries under one retry budget, hedging, a circuit breaker per endpoint, server pushback,
// all over the core's single-attempt Channels (one per endpoint, pooled and multiplexed).
//
//   cluster::Client client(env, network);                    // defaults: see ClientOptions
//   core::CallResult r = co_await client.async_call({"10.0.0.7", 7000}, "kv.Store.Get",
//                                                   request, {}, asio::use_awaitable);
//   Status s = client.unicast(address, kGet, request, &reply);  // blocking, seed-000 shaped
//   Echo::Client echo(client.invoker(address));                  // generated clients
//
// One call, in order (DESIGN.md principle 5, every decision in resilience/):
//   1. The endpoint's circuit breaker is asked; open -> UNAVAILABLE "circuit open for <addr>",
//      not processed, without sending.
//   2. An attempt goes out with the earlier of the call's deadline and the policy's
//      per-attempt timeout.
//   3. A failed attempt is classified (resilience::classify_failure). A retry also needs an
//      attempt left (max_attempts), a token from the client's RetryBudget, no "do not retry"
//      pushback from the server, and time: the backoff (or a longer pushback delay) must end
//      before the call's deadline. Otherwise the call ends with that attempt's status.
//   4. Hedging (when ClientOptions::hedging is set, for idempotent and side-effect-free
//      methods only): while an attempt is outstanding past the hedge delay, another is sent,
//      if the Hedger's extra-load cap and the retry budget allow. The first OK (or committed,
//      or non-retryable) answer ends the call; the other attempts are cancelled (CANCEL goes
//      to their servers). Hedges and retries count against the same max_attempts and budget,
//      so together they never send more than max_attempts copies of a request.
//
// Propagation: a call inherits the caller's cancellation (the completion handler's slot, so a
// downstream call co_awaited by a handler ends with the incoming call) unless
// CallOptions::inherit_cancellation is false; deadline and trace metadata come from
// core::ServerContext::child_call_options(), or set CallOptions::parent to inherit them.
//
// Threading: any method from any thread. A call runs on one of the env's executors; its
// handler runs on its associated executor. Per-endpoint state is guarded by a mutex per
// endpoint, the budget and hedgers by one per client (each held for a few arithmetic
// operations, twice per attempt). Lifetime: the env and network outlive the client; calls in
// flight keep what they use alive, and destroying the client cancels them (CANCELLED).
#pragma once

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/method.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/call_invoker.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server_context.h"
#include "meshrpc/resilience/circuit_breaker.h"
#include "meshrpc/resilience/hedging_policy.h"
#include "meshrpc/resilience/retry_budget.h"
#include "meshrpc/resilience/retry_policy.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::cluster {

struct ClientOptions {
  // For the Channel to each endpoint (connect timeout, reconnect backoff, queue bound,
  // interceptors).
  core::ChannelOptions channel;
  // Every call's retry policy unless the call gives its own (CallOptions::retry).
  resilience::RetryPolicy retry;
  // One budget for the retries and hedges of every call this client makes.
  resilience::RetryBudgetOptions retry_budget;
  // Off by default: hedging sends extra copies of requests, a trade (load for tail latency)
  // the user should choose. When set, applies to idempotent and side-effect-free methods;
  // each method gets its own Hedger (latency estimate and extra-load cap).
  std::optional<resilience::HedgingPolicy> hedging;
  // On by default, one breaker per endpoint: failing fast on an endpoint that keeps failing
  // costs nothing when it is healthy and saves every caller a timeout when it is not.
  // nullopt turns breakers off.
  std::optional<resilience::CircuitBreakerOptions> circuit_breaker =
      resilience::CircuitBreakerOptions{};
  // Where the client's resilience decisions are exposed (docs/metrics.md, "Resilience and
  // cluster"): its ClientStats as meshrpc_client_* counters, and per endpoint the circuit
  // breaker's state, transitions and rejections. One collector reads the counters the client
  // keeps anyway, so a call costs nothing more. ServiceClients and Broadcasters over this
  // client register into the same registry. nullptr: nothing is registered. (The channels'
  // own per-call metrics follow `channel.metrics`.)
  MetricRegistry* metrics = &MetricRegistry::global();
};

struct CallOptions : core::CallOptions {
  CallOptions() = default;
  // From the core's options (what generated clients and codec helpers pass).
  CallOptions(core::CallOptions base) : core::CallOptions(std::move(base)) {}  // NOLINT

  // This call's retry policy instead of the client's.
  std::optional<resilience::RetryPolicy> retry;
  // False: never hedge this call, even when the client hedges its method.
  bool allow_hedging = true;
  // False: the caller's cancellation (its handler's cancellation slot) does not reach this
  // call, which then ends only by its own deadline or an answer (e.g. a write that must
  // complete even if the request that caused it is abandoned).
  bool inherit_cancellation = true;
  // The call being served that this call is made for: the earlier of its deadline and this
  // call's applies, and its propagated metadata (core::kPropagatedMetadataPrefix) is sent on.
  // Must outlive the start of the call only.
  const core::ServerContext* parent = nullptr;
  // For a ServiceClient with the ring_hash balancer: calls with one key go to one provider
  // while it is eligible (sharded data). Hash string keys with stable_hash64().
  std::optional<uint64_t> hash_key;
};

// Counters over the client's life; each a relaxed snapshot.
struct ClientStats {
  uint64_t calls = 0;                  // calls started
  uint64_t attempts = 0;               // attempts sent (first attempts, retries and hedges)
  uint64_t retries = 0;                // attempts sent after a failed one
  uint64_t hedges = 0;                 // attempts sent while another was outstanding
  uint64_t retries_budget_denied = 0;  // retries and hedges the budget refused
  uint64_t hedges_load_denied = 0;     // hedges the extra-load cap refused
  uint64_t pushback_stops = 0;         // retries a server's "do not retry" prevented
  uint64_t pushback_delays = 0;        // retries a server's "retry after" delayed
  uint64_t breaker_rejections = 0;     // attempts refused because a circuit was open
  uint64_t losers_cancelled = 0;       // outstanding attempts cancelled because another won
  uint64_t circuits_opened = 0;        // breaker transitions to open (from closed or half-open)
};

class Route;

class Client {
 public:
  using CallHandler = core::CallInvoker::CallHandler;

  // Throws std::invalid_argument on an invalid retry, hedging or breaker policy (setup time).
  Client(runtime::Env& env, transport::Network& network, ClientOptions options = {});
  // Cancels calls in flight (they complete with CANCELLED) and closes the channels. On real
  // threads the env's threads must still be running.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Raw bytes: completion signature void(core::CallResult). The result is the deciding
  // attempt's (its status, response, trailers, not_processed, origin).
  template <typename CompletionToken>
  auto async_call(transport::Address target, std::string method, Buffer request,
                  CallOptions options, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(core::CallResult)>(
        [this](auto handler, transport::Address target, std::string method, Buffer request,
               CallOptions options) {
          auto executor = asio::get_associated_executor(handler, default_executor());
          start_call(std::move(target), std::move(method), std::move(request), std::move(options),
                     std::move(executor), CallHandler(std::move(handler)));
        },
        token, std::move(target), std::move(method), std::move(request), std::move(options));
  }

  // Typed: completion signature void(Result<Reply>). The method's declared idempotency is
  // used unless the options set one. The request is encoded now; an encoding failure
  // completes with its status without sending anything.
  template <codec::Encodable Request, codec::Encodable Reply, typename CompletionToken>
  auto async_call(const transport::Address& target, const codec::Method<Request, Reply>& method,
                  const Request& request, CallOptions options, CompletionToken&& token) {
    if (options.idempotency == core::Idempotency::kUnknown) {
      options.idempotency = method.idempotency;
    }
    Result<Buffer> bytes = codec::encode(request);
    return asio::async_initiate<CompletionToken, void(Result<Reply>)>(
        [this](auto handler, transport::Address target, std::string name, Result<Buffer> bytes,
               CallOptions options) {
          auto executor = asio::get_associated_executor(handler, default_executor());
          if (!bytes.ok()) {
            Status status = bytes.status().with_context("request does not encode");
            asio::post(executor,
                       [handler = std::move(handler), status = std::move(status)]() mutable {
                         std::move(handler)(Result<Reply>(std::move(status)));
                       });
            return;
          }
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto decode_reply = [handler = std::move(handler)](core::CallResult result) mutable {
            std::move(handler)(codec::reply_from<Reply>(std::move(result)));
          };
          start_call(std::move(target), std::move(name), std::move(*bytes), std::move(options),
                     executor,
                     CallHandler(asio::bind_cancellation_slot(
                         slot, asio::bind_executor(executor, std::move(decode_reply)))));
        },
        token, target, std::string(method.name), std::move(bytes), std::move(options));
  }

  // Seed 000's UnicastToRPCServer, done right: one call with the client's default policy,
  // blocking the calling thread. Fills *reply on OK. FAILED_PRECONDITION when called on one
  // of the env's threads (it would wait on itself) or under simulation.
  template <codec::Encodable Request, codec::Encodable Reply>
  Status unicast(const transport::Address& target, const codec::Method<Request, Reply>& method,
                 const Request& request, Reply* reply, CallOptions options = {}) {
    if (Status usable = check_blocking_allowed(); !usable.ok()) return usable;
    std::promise<Result<Reply>> promise;
    std::future<Result<Reply>> future = promise.get_future();
    // A plain callback: it runs on one of the client's executors, not on asio::use_future's
    // hidden thread pool.
    async_call(target, method, request, std::move(options),
               [&promise](Result<Reply> result) { promise.set_value(std::move(result)); });
    Result<Reply> result = future.get();
    if (!result.ok()) return std::move(result).status();
    if (reply != nullptr) *reply = std::move(*result);
    return Status();
  }

  // A CallInvoker that sends every call to `target` through this client (default policy plus
  // what each call's core::CallOptions says): hand it to a generated <Service>::Client.
  // Its streams go straight to the endpoint's channel (no retries, hedging or breaker).
  // Valid while this client lives.
  core::CallInvoker& invoker(const transport::Address& target);

  // The endpoint's breaker state now (kClosed for an endpoint never called or breakers off).
  resilience::CircuitBreaker::State breaker_state(const transport::Address& target);
  ClientStats stats() const;
  runtime::Env& env() { return env_; }
  const ClientOptions& options() const { return options_; }

  // Starts a call; `handler` runs once, on `completion_executor`. What async_call does.
  // Two guarantees callers (broadcast) build on: the handler's cancellation slot is attached
  // before this returns, so a cancel emitted right after is never lost; and the handler is
  // never run inline, always posted to `completion_executor`.
  void start_call(transport::Address target, std::string method, Buffer request,
                  CallOptions options, asio::any_io_executor completion_executor,
                  CallHandler handler);
  asio::any_io_executor default_executor();

  // Internal state shared with calls in flight; defined in client.cc.
  struct Shared;
  // One address: its channel and circuit breaker (opaque outside client.cc).
  struct Endpoint;

  // The endpoint for `target`, created on first use and kept for the client's life.
  std::shared_ptr<Endpoint> endpoint(const transport::Address& target);
  // start_call with each attempt sent where `route` says (ServiceClient's failover).
  void start_routed_call(std::unique_ptr<Route> route, std::string method, Buffer request,
                         CallOptions options, asio::any_io_executor completion_executor,
                         CallHandler handler);
  // The address of an endpoint.
  static const transport::Address& address_of(const Endpoint& endpoint);

 private:
  class EndpointInvoker;
  Status check_blocking_allowed() const;

  runtime::Env& env_;
  ClientOptions options_;
  std::shared_ptr<Shared> shared_;
  std::mutex invokers_mutex_;
  std::unordered_map<std::string, std::unique_ptr<EndpointInvoker>> invokers_;
  // Last, so destroyed first: no collector reads shared_ once the client is going.
  MetricRegistry::Registration metrics_registration_;
};

// Where a call's attempts go. A unicast call has one endpoint; a call to a service picks a
// provider per attempt, avoiding those that failed in the call (the attempts share one
// counter, one budget). Used on the call's executor only, one call at a time.
class Route {
 public:
  virtual ~Route() = default;
  // The next attempt's endpoint, avoiding `failed` (endpoints that failed or refused in this
  // call) when it can; null when there is none, with `*why` saying why.
  virtual std::shared_ptr<Client::Endpoint> next(const std::vector<const Client::Endpoint*>& failed,
                                                 Status* why) = 0;
  // True when another endpoint may be tried after one fails: an open circuit is then skipped,
  // a retry goes at once (the backoff protects an endpoint, and this is another one), and a
  // call that runs out of attempts says so.
  virtual bool has_alternatives() const = 0;
  // An attempt next() routed is being sent to `endpoint`; `after_failure`: an earlier attempt
  // of the call failed or was refused (an open circuit), so this one fails over.
  virtual void on_attempt_sent(const Client::Endpoint& endpoint, bool after_failure) {
    (void)endpoint, (void)after_failure;
  }
  // Each attempt that next() routed ends here (cancelled losers too), for load feedback.
  virtual void on_attempt_finished(const Client::Endpoint& endpoint, runtime::TimePoint now,
                                   runtime::Duration latency, const core::CallResult& result) {
    (void)endpoint, (void)now, (void)latency, (void)result;
  }
};

}  // namespace meshrpc::cluster
