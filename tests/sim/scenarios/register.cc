// Scenarios "register" and "register_stale_reads" (the simulation issue's scenario 5): proof
// that the history checker can fail.
//
// A register service on host "primary" (Write, Read) and a copy on host "replica" that the
// primary updates kReplicationLag after each acknowledged write, as a lazily replicated
// cache would. Three clients on host "c" write unique values and read, under segment loss and
// clogs (timeouts make operations indeterminate). Every operation goes into a History that
// the WGL checker tests against a register model.
//   - "register": reads go to the primary. The history must be linearizable.
//   - "register_stale_reads": reads go to the replica, which lags: a deliberate bug. The
//     checker must find a stale read (the scenario is expected to report a violation).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"
#include "scenario.h"
#include "scenario_support.h"
#include "tests/support/history.h"
#include "tests/support/linearizability.h"

namespace meshrpc::sim {
namespace {

using namespace std::chrono_literals;
using runtime::Duration;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;
using testing::History;
using testing::Operation;
using testing::Output;

constexpr uint16_t kPort = 7100;
constexpr Duration kRunTime = 5s;
constexpr Duration kCallTimeout = 500ms;
constexpr int kClients = 3;
constexpr Duration kReplicationLag = 5ms;

// One register: Write stores the request, Read answers it (an empty reply: never written;
// written values are never empty). `replicate_to` (primary only) gets every write, after it
// is acknowledged.
class RegisterProcess final : public runtime::SimProcess {
 public:
  RegisterProcess(SimHost& host, transport::SimNetwork& net,
                  std::optional<transport::Address> replicate_to)
      : host_(host), server_(host, net.host(host)) {
    if (replicate_to) {
      replica_ = std::make_unique<core::Channel>(host, net.host(host), *replicate_to);
    }
    server_.register_method(
        "/reg.Register/Write",
        [this](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> {
          value_ = request.to_string();
          if (replica_) {
            // The acknowledgement does not wait for the copy.
            asio::co_spawn(host_.pick_executor(), replicate(std::move(request)), asio::detached);
          }
          co_return Buffer();
        });
    server_.register_method("/reg.Register/Read",
                            [this](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                              co_return Buffer::copy_of(value_);
                            });
    auto bound = server_.start({host.name(), kPort});
    if (!bound.ok()) throw std::runtime_error(bound.status().to_string());
  }

 private:
  awaitable<void> replicate(Buffer value) {
    auto [ec] = co_await host_.async_wait_for(kReplicationLag, use_nothrow_awaitable);
    if (ec) co_return;
    co_await replica_->async_call("/reg.Register/Write", std::move(value), {}, asio::use_awaitable);
  }

  SimHost& host_;
  std::unique_ptr<core::Channel> replica_;  // destroyed after server_: declared first
  core::Server server_;
  std::string value_;
};

class RegisterScenario {
 public:
  RegisterScenario(uint64_t seed, const ScenarioOptions& options, bool read_from_replica)
      : options_(options), sim_(seed, sim_options(options)), net_(sim_, link_with_loss(0.02)) {
    SimHost& replica = sim_.add_host("replica");
    replica.start(
        [this](SimHost& h) { return std::make_unique<RegisterProcess>(h, net_, std::nullopt); });
    SimHost& primary = sim_.add_host("primary");
    primary.start([this](SimHost& h) {
      return std::make_unique<RegisterProcess>(h, net_, transport::Address{"replica", kPort});
    });
    client_host_ = &sim_.add_host("c");
    writes_ = std::make_unique<core::Channel>(*client_host_, net_.host(*client_host_),
                                              transport::Address{"primary", kPort});
    reads_ = std::make_unique<core::Channel>(
        *client_host_, net_.host(*client_host_),
        transport::Address{read_from_replica ? "replica" : "primary", kPort});
  }

  ScenarioResult run() {
    const TimePoint end = sim_.now() + kRunTime;
    for (int client = 0; client < kClients; ++client) {
      asio::co_spawn(client_host_->pick_executor(), client_loop(client, end), asio::detached);
    }
    schedule_clogs(end);
    sim_.run_for(kRunTime + 2 * kCallTimeout);
    if (running_ != 0) result_.violations.push_back("a client is still inside an operation");
    const testing::LinearizabilityResult verdict =
        testing::check_linearizable(history_, testing::RegisterModel());
    if (!verdict.ok()) {
      result_.violations.push_back(
          "history of " + std::to_string(history_.size()) + " operations is " +
          std::string(testing::to_string(verdict.verdict)) + ": " + verdict.explanation);
    }
    finish_result(sim_, result_);
    return result_;
  }

 private:
  awaitable<void> client_loop(int client, TimePoint end) {
    ++running_;
    runtime::Random& random = sim_.random();
    for (int n = 0; client_host_->now() < end; ++n) {
      const bool write = random.bernoulli(0.5);
      const std::string value = "c" + std::to_string(client) + "-" + std::to_string(n);
      const testing::OpId id =
          history_.invoke(client, write ? Operation::write(value) : Operation::read());
      ++result_.operations;
      core::CallOptions options;
      options.timeout = kCallTimeout;
      core::Channel& channel = write ? *writes_ : *reads_;
      std::string method = write ? "/reg.Register/Write" : "/reg.Register/Read";
      Buffer request = write ? Buffer::copy_of(value) : Buffer();
      core::CallResult result = co_await channel.async_call(std::move(method), std::move(request),
                                                            options, asio::use_awaitable);
      if (!result.ok()) {
        // It may have taken effect (the request may have arrived): indeterminate.
        ++result_.failed_operations;
        history_.info(id);
      } else if (write) {
        history_.ok(id);
      } else {
        const std::string got = result.response.to_string();
        history_.ok(id, got.empty() ? Output::absent() : Output::value_of(got));
      }
      auto [ec] = co_await client_host_->async_wait_for(
          std::chrono::milliseconds(random.uniform_int(1, 20)), use_nothrow_awaitable);
      (void)ec;
    }
    --running_;
  }

  // Clogs between the client and the servers now and then: calls time out (indeterminate).
  void schedule_clogs(TimePoint end) {
    runtime::Random& random = sim_.random();
    for (TimePoint at = sim_.now() + 500ms; at < end;
         at += std::chrono::milliseconds(random.uniform_int(300, 1500))) {
      const bool to_primary = random.bernoulli(0.5);
      const Duration length = std::chrono::milliseconds(random.uniform_int(100, 800));
      sim_.schedule_at(at, [this, to_primary, length] {
        net_.clog("c", to_primary ? "primary" : "replica", length);
        if (options_.verbose)
          std::fprintf(stderr, "clog c -> %s\n", to_primary ? "primary" : "replica");
      });
    }
  }

  const ScenarioOptions options_;
  SimEnv sim_;
  transport::SimNetwork net_;
  SimHost* client_host_ = nullptr;
  std::unique_ptr<core::Channel> writes_;
  std::unique_ptr<core::Channel> reads_;
  History history_;
  int running_ = 0;
  ScenarioResult result_;
};

}  // namespace

Scenario register_scenario() {
  return Scenario{"register",
                  "a register read and written by 3 clients under loss and clogs: linearizable",
                  [](uint64_t seed, const ScenarioOptions& options) {
                    return RegisterScenario(seed, options, /*read_from_replica=*/false).run();
                  }};
}

Scenario buggy_register_scenario() {
  Scenario scenario{
      "register_stale_reads",
      "the register with reads served by a lagging replica: the checker must catch it",
      [](uint64_t seed, const ScenarioOptions& options) {
        return RegisterScenario(seed, options, /*read_from_replica=*/true).run();
      }};
  scenario.expect_violations = true;
  return scenario;
}

}  // namespace meshrpc::sim
