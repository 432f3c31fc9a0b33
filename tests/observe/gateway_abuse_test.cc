// The JSON gateway against hostile input (issue 12): bodies of deeply nested JSON get a 400
// that says so, for struct and protobuf methods alike, without a crash, a stack overflow or
// minutes of CPU, and the server answers on; bodies over the limit get 413 naming it; and the
// socket-free read_request() the fuzz target uses refuses what the server refuses. Over real
// TCP on 127.0.0.1.
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/protobuf.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/transport/errors.h"
#include "src/observe/json_gateway.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::observe {
namespace gateway_abuse_test {

// A tree as deep as the sender likes: the struct codec's JSON form nests one object and one
// array per level of children.
struct Nest {
  std::vector<Nest> children;
  std::vector<int32_t> values;
};
MESHRPC_STRUCT(Nest, (children, 1), (values, 2));

struct Depth {
  int32_t levels = 0;
};
MESHRPC_STRUCT(Depth, (levels, 1));

}  // namespace gateway_abuse_test

namespace {

using gateway_abuse_test::Depth;
using gateway_abuse_test::Nest;
using ::meshrpc::testing::IsOk;
using ::testing::HasSubstr;
namespace http = boost::beast::http;

constexpr char kNest[] = "/test.Abuse/Nest";
constexpr char kValue[] = "/test.Abuse/Value";
// Room for the hostile bodies below (100,000 and 60,000 bytes), and small enough that the
// over-limit test stays quick.
constexpr size_t kMaxBodyBytes = 256 << 10;
const std::string kTooDeep = "JSON nested too deeply: more than " +
                             std::to_string(detail::kMaxJsonDepth) +
                             " objects and arrays inside one another";

int32_t depth_of(const Nest& nest) {
  int32_t deepest = 0;
  for (const Nest& child : nest.children) deepest = std::max(deepest, depth_of(child));
  return deepest + 1;
}

// A Nest `levels` deep in JSON: 2 * levels - 1 objects and arrays inside one another, or
// 2 * levels with `values` (its array is one more level inside the innermost object).
std::string nest_json(int levels, bool values) {
  std::string json;
  for (int i = 1; i < levels; ++i) json += R"({"children":[)";
  json += values ? R"({"values":[7]})" : "{}";
  for (int i = 1; i < levels; ++i) json += "]}";
  return json;
}

std::string nested_objects(int levels) {
  std::string json;
  for (int i = 0; i < levels; ++i) json += R"({"a":)";
  json += "1";
  json += std::string(levels, '}');
  return json;
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: abuse-test\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: abuse-test\r\n\r\n";
}

struct Reply {
  unsigned status = 0;
  std::string meshrpc_status;  // the meshrpc-status header
  std::string body;
  bool keep_alive = false;

  std::string message() const {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(body, ec);
    if (ec || !value.is_object() || !value.as_object().contains("message")) return "";
    return std::string(value.as_object().at("message").as_string());
  }
};

class GatewayAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<codec::Server>(harness_.server_env(), harness_.server_network());
    server_->handle<Nest, Depth>(kNest,
                                 [](core::ServerContext&, const Nest& nest) -> Result<Depth> {
                                   return Depth{depth_of(nest)};
                                 });
    server_->handle<google::protobuf::Value, google::protobuf::Value>(
        kValue,
        [](core::ServerContext&, const google::protobuf::Value& value)
            -> Result<google::protobuf::Value> { return value; });
    HttpService::Options options;
    options.max_body_bytes = kMaxBodyBytes;
    http_ = HttpService::attach(*server_, options);
    auto address = server_->start(harness_.listen_address());
    ASSERT_THAT(address, IsOk());
    address_ = *address;
  }

  // Writes each of `requests` on one connection and reads its reply, in turn; stops early
  // when a reply closes the connection.
  Result<std::vector<Reply>> exchange(std::vector<std::string> requests) {
    std::vector<Reply> replies;
    Status run = harness_.run_client([&]() -> awaitable<Status> {
      auto ex = co_await asio::this_coro::executor;
      const transport::Address target = address_;
      auto [ec, stream] =
          co_await harness_.client_network().async_connect(target, ex, use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "connecting");
      boost::beast::flat_buffer buffer;
      for (const std::string& request : requests) {
        auto [write_ec, written] =
            co_await asio::async_write(*stream, asio::buffer(request), use_nothrow_awaitable);
        if (write_ec) co_return transport::to_status(write_ec, "writing a request");
        http::response_parser<http::string_body> parser;
        parser.body_limit(1 << 20);
        auto [read_ec, read] =
            co_await http::async_read(*stream, buffer, parser, use_nothrow_awaitable);
        if (read_ec) co_return transport::to_status(read_ec, "reading a reply");
        const auto& message = parser.get();
        Reply reply;
        reply.status = message.result_int();
        reply.meshrpc_status = std::string(message["meshrpc-status"]);
        reply.body = message.body();
        reply.keep_alive = message.keep_alive();
        replies.push_back(std::move(reply));
        if (!replies.back().keep_alive) break;
      }
      co_return Status();
    });
    if (!run.ok()) return run;
    return replies;
  }

  // The server still serves: /health on a fresh connection is 200.
  void expect_healthy() {
    Result<std::vector<Reply>> health = exchange({get("/health")});
    ASSERT_THAT(health, IsOk());
    ASSERT_EQ(health->size(), 1u);
    EXPECT_EQ(health->front().status, 200u) << health->front().body;
  }

  testing::TcpHarness harness_;
  std::unique_ptr<codec::Server> server_;
  std::shared_ptr<HttpService> http_;
  transport::Address address_;
};

// Each hostile body is answered with 400 on a connection that stays open, then /health is
// asked on the same connection: the session that read the body is alive and well.
void expect_too_deep_then_healthy(const Result<std::vector<Reply>>& replies,
                                  const std::string& method) {
  ASSERT_THAT(replies, IsOk());
  ASSERT_EQ(replies->size(), 2u) << "the 400 closed the connection";
  const Reply& refused = (*replies)[0];
  EXPECT_EQ(refused.status, 400u) << refused.body;
  EXPECT_EQ(refused.meshrpc_status, "INVALID_ARGUMENT");
  EXPECT_THAT(refused.message(), HasSubstr("request body for " + method + " is " + kTooDeep))
      << refused.body;
  EXPECT_TRUE(refused.keep_alive);
  EXPECT_EQ((*replies)[1].status, 200u) << (*replies)[1].body;
}

TEST_F(GatewayAbuseTest, HundredThousandOpenBracketsAre400NestedTooDeeply) {
  const std::string body(100'000, '[');
  Result<std::vector<Reply>> replies = exchange({post(kNest, body), get("/health")});
  expect_too_deep_then_healthy(replies, kNest);
  if (replies.ok() && !replies->empty()) {
    EXPECT_THAT(replies->front().message(), HasSubstr("(at byte 100)"));
  }
  expect_healthy();
}

TEST_F(GatewayAbuseTest, TenThousandNestedObjectsAre400NestedTooDeeply) {
  Result<std::vector<Reply>> replies =
      exchange({post(kNest, nested_objects(10'000)), get("/health")});
  expect_too_deep_then_healthy(replies, kNest);
  expect_healthy();
}

TEST_F(GatewayAbuseTest, NestingUpToTheLimitIsAcceptedAndOnePastIsNot) {
  static_assert(detail::kMaxJsonDepth % 2 == 0, "nest_json reaches even depths with values");
  const int levels = static_cast<int>(detail::kMaxJsonDepth / 2);
  // Exactly kMaxJsonDepth objects and arrays inside one another, then one more.
  Result<std::vector<Reply>> at_limit = exchange({post(kNest, nest_json(levels, true))});
  ASSERT_THAT(at_limit, IsOk());
  ASSERT_EQ(at_limit->size(), 1u);
  EXPECT_EQ(at_limit->front().status, 200u) << at_limit->front().body;
  EXPECT_EQ(at_limit->front().body, R"({"levels":)" + std::to_string(levels) + "}");

  Result<std::vector<Reply>> past_limit = exchange({post(kNest, nest_json(levels + 1, false))});
  ASSERT_THAT(past_limit, IsOk());
  ASSERT_EQ(past_limit->size(), 1u);
  EXPECT_EQ(past_limit->front().status, 400u);
  EXPECT_THAT(past_limit->front().message(), HasSubstr(kTooDeep)) << past_limit->front().body;
}

// Protobuf's JSON parser does not count arrays towards its depth limit and takes time
// quadratic in the depth of nested google.protobuf.Value lists: without the gateway's bound
// this request costs about a minute of CPU and then fails with "JSON transcoder produced
// invalid protobuf output" (or the harness's watchdog ends the test).
TEST_F(GatewayAbuseTest, DeepJsonForAProtobufMethodIsRefusedBeforeProtobufReadsIt) {
  const std::string lists = std::string(20'000, '[') + std::string(20'000, ']');
  Result<std::vector<Reply>> replies = exchange({post(kValue, lists), get("/health")});
  expect_too_deep_then_healthy(replies, kValue);

  Result<std::vector<Reply>> unclosed = exchange({post(kValue, std::string(100'000, '['))});
  ASSERT_THAT(unclosed, IsOk());
  ASSERT_EQ(unclosed->size(), 1u);
  EXPECT_EQ(unclosed->front().status, 400u);
  EXPECT_THAT(unclosed->front().message(), HasSubstr(kTooDeep)) << unclosed->front().body;

  // Shallow nesting still reaches protobuf and the method.
  Result<std::vector<Reply>> shallow = exchange({post(kValue, R"([[[1,"]]"]]])")});
  ASSERT_THAT(shallow, IsOk());
  ASSERT_EQ(shallow->size(), 1u);
  EXPECT_EQ(shallow->front().status, 200u) << shallow->front().body;
  EXPECT_EQ(shallow->front().body, R"([[[1,"]]"]]])");
}

TEST_F(GatewayAbuseTest, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string text = std::string(1000, '[') + R"(\"{{{)" + std::string(1000, '{');
  Result<std::vector<Reply>> replies = exchange({post(kValue, R"({"text":")" + text + R"("})")});
  ASSERT_THAT(replies, IsOk());
  ASSERT_EQ(replies->size(), 1u);
  EXPECT_EQ(replies->front().status, 200u) << replies->front().body;
}

TEST_F(GatewayAbuseTest, BodyOverTheLimitIs413NamingTheLimit) {
  const std::string expected =
      "request body exceeds max_body_bytes " + std::to_string(kMaxBodyBytes);
  // Refused on its Content-Length alone, before any of the body is sent.
  const std::string declared =
      "POST " + std::string(kNest) +
      " HTTP/1.1\r\nHost: abuse-test\r\nContent-Length: " + std::to_string(kMaxBodyBytes + 1) +
      "\r\n\r\n";
  // Chunked: refused at the chunk that would carry the body past the limit, which is the last
  // thing sent, so the server has read everything when it closes.
  const size_t half = kMaxBodyBytes / 2;
  std::ostringstream chunked;
  chunked << "POST " << kNest
          << " HTTP/1.1\r\nHost: abuse-test\r\nTransfer-Encoding: chunked\r\n\r\n"
          << std::hex << half << "\r\n"
          << std::string(half, ' ') << "\r\n"
          << (kMaxBodyBytes - half + 1) << "\r\n";
  for (const std::string& request : {declared, chunked.str()}) {
    SCOPED_TRACE(request.substr(0, request.find('\n')));
    Result<std::vector<Reply>> replies = exchange({request, get("/health")});
    ASSERT_THAT(replies, IsOk());
    ASSERT_EQ(replies->size(), 1u) << "the 413 kept the connection open";
    const Reply& refused = replies->front();
    EXPECT_EQ(refused.status, 413u) << refused.body;
    EXPECT_EQ(refused.meshrpc_status, "INVALID_ARGUMENT");
    EXPECT_EQ(refused.message(), expected) << refused.body;
    EXPECT_FALSE(refused.keep_alive);
  }
  expect_healthy();
}

// read_request() is what the fuzz target runs: for each of these requests it must refuse (or
// accept) exactly as the server does over TCP, with the same status and body. The sizes sit
// between Beast's default limits (8 KiB of header, 1 MiB of body) and the service's, so only
// the service's limits decide them.
TEST_F(GatewayAbuseTest, ReadRequestAnswersAsTheServerDoes) {
  const detail::SessionLimits limits{kMaxBodyBytes, HttpService::Options{}.max_header_bytes,
                                     HttpService::Options{}.idle_timeout};
  ASSERT_GT(limits.max_header_bytes, 10'000u);
  static constexpr char kNul[] = "GET /health HTTP/1.1\r\nX-Bad: a\0b\r\n\r\n";
  const std::vector<std::string> refused = {
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      std::string(kNul, sizeof kNul - 1),
      "GET /health HTTP/7.0\r\n\r\n",
      "POST /test.Abuse/Nest HTTP/1.1\r\nContent-Length: 300000\r\n\r\n",
      "GET /health HTTP/1.1\r\nX-Pad: " + std::string(20'000, 'p') + "\r\n\r\n",
      "GET http://[::1 HTTP/1.1\r\n\r\n",
  };
  for (const std::string& request : refused) {
    SCOPED_TRACE(request.substr(0, 40));
    detail::RequestRead read = detail::read_request(request, limits);
    ASSERT_FALSE(read.request.has_value());
    ASSERT_TRUE(read.refusal.has_value());
    // One byte per read, as a slow network may deliver it, changes nothing.
    detail::RequestRead trickled = detail::read_request(request, limits, 1);
    ASSERT_TRUE(trickled.refusal.has_value());
    EXPECT_EQ(trickled.refusal->body, read.refusal->body);

    Result<std::vector<Reply>> replies = exchange({request});
    ASSERT_THAT(replies, IsOk());
    ASSERT_EQ(replies->size(), 1u);
    EXPECT_EQ(replies->front().status, read.refusal->status);
    EXPECT_EQ(replies->front().body, read.refusal->body);
  }

  const std::string padded =
      "GET /health HTTP/1.1\r\nX-Pad: " + std::string(10'000, 'p') + "\r\n\r\n";
  detail::RequestRead accepted = detail::read_request(padded, limits);
  ASSERT_TRUE(accepted.request.has_value());
  EXPECT_EQ(accepted.request->headers.at("x-pad").size(), 10'000u);
  Result<std::vector<Reply>> health = exchange({padded});
  ASSERT_THAT(health, IsOk());
  ASSERT_EQ(health->size(), 1u);
  EXPECT_EQ(health->front().status, 200u) << health->front().body;

  detail::RequestRead good = detail::read_request(post(kNest, "{}"), limits, 3);
  ASSERT_TRUE(good.request.has_value());
  EXPECT_EQ(good.request->method, "POST");
  EXPECT_EQ(good.request->path, kNest);
  EXPECT_EQ(good.request->body, "{}");
  EXPECT_EQ(good.request->headers.at("content-type"), "application/json");
  // The bytes end before the request does: the session closes without an answer.
  detail::RequestRead cut =
      detail::read_request("POST /x HTTP/1.1\r\nContent-Length: 9\r\n\r\n{", limits);
  EXPECT_FALSE(cut.request.has_value());
  EXPECT_FALSE(cut.refusal.has_value());
}

}  // namespace
}  // namespace meshrpc::observe
