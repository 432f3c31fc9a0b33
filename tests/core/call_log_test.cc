// CallLog: the recent and slowest calls a server and a channel keep for /rpcz, checked field
// by field on simulated links with a fixed delay (so durations are exact).
#include "meshrpc/core/call_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;

transport::LinkConfig fixed_delay() {
  transport::LinkConfig link;
  link.delay_min = 1ms;
  link.delay_max = 1ms;
  return link;
}

CallSpanView span(std::string_view method, runtime::TimePoint start, runtime::Duration duration,
                  StatusCode code = StatusCode::kOk) {
  CallSpanView view;
  view.method = method;
  view.start = start;
  view.end = start + duration;
  view.code = code;
  return view;
}

std::vector<std::string> methods_of(const std::vector<CallSpan>& spans) {
  std::vector<std::string> out;
  for (const auto& s : spans) out.push_back(s.method);
  return out;
}

std::vector<int64_t> millis_of(const std::vector<CallSpan>& spans) {
  std::vector<int64_t> out;
  for (const auto& s : spans) {
    out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(s.duration).count());
  }
  return out;
}

TEST(CallLog, KeepsTheNewestUpToCapacity) {
  testing::SimHarness harness(1);
  CallLog log(harness.server_env(), CallLogOptions{.recent_capacity = 3});
  const runtime::TimePoint t0 = harness.server_env().now();
  for (int i = 0; i < 5; ++i) {
    const std::string method = "/m/" + std::to_string(i);
    log.record(span(method, t0 + i * 1ms, 1ms));
  }
  EXPECT_THAT(methods_of(log.snapshot().recent), ::testing::ElementsAre("/m/4", "/m/3", "/m/2"));
}

TEST(CallLog, CopiesEveryField) {
  testing::SimHarness harness(1);
  CallLog log(harness.server_env());
  const transport::Address peer{"10.0.0.1", 4000};
  CallSpanView view = span("/m/A", harness.server_env().now(), 42ms, StatusCode::kNotFound);
  view.side = CallSpan::Side::kClient;
  view.peer = &peer;
  view.message = "no such key";
  view.trace_id = TraceId{1, 2};
  view.span_id = 3;
  view.parent_span_id = 4;
  view.request_bytes = 5;
  view.response_bytes = 6;
  log.record(view);
  const CallLogSnapshot snapshot = log.snapshot();
  ASSERT_EQ(snapshot.recent.size(), 1u);
  const CallSpan& s = snapshot.recent[0];
  EXPECT_EQ(s.side, CallSpan::Side::kClient);
  EXPECT_EQ(s.method, "/m/A");
  EXPECT_EQ(s.peer, peer);
  EXPECT_EQ(s.start, view.start);
  EXPECT_EQ(s.duration, 42ms);
  EXPECT_EQ(s.code, StatusCode::kNotFound);
  EXPECT_EQ(s.message, "no such key");
  EXPECT_EQ(s.trace_id, (TraceId{1, 2}));
  EXPECT_EQ(s.span_id, 3u);
  EXPECT_EQ(s.parent_span_id, 4u);
  EXPECT_EQ(s.request_bytes, 5u);
  EXPECT_EQ(s.response_bytes, 6u);
  ASSERT_EQ(snapshot.slowest.size(), 1u);
  EXPECT_EQ(snapshot.slowest[0].message, "no such key");
}

TEST(CallLog, SlowestAreKeptPerMethodSlowestFirst) {
  testing::SimHarness harness(1);
  CallLog log(harness.server_env(), CallLogOptions{.recent_capacity = 2, .slowest_per_method = 3});
  const runtime::TimePoint t0 = harness.server_env().now();
  for (int ms : {5, 50, 1, 20, 7, 30}) log.record(span("/m/A", t0, ms * 1ms));
  log.record(span("/m/B", t0, 2ms));
  const CallLogSnapshot snapshot = log.snapshot();
  EXPECT_THAT(methods_of(snapshot.slowest), ::testing::ElementsAre("/m/A", "/m/A", "/m/A", "/m/B"));
  EXPECT_THAT(millis_of(snapshot.slowest), ::testing::ElementsAre(50, 30, 20, 2));
}

TEST(CallLog, SlowestForgetsCallsOlderThanTwoWindows) {
  testing::SimHarness harness(1);
  runtime::Env& env = harness.server_env();
  CallLog log(env, CallLogOptions{.slowest_window = 10s});
  log.record(span("/m/A", env.now(), 900ms));
  ASSERT_THAT(harness.run({{&env,
                            [&]() -> awaitable<Status> {
                              co_await env.async_wait_for(11s, asio::use_awaitable);
                              // In the next window: the old call is still shown.
                              log.record(span("/m/A", env.now(), 1ms));
                              co_return Status();
                            }}}),
              IsOk());
  EXPECT_THAT(millis_of(log.snapshot().slowest), ::testing::ElementsAre(900, 1));
  ASSERT_THAT(harness.run({{&env,
                            [&]() -> awaitable<Status> {
                              co_await env.async_wait_for(10s, asio::use_awaitable);
                              log.record(span("/m/A", env.now(), 2ms));
                              co_return Status();
                            }}}),
              IsOk());
  EXPECT_THAT(millis_of(log.snapshot().slowest), ::testing::ElementsAre(2, 1));
}

class ServerCallLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.metrics = nullptr;  // the log works without metrics
    options.rpcz = CallLogOptions{.recent_capacity = 4, .slowest_per_method = 2};
    server_ = std::make_unique<Server>(harness_.server_env(), harness_.server_network(), options);
    server_->register_method(
        "/test/Echo",
        [](ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
    server_->register_method("/test/Fail", [](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
      co_return Status(StatusCode::kNotFound, "no such thing");
    });
    server_->register_method(
        "/test/Slow", [this](ServerContext& ctx, Buffer request) -> awaitable<Result<Buffer>> {
          trace_ = ctx.trace_id();
          co_await ctx.env().async_wait_for(1s, asio::use_awaitable);
          co_return request;
        });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    ChannelOptions channel_options;
    channel_options.rpcz = CallLogOptions{.recent_capacity = 64, .slowest_per_method = 4};
    channel_ = std::make_unique<Channel>(harness_.client_env(), harness_.client_network(), *address,
                                         channel_options);
  }

  Status call(std::string method, std::string request) {
    return harness_.run_client([&]() -> awaitable<Status> {
      CallResult result =
          co_await channel_->async_call(method, Buffer::copy_of(request), {}, asio::use_awaitable);
      co_return result.status;
    });
  }

  testing::SimHarness harness_{3, fixed_delay()};
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  TraceId trace_;
};

TEST_F(ServerCallLogTest, RecordsEachFinishedCallWithItsFields) {
  ASSERT_THAT(call("/test/Echo", "hello"), IsOk());
  ASSERT_EQ(call("/test/Fail", "abc").code(), StatusCode::kNotFound);
  ASSERT_EQ(call("/test/Missing", "").code(), StatusCode::kUnimplemented);
  ASSERT_THAT(call("/test/Slow", "zz"), IsOk());
  ASSERT_NE(server_->call_log(), nullptr);
  const CallLogSnapshot snapshot = server_->call_log()->snapshot();
  ASSERT_THAT(methods_of(snapshot.recent),
              ::testing::ElementsAre("/test/Slow", "/test/Missing", "/test/Fail", "/test/Echo"));
  const CallSpan& slow = snapshot.recent[0];
  EXPECT_EQ(slow.side, CallSpan::Side::kServer);
  EXPECT_EQ(slow.code, StatusCode::kOk);
  EXPECT_EQ(slow.duration, 1s);  // the handler's wait, on the server's clock
  EXPECT_EQ(slow.request_bytes, 2u);
  EXPECT_EQ(slow.response_bytes, 2u);
  EXPECT_EQ(slow.trace_id, trace_);
  EXPECT_TRUE(slow.trace_id.valid());
  EXPECT_NE(slow.span_id, 0u);
  EXPECT_EQ(slow.peer.host, dynamic_cast<runtime::SimHost&>(harness_.client_env()).name());
  const CallSpan& missing = snapshot.recent[1];
  EXPECT_EQ(missing.code, StatusCode::kUnimplemented);
  EXPECT_EQ(missing.message, "method /test/Missing is not registered");
  const CallSpan& fail = snapshot.recent[2];
  EXPECT_EQ(fail.code, StatusCode::kNotFound);
  EXPECT_EQ(fail.message, "no such thing");
  EXPECT_EQ(fail.request_bytes, 3u);
  EXPECT_EQ(fail.response_bytes, 0u);
  // The client's span of the same call: the same trace, the server's parent.
  const CallLogSnapshot client = channel_->call_log()->snapshot();
  ASSERT_EQ(client.recent.size(), 4u);
  EXPECT_EQ(client.recent[0].side, CallSpan::Side::kClient);
  EXPECT_EQ(client.recent[0].trace_id, slow.trace_id);
  EXPECT_EQ(client.recent[0].span_id, slow.parent_span_id);
  EXPECT_EQ(client.recent[0].duration, 1s + 2ms);  // plus one link delay each way
  EXPECT_EQ(client.recent[0].peer, channel_->target());
}

TEST_F(ServerCallLogTest, RecentIsBoundedAndSlowestKeepsTheSlowest) {
  ASSERT_THAT(call("/test/Slow", "a"), IsOk());
  for (int i = 0; i < 6; ++i) ASSERT_THAT(call("/test/Echo", "b"), IsOk());
  const CallLogSnapshot snapshot = server_->call_log()->snapshot();
  EXPECT_EQ(snapshot.recent.size(), 4u);  // recent_capacity
  EXPECT_THAT(methods_of(snapshot.recent), ::testing::Each("/test/Echo"));
  ASSERT_FALSE(snapshot.slowest.empty());
  EXPECT_EQ(snapshot.slowest.size(), 3u);  // 2 Echo, 1 Slow
  EXPECT_EQ(snapshot.slowest[2].method, "/test/Slow");
  EXPECT_EQ(snapshot.slowest[2].duration, 1s);
}

TEST(ServerCallLog, OffWhenRpczIsUnset) {
  testing::SimHarness harness(1);
  ServerOptions options;
  options.rpcz = std::nullopt;
  Server server(harness.server_env(), harness.server_network(), options);
  EXPECT_EQ(server.call_log(), nullptr);
}

}  // namespace
}  // namespace meshrpc::core
