// The limits of ConnectionOptions::peer_limits that are about time, on virtual time: a peer
// that trickles bytes (slowloris), an idle connection, and the bytes a connection may hold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/wire/frame_decoder.h"
#include "meshrpc/wire/frame_encoder.h"
#include "meshrpc/wire/preface.h"
#include "meshrpc/wire/settings.h"
#include "tests/support/metric_capture.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::IsOk;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string preface_and_settings() {
  wire::Limits limits;
  wire::FrameEncoder encoder(limits);
  Buffer bytes;
  bytes.append_copy(wire::preface_view());
  encoder.encode_settings(wire::settings_for(limits), bytes).ignore_error();
  return bytes.to_string();
}

class PeerLimitsSimTest : public ::testing::Test {
 protected:
  void start(ServerOptions options) {
    options.metrics = &metrics_;
    server_ = std::make_unique<Server>(harness_.server_env(), harness_.server_network(),
                                       std::move(options));
    server_->register_method(
        "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
    server_->register_method("/test/Hold",
                             [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               co_await ctx.env().async_wait_for(10s, use_nothrow_awaitable);
                               co_return Buffer();
                             });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok());
    address_ = *address;
  }

  // Writes `bytes` one per second; records when the server closed the connection and the
  // GOAWAY reasons it sent before.
  struct Trickle {
    runtime::Duration closed_after{};
    std::vector<std::string> goaway_reasons;
  };
  Trickle trickle(const std::string& bytes) {
    Trickle result;
    runtime::Env& env = harness_.client_env();
    const runtime::TimePoint began = env.now();
    EXPECT_THAT(harness_.run_client([&]() -> awaitable<Status> {
      auto executor = co_await asio::this_coro::executor;
      auto [ec, stream] = co_await harness_.client_network().async_connect(address_, executor,
                                                                           use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "raw connect");
      std::shared_ptr<transport::ByteStream> raw = std::move(stream);
      bool closed = false;
      asio::co_spawn(
          executor,
          [&, raw]() -> awaitable<void> {
            wire::FrameDecoder decoder(wire::Role::kClient, wire::Limits{});
            std::array<char, 4096> space;
            while (true) {
              auto [read_ec, n] =
                  co_await raw->async_read_some(asio::buffer(space), use_nothrow_awaitable);
              if (read_ec) break;
              decoder.feed(Buffer::copy_of(std::string_view(space.data(), n)));
              while (true) {
                auto frame = decoder.next();
                if (!frame.ok() || !frame->has_value()) break;
                if ((*frame)->header.type != wire::FrameType::kGoAway) continue;
                if (auto goaway = wire::decode_goaway(**frame); goaway.ok()) {
                  result.goaway_reasons.push_back(goaway->reason);
                }
              }
            }
            result.closed_after = env.now() - began;
            closed = true;
          },
          asio::detached);
      for (size_t i = 0; i < bytes.size() && !closed; ++i) {
        co_await asio::async_write(*raw, asio::buffer(&bytes[i], 1), use_nothrow_awaitable);
        co_await env.async_wait_for(1s, use_nothrow_awaitable);
      }
      while (!closed) co_await env.async_wait_for(1s, use_nothrow_awaitable);
      co_return Status();
    }),
                IsOk());
    return result;
  }

  double metric(const std::string& key) { return testing::collect(metrics_).at(key); }

  testing::SimHarness harness_{17};
  MetricRegistry metrics_;
  std::unique_ptr<Server> server_;
  transport::Address address_;
};

TEST_F(PeerLimitsSimTest, APeerTricklingItsPrefaceIsDroppedAtTheFirstBytesTimeout) {
  ServerOptions options;
  options.first_bytes_timeout = 5s;
  start(options);
  Trickle result = trickle(std::string(wire::preface_view()));
  EXPECT_GE(result.closed_after, 5s);
  EXPECT_LT(result.closed_after, 7s);
  EXPECT_EQ(metric("meshrpc_server_connections_accepted_total{protocol=unrecognized}"), 1);
}

// After a prompt preface, its SETTINGS at a byte a second: the peer holds a frame half-sent,
// far under min_receive_bytes_per_second, and is cut off at the end of the window it fails.
TEST_F(PeerLimitsSimTest, APeerSendingOneBytePerSecondIsCutOff) {
  start({});
  std::string bytes = preface_and_settings();
  bytes += std::string(1000, '\0');  // more than the window lasts, whatever follows
  Trickle result = trickle(bytes);
  const runtime::Duration window = PeerLimits{}.slow_sender_window;
  EXPECT_LE(result.closed_after, 2 * window + 10s);
  ASSERT_EQ(result.goaway_reasons.size(), 1u);
  EXPECT_THAT(result.goaway_reasons[0], HasSubstr("peer too slow"));
  EXPECT_THAT(result.goaway_reasons[0], HasSubstr("min_receive_bytes_per_second 256"));
  EXPECT_EQ(metric("meshrpc_server_peer_limits_hit_total{limit=slow_sender}"), 1);
}

TEST_F(PeerLimitsSimTest, AnIdleConnectionIsClosedAndTheChannelReconnects) {
  ServerOptions options;
  options.connection.peer_limits.idle_timeout = 60s;
  start(options);
  Channel channel(harness_.client_env(), harness_.client_network(), address_);
  CallResult before;
  CallResult after;
  size_t connections_while_idle = 99;
  EXPECT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    before =
        co_await channel.async_call("/test/Echo", Buffer::copy_of("a"), {}, asio::use_awaitable);
    co_await harness_.client_env().async_wait_for(120s, use_nothrow_awaitable);
    connections_while_idle = server_->connection_count();
    after =
        co_await channel.async_call("/test/Echo", Buffer::copy_of("b"), {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_TRUE(before.ok());
  EXPECT_EQ(connections_while_idle, 0u);
  EXPECT_TRUE(after.ok()) << after.status.to_string();
  EXPECT_EQ(metric("meshrpc_server_peer_limits_hit_total{limit=idle}"), 1);
}

TEST_F(PeerLimitsSimTest, ACallInFlightKeepsTheConnectionFromIdling) {
  ServerOptions options;
  options.connection.peer_limits.idle_timeout = 4s;  // shorter than the 10 s call
  start(options);
  Channel channel(harness_.client_env(), harness_.client_network(), address_);
  CallResult result;
  EXPECT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    result = co_await channel.async_call("/test/Hold", Buffer(), {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(metric("meshrpc_server_peer_limits_hit_total{limit=idle}"), 0);
}

// Requests held by running handlers count toward max_pending_bytes: past it, new requests are
// refused (RESOURCE_EXHAUSTED, before dispatch) until the handlers finish.
TEST_F(PeerLimitsSimTest, RequestsPastMaxPendingBytesAreRefusedUntilHandlersFinish) {
  ServerOptions options;
  options.connection.peer_limits.max_pending_bytes = 4 << 20;
  start(options);
  Channel channel(harness_.client_env(), harness_.client_network(), address_);
  constexpr int kCalls = 8;
  std::vector<CallResult> results(kCalls);
  CallResult later;
  int done = 0;
  EXPECT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(executor,
                     channel.async_call("/test/Hold", Buffer::copy_of(std::string(1 << 20, 'x')),
                                        {}, asio::use_awaitable),
                     [&, i](std::exception_ptr, CallResult r) {
                       results[i] = std::move(r);
                       ++done;
                     });
    }
    while (done < kCalls) co_await harness_.client_env().async_wait_for(1s, use_nothrow_awaitable);
    later = co_await channel.async_call("/test/Hold", Buffer::copy_of(std::string(1 << 20, 'y')),
                                        {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  int ok = 0;
  int refused = 0;
  for (const CallResult& r : results) {
    if (r.ok()) {
      ++ok;
    } else {
      ++refused;
      EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.to_string();
      EXPECT_THAT(std::string(r.status.message()), HasSubstr("max_pending_bytes 4194304"));
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_LE(ok, 4);  // 4 MiB of 1 MiB requests
  EXPECT_EQ(ok + refused, kCalls);
  EXPECT_TRUE(later.ok()) << later.status.to_string();
  EXPECT_GE(metric("meshrpc_server_peer_limits_hit_total{limit=pending_bytes}"), kCalls - 4);
}

}  // namespace
}  // namespace meshrpc::core
