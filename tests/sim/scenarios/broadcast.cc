// Scenario "broadcast" (the simulation issue's scenario 2): a Broadcaster sends every call to
// five replicas and waits for a majority, while one-way partitions come and go between the
// client and at most two replicas at a time (requests that arrive but whose replies cannot,
// and the reverse).
//
// Invariants, for every broadcast:
//   - it completes by its deadline with exactly one result per target, in target order;
//   - an OK result carries the request back; a failed one has a non-OK status;
//   - with at most two replicas cut off, a majority answers (at least three OK results), as
//     long as the cut set did not change during the broadcast (not on BUGGIFY seeds);
//   - once the partitions have healed for a while, every broadcast gets all five answers.
#include "meshrpc/cluster/broadcast.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "meshrpc/cluster/client.h"
#include "scenario.h"
#include "scenario_support.h"

namespace meshrpc::sim {
namespace {

using namespace std::chrono_literals;
using runtime::Duration;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;

constexpr uint16_t kPort = 7400;
constexpr int kReplicas = 5;
constexpr size_t kMaxCut = 2;
constexpr Duration kFaultPhase = 30s;
constexpr Duration kQuietPeriod = 20s;
constexpr Duration kCallTimeout = 1s;

class BroadcastScenario {
 public:
  BroadcastScenario(uint64_t seed, const ScenarioOptions& options)
      : options_(options),
        buggify_(buggify_seed(seed)),
        sim_(seed, sim_options(options, buggify_)),
        net_(sim_) {
    for (int i = 0; i < kReplicas; ++i) {
      SimHost& host = sim_.add_host("r" + std::to_string(i));
      host.start([this](SimHost& h) { return std::make_unique<EchoProcess>(h, net_, kPort); });
      targets_.push_back({host.name(), kPort});
    }
    client_host_ = &sim_.add_host("c");
    client_ = make_scenario_client(*client_host_, net_);
    broadcaster_ = std::make_unique<cluster::Broadcaster>(*client_);
  }

  ScenarioResult run() {
    const TimePoint quiet_at = sim_.now() + kFaultPhase;
    const TimePoint end = quiet_at + kQuietPeriod;
    asio::co_spawn(client_host_->pick_executor(), broadcast_loop(quiet_at, end), asio::detached);
    schedule_partitions(quiet_at);
    sim_.run_for(end - sim_.now() + 2 * kCallTimeout);
    if (running_) violation("the broadcast loop is still inside a broadcast");
    if (quiet_broadcasts_ == 0) violation("no broadcast started in the quiet period");
    finish_result(sim_, result_);
    return std::move(result_);
  }

 private:
  awaitable<void> broadcast_loop(TimePoint quiet_at, TimePoint end) {
    running_ = true;
    runtime::Random& random = sim_.random();
    for (uint64_t n = 0; client_host_->now() < end; ++n) {
      const std::string payload = "b" + std::to_string(n);
      cluster::BroadcastOptions options;
      options.call.timeout = kCallTimeout;
      options.wait_for = cluster::Quorum::majority();
      const TimePoint start = client_host_->now();
      const uint64_t cuts_before = cut_changes_;
      Buffer request = Buffer::copy_of(payload);
      std::vector<transport::Address> targets = targets_;
      std::vector<cluster::TargetResult> results = co_await broadcaster_->async_broadcast(
          std::move(targets), "/sim.Echo/Echo", std::move(request), options, asio::use_awaitable);
      check(results, payload, start, cuts_before == cut_changes_, start >= quiet_at + kSettleTime);
      auto [ec] = co_await client_host_->async_wait_for(
          std::chrono::milliseconds(random.uniform_int(10, 200)), use_nothrow_awaitable);
      (void)ec;
    }
    running_ = false;
  }

  void check(const std::vector<cluster::TargetResult>& results, const std::string& payload,
             TimePoint start, bool cuts_steady, bool settled) {
    ++result_.operations;
    if (client_host_->now() - start > kCallTimeout + kDeadlineSlack) {
      violation("a broadcast outlived its deadline");
    }
    if (results.size() != targets_.size()) {
      violation(std::to_string(results.size()) + " results for " + std::to_string(targets_.size()) +
                " targets");
      return;
    }
    size_t ok = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!(results[i].target == targets_[i])) violation("results out of target order");
      if (results[i].ok()) {
        ++ok;
        if (results[i].reply.to_string() != payload) violation("wrong reply for " + payload);
      }
    }
    const size_t majority = targets_.size() / 2 + 1;
    if (ok < majority) ++result_.failed_operations;
    if (options_.verbose && ok < majority) {
      std::fprintf(stderr, "t=%.3f broadcast %s: %zu OK\n", seconds_of(start), payload.c_str(), ok);
    }
    if (!buggify_ && cuts_steady && cut_.size() <= kMaxCut && ok < majority &&
        start >= heal_settled_) {
      violation("only " + std::to_string(ok) + " answers with " + std::to_string(cut_.size()) +
                " replicas cut off");
    }
    if (settled) {
      ++quiet_broadcasts_;
      if (ok < majority) violation("a broadcast in the quiet period missed its quorum");
    }
  }

  // Every 1-4 s: cut one more replica off (one way, either way) if fewer than kMaxCut are, or
  // heal one. Everything heals at `quiet_at`.
  void schedule_partitions(TimePoint quiet_at) {
    runtime::Random& random = sim_.random();
    for (TimePoint at = sim_.now() + 1s; at < quiet_at;
         at += std::chrono::milliseconds(random.uniform_int(1000, 4000))) {
      sim_.schedule_at(at, [this] { change_partitions(); });
    }
    sim_.schedule_at(quiet_at, [this] {
      sim_.set_buggify(false);
      net_.heal_all();
      cut_.clear();
      ++cut_changes_;
    });
  }

  void change_partitions() {
    runtime::Random& random = sim_.random();
    ++cut_changes_;
    const std::string replica = "r" + std::to_string(random.uniform(kReplicas));
    if (cut_.count(replica) != 0) {
      net_.heal_partition("c", replica);
      cut_.erase(replica);
      // A healed replica's channel may need a reconnect (a lost connect times out, then the
      // backoff): until then it does not count as reachable.
      heal_settled_ = sim_.now() + kSettleTime;
    } else if (cut_.size() < kMaxCut) {
      if (random.bernoulli(0.5)) {
        net_.partition_one_way("c", replica);
      } else {
        net_.partition_one_way(replica, "c");
      }
      cut_.insert(replica);
    }
    if (options_.verbose) {
      std::fprintf(stderr, "t=%.3f %zu replicas cut\n", seconds_of(sim_.now()), cut_.size());
    }
  }

  void violation(std::string what) { record_violation(result_, sim_, std::move(what)); }

  const ScenarioOptions options_;
  const bool buggify_;  // BUGGIFY sites fire during the fault phase
  SimEnv sim_;
  transport::SimNetwork net_;
  std::vector<transport::Address> targets_;
  SimHost* client_host_ = nullptr;
  std::unique_ptr<cluster::Client> client_;
  std::unique_ptr<cluster::Broadcaster> broadcaster_;
  std::set<std::string> cut_;
  uint64_t cut_changes_ = 0;
  TimePoint heal_settled_{};
  bool running_ = false;
  uint64_t quiet_broadcasts_ = 0;
  ScenarioResult result_;
};

}  // namespace

Scenario broadcast_scenario() {
  return Scenario{"broadcast",
                  "majority broadcasts to 5 replicas under one-way partitions (at most 2 cut)",
                  [](uint64_t seed, const ScenarioOptions& options) {
                    return BroadcastScenario(seed, options).run();
                  }};
}

}  // namespace meshrpc::sim
