// Protocol abuse against a real server, over TCP and simulated links: each limit of
// ConnectionOptions::peer_limits (and max_connections, max_connections_per_peer) is hit by a
// peer that speaks raw frames, gives a GOAWAY naming it and a metric, and leaves the server
// serving everyone else.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
#include "tests/support/backends.h"
#include "tests/support/metric_capture.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Frames a client writes: the preface and SETTINGS first, as a real client does.
class RawFrames {
 public:
  RawFrames() {
    bytes_.append_copy(wire::preface_view());
    encoder_.encode_settings(wire::settings_for(limits_), bytes_).ignore_error();
  }
  RawFrames& ping(uint64_t opaque) {
    encoder_.encode_ping(wire::Ping{false, opaque}, bytes_).ignore_error();
    return *this;
  }
  RawFrames& settings() {
    encoder_.encode_settings(wire::settings_for(limits_), bytes_).ignore_error();
    return *this;
  }
  // A unary call with an empty request (HEADERS with end of stream), then its CANCEL.
  RawFrames& call_and_cancel(uint64_t stream_id, const std::string& method) {
    wire::Headers headers;
    headers.method = method;
    encoder_.encode_headers(stream_id, wire::kFlagEndStream, headers, bytes_).ignore_error();
    encoder_.encode_cancel(stream_id, wire::Cancel{StatusCode::kCancelled, "gone"}, bytes_)
        .ignore_error();
    return *this;
  }
  RawFrames& window_update(uint64_t stream_id, uint32_t increment) {
    encoder_.encode_window_update(stream_id, {increment}, bytes_).ignore_error();
    return *this;
  }
  std::string bytes() const { return bytes_.to_string(); }

 private:
  wire::Limits limits_;
  wire::FrameEncoder encoder_{limits_};
  Buffer bytes_;
};

// What the server sent until it closed the connection.
struct ServerReply {
  std::vector<wire::GoAway> goaways;
  error_code end;  // eof or reset
};

awaitable<Status> send_and_read(transport::Network& network, transport::Address target,
                                std::string bytes, ServerReply& reply) {
  auto executor = co_await asio::this_coro::executor;
  auto [ec, raw] = co_await network.async_connect(target, executor, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "raw connect");
  // Written and read at once: the server answers (and may stop reading) as frames arrive.
  asio::async_write(*raw, asio::buffer(bytes), [](error_code, size_t) {});
  wire::FrameDecoder decoder(wire::Role::kClient, wire::Limits{});
  while (true) {
    Buffer input;
    std::span<char> space = input.prepare(16 * 1024);
    auto [read_ec, n] = co_await raw->async_read_some(asio::buffer(space.data(), space.size()),
                                                      use_nothrow_awaitable);
    if (read_ec) {
      reply.end = read_ec;
      break;
    }
    input.commit(n);
    decoder.feed(std::move(input));
    while (true) {
      auto frame = decoder.next();
      if (!frame.ok() || !frame->has_value()) break;
      if ((*frame)->header.type != wire::FrameType::kGoAway) continue;
      auto goaway = wire::decode_goaway(**frame);
      if (goaway.ok()) reply.goaways.push_back(*goaway);
    }
  }
  co_return Status();
}

class PeerLimitsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void start(ServerOptions options = {}) {
    harness_ = GetParam().make();
    options.metrics = &metrics_;
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network(),
                                       std::move(options));
    server_->register_method(
        "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok());
    address_ = *address;
  }
  ServerReply attack(std::string bytes) {
    ServerReply reply;
    EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
      return send_and_read(harness_->client_network(), address_, bytes, reply);
    }),
                IsOk());
    return reply;
  }
  // The server still serves a well-behaved client.
  void expect_serving() {
    Channel channel(harness_->client_env(), harness_->client_network(), address_);
    CallResult result;
    EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
      result =
          co_await channel.async_call("/test/Echo", Buffer::copy_of("hi"), {}, asio::use_awaitable);
      co_return Status();
    }),
                IsOk());
    EXPECT_TRUE(result.ok()) << result.status.to_string();
  }
  double metric(const std::string& key) { return testing::collect(metrics_).at(key); }

  MetricRegistry metrics_;
  std::unique_ptr<testing::TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  transport::Address address_;
};

MATCHER_P2(GoAwayIs, code, reason_part, "") {
  return arg.code == code && arg.reason.find(reason_part) != std::string::npos;
}

// Each flood is a little past its limit and small enough (a few KiB) to be read whole in one
// read: a server that closes a socket with unread bytes sends a reset, which may destroy the
// GOAWAY in flight before the client reads it (docs/security.md, "Not yet").
TEST_P(PeerLimitsTest, APingFloodIsCutOffWithAGoaway) {
  start();
  RawFrames frames;
  for (int i = 0; i < 150; ++i) frames.ping(i);
  ServerReply reply = attack(frames.bytes());
  ASSERT_THAT(reply.goaways,
              ::testing::ElementsAre(GoAwayIs(StatusCode::kResourceExhausted, "PING flood")));
  EXPECT_EQ(metric("meshrpc_server_peer_limits_hit_total{limit=ping_flood}"), 1);
  expect_serving();
}

TEST_P(PeerLimitsTest, PingsWithinTheLimitAreAnswered) {
  ServerOptions options;
  options.connection.peer_limits.pings = {.per_second = 1, .burst = 50};
  start(options);
  RawFrames frames;
  for (int i = 0; i < 50; ++i) frames.ping(i);
  frames.ping(50);  // one past the burst
  ServerReply reply = attack(frames.bytes());
  ASSERT_THAT(reply.goaways, ::testing::ElementsAre(GoAwayIs(StatusCode::kResourceExhausted,
                                                             "51 PINGs exceed the limit of 50")));
}

TEST_P(PeerLimitsTest, ASettingsFloodIsCutOffWithAGoaway) {
  start();
  RawFrames frames;
  for (int i = 0; i < 40; ++i) frames.settings();
  ServerReply reply = attack(frames.bytes());
  ASSERT_THAT(reply.goaways,
              ::testing::ElementsAre(GoAwayIs(StatusCode::kResourceExhausted, "SETTINGS flood")));
  EXPECT_EQ(metric("meshrpc_server_peer_limits_hit_total{limit=settings_flood}"), 1);
  expect_serving();
}

// HTTP/2's 'rapid reset': open a stream, cancel it, repeat. Each stream starts a handler the
// attacker never waits for. The handlers in flight stay within max_concurrent_streams (a
// cancelled call counts until its handler returns), and the flood itself is cut off.
TEST_P(PeerLimitsTest, RapidResetIsCutOffAndNeverRunsMoreThanTheStreamLimit) {
  ServerOptions options;
  options.connection.peer_limits.cancels = {.per_second = 10, .burst = 120};
  harness_ = GetParam().make();
  options.metrics = &metrics_;
  server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network(), options);
  int running = 0;
  int most_running = 0;
  server_->register_method("/test/Slow",
                           [&](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                             most_running = std::max(most_running, ++running);
                             // Until cancelled (the attacker cancels every call).
                             co_await ctx.env().async_wait_for(1s, use_nothrow_awaitable);
                             --running;
                             co_return Buffer();
                           });
  server_->register_method(
      "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
  auto address = server_->start(harness_->listen_address());
  ASSERT_TRUE(address.ok());
  address_ = *address;

  RawFrames frames;
  // 150 calls, past both the 120 cancels allowed and the 100 streams a connection may run.
  for (uint64_t id = 1; id <= 150; ++id) frames.call_and_cancel(id, "/test/Slow");
  ServerReply reply = attack(frames.bytes());
  ASSERT_THAT(reply.goaways,
              ::testing::ElementsAre(GoAwayIs(StatusCode::kResourceExhausted, "rapid reset")));
  EXPECT_EQ(metric("meshrpc_server_peer_limits_hit_total{limit=cancel_flood}"), 1);
  EXPECT_LE(most_running, static_cast<int>(options.connection.limits.max_concurrent_streams));
  expect_serving();
}

TEST_P(PeerLimitsTest, AWindowUpdatePastTheMaximumWindowClosesTheConnection) {
  start();
  RawFrames frames;
  frames.window_update(0, 0x7fffffff);  // on top of the initial window: past 2^31 - 1
  ServerReply reply = attack(frames.bytes());
  ASSERT_EQ(reply.goaways.size(), 1u);
  EXPECT_THAT(reply.goaways[0].reason, HasSubstr("would grow the window past 2147483647"));
  expect_serving();
}

TEST_P(PeerLimitsTest, ConnectionsPastMaxConnectionsAreToldWhy) {
  ServerOptions options;
  options.max_connections = 2;
  start(options);
  Channel first(harness_->client_env(), harness_->client_network(), address_);
  Channel second(harness_->client_env(), harness_->client_network(), address_);
  Channel third(harness_->client_env(), harness_->client_network(), address_);
  std::vector<CallResult> results;
  EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    for (Channel* channel : {&first, &second, &third}) {
      results.push_back(co_await channel->async_call("/test/Echo", Buffer::copy_of("hi"), {},
                                                     asio::use_awaitable));
    }
    co_return Status();
  }),
              IsOk());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].ok());
  EXPECT_EQ(results[2].status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(std::string(results[2].status.message()), HasSubstr("max_connections 2"));
  EXPECT_TRUE(results[2].not_processed);
  EXPECT_GE(metric("meshrpc_server_connections_refused_total{reason=max_connections}"), 1);
}

TEST_P(PeerLimitsTest, ConnectionsPastMaxConnectionsPerPeerAreToldWhy) {
  ServerOptions options;
  options.max_connections_per_peer = 1;
  start(options);
  Channel first(harness_->client_env(), harness_->client_network(), address_);
  Channel second(harness_->client_env(), harness_->client_network(), address_);
  CallResult ok;
  CallResult refused;
  EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    ok = co_await first.async_call("/test/Echo", Buffer::copy_of("hi"), {}, asio::use_awaitable);
    refused =
        co_await second.async_call("/test/Echo", Buffer::copy_of("hi"), {}, asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(refused.status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status.message()), HasSubstr("max_connections_per_peer 1"));
  EXPECT_GE(metric("meshrpc_server_connections_refused_total{reason=max_connections_per_peer}"), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, PeerLimitsTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core
