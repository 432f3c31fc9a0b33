// What several scenarios share: the SimEnv options a ScenarioOptions asks for, an echo
// server process, and the simulated-time reading a result reports.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "meshrpc/cluster/client.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"
#include "scenario.h"

namespace meshrpc::sim {

// BUGGIFY runs on odd seeds (FoundationDB turns it on in a share of runs, not all): the
// sites add faults, so a scenario checks its quantitative claims about behaviour under faults
// (a success rate, a quorum reached) on the other seeds only, and turns the sites off when
// its quiet period starts. Correctness and end-of-run liveness are checked on every seed.
inline bool buggify_seed(uint64_t seed) { return seed % 2 == 1; }

// `buggify`: BUGGIFY sites fire in this run (buggify.h).
inline runtime::SimEnv::Options sim_options(const ScenarioOptions& options, bool buggify = false) {
  runtime::SimEnv::Options sim;
  sim.keep_trace = options.keep_trace;
  sim.buggify = buggify;
  return sim;
}

// A completion may trail its deadline by the turn that delivers it, never by more.
inline constexpr runtime::Duration kDeadlineSlack = std::chrono::milliseconds(1);
// Breakers back off at most this long in the scenarios (the default, 60 s, would outlast a
// quiet period).
inline constexpr runtime::Duration kBreakerOpenMax = std::chrono::seconds(8);
// How long after the faults stop every operation must succeed: the longest recovery the
// stack is configured for. A connect lost just before the heal times out (5 s) and the
// reconnect backoff then waits up to 6 s; a breaker stays open up to kBreakerOpenMax.
inline constexpr runtime::Duration kSettleTime = std::chrono::seconds(13);

// Links that lose `rate` of their segments (retransmitted) or datagrams.
inline transport::LinkConfig link_with_loss(double rate) {
  transport::LinkConfig link;
  link.loss_rate = rate;
  return link;
}

// The client every scenario calls through: default retries, breakers capped as above.
inline std::unique_ptr<cluster::Client> make_scenario_client(runtime::SimHost& host,
                                                             transport::SimNetwork& net) {
  cluster::ClientOptions options;
  options.circuit_breaker->open_duration_max = kBreakerOpenMax;
  return std::make_unique<cluster::Client>(host, net.host(host), options);
}

inline double seconds_of(runtime::TimePoint time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

// Records a broken invariant, stamped with the simulated time.
inline void record_violation(ScenarioResult& result, const runtime::SimEnv& sim, std::string what) {
  result.violations.push_back("t=" + std::to_string(seconds_of(sim.now())) + " " + std::move(what));
}

// Copies the simulation's determinism record and clock into `result`.
inline void finish_result(runtime::SimEnv& sim, ScenarioResult& result) {
  result.trace_hash = sim.trace_hash();
  result.trace = sim.trace_lines();
  result.simulated_seconds = seconds_of(sim.now());
}

// What runs on a server host: a core::Server answering /sim.Echo/Echo with the request, on
// `port` of the host.
class EchoProcess final : public runtime::SimProcess {
 public:
  EchoProcess(runtime::SimHost& host, transport::SimNetwork& net, uint16_t port)
      : server_(host, net.host(host)) {
    server_.register_method("/sim.Echo/Echo",
                            [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> {
                              co_return request;
                            });
    auto bound = server_.start({host.name(), port});
    if (!bound.ok()) throw std::runtime_error(bound.status().to_string());
  }

 private:
  core::Server server_;
};

}  // namespace meshrpc::sim
