// Scenario "failover" (the simulation issue's scenario 3): a ServiceClient calling service
// "echo" whose four providers (a static registry) crash and recover at random, at most two
// down at a time, for 40 s; then a quiet period.
//
// Invariants:
//   - every call ends by its deadline, OK (with the right echo) or UNAVAILABLE or
//     DEADLINE_EXCEEDED: nothing hangs;
//   - failover works: while faults run, with two or more providers always up, at least 95%
//     of calls succeed (a client pinned to one provider would lose about a quarter); not
//     checked on BUGGIFY seeds, whose extra faults make no such promise;
//   - once the faults have stopped for kSettleTime, every call succeeds.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "meshrpc/cluster/client.h"
#include "meshrpc/cluster/provider_registry.h"
#include "meshrpc/cluster/service_client.h"
#include "scenario.h"
#include "scenario_support.h"

namespace meshrpc::sim {
namespace {

using namespace std::chrono_literals;
using runtime::Duration;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;

constexpr uint16_t kPort = 7200;
constexpr int kProviders = 4;
constexpr int kMaxDown = 2;
constexpr Duration kFaultPhase = 40s;
constexpr Duration kQuietPeriod = 20s;
constexpr Duration kCallTimeout = 2s;
constexpr double kMinSuccessUnderFaults = 0.95;

class Failover {
 public:
  Failover(uint64_t seed, const ScenarioOptions& options)
      : options_(options),
        buggify_(buggify_seed(seed)),
        sim_(seed, sim_options(options, buggify_)),
        net_(sim_) {
    for (int i = 0; i < kProviders; ++i) {
      SimHost& host = sim_.add_host("p" + std::to_string(i));
      host.start([this](SimHost& h) { return std::make_unique<EchoProcess>(h, net_, kPort); });
      providers_.push_back(&host);
      cluster::Provider provider;
      provider.node_id = host.name();
      provider.address = {host.name(), kPort};
      registry_.upsert("echo", provider).ignore_error();
    }
    client_host_ = &sim_.add_host("c");
    client_ = make_scenario_client(*client_host_, net_);
    service_ = std::make_unique<cluster::ServiceClient>(*client_, registry_, "echo");
  }

  ScenarioResult run() {
    const TimePoint quiet_at = sim_.now() + kFaultPhase;
    const TimePoint end = quiet_at + kQuietPeriod;
    for (int worker = 0; worker < 4; ++worker) {
      asio::co_spawn(client_host_->pick_executor(), call_loop(worker, quiet_at, end),
                     asio::detached);
    }
    schedule_crashes(quiet_at);
    sim_.run_for(end - sim_.now() + kCallTimeout);
    if (running_ != 0) violation(std::to_string(running_) + " workers still inside a call");
    if (fault_calls_ > 0 && !buggify_) {
      const double success = static_cast<double>(fault_successes_) / fault_calls_;
      if (success < kMinSuccessUnderFaults) {
        violation("only " + std::to_string(success * 100) + "% of " + std::to_string(fault_calls_) +
                  " calls succeeded while providers crashed");
      }
    }
    if (quiet_calls_ == 0) violation("no call started in the quiet period");
    finish_result(sim_, result_);
    return std::move(result_);
  }

 private:
  awaitable<void> call_loop(int worker, TimePoint quiet_at, TimePoint end) {
    ++running_;
    runtime::Random& random = sim_.random();
    const TimePoint settled = quiet_at + kSettleTime;
    for (uint64_t n = 0; client_host_->now() < end; ++n) {
      const std::string payload = std::to_string(worker) + "/" + std::to_string(n);
      cluster::CallOptions options;
      options.timeout = kCallTimeout;
      options.idempotency = Idempotency::kIdempotent;
      const TimePoint start = client_host_->now();
      Buffer request = Buffer::copy_of(payload);
      core::CallResult result = co_await service_->async_call("/sim.Echo/Echo", std::move(request),
                                                              options, asio::use_awaitable);
      check(result, payload, start, quiet_at, settled);
      auto [ec] = co_await client_host_->async_wait_for(
          std::chrono::milliseconds(random.uniform_int(5, 100)), use_nothrow_awaitable);
      (void)ec;
    }
    --running_;
  }

  void check(const core::CallResult& result, const std::string& payload, TimePoint start,
             TimePoint quiet_at, TimePoint settled) {
    ++result_.operations;
    if (!result.ok()) ++result_.failed_operations;
    if (options_.verbose && !result.ok()) {
      std::fprintf(stderr, "t=%.3f %s\n", seconds_of(start), result.status.to_string().c_str());
    }
    if (client_host_->now() - start > kCallTimeout + kDeadlineSlack) {
      violation("a call outlived its deadline");
    }
    if (result.ok() && result.response.to_string() != payload) {
      violation("wrong echo for " + payload);
    }
    if (!result.ok() && result.status.code() != StatusCode::kUnavailable &&
        result.status.code() != StatusCode::kDeadlineExceeded) {
      violation("unexpected status " + result.status.to_string());
    }
    if (start < quiet_at) {
      ++fault_calls_;
      if (result.ok()) ++fault_successes_;
    } else if (start >= settled) {
      ++quiet_calls_;
      if (!result.ok()) violation("call in the quiet period failed: " + result.status.to_string());
    }
  }

  // Every 1-4 s one provider crashes or one recovers, keeping at most kMaxDown down; all
  // recover at `quiet_at`. The choices are drawn when each event fires, from the state then.
  void schedule_crashes(TimePoint quiet_at) {
    runtime::Random& random = sim_.random();
    for (TimePoint at = sim_.now() + 1s; at < quiet_at;
         at += std::chrono::milliseconds(random.uniform_int(1000, 4000))) {
      sim_.schedule_at(at, [this] { crash_or_recover(); });
    }
    sim_.schedule_at(quiet_at, [this] {
      sim_.set_buggify(false);
      for (SimHost* provider : providers_) sim_.recover_node(*provider);
    });
  }

  void crash_or_recover() {
    std::vector<SimHost*> up;
    std::vector<SimHost*> down;
    for (SimHost* provider : providers_) (provider->is_up() ? up : down).push_back(provider);
    runtime::Random& random = sim_.random();
    const bool crash =
        down.empty() || (static_cast<int>(down.size()) < kMaxDown && random.bernoulli(0.5));
    SimHost& target = crash ? *up[random.uniform(up.size())] : *down[random.uniform(down.size())];
    if (options_.verbose) {
      std::fprintf(stderr, "t=%.3f %s %s\n", seconds_of(sim_.now()), crash ? "crash" : "recover",
                   target.name().c_str());
    }
    if (crash) {
      sim_.fail_node(target);
    } else {
      sim_.recover_node(target);
    }
  }

  void violation(std::string what) { record_violation(result_, sim_, std::move(what)); }

  const ScenarioOptions options_;
  const bool buggify_;  // BUGGIFY sites fire during the fault phase
  SimEnv sim_;
  transport::SimNetwork net_;
  std::vector<SimHost*> providers_;
  SimHost* client_host_ = nullptr;
  cluster::ProviderRegistry registry_;
  std::unique_ptr<cluster::Client> client_;
  std::unique_ptr<cluster::ServiceClient> service_;
  int running_ = 0;
  uint64_t fault_calls_ = 0;
  uint64_t fault_successes_ = 0;
  uint64_t quiet_calls_ = 0;
  ScenarioResult result_;
};

}  // namespace

Scenario failover_scenario() {
  return Scenario{
      "failover", "a ServiceClient over 4 providers that crash and recover (at most 2 down)",
      [](uint64_t seed, const ScenarioOptions& options) { return Failover(seed, options).run(); }};
}

}  // namespace meshrpc::sim
