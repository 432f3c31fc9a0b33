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
// Threading: any method from any thread; the balancer is guarded by a mutex (held for a pick
// or a feedback, a few hundred nanoseconds). Lifetime: the client and registry outlive it;
// calls in flight keep its balancer alive.
#pragma once

#include <memory>
#include <string>

#include "meshrpc/cluster/client.h"
#include "meshrpc/cluster/load_balancer.h"
#include "meshrpc/cluster/provider_registry.h"
#include "meshrpc/core/call_invoker.h"

namespace meshrpc::cluster {

struct ServiceClientOptions {
  // A built-in balancer by name (load_balancer.h): p2c by default, since it steers away from
  // slow and overloaded providers without configuration.
  std::string load_balancer = "p2c";
  // A balancer of your own instead (load_balancer.h documents the contract).
  std::function<std::unique_ptr<LoadBalancer>()> make_balancer;
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

  const std::string& service() const { return service_; }

  // The balancer and the providers it picks from, shared with the routes of calls in flight.
  struct State;

 private:
  void start(std::string method, Buffer request, CallOptions options,
             asio::any_io_executor completion_executor, CallHandler handler);

  Client& client_;
  ProviderRegistry& registry_;
  std::string service_;
  std::shared_ptr<State> state_;
  ProviderRegistry::WatchId watch_ = 0;
};

}  // namespace meshrpc::cluster
