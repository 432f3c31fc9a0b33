// The adaptive concurrency limit on a core::Server under load, in virtual time: a server with
// a fixed capacity (calls share 8 workers, so latency grows with the calls in flight) is
// offered twice what it can serve, through a core::Channel. With the limit it sheds the
// excess before dispatch and keeps latency near its no-load level; without it every call
// queues. Also the server's hook itself (what it sheds, exempts and reports), and the limit
// shared by calls on several real io threads.
#include "meshrpc/cluster/adaptive_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::SimHarness;
using ::meshrpc::testing::StatusIs;
using runtime::Duration;
using ::testing::HasSubstr;

constexpr std::string_view kWork = "/load.Service/Work";
// The simulated server: 8 workers, 10 ms of work per call, shared among the calls in flight
// (a call admitted with n in flight takes 10 ms x max(1, n / 8)): 800 calls/s at most.
constexpr size_t kWorkers = 8;
constexpr Duration kServiceTime = 10ms;
// The offered load: 1,600 calls/s, twice the capacity, for 2 s.
constexpr Duration kCallInterval = 625us;
constexpr int kCalls = 3200;

struct LoadReport {
  int ok = 0;
  int shed = 0;  // RESOURCE_EXHAUSTED, rejected before dispatch
  int other = 0;
  std::vector<Duration> ok_latencies;  // end to end, at the client
  std::vector<std::string> other_statuses;

  Duration percentile(double q) const {
    if (ok_latencies.empty()) return Duration::zero();
    std::vector<Duration> sorted = ok_latencies;
    std::sort(sorted.begin(), sorted.end());
    const auto rank = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1));
    return sorted[rank];
  }
  Duration max() const { return percentile(1.0); }
};

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Makes the limit for a server on `env`; null: no limit.
using LimitFactory = std::function<std::shared_ptr<core::ConcurrencyLimit>(runtime::Env& env)>;

// A server of fixed capacity on a simulated host, and a channel calling it from another.
class LoadedServer {
 public:
  LoadedServer(uint64_t seed, const LimitFactory& make_limit) : harness_(seed) {
    core::ServerOptions options;
    // Every offered call reaches the server: the limit, not the stream cap, is under test.
    options.connection.limits.max_concurrent_streams = 100'000;
    if (make_limit) options.concurrency_limit = make_limit(harness_.server_env());
    server_ =
        std::make_unique<core::Server>(harness_.server_env(), harness_.server_network(), options);
    server_->register_method(
        std::string(kWork), [this](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          ++in_flight_;
          max_in_flight_ = std::max(max_in_flight_, in_flight_);
          const double load =
              std::max(1.0, static_cast<double>(in_flight_) / static_cast<double>(kWorkers));
          const auto work = std::chrono::duration_cast<Duration>(kServiceTime * load);
          auto [ec] = co_await ctx.env().async_wait_for(work, use_nothrow_awaitable);
          --in_flight_;
          if (ec) co_return cancelled_error("work interrupted");
          co_return Buffer();
        });
    auto address = server_->start(harness_.listen_address());
    EXPECT_TRUE(address.ok()) << address.status();
    core::ChannelOptions channel_options;
    // The connection allows the lower of both sides' stream caps: raise the client's too.
    channel_options.connection.limits.max_concurrent_streams = 100'000;
    channel_ = std::make_unique<core::Channel>(harness_.client_env(), harness_.client_network(),
                                               *address, channel_options);
  }

  // Offers kCalls calls of kWork, one every kCallInterval, and a health check every
  // `health_every` calls (0: none); waits for all of them.
  LoadReport offer_load(int health_every = 0) {
    LoadReport report;
    int done = 0;
    const int expected = kCalls + (health_every > 0 ? kCalls / health_every : 0);
    runtime::Env& env = harness_.client_env();
    auto on_result = [&](runtime::TimePoint started, CallKind kind) {
      return [&, started, kind](core::CallResult r) {
        ++done;
        if (kind == CallKind::kHealth) {
          health_results_.push_back(r.status);
          return;
        }
        if (r.ok()) {
          ++report.ok;
          report.ok_latencies.push_back(env.now() - started);
        } else if (r.status.code() == StatusCode::kResourceExhausted && r.not_processed) {
          ++report.shed;
          last_shed_ = r.status;
        } else {
          ++report.other;
          report.other_statuses.push_back(r.status.to_string());
        }
      };
    };
    Status run = harness_.run_client([&]() -> awaitable<Status> {
      for (int i = 0; i < kCalls; ++i) {
        channel_->async_call(std::string(kWork), Buffer(), {},
                             on_result(env.now(), CallKind::kWork));
        if (health_every > 0 && i % health_every == 0) {
          channel_->async_call(std::string(core::kHealthCheckMethod), Buffer(), {},
                               on_result(env.now(), CallKind::kHealth));
        }
        co_await env.async_wait_for(kCallInterval, use_nothrow_awaitable);
      }
      while (done < expected) co_await env.async_wait_for(1ms, use_nothrow_awaitable);
      co_return Status();
    });
    EXPECT_THAT(run, IsOk());
    return report;
  }

  size_t max_in_flight() const { return max_in_flight_; }
  const std::vector<Status>& health_results() const { return health_results_; }
  const Status& last_shed() const { return last_shed_; }

 private:
  enum class CallKind { kWork, kHealth };

  SimHarness harness_;
  size_t in_flight_ = 0;  // declared before the server: its handlers use them
  size_t max_in_flight_ = 0;
  std::vector<Status> health_results_;
  Status last_shed_;
  std::unique_ptr<core::Server> server_;
  std::unique_ptr<core::Channel> channel_;
};

TEST(AdaptiveLimit, IsOffByDefault) { EXPECT_EQ(core::ServerOptions{}.concurrency_limit, nullptr); }

// The same overload with the limit off and on: off, nothing is shed and calls queue for
// seconds; on, the excess is shed before dispatch and admitted calls stay fast, while the
// server still does about as much work as it can.
TEST(AdaptiveLimit, UnderOverloadShedsBeforeDispatchAndKeepsLatencyBounded) {
  LoadedServer unlimited(7, nullptr);
  const LoadReport off = unlimited.offer_load();

  std::shared_ptr<AdaptiveConcurrencyLimit> limit;
  LoadedServer limited(7, [&](runtime::Env& env) {
    limit = make_adaptive_concurrency_limit(env);
    return limit;
  });
  const LoadReport on = limited.offer_load();
  const AdaptiveLimitStats stats = limit->stats();

  std::printf(
      "limit off: %d ok, %d shed, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %zu in flight at most\n"
      "limit on:  %d ok, %d shed, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %zu in flight at most,"
      " final limit %zu, no-load latency %.2f ms, %llu probes\n",
      off.ok, off.shed, ms(off.percentile(0.5)), ms(off.percentile(0.99)), ms(off.max()),
      unlimited.max_in_flight(), on.ok, on.shed, ms(on.percentile(0.5)), ms(on.percentile(0.99)),
      ms(on.max()), limited.max_in_flight(), stats.limit, ms(stats.no_load_latency),
      static_cast<unsigned long long>(stats.probes));

  // Off: everything is served, late.
  EXPECT_EQ(off.ok, kCalls);
  EXPECT_EQ(off.shed, 0);
  EXPECT_GT(off.percentile(0.99), 500ms);

  // On: the excess is shed before dispatch, so a client may retry it elsewhere.
  EXPECT_EQ(on.other, 0) << ::testing::PrintToString(on.other_statuses);
  EXPECT_EQ(on.ok + on.shed, kCalls);
  EXPECT_GT(on.shed, kCalls / 4);
  EXPECT_EQ(stats.calls_shed, static_cast<uint64_t>(on.shed));
  EXPECT_THAT(limited.last_shed(),
              StatusIs(StatusCode::kResourceExhausted,
                       HasSubstr("server over its adaptive concurrency limit")));
  // Admitted calls stay near the 10 ms of work: at most about tolerance (1.5) x that plus the
  // network, and a small fraction of what the same load costs without the limit.
  EXPECT_LT(on.percentile(0.99), 30ms);
  EXPECT_LT(on.max(), 40ms);
  EXPECT_LT(on.percentile(0.99) * 20, off.percentile(0.99));
  // The server is kept busy, not starved: at least 3/4 of its capacity (1,600 calls in 2 s).
  EXPECT_GT(on.ok, 1200);
  EXPECT_LE(limited.max_in_flight(), 40u);
  EXPECT_EQ(stats.in_flight, 0u);
}

// Health checks ride through the same overload untouched: a server shedding load is alive.
TEST(AdaptiveLimit, HealthChecksAreNeverShed) {
  std::shared_ptr<AdaptiveConcurrencyLimit> limit;
  LoadedServer server(9, [&](runtime::Env& env) {
    limit = make_adaptive_concurrency_limit(env);
    return limit;
  });
  const LoadReport report = server.offer_load(/*health_every=*/10);
  EXPECT_GT(report.shed, 0);
  ASSERT_EQ(server.health_results().size(), static_cast<size_t>(kCalls / 10));
  for (const Status& status : server.health_results()) EXPECT_THAT(status, IsOk());
}

// On real threads (two io threads, each with its own connection and so its own share of the
// calls), bursts well past the limit: every call ends served or shed before dispatch, and
// every admitted call is released exactly once, whichever thread ran it.
TEST(AdaptiveLimit, ConcurrentCallsOnRealThreadsAreAllAccountedFor) {
  ::meshrpc::testing::TcpHarness harness;
  resilience::AdaptiveLimitOptions limit_options;
  limit_options.min_limit = 2;
  limit_options.initial_limit = 10;
  std::shared_ptr<AdaptiveConcurrencyLimit> limit =
      make_adaptive_concurrency_limit(harness.server_env(), limit_options);
  core::ServerOptions options;
  options.concurrency_limit = limit;
  {
    core::Server server(harness.server_env(), harness.server_network(), options);
    server.register_method(std::string(kWork),
                           [](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                             co_await ctx.env().async_wait_for(20ms, use_nothrow_awaitable);
                             co_return Buffer();
                           });
    auto address = server.start(harness.listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    core::Channel channel(harness.client_env(), harness.client_network(), *address);
    constexpr int kBursts = 5;
    constexpr int kBurstCalls = 50;
    std::atomic<int> ok{0};
    std::atomic<int> shed{0};
    std::atomic<int> other{0};
    auto burst_task = [&]() -> awaitable<Status> {
      runtime::Env& env = harness.client_env();
      for (int burst = 0; burst < kBursts; ++burst) {
        auto done = std::make_shared<std::atomic<int>>(0);
        for (int i = 0; i < kBurstCalls; ++i) {
          channel.async_call(std::string(kWork), Buffer(), {}, [&, done](core::CallResult r) {
            if (r.ok()) {
              ++ok;
            } else if (r.status.code() == StatusCode::kResourceExhausted && r.not_processed) {
              ++shed;
            } else {
              ++other;
            }
            ++*done;
          });
        }
        while (done->load() < kBurstCalls) {
          co_await env.async_wait_for(1ms, use_nothrow_awaitable);
        }
      }
      co_return Status();
    };
    ASSERT_THAT(
        harness.run({{&harness.client_env(), burst_task}, {&harness.client_env(), burst_task}}),
        IsOk());
    constexpr int kTotal = 2 * kBursts * kBurstCalls;
    EXPECT_EQ(ok + shed, kTotal);
    EXPECT_EQ(other, 0);
    EXPECT_GT(shed, 0);
    const AdaptiveLimitStats stats = limit->stats();
    EXPECT_EQ(stats.calls_admitted, static_cast<uint64_t>(ok.load()));
    EXPECT_EQ(stats.calls_shed, static_cast<uint64_t>(shed.load()));
  }
  EXPECT_EQ(limit->stats().in_flight, 0u);
}

// A limit that records what the server tells it, and admits while `admit` says so.
class RecordingLimit final : public core::ConcurrencyLimit {
 public:
  bool try_acquire() override {
    ++acquires;
    return admit;
  }
  void release(Duration latency, bool ok) override { releases.push_back({latency, ok}); }
  size_t limit() const override { return 7; }

  bool admit = true;
  int acquires = 0;
  struct Release {
    Duration latency;
    bool ok;
  };
  std::vector<Release> releases;
};

class ConcurrencyLimitHookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::ServerOptions options;
    options.concurrency_limit = limit_;
    server_ =
        std::make_unique<core::Server>(harness_.server_env(), harness_.server_network(), options);
    server_->register_method("/hook.T/Sleep",
                             [](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               co_await ctx.env().async_wait_for(30ms, use_nothrow_awaitable);
                               co_return Buffer::copy_of("slept");
                             });
    server_->register_method("/hook.T/Fail",
                             [](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               co_await ctx.env().async_wait_for(5ms, use_nothrow_awaitable);
                               co_return not_found_error("no such thing");
                             });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    channel_ =
        std::make_unique<core::Channel>(harness_.client_env(), harness_.client_network(), *address);
  }

  core::CallResult call(std::string method) {
    std::optional<core::CallResult> result;
    channel_->async_call(std::move(method), Buffer(), {},
                         [&](core::CallResult r) { result = std::move(r); });
    EXPECT_TRUE(harness_.sim().run_until([&] { return result.has_value(); }, 10s));
    return result.value_or(core::CallResult{});
  }

  SimHarness harness_{3};
  std::shared_ptr<RecordingLimit> limit_ = std::make_shared<RecordingLimit>();
  std::unique_ptr<core::Server> server_;
  std::unique_ptr<core::Channel> channel_;
};

TEST_F(ConcurrencyLimitHookTest, ReleasesEachAdmittedCallOnceWithItsLatencyAndOutcome) {
  EXPECT_THAT(call("/hook.T/Sleep").status, IsOk());
  EXPECT_THAT(call("/hook.T/Fail").status, StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(limit_->acquires, 2);
  ASSERT_EQ(limit_->releases.size(), 2u);
  EXPECT_EQ(limit_->releases[0].latency, 30ms);  // virtual time: the handler's exactly
  EXPECT_TRUE(limit_->releases[0].ok);
  EXPECT_EQ(limit_->releases[1].latency, 5ms);
  EXPECT_FALSE(limit_->releases[1].ok);
}

TEST_F(ConcurrencyLimitHookTest, ShedCallsAreResourceExhaustedBeforeDispatch) {
  limit_->admit = false;
  const core::CallResult result = call("/hook.T/Sleep");
  EXPECT_THAT(result.status, StatusIs(StatusCode::kResourceExhausted,
                                      HasSubstr("server over its adaptive concurrency limit 7")));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(limit_->acquires, 1);
  EXPECT_TRUE(limit_->releases.empty());
}

TEST_F(ConcurrencyLimitHookTest, HealthCheckIsNotAskedAbout) {
  limit_->admit = false;
  const core::CallResult result = call(std::string(core::kHealthCheckMethod));
  EXPECT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "SERVING");
  EXPECT_EQ(limit_->acquires, 0);
}

// Calls refused for other reasons (unknown method) never take a place under the limit.
TEST_F(ConcurrencyLimitHookTest, CallsRejectedEarlierAreNotCounted) {
  EXPECT_THAT(call("/hook.T/Missing").status, StatusIs(StatusCode::kUnimplemented));
  EXPECT_EQ(limit_->acquires, 0);
}

}  // namespace
}  // namespace meshrpc::cluster
