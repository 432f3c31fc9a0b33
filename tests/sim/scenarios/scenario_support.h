// What several scenarios share: the SimEnv options a ScenarioOptions asks for, an echo
// server process, and the simulated-time reading a result reports.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

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

inline double seconds_of(runtime::TimePoint time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
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
