// Scenario "unary_faults" (the simulation issue's scenario 1): the unchanged meshrpc stack,
// core::Server on four simulated hosts and cluster::Client (default retries, breakers with
// an 8 s longest open period) on a fifth, under random segment loss, partitions (two-way
// and one-way), clogs, crashes and recoveries for 30 s, then a quiet period.
//
// Invariants, for every call:
//   - it ends, and no later than its deadline (plus one delivery's scheduling slack): nothing
//     hangs;
//   - a failure says why with a code the faults explain (UNAVAILABLE, DEADLINE_EXCEEDED),
//     and a success carries the right echo;
//   - once the faults have stopped for kSettleTime, every call succeeds.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "meshrpc/cluster/client.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"
#include "scenario.h"
#include "scenario_support.h"

namespace meshrpc::sim {
namespace {

using namespace std::chrono_literals;
using runtime::Duration;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;

constexpr uint16_t kPort = 7000;
constexpr int kServers = 4;  // five hosts with the client
constexpr Duration kFaultPhase = 30s;
constexpr Duration kQuietPeriod = 20s;
constexpr Duration kCallTimeout = 2s;

class UnaryFaults {
 public:
  UnaryFaults(uint64_t seed, const ScenarioOptions& options)
      : options_(options),
        buggify_(buggify_seed(seed)),
        sim_(seed, sim_options(options, buggify_)),
        net_(sim_, link_with_loss(0.01)) {
    for (int i = 0; i < kServers; ++i) {
      SimHost& host = sim_.add_host("s" + std::to_string(i));
      host.start([this](SimHost& h) { return std::make_unique<EchoProcess>(h, net_, kPort); });
      servers_.push_back(&host);
    }
    client_host_ = &sim_.add_host("c");
    client_ = make_scenario_client(*client_host_, net_);
  }

  ScenarioResult run() {
    const TimePoint quiet_at = sim_.now() + kFaultPhase;
    const TimePoint end = quiet_at + kQuietPeriod;
    for (int worker = 0; worker < 4; ++worker) {
      asio::co_spawn(client_host_->pick_executor(), call_loop(worker, quiet_at, end),
                     asio::detached);
    }
    inject_faults(quiet_at);
    sim_.run_for(end - sim_.now() + kCallTimeout);
    if (workers_running_ != 0) {
      violation(std::to_string(workers_running_) +
                " workers still inside a call after every deadline passed");
    }
    if (quiet_calls_ == 0) violation("no call started in the quiet period");
    finish_result(sim_, result_);
    return std::move(result_);
  }

 private:
  awaitable<void> call_loop(int worker, TimePoint quiet_at, TimePoint end) {
    ++workers_running_;
    runtime::Random& random = sim_.random();
    const TimePoint settled = quiet_at + kSettleTime;
    for (uint64_t n = 0; client_host_->now() < end; ++n) {
      const int target = static_cast<int>(random.uniform(kServers));
      const std::string payload = std::to_string(worker) + "/" + std::to_string(n);
      cluster::CallOptions options;
      options.timeout = kCallTimeout;
      options.idempotency = Idempotency::kIdempotent;
      const TimePoint start = client_host_->now();
      const transport::Address address{servers_[target]->name(), kPort};
      Buffer request = Buffer::copy_of(payload);
      core::CallResult result = co_await client_->async_call(
          address, "/sim.Echo/Echo", std::move(request), options, asio::use_awaitable);
      if (options_.verbose && !result.ok()) std::fprintf(stderr, "to s%d ", target);
      check(result, payload, start, settled);
      auto [ec] = co_await client_host_->async_wait_for(
          std::chrono::milliseconds(random.uniform_int(10, 200)), use_nothrow_awaitable);
      (void)ec;
    }
    --workers_running_;
  }

  void check(const core::CallResult& result, const std::string& payload, TimePoint start,
             TimePoint settled) {
    ++result_.operations;
    const Duration took = client_host_->now() - start;
    if (took > kCallTimeout + kDeadlineSlack) {
      violation("call took " + std::to_string(took.count()) + " ns, past its deadline");
    }
    if (result.ok()) {
      if (result.response.to_string() != payload) violation("wrong echo for " + payload);
    } else if (result.status.code() != StatusCode::kUnavailable &&
               result.status.code() != StatusCode::kDeadlineExceeded) {
      violation("unexpected status " + result.status.to_string());
    }
    if (!result.ok()) ++result_.failed_operations;
    if (options_.verbose && !result.ok()) {
      std::fprintf(stderr, "t=%.3f took %.3f %s\n",
                   std::chrono::duration<double>(start.time_since_epoch()).count(),
                   std::chrono::duration<double>(took).count(), result.status.to_string().c_str());
    }
    if (start >= settled) {
      ++quiet_calls_;
      if (!result.ok()) {
        violation("call in the quiet period failed: " + result.status.to_string());
      }
    }
  }

  void violation(std::string what) { record_violation(result_, sim_, std::move(what)); }

  // A random fault every 0.5-3 s until `quiet_at`; then everything heals and recovers.
  void inject_faults(TimePoint quiet_at) {
    runtime::Random& random = sim_.random();
    TimePoint at = sim_.now();
    for (;;) {
      at += std::chrono::milliseconds(random.uniform_int(500, 3000));
      if (at >= quiet_at) break;
      const int kind = static_cast<int>(random.uniform(6));
      const int s = static_cast<int>(random.uniform(kServers));
      sim_.schedule_at(at, [this, kind, s] { apply_fault(kind, *servers_[s]); });
    }
    sim_.schedule_at(quiet_at, [this] {
      sim_.set_buggify(false);
      net_.heal_all();
      for (SimHost* server : servers_) sim_.recover_node(*server);
    });
  }

  void apply_fault(int kind, SimHost& server) {
    if (options_.verbose) {
      std::fprintf(stderr, "fault t=%.3f kind %d on %s\n",
                   std::chrono::duration<double>(sim_.now().time_since_epoch()).count(), kind,
                   server.name().c_str());
    }
    switch (kind) {
      case 0:
        sim_.fail_node(server);
        break;
      case 1:
        sim_.recover_node(server);
        break;
      case 2:
        net_.partition("c", server.name());
        break;
      case 3:
        net_.partition_one_way(server.name(), "c");  // requests arrive, replies do not
        break;
      case 4:
        net_.heal_partition("c", server.name());
        break;
      default:
        net_.clog("c", server.name(),
                  std::chrono::milliseconds(sim_.random().uniform_int(100, 3000)));
        break;
    }
  }

  const ScenarioOptions options_;
  const bool buggify_;  // BUGGIFY sites fire during the fault phase
  SimEnv sim_;
  transport::SimNetwork net_;
  std::vector<SimHost*> servers_;
  SimHost* client_host_ = nullptr;
  std::unique_ptr<cluster::Client> client_;
  int workers_running_ = 0;
  uint64_t quiet_calls_ = 0;
  ScenarioResult result_;
};

}  // namespace

Scenario unary_faults_scenario() {
  return Scenario{
      "unary_faults",
      "unary calls through cluster::Client to 4 servers under loss, partitions, clogs, crashes",
      [](uint64_t seed, const ScenarioOptions& options) {
        return UnaryFaults(seed, options).run();
      }};
}

}  // namespace meshrpc::sim
