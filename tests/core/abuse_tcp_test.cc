// Hostile clients against a real server on 127.0.0.1 (issue 12's "must show"): thousands of
// idle sockets, a client trickling a byte a second, and a flood of maximum-size messages.
// Each prints what it measured; none asserts a speed, only that the limits hold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <iostream>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/wire/frame_encoder.h"
#include "meshrpc/wire/preface.h"
#include "meshrpc/wire/settings.h"
#include "tests/support/tcp_harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MESHRPC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MESHRPC_SANITIZED 1
#endif
#endif

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::IsOk;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Raises the soft (and, as root, the hard) limit on open files to `wanted`; false if the
// process may not have that many.
bool raise_open_file_limit(rlim_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= wanted) return true;
  if (limit.rlim_max < wanted) limit.rlim_max = wanted;  // allowed as root only
  limit.rlim_cur = wanted;
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

runtime::Duration percentile(std::vector<runtime::Duration> samples, double fraction) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  const size_t index = std::min(samples.size() - 1, static_cast<size_t>(fraction * samples.size()));
  return samples[index];
}

int64_t micros(runtime::Duration duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

// 2,000 sockets connect and never send a byte. The server closes each once first_bytes_timeout
// passes, and meanwhile a well-behaved client's calls all succeed within a 1 s deadline.
TEST(AbuseTcp, TwoThousandIdleConnectionsAreClosedWhileCallsSucceed) {
  constexpr int kIdle = 2000;
  if (!raise_open_file_limit(2 * kIdle + 512)) {
    GTEST_SKIP() << "cannot open " << 2 * kIdle << " files (RLIMIT_NOFILE)";
  }
  testing::TcpHarness harness;
  ServerOptions options;
  options.first_bytes_timeout = 3s;
  options.max_connections_per_peer = 2 * kIdle;  // every socket comes from 127.0.0.1
  Server server(harness.server_env(), harness.server_network(), options);
  server.register_method(
      "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());
  Channel channel(harness.client_env(), harness.client_network(), *address);

  std::atomic<int> idle_closed{0};
  std::atomic<int> closed_too_early{0};
  std::atomic<int64_t> slowest_close_us{0};
  std::atomic<bool> attack_done{false};
  std::vector<runtime::Duration> latencies;
  int calls_failed = 0;
  Status last_failure;
  runtime::Env& env = harness.client_env();
  auto attacker = [&]() -> awaitable<Status> {
    auto executor = co_await asio::this_coro::executor;
    std::vector<std::shared_ptr<transport::ByteStream>> sockets;
    for (int i = 0; i < kIdle; ++i) {
      auto [ec, stream] = co_await harness.client_network().async_connect(*address, executor,
                                                                          use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "idle connect " + std::to_string(i));
      std::shared_ptr<transport::ByteStream> shared = std::move(stream);
      sockets.push_back(shared);
      const runtime::TimePoint connected = env.now();
      shared->async_wait_readable([&, shared, connected](error_code) {
        const runtime::Duration lived = env.now() - connected;
        if (lived < options.first_bytes_timeout - 100ms) ++closed_too_early;
        int64_t us = micros(lived);
        int64_t seen = slowest_close_us.load();
        while (us > seen && !slowest_close_us.compare_exchange_weak(seen, us)) {
        }
        ++idle_closed;
      });
    }
    while (idle_closed.load() < kIdle) co_await env.async_wait_for(50ms, use_nothrow_awaitable);
    for (auto& socket : sockets) socket->close();
    attack_done = true;
    co_return Status();
  };
  auto good_client = [&]() -> awaitable<Status> {
    while (!attack_done.load()) {
      CallOptions call_options;
      call_options.timeout = 1s;
      const runtime::TimePoint began = env.now();
      CallResult result = co_await channel.async_call("/test/Echo", Buffer::copy_of("hello"),
                                                      call_options, asio::use_awaitable);
      latencies.push_back(env.now() - began);
      if (!result.ok()) {
        ++calls_failed;
        last_failure = result.status;
      }
      co_await env.async_wait_for(2ms, use_nothrow_awaitable);
    }
    co_return Status();
  };
  ASSERT_THAT(harness.run({{&env, attacker}, {&env, good_client}}), IsOk());

  EXPECT_EQ(idle_closed.load(), kIdle);
  EXPECT_EQ(closed_too_early.load(), 0);
  // Closed after the timeout, not long after: the server's timers keep up under the load.
  EXPECT_LT(slowest_close_us.load(), micros(options.first_bytes_timeout + 2s));
  EXPECT_EQ(calls_failed, 0) << last_failure.to_string();
  ASSERT_GT(latencies.size(), 100u);
  const runtime::Duration p50 = percentile(latencies, 0.50);
  const runtime::Duration p99 = percentile(latencies, 0.99);
  const runtime::Duration worst = percentile(latencies, 1.0);
  std::cout << "[ measured ] " << kIdle << " idle connections: " << latencies.size()
            << " calls, p50 " << micros(p50) << " us, p99 " << micros(p99) << " us, max "
            << micros(worst) << " us; slowest idle close after " << slowest_close_us.load() / 1000
            << " ms" << std::endl;
  ::testing::Test::RecordProperty("calls_p99_us", std::to_string(micros(p99)));
  EXPECT_LT(worst, 1s);
}

// A client that sends its SETTINGS a byte a second holds a frame half-sent: it is cut off at
// the end of the first slow_sender_window, with a GOAWAY that says why.
TEST(AbuseTcp, AClientSendingOneBytePerSecondIsCutOff) {
  testing::TcpHarness harness;
  ServerOptions options;
  options.connection.peer_limits.slow_sender_window = 2s;
  Server server(harness.server_env(), harness.server_network(), options);
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());

  wire::Limits limits;
  wire::FrameEncoder encoder(limits);
  Buffer settings;
  encoder.encode_settings(wire::settings_for(limits), settings).ignore_error();
  const std::string trickled = settings.to_string() + std::string(64, '\0');
  runtime::Env& env = harness.client_env();
  runtime::Duration cut_after{};
  std::string received;
  size_t bytes_sent = 0;
  ASSERT_THAT(harness.run_client([&]() -> awaitable<Status> {
    auto executor = co_await asio::this_coro::executor;
    auto [ec, stream] =
        co_await harness.client_network().async_connect(*address, executor, use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "connect");
    std::shared_ptr<transport::ByteStream> raw = std::move(stream);
    auto [preface_ec, preface_n] =
        co_await asio::async_write(*raw, asio::buffer(wire::preface_view()), use_nothrow_awaitable);
    if (preface_ec) co_return transport::to_status(preface_ec, "preface");
    const runtime::TimePoint began = env.now();
    auto closed = std::make_shared<bool>(false);
    asio::co_spawn(
        executor,
        [&, raw, closed]() -> awaitable<void> {
          std::array<char, 4096> space;
          while (true) {
            auto [read_ec, n] =
                co_await raw->async_read_some(asio::buffer(space), use_nothrow_awaitable);
            if (read_ec) break;
            received.append(space.data(), n);
          }
          cut_after = env.now() - began;
          *closed = true;
        },
        asio::detached);
    while (!*closed && bytes_sent < trickled.size()) {
      auto [write_ec, n] = co_await asio::async_write(*raw, asio::buffer(&trickled[bytes_sent], 1),
                                                      use_nothrow_awaitable);
      if (write_ec) break;
      bytes_sent += n;
      co_await env.async_wait_for(1s, use_nothrow_awaitable);
    }
    while (!*closed) co_await env.async_wait_for(100ms, use_nothrow_awaitable);
    raw->close();
    co_return Status();
  }),
              IsOk());
  std::cout << "[ measured ] a client sending 1 byte/s was cut off after "
            << micros(cut_after) / 1000 << " ms, having sent " << bytes_sent << " bytes"
            << std::endl;
  EXPECT_GE(cut_after, options.connection.peer_limits.slow_sender_window - 100ms);
  EXPECT_LT(cut_after, 2 * options.connection.peer_limits.slow_sender_window + 2s);
  EXPECT_LT(bytes_sent, trickled.size());
  EXPECT_THAT(received, HasSubstr("peer too slow"));
}

// The server's peak resident memory, from /proc (kB in VmHWM), or 0 if unreadable.
size_t peak_rss_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Runs a server in a child process (so that its memory is its own) until `stop_fd` closes;
// writes its port to `port_fd` first. Never returns.
[[noreturn]] void run_flooded_server(int port_fd, int stop_fd, const ServerOptions& options) {
  {
    runtime::RealEnv env(runtime::RealEnv::Options{.threads = 2});
    transport::TcpNetwork network(env);
    Server server(env, network, options);
    // Holds each request a while, as a handler doing real work would.
    server.register_method("/test/Hold",
                           [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                             co_await ctx.env().async_wait_for(100ms, use_nothrow_awaitable);
                             co_return Buffer();
                           });
    auto address = server.start({"127.0.0.1", 0});
    const uint16_t port = address.ok() ? address->port : 0;
    if (::write(port_fd, &port, sizeof port) != sizeof port) ::_exit(2);
    char ignored;
    while (::read(stop_fd, &ignored, 1) > 0) {
    }
  }
  ::_exit(0);
}

// Clients send maximum-size (4 MiB) requests as fast as the server takes them, over
// max_connections connections. The server refuses what would pass max_pending_bytes per
// connection, and its peak memory stays within 256 MiB + max_connections x max_pending_bytes.
TEST(AbuseTcp, AFloodOfMaximumSizeMessagesKeepsServerMemoryBounded) {
#ifdef MESHRPC_SANITIZED
  GTEST_SKIP() << "a sanitizer's shadow memory and quarantine are not the server's memory";
#endif
  constexpr size_t kConnections = 4;
  constexpr size_t kCallsPerConnection = 48;
  ServerOptions options;
  options.max_connections = kConnections;
  options.connection.peer_limits.max_pending_bytes = 16 << 20;
  const size_t message_bytes = options.connection.limits.max_message_bytes;
  int port_pipe[2];
  int stop_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  ASSERT_EQ(::pipe(stop_pipe), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(stop_pipe[1]);
    run_flooded_server(port_pipe[1], stop_pipe[0], options);
  }
  ::close(stop_pipe[0]);
  uint16_t port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ASSERT_NE(port, 0);

  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  Status other_status;
  {
    testing::TcpHarness harness;
    std::vector<std::unique_ptr<Channel>> channels;
    // A channel opens a connection per client I/O thread (2): kConnections in all.
    for (size_t i = 0; i < kConnections / 2; ++i) {
      channels.push_back(std::make_unique<Channel>(harness.client_env(), harness.client_network(),
                                                   transport::Address{"127.0.0.1", port}));
    }
    const Buffer request = Buffer::copy_of(std::string(message_bytes, 'f'));
    runtime::Env& env = harness.client_env();
    const runtime::TimePoint end = env.now() + 4s;
    std::vector<std::pair<runtime::Env*, testing::TransportHarness::Task>> tasks;
    for (size_t c = 0; c < channels.size(); ++c) {
      for (size_t i = 0; i < 2 * kCallsPerConnection; ++i) {
        tasks.emplace_back(&env, [&, c]() -> awaitable<Status> {
          while (env.now() < end) {
            CallResult result =
                co_await channels[c]->async_call("/test/Hold", request, {}, asio::use_awaitable);
            if (result.ok()) {
              ++accepted;
            } else if (result.status.code() == StatusCode::kResourceExhausted) {
              ++refused;
            } else {
              ++other;
              other_status = result.status;
              co_await env.async_wait_for(10ms, use_nothrow_awaitable);
            }
          }
          co_return Status();
        });
      }
    }
    EXPECT_THAT(harness.run(std::move(tasks)), IsOk());
  }
  const size_t peak = peak_rss_bytes(child);
  ::close(stop_pipe[1]);
  int wait_status = 0;
  ::waitpid(child, &wait_status, 0);
  const size_t bound =
      (size_t{256} << 20) + kConnections * options.connection.peer_limits.max_pending_bytes;
  std::cout << "[ measured ] flood of " << message_bytes << "-byte requests: " << accepted
            << " served, " << refused << " refused (RESOURCE_EXHAUSTED), " << other
            << " other; server peak RSS " << (peak >> 20) << " MiB, bound " << (bound >> 20)
            << " MiB" << std::endl;
  EXPECT_GT(accepted.load(), 0);
  EXPECT_GT(refused.load(), 0) << "the flood never reached max_pending_bytes";
  EXPECT_EQ(other.load(), 0) << other_status.to_string();
  ASSERT_GT(peak, 0u);
  EXPECT_LE(peak, bound);
}

}  // namespace
}  // namespace meshrpc::core
