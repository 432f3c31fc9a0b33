// The /rpcz page: a server's recent and slowest calls as JSON (and text), with its filters,
// for a server that served a known sequence of calls on simulated links.
#include "meshrpc/observe/rpcz_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <memory>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::observe {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";

class RpczPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::ServerOptions options;
    options.metrics = nullptr;
    server_ =
        std::make_unique<core::Server>(harness_.server_env(), harness_.server_network(), options);
    server_->register_method("/test/Echo",
                             [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> {
                               co_return request;
                             });
    server_->register_method("/test/Fail",
                             [](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               co_await ctx.env().async_wait_for(250ms, asio::use_awaitable);
                               co_return Status(StatusCode::kNotFound, "no such \"thing\"");
                             });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    core::ChannelOptions channel_options;
    channel_options.metrics = nullptr;
    channel_options.rpcz = core::CallLogOptions{};  // client spans are off by default
    channel_ = std::make_unique<core::Channel>(harness_.client_env(), harness_.client_network(),
                                               *address, channel_options);
    // Echo "hi" twice (the second in a known trace), then one Fail after 250 ms.
    ASSERT_THAT(harness_.run_client([&]() -> awaitable<Status> {
      core::CallResult a = co_await channel_->async_call("/test/Echo", Buffer::copy_of("hi"), {},
                                                         asio::use_awaitable);
      if (!a.ok()) co_return a.status;
      core::CallOptions traced;
      traced.metadata.emplace_back("traceparent",
                                   "00-" + std::string(kTrace) + "-00f067aa0ba902b7-01");
      // As cluster::Client marks a retry: the call's third attempt.
      traced.metadata.emplace_back(std::string(core::kAttemptMetadataKey), "3");
      core::CallResult b = co_await channel_->async_call("/test/Echo", Buffer::copy_of("hi"),
                                                         traced, asio::use_awaitable);
      if (!b.ok()) co_return b.status;
      core::CallResult c =
          co_await channel_->async_call("/test/Fail", Buffer(), {}, asio::use_awaitable);
      if (c.status.code() != StatusCode::kNotFound) co_return internal_error("want NOT_FOUND");
      co_return Status();
    }),
                IsOk());
  }

  HttpResponse get(std::map<std::string, std::string> query,
                   std::vector<const core::CallLog*> client_logs = {}) {
    PageHandler page = rpcz_page(*server_, std::move(client_logs));
    HttpRequest request;
    request.method = "GET";
    request.path = "/rpcz";
    request.query = std::move(query);
    HttpResponse response;
    EXPECT_THAT(harness_.run({{&harness_.server_env(),
                               [&]() -> awaitable<Status> {
                                 response = co_await page(request);
                                 co_return Status();
                               }}}),
                IsOk());
    return response;
  }

  static boost::json::array list(const HttpResponse& response, const char* name) {
    return boost::json::parse(response.body).as_object().at(name).as_array();
  }

  testing::SimHarness harness_{5, [] {
                                 transport::LinkConfig link;
                                 link.delay_min = link.delay_max = 1ms;
                                 return link;
                               }()};
  std::unique_ptr<core::Server> server_;
  std::unique_ptr<core::Channel> channel_;
};

TEST_F(RpczPageTest, ListsRecentCallsNewestFirstWithTheirFields) {
  const HttpResponse response = get({});
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "application/json");
  const boost::json::array recent = list(response, "recent");
  ASSERT_EQ(recent.size(), 3u);
  const boost::json::object& fail = recent[0].as_object();
  EXPECT_EQ(fail.at("side").as_string(), "server");
  EXPECT_EQ(fail.at("method").as_string(), "/test/Fail");
  EXPECT_EQ(fail.at("duration_us").as_int64(), 250'000);
  EXPECT_EQ(fail.at("code").as_string(), "NOT_FOUND");
  EXPECT_EQ(fail.at("code_number").as_int64(), 5);
  EXPECT_EQ(fail.at("message").as_string(), "no such \"thing\"");
  EXPECT_EQ(fail.at("trace_id").as_string().size(), 32u);
  EXPECT_EQ(fail.at("span_id").as_string().size(), 16u);
  EXPECT_EQ(fail.at("response_bytes").to_number<uint64_t>(), 0u);
  EXPECT_FALSE(fail.at("peer").as_string().empty());
  const boost::json::object& traced = recent[1].as_object();
  EXPECT_EQ(traced.at("method").as_string(), "/test/Echo");
  EXPECT_EQ(traced.at("code").as_string(), "OK");
  EXPECT_EQ(traced.at("trace_id").as_string(), kTrace);
  EXPECT_EQ(traced.at("request_bytes").to_number<uint64_t>(), 2u);
  EXPECT_EQ(traced.at("response_bytes").to_number<uint64_t>(), 2u);
  EXPECT_EQ(traced.at("attempt").to_number<uint32_t>(), 3u) << "a retry shows as such";
  EXPECT_EQ(fail.at("attempt").to_number<uint32_t>(), 1u);
  EXPECT_NE(recent[2].as_object().at("trace_id").as_string(), kTrace);
  const boost::json::array slowest = list(response, "slowest");
  ASSERT_EQ(slowest.size(), 3u);  // by method name: Echo, Echo, Fail
  EXPECT_EQ(slowest[2].as_object().at("method").as_string(), "/test/Fail");
}

TEST_F(RpczPageTest, FiltersByMethodTraceAndDuration) {
  EXPECT_EQ(list(get({{"method", "/test/Echo"}}), "recent").size(), 2u);
  EXPECT_EQ(list(get({{"method", "/test/None"}}), "recent").size(), 0u);
  const auto by_trace = list(get({{"trace_id", std::string(kTrace)}}), "recent");
  ASSERT_EQ(by_trace.size(), 1u);
  EXPECT_EQ(by_trace[0].as_object().at("method").as_string(), "/test/Echo");
  const auto slow = list(get({{"min_duration_ms", "100"}}), "recent");
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_EQ(slow[0].as_object().at("method").as_string(), "/test/Fail");
  EXPECT_EQ(list(get({{"min_duration_ms", "100"}}), "slowest").size(), 1u);
}

TEST_F(RpczPageTest, MergesClientSpans) {
  const auto recent =
      list(get({{"trace_id", std::string(kTrace)}}, {channel_->call_log()}), "recent");
  ASSERT_EQ(recent.size(), 2u);  // the client's attempt, then the server's span inside it
  EXPECT_EQ(recent[0].as_object().at("side").as_string(), "client");
  EXPECT_EQ(recent[1].as_object().at("side").as_string(), "server");
  EXPECT_EQ(recent[0].as_object().at("span_id"), recent[1].as_object().at("parent_span_id"));
}

TEST_F(RpczPageTest, TextFormatIsATable) {
  const HttpResponse response = get({{"format", "text"}, {"method", "/test/Fail"}});
  EXPECT_EQ(response.status, 200u);
  EXPECT_THAT(response.content_type, ::testing::StartsWith("text/plain"));
  EXPECT_THAT(response.body, ::testing::HasSubstr("recent calls, newest first (1)"));
  EXPECT_THAT(response.body, ::testing::HasSubstr("NOT_FOUND"));
  EXPECT_THAT(response.body, ::testing::HasSubstr("250000"));
  EXPECT_THAT(response.body, ::testing::Not(::testing::HasSubstr("/test/Echo")));
}

TEST_F(RpczPageTest, BadFiltersAreA400) {
  for (const auto& [key, value] : std::map<std::string, std::string>{
           {"format", "xml"}, {"trace_id", "abc"}, {"min_duration_ms", "-1"}}) {
    const HttpResponse response = get({{key, value}});
    EXPECT_EQ(response.status, 400u) << key << "=" << value;
    EXPECT_THAT(response.body, ::testing::HasSubstr(key));
  }
  EXPECT_THAT(parse_rpcz_query({{"min_duration_ms", "1x"}}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parse_rpcz_query({{"min_duration_ms", "nan"}}),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace meshrpc::observe
