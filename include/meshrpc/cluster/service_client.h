// ServiceClient: calls a named service, not an address. Each attempt goes to a provider the
// load balancer picks from the registry's current list, never one that already failed in
// this call (seed 001's failover, done with the resilience layer's classification: only a
// failure that may be retried fails over, on the same attempt counter and budget).
//
//   cluster::ProviderRegistry registry;            // fed by a Resolver, or upsert()
//   cluster::ServiceClient kv(client, registry, "kv.Store");
//   core::CallResult r = co_await kv.async_call("kv.Store.Get", request, {},
//                                               asio::use_awaitable);
//   kv::Store::Client store(kv);                   // generated clients: it is a CallInvoker
//
// How a call ends when it cannot succeed (distinct messages, all keeping the last attempt's
// code):
//   - no provider listed:            UNAVAILABLE "no providers for service kv.Store"
//   - every provider failed:         "all N providers of kv.Store failed in this call: ..."
//   - attempts ran out first:        "max_attempts N exceeded: ..."
// Attempts: the retry policy's max_attempts, and at most one per provider, since a provider
// that failed is not tried again in the call: min(3, providers) by default. Failing over to another
// provider does not wait for the backoff (the backoff gives the failed provider room; the next
// attempt goes elsewhere); a server's pushback delay still holds. Per-provider circuit breakers
// apply: an open circuit is skipped for another provider. A registry change reaches the balancer at
// once, so new providers get traffic from the next pick.
//
// Outlier detection (on by default, resilience/outlier_detector.h): a provider that keeps
// failing is ejected for a back-off period and picked by no call while ejected. A failure, for
// it, is what the circuit breaker counts: counts_as_breaker_failure on a result that did not
// originate locally (FailureOrigin::kLocal: a local limit, a cancel) and is not CANCELLED. So
// an attempt whose deadline passes while its channel is still connecting (the channel ends it
// DEADLINE_EXCEEDED, not_processed, origin kTransport) counts against the provider: one whose
// connects black-hole is ejected after 5 such calls even when every call's deadline is
// shorter than the connect timeout (brpc #348). When ejected providers and those that failed
// in the call leave nothing to pick, ejection is ignored for that pick (panic, as Envoy does):
// the max-ejection cap makes that rare, and refusing the call would turn a detector's
// judgement into an outage. Ejections and returns are logged at info and counted in stats().
//
// Active health checks (off by default, ServiceClientOptions::health_check): every interval
// each listed provider is sent one health-check call (meshrpc.Health/Check, which every
// core::Server answers while it runs; no retries, its own timeout). A provider that fails
// unhealthy_threshold checks in a row is picked by no call until it passes healthy_threshold
// in a row; like ejection, this is ignored when it would leave nothing to pick. They find a
// provider that is down before a call has to (an idle service, or the first call after a
// deploy), at the cost of one small call per provider per interval from every client.
//
// Metrics (docs/metrics.md): ejections, returns, failovers, health checks and the providers
// ejected now, labelled with the service, in the client's registry (ClientOptions::metrics).
//
// Threading: any method from any thread; the balancer is guarded by a mutex (held for a pick
// or a feedback, a few hundred nanoseconds). Lifetime: the client and registry outlive it;
// calls in flight keep its balancer alive.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "meshrpc/cluster/client.h"
#include "meshrpc/cluster/load_balancer.h"
#include "meshrpc/cluster/provider_registry.h"
#include "meshrpc/core/call_invoker.h"
#include "meshrpc/core/server.h"
#include "meshrpc/resilience/outlier_detector.h"

namespace meshrpc::cluster {

struct HealthCheckOptions {
  // 5 s: a provider that goes down is out of rotation within about 10 s (two failed checks)
  // when no call found it first, for one call per provider per 5 s from each client
  // (Envoy's examples and Kubernetes' probes use 5-10 s).
  runtime::Duration interval = std::chrono::seconds(5);
  // 1 s: a health check does no work, so one that takes longer says the provider is
  // overloaded or unreachable.
  runtime::Duration timeout = std::chrono::seconds(1);
  // Two failures in a row take a provider out (one lost packet does not); one success brings
  // it back (outlier detection still watches its real calls). Both at least 1.
  int unhealthy_threshold = 2;
  int healthy_threshold = 1;
  // The method checked; an empty reply body or "SERVING" with OK is healthy.
  std::string method = std::string(core::kHealthCheckMethod);
};

struct ServiceClientOptions {
  // A built-in balancer by name (load_balancer.h): p2c by default, since it steers away from
  // slow and overloaded providers without configuration.
  std::string load_balancer = "p2c";
  // A balancer of your own instead (load_balancer.h documents the contract).
  std::function<std::unique_ptr<LoadBalancer>()> make_balancer = {};
  // On by default with Envoy's defaults (outlier_detector.h): ejecting a provider that keeps
  // failing costs nothing when all are healthy and saves every call a failed attempt when one
  // is not. nullopt turns it off.
  std::optional<resilience::OutlierDetectionOptions> outlier_detection =
      resilience::OutlierDetectionOptions{};
  // Active health checks; nullopt (the default) sends none.
  std::optional<HealthCheckOptions> health_check = std::nullopt;
};

// Counters over the service client's life, and the providers ejected now.
struct ServiceClientStats {
  uint64_t outlier_ejections = 0;       // providers ejected (by any reason)
  uint64_t outlier_returns = 0;         // ejected providers back in rotation
  uint64_t outlier_panic_picks = 0;     // picks that ignored ejection: nothing else was left
  size_t providers_ejected = 0;         // ejected at the time of the call to stats()
  uint64_t health_checks = 0;           // health-check calls that ended
  uint64_t health_check_failures = 0;   // of which failed
  size_t providers_failing_checks = 0;  // out of rotation by health checks now
  uint64_t failovers = 0;  // attempts sent after one of the call failed (or met an open circuit)
  size_t providers = 0;    // listed at the time of the call to stats()
};

class ServiceClient final : public core::CallInvoker {
 public:
  // Throws std::invalid_argument for an unknown balancer name (a setup-time error).
  ServiceClient(Client& client, ProviderRegistry& registry, std::string service,
                ServiceClientOptions options = {});
  ~ServiceClient() override;
  ServiceClient(const ServiceClient&) = delete;
  ServiceClient& operator=(const ServiceClient&) = delete;

  // async_call(method, request, options, token) with core::CallOptions: see CallInvoker.
  // With the cluster layer's CallOptions (per-call retry policy, hedging, parent):
  template <typename CompletionToken>
  auto async_call(std::string method, Buffer request, CallOptions options,
                  CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(core::CallResult)>(
        [this](auto handler, std::string method, Buffer request, CallOptions options) {
          auto executor = asio::get_associated_executor(handler, default_executor());
          start(std::move(method), std::move(request), std::move(options), std::move(executor),
                CallHandler(std::move(handler)));
        },
        token, std::move(method), std::move(request), std::move(options));
  }

  asio::any_io_executor default_executor() override { return client_.default_executor(); }
  void start_call(std::string method, Buffer request, core::CallOptions options,
                  asio::any_io_executor completion_executor, CallHandler handler) override {
    start(std::move(method), std::move(request), CallOptions(std::move(options)),
          std::move(completion_executor), std::move(handler));
  }

  // A stream (core/stream.h) to one provider, picked as for a call's first attempt
  // (balancer, ejection, health). Streams are not retried or failed over: a stream that
  // breaks ends with its StreamError. UNAVAILABLE when no provider is listed.
  core::ClientStream open_stream(std::string method, core::StreamOptions options = {}) override;

  const std::string& service() const { return service_; }
  ServiceClientStats stats() const;

  // The balancer and the providers it picks from, shared with the routes of calls in flight.
  struct State;

 private:
  void start(std::string method, Buffer request, CallOptions options,
             asio::any_io_executor completion_executor, CallHandler handler);
  void write_metrics(MetricWriter& out) const;

  Client& client_;
  ProviderRegistry& registry_;
  std::string service_;
  std::shared_ptr<State> state_;
  ProviderRegistry::WatchId watch_ = 0;
  // Where the health checker runs, when health checks are on.
  asio::any_io_executor checker_executor_;
  // Its stats() as meshrpc_service_client_*{service=...}, in the client's registry
  // (ClientOptions::metrics). Last, so destroyed first: no collector runs once it goes.
  MetricRegistry::Registration metrics_registration_;
};

}  // namespace meshrpc::cluster
