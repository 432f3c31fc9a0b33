// Trace context: the W3C traceparent format, and trace ids travelling through a handler to
// the calls it makes downstream.
#include "meshrpc/core/trace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/core/server_context.h"
#include "tests/support/log_capture.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesTheW3CExample) {
  std::optional<TraceParent> parsed = TraceParent::parse(kExample);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->trace_id.high, 0x4bf92f3577b34da6u);
  EXPECT_EQ(parsed->trace_id.low, 0xa3ce929d0e0e4736u);
  EXPECT_EQ(parsed->parent_id, 0x00f067aa0ba902b7u);
  EXPECT_EQ(parsed->flags, 0x01);
  EXPECT_EQ(parsed->trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->to_string(), kExample);
}

TEST(TraceParent, FormatsWithLeadingZeros) {
  TraceParent value{TraceId{0, 1}, 2, 0};
  EXPECT_EQ(value.to_string(), "00-00000000000000000000000000000001-0000000000000002-00");
  EXPECT_EQ(TraceParent::parse(value.to_string()), value);
  EXPECT_EQ(span_id_hex(0xab), "00000000000000ab");
}

TEST(TraceParent, AcceptsALaterVersionWithMoreFields) {
  auto parsed =
      TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->parent_id, 0x00f067aa0ba902b7u);
}

TEST(TraceParent, RejectsMalformedInput) {
  const char* cases[] = {
      "",
      "00",
      "garbage",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",     // short flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 has no more fields
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // no '-' after flags
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
      "00-4bf92f3577b34da6a3ce929d0e0e4736-+0f067aa0ba902b7-01",    // sign
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",  // trailing byte
  };
  for (const char* text : cases) {
    EXPECT_FALSE(TraceParent::parse(text).has_value()) << '"' << text << '"';
  }
  EXPECT_FALSE(TraceId::from_hex("0123").has_value());
}

TEST(TraceParent, SetReplacesEveryEntry) {
  Metadata metadata = {{"traceparent", "junk"}, {"user", "x"}, {"traceparent", "more junk"}};
  EXPECT_FALSE(find_traceparent(metadata).has_value());
  TraceParent value{TraceId{7, 8}, 9, 1};
  set_traceparent(metadata, value);
  EXPECT_EQ(metadata.size(), 2u);
  EXPECT_EQ(find_traceparent(metadata), value);
}

TEST(ServerContextTrace, ContinuesTheIncomingTrace) {
  testing::SimHarness harness(1);
  ServerContext context(harness.server_env(), "/test/A", {{"traceparent", std::string(kExample)}},
                        runtime::kInfiniteFuture, {});
  EXPECT_EQ(context.trace_id().to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(context.parent_span_id(), 0x00f067aa0ba902b7u);
  EXPECT_NE(context.span_id(), 0u);
  EXPECT_NE(context.span_id(), context.parent_span_id());
  const CallOptions child = context.child_call_options();
  EXPECT_EQ(find_traceparent(child.metadata),
            (TraceParent{context.trace_id(), context.span_id(), 0x01}));
}

TEST(ServerContextTrace, StartsAFreshTraceForAMalformedOne) {
  testing::SimHarness harness(1);
  ServerContext context(harness.server_env(), "/test/A", {{"traceparent", "00-nonsense"}},
                        runtime::kInfiniteFuture, {});
  EXPECT_TRUE(context.trace_id().valid());
  EXPECT_EQ(context.parent_span_id(), 0u);
  EXPECT_NE(context.span_id(), 0u);
  auto child = find_traceparent(context.child_call_options().metadata);
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(child->trace_id, context.trace_id());
}

// What one handler saw of its call.
struct Seen {
  std::optional<TraceParent> traceparent;  // as received
  TraceId trace_id;
  uint64_t span_id = 0;
  uint64_t parent_span_id = 0;
};

// The client calls /test/A, whose handler calls /test/B on a second server.
class TracePropagationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    downstream_server_ = std::make_unique<Server>(harness_.server_env(), harness_.server_network());
    downstream_server_->register_method(
        "/test/B", [this](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          b_ = see(ctx);
          co_return Buffer();
        });
    auto b_address = downstream_server_->start(harness_.listen_address());
    ASSERT_TRUE(b_address.ok()) << b_address.status();
    ChannelOptions downstream_options;
    downstream_options.rpcz = CallLogOptions{};  // client spans are off by default
    downstream_ = std::make_unique<Channel>(harness_.server_env(), harness_.server_network(),
                                            *b_address, downstream_options);
    server_ = std::make_unique<Server>(harness_.server_env(), harness_.server_network());
    server_->register_method(
        "/test/A", [this](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          a_ = see(ctx);
          CallOptions options = ctx.child_call_options();
          CallResult result =
              co_await downstream_->async_call("/test/B", Buffer(), options, asio::use_awaitable);
          co_return std::move(result).into_result();
        });
    server_->register_method("/test/Broken",
                             [](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                               co_return internal_error("disk on fire");
                             });
    auto a_address = server_->start(harness_.listen_address());
    ASSERT_TRUE(a_address.ok()) << a_address.status();
    ChannelOptions client_options;
    client_options.rpcz = CallLogOptions{};  // client spans are off by default
    client_ = std::make_unique<Channel>(harness_.client_env(), harness_.client_network(),
                                        *a_address, client_options);
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    downstream_.reset();
    downstream_server_.reset();
  }

  static Seen see(const ServerContext& ctx) {
    return Seen{find_traceparent(ctx.metadata()), ctx.trace_id(), ctx.span_id(),
                ctx.parent_span_id()};
  }

  Status call_a(CallOptions options, std::string method = "/test/A") {
    return harness_.run_client([&]() -> awaitable<Status> {
      CallResult result =
          co_await client_->async_call(method, Buffer(), options, asio::use_awaitable);
      co_return result.status;
    });
  }

  testing::SimHarness harness_{7};
  std::unique_ptr<Server> downstream_server_;
  std::unique_ptr<Channel> downstream_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> client_;
  Seen a_, b_;
};

TEST_F(TracePropagationTest, DownstreamCallSharesTheTraceWithANewParent) {
  CallOptions options;
  options.metadata.emplace_back("traceparent", std::string(kExample));
  ASSERT_THAT(call_a(options), IsOk());
  ASSERT_TRUE(a_.traceparent.has_value());
  ASSERT_TRUE(b_.traceparent.has_value());
  // The caller's trace id all the way down.
  EXPECT_EQ(a_.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(b_.trace_id, a_.trace_id);
  // Each hop is its own span: the client's channel sent a new span id in place of the
  // caller's, and B's parent is the downstream channel's attempt, not A's parent.
  EXPECT_NE(a_.parent_span_id, 0x00f067aa0ba902b7u);
  EXPECT_NE(b_.parent_span_id, a_.parent_span_id);
  EXPECT_NE(b_.parent_span_id, a_.span_id);
  EXPECT_NE(b_.span_id, a_.span_id);
  // The downstream channel's span names A's server span as its parent.
  ASSERT_NE(downstream_->call_log(), nullptr);
  const CallLogSnapshot spans = downstream_->call_log()->snapshot();
  ASSERT_EQ(spans.recent.size(), 1u);
  EXPECT_EQ(spans.recent[0].trace_id, a_.trace_id);
  EXPECT_EQ(spans.recent[0].span_id, b_.parent_span_id);
  EXPECT_EQ(spans.recent[0].parent_span_id, a_.span_id);
}

TEST(AttemptNumber, IsOneUnlessAValidNumberIsSent) {
  EXPECT_EQ(attempt_number({}), 1u);
  EXPECT_EQ(attempt_number({{"meshrpc-attempt", "2"}}), 2u);
  EXPECT_EQ(attempt_number({{"meshrpc-attempt", "17"}}), 17u);
  for (const char* bad : {"", "0", "-1", "2x", " 2", "99999999999", "4294967296"}) {
    EXPECT_EQ(attempt_number({{"meshrpc-attempt", bad}}), 1u) << '"' << bad << '"';
  }
}

TEST_F(TracePropagationTest, AFailedCallIsLoggedWithItsTraceId) {
  testing::LogCapture logs;
  CallOptions options;
  options.metadata.emplace_back("traceparent", std::string(kExample));
  EXPECT_THAT(call_a(options, "/test/Broken"), StatusIs(StatusCode::kInternal));
  // A bug-class failure is a warning naming the call, the status and the trace.
  EXPECT_EQ(logs.count("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"), 1) << logs.text();
  EXPECT_EQ(logs.count("call /test/Broken from"), 1) << logs.text();
  EXPECT_EQ(logs.count("disk on fire"), 1) << logs.text();
  EXPECT_EQ(logs.count("component=core"), 1) << logs.text();
}

TEST_F(TracePropagationTest, ACallWithoutTraceparentStartsATrace) {
  ASSERT_THAT(call_a({}), IsOk());
  ASSERT_TRUE(a_.traceparent.has_value());  // the client's channel created one
  EXPECT_TRUE(a_.trace_id.valid());
  EXPECT_EQ(a_.trace_id, a_.traceparent->trace_id);
  EXPECT_EQ(b_.trace_id, a_.trace_id);
  const CallLogSnapshot spans = client_->call_log()->snapshot();
  ASSERT_EQ(spans.recent.size(), 1u);
  EXPECT_EQ(spans.recent[0].parent_span_id, 0u);  // the root span
  EXPECT_EQ(spans.recent[0].span_id, a_.parent_span_id);
}

TEST_F(TracePropagationTest, EachAttemptGetsItsOwnSpanInTheSameTrace) {
  CallOptions options;
  options.metadata.emplace_back("traceparent", std::string(kExample));
  ASSERT_THAT(call_a(options), IsOk());
  const Seen first = a_;
  ASSERT_THAT(call_a(options), IsOk());  // a retry with the same options
  EXPECT_EQ(a_.trace_id, first.trace_id);
  EXPECT_NE(a_.parent_span_id, first.parent_span_id);
}

TEST_F(TracePropagationTest, MalformedTraceparentIsIgnoredNotAnError) {
  CallOptions options;
  options.metadata.emplace_back("traceparent", "00-not-a-trace");
  ASSERT_THAT(call_a(options), IsOk());
  EXPECT_TRUE(a_.trace_id.valid());
  EXPECT_EQ(b_.trace_id, a_.trace_id);
}

}  // namespace
}  // namespace meshrpc::core
