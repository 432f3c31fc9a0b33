// Scenario "streams" (the simulation issue's scenario 4): server streams from two hosts under
// segment loss, clogs, partitions, crashes and recoveries.
//
// Each stream asks for N numbered messages, which the server writes a few milliseconds
// apart. Invariants, for every stream:
//   - messages arrive in order, none duplicated or skipped ("0", "1", ... in sequence);
//   - a stream that ends cleanly has all N messages and a final OK: a broken stream ends with
//     an error, never silently short;
//   - it ends by its deadline;
//   - once the faults have stopped for a while, every stream completes.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "meshrpc/core/channel.h"
#include "meshrpc/core/stream.h"
#include "scenario.h"
#include "scenario_support.h"

namespace meshrpc::sim {
namespace {

using namespace std::chrono_literals;
using runtime::Duration;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;

constexpr uint16_t kPort = 7300;
constexpr int kServers = 2;
constexpr Duration kFaultPhase = 30s;
constexpr Duration kQuietPeriod = 20s;
constexpr Duration kStreamTimeout = 5s;

// Streams "0".."count-1", one every 1-5 ms, for a request holding the decimal count.
class CountingProcess final : public runtime::SimProcess {
 public:
  CountingProcess(SimHost& host, transport::SimNetwork& net)
      : host_(host), server_(host, net.host(host)) {
    server_.register_stream_method(
        "/sim.Count/Count",
        [this](core::ServerContext&, core::ServerStream& stream) { return count(stream); });
    auto bound = server_.start({host.name(), kPort});
    if (!bound.ok()) throw std::runtime_error(bound.status().to_string());
  }

 private:
  awaitable<Status> count(core::ServerStream& stream) {
    core::ReadResult request = co_await stream.async_read(asio::use_awaitable);
    if (!request.message) co_return invalid_argument_error("Count needs a request");
    const int total = std::stoi(request.message->to_string());
    for (int i = 0; i < total; ++i) {
      auto [ec] = co_await host_.async_wait_for(
          std::chrono::milliseconds(1 + host_.random_u64() % 5), use_nothrow_awaitable);
      if (ec) co_return cancelled_error("stopped");
      Buffer message = Buffer::copy_of(std::to_string(i));
      Status sent = co_await stream.async_write(std::move(message), asio::use_awaitable);
      if (!sent.ok()) co_return sent;
    }
    co_return Status();
  }

  SimHost& host_;
  core::Server server_;
};

class Streams {
 public:
  Streams(uint64_t seed, const ScenarioOptions& options)
      : options_(options),
        buggify_(buggify_seed(seed)),
        sim_(seed, sim_options(options, buggify_)),
        net_(sim_, link_with_loss(0.01)) {
    client_host_ = &sim_.add_host("c");
    for (int i = 0; i < kServers; ++i) {
      SimHost& host = sim_.add_host("s" + std::to_string(i));
      host.start([this](SimHost& h) { return std::make_unique<CountingProcess>(h, net_); });
      servers_.push_back(&host);
      channels_.push_back(std::make_unique<core::Channel>(*client_host_, net_.host(*client_host_),
                                                          transport::Address{host.name(), kPort}));
    }
  }

  ScenarioResult run() {
    const TimePoint quiet_at = sim_.now() + kFaultPhase;
    const TimePoint end = quiet_at + kQuietPeriod;
    for (int worker = 0; worker < 3; ++worker) {
      asio::co_spawn(client_host_->pick_executor(), stream_loop(quiet_at, end), asio::detached);
    }
    schedule_faults(quiet_at);
    sim_.run_for(end - sim_.now() + kStreamTimeout);
    if (running_ != 0) violation(std::to_string(running_) + " workers still inside a stream");
    if (quiet_streams_ == 0) violation("no stream started in the quiet period");
    finish_result(sim_, result_);
    return std::move(result_);
  }

 private:
  awaitable<void> stream_loop(TimePoint quiet_at, TimePoint end) {
    ++running_;
    runtime::Random& random = sim_.random();
    const TimePoint settled = quiet_at + kSettleTime;
    while (client_host_->now() < end) {
      const int server = static_cast<int>(random.uniform(kServers));
      const int total = static_cast<int>(random.uniform_int(1, 200));
      const TimePoint start = client_host_->now();
      const bool ok = co_await one_stream(*channels_[server], total, start);
      ++result_.operations;
      if (!ok) ++result_.failed_operations;
      if (start >= settled) {
        ++quiet_streams_;
        if (!ok) violation("a stream in the quiet period failed");
      }
      auto [ec] = co_await client_host_->async_wait_for(
          std::chrono::milliseconds(random.uniform_int(10, 300)), use_nothrow_awaitable);
      (void)ec;
    }
    --running_;
  }

  // Reads one stream of `total` messages and checks it; true when it completed.
  awaitable<bool> one_stream(core::Channel& channel, int total, TimePoint start) {
    core::StreamOptions options;
    options.call.timeout = kStreamTimeout;
    core::ClientStream stream = channel.open_stream("/sim.Count/Count", options);
    Buffer request = Buffer::copy_of(std::to_string(total));
    Status sent = co_await stream.async_write_last(std::move(request), asio::use_awaitable);
    int next = 0;
    for (;;) {
      core::ReadResult read = co_await stream.async_read(asio::use_awaitable);
      if (read.message) {
        const std::string got = read.message->to_string();
        if (got != std::to_string(next)) {
          violation("expected message " + std::to_string(next) + ", got " + got);
          co_return false;
        }
        ++next;
        continue;
      }
      check_deadline(start);
      if (read.error) {
        if (options_.verbose) {
          std::fprintf(stderr, "t=%.3f stream broke after %d/%d: %s\n",
                       seconds_of(client_host_->now()), next, total,
                       read.error->to_string().c_str());
        }
        co_return false;  // broken, and says so
      }
      // The end of the stream: it must be complete, with a final OK.
      Status final_status = co_await stream.async_finish(asio::use_awaitable);
      if (next != total) {
        violation("stream ended cleanly after " + std::to_string(next) + " of " +
                  std::to_string(total) + " messages (final " + final_status.to_string() + ")");
        co_return false;
      }
      if (!final_status.ok()) {
        violation("complete stream with final status " + final_status.to_string());
      }
      co_return sent.ok() && final_status.ok();
    }
  }

  void check_deadline(TimePoint start) {
    if (client_host_->now() - start > kStreamTimeout + kDeadlineSlack) {
      violation("a stream outlived its deadline");
    }
  }

  // A fault every 0.5-3 s until `quiet_at`, then everything heals and recovers.
  void schedule_faults(TimePoint quiet_at) {
    runtime::Random& random = sim_.random();
    for (TimePoint at = sim_.now() + 500ms; at < quiet_at;
         at += std::chrono::milliseconds(random.uniform_int(500, 3000))) {
      const int kind = static_cast<int>(random.uniform(5));
      SimHost* server = servers_[random.uniform(kServers)];
      const Duration clog = std::chrono::milliseconds(random.uniform_int(100, 2000));
      sim_.schedule_at(at, [this, kind, server, clog] {
        if (options_.verbose) {
          std::fprintf(stderr, "t=%.3f fault %d on %s\n", seconds_of(sim_.now()), kind,
                       server->name().c_str());
        }
        switch (kind) {
          case 0:
            sim_.fail_node(*server);
            break;
          case 1:
            sim_.recover_node(*server);
            break;
          case 2:
            net_.partition("c", server->name());
            break;
          case 3:
            net_.heal_partition("c", server->name());
            break;
          default:
            net_.clog(server->name(), "c", clog);
            break;
        }
      });
    }
    sim_.schedule_at(quiet_at, [this] {
      sim_.set_buggify(false);
      net_.heal_all();
      for (SimHost* server : servers_) sim_.recover_node(*server);
    });
  }

  void violation(std::string what) { record_violation(result_, sim_, std::move(what)); }

  const ScenarioOptions options_;
  const bool buggify_;  // BUGGIFY sites fire during the fault phase
  SimEnv sim_;
  transport::SimNetwork net_;
  SimHost* client_host_ = nullptr;
  std::vector<SimHost*> servers_;
  std::vector<std::unique_ptr<core::Channel>> channels_;
  int running_ = 0;
  uint64_t quiet_streams_ = 0;
  ScenarioResult result_;
};

}  // namespace

Scenario streams_scenario() {
  return Scenario{
      "streams", "server streams from 2 hosts under loss, clogs, partitions, crashes",
      [](uint64_t seed, const ScenarioOptions& options) { return Streams(seed, options).run(); }};
}

}  // namespace meshrpc::sim
