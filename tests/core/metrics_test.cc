// What Server and Channel record into a MetricRegistry, checked value by value after a known
// sequence of calls, on simulated links (deterministic: virtual time, one seed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <memory>
#include <string>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/core/stream.h"
#include "tests/support/metric_capture.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using ::meshrpc::testing::IsOk;

using ::meshrpc::testing::CapturingWriter;
using ::meshrpc::testing::collect;

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.metrics = &registry_;
    options.max_concurrent_calls = 1;  // a second call while /test/Slow runs is refused
    server_ = std::make_unique<Server>(harness_.server_env(), harness_.server_network(), options);
    server_->register_method(
        "/test/Echo",
        [](ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
    server_->register_method("/test/Fail", [](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
      co_return Status(StatusCode::kNotFound, "no such thing");
    });
    server_->register_method("/test/Slow",
                             [](ServerContext& ctx, Buffer request) -> awaitable<Result<Buffer>> {
                               co_await ctx.env().async_wait_for(1s, asio::use_awaitable);
                               co_return request;
                             });
    // Echoes each message, then sends "done!" once the client has finished writing.
    server_->register_stream_method(
        "/test/Chat", [](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          for (;;) {
            ReadResult in = co_await stream.async_read(asio::use_awaitable);
            if (in.error) co_return in.error->status;
            if (!in.message) break;
            Status sent = co_await stream.async_write(*std::move(in.message), asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
          co_return co_await stream.async_write(Buffer::copy_of("done!"), asio::use_awaitable);
        });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
    ChannelOptions channel_options;
    channel_options.metrics = &registry_;
    channel_ = std::make_unique<Channel>(harness_.client_env(), harness_.client_network(), address_,
                                         channel_options);
  }

  awaitable<CallResult> call(std::string method, std::string request, CallOptions options = {}) {
    co_return co_await channel_->async_call(std::move(method), Buffer::copy_of(request),
                                            std::move(options), asio::use_awaitable);
  }

  std::string server_key(std::string_view name, const std::string& method,
                         const std::string& code = "") const {
    MetricLabels labels = {{"method", method}};
    if (!code.empty()) labels.emplace_back("code", code);
    return CapturingWriter::key(std::string("meshrpc_server_") + std::string(name), labels);
  }
  std::string client_key(std::string_view name, const std::string& method,
                         const std::string& code = "") const {
    MetricLabels labels = {{"method", method}, {"endpoint", address_.to_string()}};
    if (!code.empty()) labels.emplace_back("code", code);
    return CapturingWriter::key(std::string("meshrpc_client_") + std::string(name), labels);
  }

  // The sequence of the test: 5 OK, 2 application errors, 1 unknown method, 1 refused by
  // max_concurrent_calls (while a slow call runs), 1 past its deadline.
  Status run_sequence() {
    return harness_.run_client([&]() -> awaitable<Status> {
      for (int i = 0; i < 5; ++i) {
        CallResult ok = co_await call("/test/Echo", "hello");
        if (!ok.ok()) co_return ok.status;
      }
      for (int i = 0; i < 2; ++i) {
        CallResult failed = co_await call("/test/Fail", "abc");
        if (failed.status.code() != StatusCode::kNotFound)
          co_return internal_error("want NOT_FOUND");
      }
      CallResult unknown = co_await call("/test/Missing", "");
      if (unknown.status.code() != StatusCode::kUnimplemented) {
        co_return internal_error("want UNIMPLEMENTED");
      }
      auto [slow, refused] = co_await (call("/test/Slow", "z") && call("/test/Echo", "xy"));
      if (!slow.ok()) co_return slow.status;
      if (refused.status.code() != StatusCode::kResourceExhausted) {
        co_return internal_error("want RESOURCE_EXHAUSTED, got " + refused.status.to_string());
      }
      CallOptions short_deadline;
      short_deadline.timeout = 100ms;
      CallResult late = co_await call("/test/Slow", "late", short_deadline);
      if (late.status.code() != StatusCode::kDeadlineExceeded) {
        co_return internal_error("want DEADLINE_EXCEEDED, got " + late.status.to_string());
      }
      co_return Status();
    });
  }

  testing::SimHarness harness_{11};
  MetricRegistry registry_;
  transport::Address address_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(MetricsTest, ServerCountsEveryCallByMethodAndCode) {
  ASSERT_THAT(run_sequence(), IsOk());
  harness_.sim().run_for(2s);  // the server hears of the abandoned call and ends it
  const CapturingWriter m = collect(registry_);

  EXPECT_EQ(m.at(server_key("calls_started_total", "/test/Echo")), 6);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Echo", "OK")), 5);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Echo", "RESOURCE_EXHAUSTED")), 1);
  EXPECT_EQ(m.at(server_key("calls_in_flight", "/test/Echo")), 0);
  EXPECT_EQ(m.at(server_key("call_duration_seconds_count", "/test/Echo")), 6);
  // 5 x "hello" and the refused "xy" were received; 5 x "hello" went back.
  EXPECT_EQ(m.at(server_key("request_bytes_total", "/test/Echo")), 27);
  EXPECT_EQ(m.at(server_key("response_bytes_total", "/test/Echo")), 25);

  EXPECT_EQ(m.at(server_key("calls_started_total", "/test/Fail")), 2);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Fail", "OK")), 0);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Fail", "NOT_FOUND")), 2);
  EXPECT_EQ(m.at(server_key("request_bytes_total", "/test/Fail")), 6);
  EXPECT_EQ(m.at(server_key("response_bytes_total", "/test/Fail")), 0);

  // The unknown method is counted under "other", never under the name the client sent.
  EXPECT_EQ(m.at(server_key("calls_started_total", "other")), 1);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "other", "UNIMPLEMENTED")), 1);
  EXPECT_EQ(m.at(server_key("calls_started_total", "/test/Missing")), -1);

  // One slow call finished OK after 1 s; the late one was abandoned by the client at its
  // deadline: the server ends it either when the client's CANCEL arrives (CANCELLED) or at
  // its own copy of the deadline (DEADLINE_EXCEEDED), whichever comes first on the link.
  EXPECT_EQ(m.at(server_key("calls_started_total", "/test/Slow")), 2);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Slow", "OK")), 1);
  const double cancelled =
      std::max(0.0, m.at(server_key("calls_finished_total", "/test/Slow", "CANCELLED")));
  const double expired =
      std::max(0.0, m.at(server_key("calls_finished_total", "/test/Slow", "DEADLINE_EXCEEDED")));
  EXPECT_EQ(cancelled + expired, 1);
  EXPECT_EQ(m.at(server_key("calls_in_flight", "/test/Slow")), 0);
  EXPECT_EQ(m.at(server_key("call_duration_seconds_count", "/test/Slow")), 2);
  // The health check is registered (and so exposed) but was not called.
  EXPECT_EQ(m.at(server_key("calls_started_total", std::string(kHealthCheckMethod))), 0);

  EXPECT_EQ(m.at("meshrpc_server_connections_accepted_total{protocol=meshrpc}"), 1);
  EXPECT_EQ(m.at("meshrpc_server_connections_accepted_total{protocol=http}"), 0);
  EXPECT_EQ(m.at("meshrpc_server_connections_open{protocol=meshrpc}"), 1);
  EXPECT_EQ(m.at("meshrpc_server_connections_closed_total{protocol=meshrpc}"), 0);
}

TEST_F(MetricsTest, ServerLatencyIsTheHandlersTimeInVirtualTime) {
  ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    CallResult slow = co_await call("/test/Slow", "z");
    co_return slow.status;
  }),
              IsOk());
  const CapturingWriter m = collect(registry_);
  // From the call's headers to its status: exactly the handler's 1 s wait.
  EXPECT_EQ(m.at(server_key("call_duration_seconds_sum", "/test/Slow")), 1e9);
}

TEST_F(MetricsTest, ClientCountsEveryCallByMethodEndpointAndCode) {
  ASSERT_THAT(run_sequence(), IsOk());
  const CapturingWriter m = collect(registry_);

  EXPECT_EQ(m.at(client_key("calls_started_total", "/test/Echo")), 6);
  EXPECT_EQ(m.at(client_key("calls_finished_total", "/test/Echo", "OK")), 5);
  EXPECT_EQ(m.at(client_key("calls_finished_total", "/test/Echo", "RESOURCE_EXHAUSTED")), 1);
  EXPECT_EQ(m.at(client_key("calls_in_flight", "/test/Echo")), 0);
  EXPECT_EQ(m.at(client_key("call_duration_seconds_count", "/test/Echo")), 6);
  EXPECT_EQ(m.at(client_key("request_bytes_total", "/test/Echo")), 27);
  EXPECT_EQ(m.at(client_key("response_bytes_total", "/test/Echo")), 25);

  EXPECT_EQ(m.at(client_key("calls_finished_total", "/test/Fail", "NOT_FOUND")), 2);
  // The client labels what it called: it chose the name, and the channel bounds how many.
  EXPECT_EQ(m.at(client_key("calls_finished_total", "/test/Missing", "UNIMPLEMENTED")), 1);

  EXPECT_EQ(m.at(client_key("calls_started_total", "/test/Slow")), 2);
  EXPECT_EQ(m.at(client_key("calls_finished_total", "/test/Slow", "OK")), 1);
  EXPECT_EQ(m.at(client_key("calls_finished_total", "/test/Slow", "DEADLINE_EXCEEDED")), 1);
  EXPECT_EQ(m.at(client_key("calls_in_flight", "/test/Slow")), 0);
  EXPECT_EQ(m.at(client_key("request_bytes_total", "/test/Slow")), 5);  // "z" + "late"

  const std::string endpoint = "{endpoint=" + address_.to_string() + "}";
  EXPECT_EQ(m.at("meshrpc_client_connections_opened_total" + endpoint), 1);
  EXPECT_EQ(m.at("meshrpc_client_connections_open" + endpoint), 1);
  EXPECT_EQ(m.at("meshrpc_client_connect_failures_total" + endpoint), 0);
}

TEST_F(MetricsTest, LocalCallsAreCountedLikeNetworkCalls) {
  ASSERT_THAT(
      harness_.run({{&harness_.server_env(),
                     [&]() -> awaitable<Status> {
                       LocalCall ok;
                       ok.method = "/test/Echo";
                       ok.request = Buffer::copy_of("four");
                       Result<Buffer> echoed = co_await server_->call_local(std::move(ok));
                       if (!echoed.ok()) co_return echoed.status();
                       LocalCall late;
                       late.method = "/test/Slow";
                       late.request = Buffer::copy_of("x");
                       late.deadline = server_->env().now() + 100ms;
                       Result<Buffer> expired = co_await server_->call_local(std::move(late));
                       if (expired.status().code() != StatusCode::kDeadlineExceeded) {
                         co_return internal_error("want DEADLINE_EXCEEDED");
                       }
                       LocalCall missing;
                       missing.method = "/test/Nope";
                       Result<Buffer> unknown = co_await server_->call_local(std::move(missing));
                       co_return unknown.status().code() == StatusCode::kUnimplemented
                           ? Status()
                           : internal_error("want UNIMPLEMENTED");
                     }}}),
      IsOk());
  const CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Echo", "OK")), 1);
  EXPECT_EQ(m.at(server_key("request_bytes_total", "/test/Echo")), 4);
  EXPECT_EQ(m.at(server_key("response_bytes_total", "/test/Echo")), 4);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Slow", "DEADLINE_EXCEEDED")), 1);
  // The server's deadline ended the handler: the latency is the deadline, exactly.
  EXPECT_EQ(m.at(server_key("call_duration_seconds_sum", "/test/Slow")), 1e8);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "other", "UNIMPLEMENTED")), 1);
  EXPECT_EQ(m.at(server_key("calls_in_flight", "/test/Slow")), 0);
}

TEST_F(MetricsTest, MessagesLargerThanTheWindowCountFlowControlStalls) {
  // Small calls never wait for window.
  ASSERT_THAT(run_sequence(), IsOk());
  const std::string server_stalls =
      CapturingWriter::key("meshrpc_server_flow_control_stalls_total", {});
  const std::string client_stalls = CapturingWriter::key("meshrpc_client_flow_control_stalls_total",
                                                         {{"endpoint", address_.to_string()}});
  EXPECT_EQ(collect(registry_).at(server_stalls), 0);
  EXPECT_EQ(collect(registry_).at(client_stalls), 0);
  // 3 MiB each way through a 1 MiB stream window: the request waits for the server's grants
  // and the reply for the client's, at least twice each (1 MiB goes per window).
  const std::string big(3 << 20, 'x');
  ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    CallResult echoed = co_await call("/test/Echo", big);
    if (!echoed.ok()) co_return echoed.status;
    if (echoed.response.size() != big.size()) co_return internal_error("short reply");
    co_return Status();
  }),
              IsOk());
  const CapturingWriter after = collect(registry_);
  EXPECT_GE(after.at(client_stalls), 2) << "the 3 MiB request waited for window";
  EXPECT_GE(after.at(server_stalls), 2) << "the 3 MiB reply waited for window";
  EXPECT_LE(after.at(client_stalls), 6);
  EXPECT_LE(after.at(server_stalls), 6);
}

TEST_F(MetricsTest, StreamMessagesCountAsBytesOfTheirMethodBothWays) {
  ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    ClientStream chat = channel_->open_stream("/test/Chat");
    for (std::string text : {"abc", "defgh"}) {
      Status sent = co_await chat.async_write(Buffer::copy_of(text), asio::use_awaitable);
      if (!sent.ok()) co_return sent;
    }
    Status done = co_await chat.async_writes_done(asio::use_awaitable);
    if (!done.ok()) co_return done;
    size_t received = 0;
    for (;;) {
      ReadResult in = co_await chat.async_read(asio::use_awaitable);
      if (in.error) co_return in.error->status;
      if (!in.message) break;
      received += in.message->size();
    }
    if (received != 13) co_return internal_error("want 13 bytes back");
    co_return co_await chat.async_finish(asio::use_awaitable);
  }),
              IsOk());
  const CapturingWriter m = collect(registry_);
  // 3 + 5 bytes written by the client; the same echoed and 5 more ("done!") by the server.
  EXPECT_EQ(m.at(server_key("request_bytes_total", "/test/Chat")), 8);
  EXPECT_EQ(m.at(server_key("response_bytes_total", "/test/Chat")), 13);
  EXPECT_EQ(m.at(client_key("request_bytes_total", "/test/Chat")), 8);
  EXPECT_EQ(m.at(client_key("response_bytes_total", "/test/Chat")), 13);
  EXPECT_EQ(m.at(server_key("calls_finished_total", "/test/Chat", "OK")), 1);
  EXPECT_EQ(m.at(CapturingWriter::key("meshrpc_server_streams_opened_total", {})), 1);
}

TEST_F(MetricsTest, ConnectionsAreCountedClosedWhenTheClientGoes) {
  ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
    CallResult ok = co_await call("/test/Echo", "hello");
    co_return ok.status;
  }),
              IsOk());
  channel_.reset();  // its collector goes with it; its connection closes
  harness_.sim().run_for(1s);
  const CapturingWriter m = collect(registry_);
  EXPECT_EQ(m.at("meshrpc_server_connections_accepted_total{protocol=meshrpc}"), 1);
  EXPECT_EQ(m.at("meshrpc_server_connections_closed_total{protocol=meshrpc}"), 1);
  EXPECT_EQ(m.at("meshrpc_server_connections_open{protocol=meshrpc}"), 0);
  EXPECT_EQ(m.at(client_key("calls_started_total", "/test/Echo")), -1);
  EXPECT_EQ(registry_.collector_count(), 2u);  // the registry's own and the server's
}

TEST(MetricsOffTest, NullRegistryRecordsNothing) {
  testing::SimHarness harness(3);
  MetricRegistry registry;
  ServerOptions options;
  options.metrics = nullptr;
  Server server(harness.server_env(), harness.server_network(), options);
  server.register_method(
      "/test/Echo",
      [](ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());
  ChannelOptions channel_options;
  channel_options.metrics = nullptr;
  Channel channel(harness.client_env(), harness.client_network(), *address, channel_options);
  EXPECT_THAT(harness.run_client([&]() -> awaitable<Status> {
    CallResult r =
        co_await channel.async_call("/test/Echo", Buffer::copy_of("x"), {}, asio::use_awaitable);
    co_return r.status;
  }),
              IsOk());
  EXPECT_EQ(registry.collector_count(), 1u);  // only the registry's own
  EXPECT_TRUE(collect(registry).values.empty());
}

TEST(MetricsRegistrationTest, ServerAndChannelUnregisterWhenDestroyed) {
  testing::SimHarness harness(5);
  MetricRegistry registry;
  ServerOptions options;
  options.metrics = &registry;
  auto server = std::make_unique<Server>(harness.server_env(), harness.server_network(), options);
  EXPECT_EQ(registry.collector_count(), 2u);
  ChannelOptions channel_options;
  channel_options.metrics = &registry;
  auto channel = std::make_unique<Channel>(harness.client_env(), harness.client_network(),
                                           transport::Address{"server", 1}, channel_options);
  EXPECT_EQ(registry.collector_count(), 3u);
  channel.reset();
  server.reset();
  EXPECT_EQ(registry.collector_count(), 1u);
}

}  // namespace
}  // namespace meshrpc::core
