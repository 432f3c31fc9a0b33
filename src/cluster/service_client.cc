#include "meshrpc/cluster/service_client.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "meshrpc/resilience/circuit_breaker.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::cluster {

struct ServiceClient::State {
  State(std::string s, std::unique_ptr<LoadBalancer> b, uint64_t seed)
      : service(std::move(s)), balancer(std::move(b)), random(seed) {}

  const std::string service;
  std::mutex mutex;  // guards everything below
  std::unique_ptr<LoadBalancer> balancer;
  ProviderSnapshot providers;  // what the balancer's indices refer to
  runtime::Random random;
};

namespace {

// A service call's attempts: a provider per attempt from the balancer, excluding the ones
// that failed in this call.
class ProviderRoute final : public Route {
 public:
  ProviderRoute(Client& client, std::shared_ptr<ServiceClient::State> state,
                std::optional<uint64_t> hash_key)
      : client_(client), state_(std::move(state)), hash_key_(hash_key) {}

  std::shared_ptr<Client::Endpoint> next(const std::vector<const Client::Endpoint*>& failed,
                                         Status* why) override {
    // Node ids of the endpoints that failed: every endpoint this route handed out is in
    // routed_, so the lookup is over at most max_attempts entries.
    std::vector<std::string> excluded;
    for (const Client::Endpoint* endpoint : failed) {
      for (const auto& [routed, node_id] : routed_) {
        if (routed == endpoint) excluded.push_back(node_id);
      }
    }
    std::lock_guard lock(state_->mutex);
    const auto& providers = state_->providers->providers;
    PickRequest request{state_->random, client_.env().now(), hash_key_, excluded};
    const std::optional<size_t> index = state_->balancer->pick(request);
    if (!index) {
      *why = providers.empty()
                 ? unavailable_error("no providers for service " + state_->service)
                 : unavailable_error("all " + std::to_string(providers.size()) + " providers of " +
                                     state_->service + " failed in this call");
      return nullptr;
    }
    const Provider& provider = providers[*index];
    state_->balancer->on_call_started(provider.node_id);
    std::shared_ptr<Client::Endpoint> endpoint = client_.endpoint(provider.address);
    routed_.emplace_back(endpoint.get(), provider.node_id);
    return endpoint;
  }

  bool has_alternatives() const override { return true; }

  void on_attempt_finished(const Client::Endpoint& endpoint, runtime::TimePoint now,
                           runtime::Duration latency, const core::CallResult& result) override {
    auto it = std::find_if(routed_.begin(), routed_.end(),
                           [&](const auto& entry) { return entry.first == &endpoint; });
    if (it == routed_.end()) return;
    // As for the breaker: only outcomes that say the provider is unwell count against it.
    const bool ok = result.ok() || !resilience::counts_as_breaker_failure(result.status);
    std::lock_guard lock(state_->mutex);
    state_->balancer->on_call_finished(it->second, now, latency, ok);
  }

 private:
  Client& client_;
  std::shared_ptr<ServiceClient::State> state_;
  std::optional<uint64_t> hash_key_;
  // Each attempt's endpoint and the provider it was picked as (one per attempt).
  std::vector<std::pair<const Client::Endpoint*, std::string>> routed_;
};

std::unique_ptr<LoadBalancer> make_balancer(const ServiceClientOptions& options) {
  if (options.make_balancer) {
    auto balancer = options.make_balancer();
    if (!balancer) throw std::invalid_argument("ServiceClientOptions::make_balancer gave null");
    return balancer;
  }
  auto balancer = make_load_balancer(options.load_balancer);
  if (!balancer.ok()) throw std::invalid_argument(std::string(balancer.status().message()));
  return std::move(*balancer);
}

}  // namespace

ServiceClient::ServiceClient(Client& client, ProviderRegistry& registry, std::string service,
                             ServiceClientOptions options)
    : client_(client),
      registry_(registry),
      service_(std::move(service)),
      state_(std::make_shared<State>(service_, make_balancer(options), client.env().random_u64())) {
  // Called at once with the current list, then on every change: a registry update reaches
  // the balancer before the next pick.
  watch_ = registry_.watch(service_, [state = state_](const ProviderSnapshot& snapshot) {
    std::lock_guard lock(state->mutex);
    state->providers = snapshot;
    state->balancer->update(snapshot->providers);
  });
}

ServiceClient::~ServiceClient() { registry_.unwatch(watch_); }

void ServiceClient::start(std::string method, Buffer request, CallOptions options,
                          asio::any_io_executor completion_executor, CallHandler handler) {
  const std::optional<uint64_t> hash_key = options.hash_key;
  client_.start_routed_call(std::make_unique<ProviderRoute>(client_, state_, hash_key),
                            std::move(method), std::move(request), std::move(options),
                            std::move(completion_executor), std::move(handler));
}

}  // namespace meshrpc::cluster
