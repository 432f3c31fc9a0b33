// HttpService end to end: HTTP/1.1 on a meshrpc server's own port, spoken by a Boost.Beast
// client over the harness's network and by the real curl binary. The JSON gateway, /health,
// /services, pages, limits, garbage, shutdown, and the meshrpc protocol beside HTTP on the same
// port; the idle keep-alive timeout in virtual time on SimEnv.
#include "meshrpc/observe/http_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/transport/errors.h"
#include "tests/support/sim_harness.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::observe {
namespace http_test {

struct SayArgs {
  std::string text;
  int32_t times = 1;
};
MESHRPC_STRUCT(SayArgs, (text, 1), (times, 2));

struct SayReply {
  std::string text;
};
MESHRPC_STRUCT(SayReply, (text, 1));

}  // namespace http_test

namespace {

using namespace std::chrono_literals;
using http_test::SayArgs;
using http_test::SayReply;
using ::meshrpc::testing::IsOk;
using ::testing::HasSubstr;
namespace http = boost::beast::http;

constexpr char kSay[] = "/test.Echo/Say";

struct HttpReply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // The server ended the connection after this reply (read eof or reset).
  bool closed = false;

  std::string header(const std::string& name) const {
    auto found = headers.find(name);
    return found == headers.end() ? "" : found->second;
  }
  boost::json::object json() const {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(body, ec);
    return !ec && value.is_object() ? value.as_object() : boost::json::object();
  }
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

http::request<http::string_body> make_request(http::verb verb, const std::string& target,
                                              const std::string& body, const Headers& headers) {
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, "meshrpc-test");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  if (verb == http::verb::post) request.set(http::field::content_type, "application/json");
  request.prepare_payload();
  return request;
}

// Reads one response; if the server closes after it, `closed` says so (checked only when the
// response asked to close, so a keep-alive reply does not wait).
awaitable<Result<HttpReply>> read_reply(transport::ByteStream& stream,
                                        boost::beast::flat_buffer& buffer) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 << 20);
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "reading the HTTP response");
  HttpReply reply;
  const auto& message = parser.get();
  reply.status = message.result_int();
  for (const auto& field : message) {
    reply.headers[lower(std::string(field.name_string()))] = std::string(field.value());
  }
  reply.body = message.body();
  if (!message.keep_alive()) {
    char byte;
    auto [end, read] =
        co_await stream.async_read_some(asio::buffer(&byte, 1), use_nothrow_awaitable);
    reply.closed = end == asio::error::eof || end == asio::error::connection_reset;
  }
  co_return reply;
}

awaitable<Result<HttpReply>> exchange(transport::ByteStream& stream,
                                      boost::beast::flat_buffer& buffer,
                                      http::request<http::string_body> request) {
  auto [ec, n] = co_await http::async_write(stream, request, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "writing the HTTP request");
  co_return co_await read_reply(stream, buffer);
}

// --- curl ---------------------------------------------------------------------------------

constexpr char kCurl[] = "/usr/bin/curl";

bool have_curl() { return std::filesystem::exists(kCurl); }

std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Runs curl with `args` (plus -sS -i) and parses what it printed; nullopt if it did not run.
std::optional<HttpReply> run_curl(const std::vector<std::string>& args) {
  std::string command = std::string(kCurl) + " -sS -i --max-time 30";
  for (const auto& arg : args) command += " " + shell_quote(arg);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  char chunk[4096];
  while (size_t n = fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  if (pclose(pipe) != 0) {
    ADD_FAILURE() << "curl failed: " << command << "\n" << output;
    return std::nullopt;
  }
  const size_t end = output.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  HttpReply reply;
  reply.body = output.substr(end + 4);
  std::string head = output.substr(0, end + 2);
  size_t line_end = head.find("\r\n");
  reply.status = std::stoul(head.substr(head.find(' ') + 1, 3));
  for (size_t at = line_end + 2; at < head.size(); at = line_end + 2) {
    line_end = head.find("\r\n", at);
    std::string line = head.substr(at, line_end - at);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    reply.headers[lower(line.substr(0, colon))] = value;
  }
  return reply;
}

// --- the server ---------------------------------------------------------------------------

// Registers the typed test service: Say (repeats text; echoes metadata "k" as response
// metadata "echo"), Slow (waits for its deadline), Raw (raw bytes).
void add_test_methods(codec::Server& server) {
  server.handle<SayArgs, SayReply>(
      kSay,
      [](core::ServerContext& ctx, const SayArgs& args) -> Result<SayReply> {
        if (args.times < 0) return invalid_argument_error("times is negative");
        if (const std::string* k = core::find_metadata(ctx.metadata(), "k")) {
          ctx.response_metadata().emplace_back("echo", *k);
        }
        SayReply reply;
        for (int32_t i = 0; i < args.times; ++i) reply.text += args.text;
        return reply;
      },
      {.idempotency = core::Idempotency::kNoSideEffects});
  server.handle<SayArgs, SayReply>(
      "/test.Echo/Slow",
      [](core::ServerContext& ctx, const SayArgs&) -> awaitable<Result<SayReply>> {
        co_await ctx.env().async_wait_for(20s, use_nothrow_awaitable);
        co_return SayReply{"late"};
      });
  server.register_method(
      "/test.Echo/Raw",
      [](core::ServerContext&, Buffer b) -> awaitable<Result<Buffer>> { co_return b; });
}

class HttpServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<testing::TcpHarness>();
    server_ = std::make_unique<codec::Server>(harness_->server_env(), harness_->server_network());
    add_test_methods(*server_);
    HttpService::Options options;
    options.max_body_bytes = 4096;
    options.max_header_bytes = 2048;
    http_ = HttpService::attach(*server_, options);
    http_->add_page("/hello", [](const HttpRequest& request) -> awaitable<HttpResponse> {
      HttpResponse response;
      response.content_type = "text/plain";
      response.body = "hello " + (request.query.count("name") ? request.query.at("name") : "");
      co_return response;
    });
    auto address = server_->start(harness_->listen_address());
    ASSERT_THAT(address, IsOk());
    address_ = *address;
  }

  void TearDown() override {
    http_.reset();
    server_.reset();
    harness_.reset();
  }

  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(address_.port) + target;
  }

  // One request on a fresh connection.
  Result<HttpReply> fetch(http::verb verb, const std::string& target, const std::string& body = "",
                          const Headers& headers = {}) {
    Result<HttpReply> reply = internal_error("not run");
    Status run = harness_->run_client([&]() -> awaitable<Status> {
      auto ex = co_await asio::this_coro::executor;
      const transport::Address target_address = address_;
      auto [ec, stream] = co_await harness_->client_network().async_connect(target_address, ex,
                                                                            use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "connect");
      boost::beast::flat_buffer buffer;
      auto request = make_request(verb, target, body, headers);
      reply = co_await exchange(*stream, buffer, std::move(request));
      co_return Status();
    });
    if (!run.ok()) return run;
    return reply;
  }

  // Writes `bytes` raw on a fresh connection and reads the one response.
  Result<HttpReply> send_raw(const std::string& bytes) {
    Result<HttpReply> reply = internal_error("not run");
    Status run = harness_->run_client([&]() -> awaitable<Status> {
      auto ex = co_await asio::this_coro::executor;
      const transport::Address target_address = address_;
      auto [ec, stream] = co_await harness_->client_network().async_connect(target_address, ex,
                                                                            use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "connect");
      co_await asio::async_write(*stream, asio::buffer(bytes), use_nothrow_awaitable);
      boost::beast::flat_buffer buffer;
      reply = co_await read_reply(*stream, buffer);
      co_return Status();
    });
    if (!run.ok()) return run;
    return reply;
  }

  // A typed meshrpc call to Say on the same port.
  Result<SayReply> meshrpc_say(const std::string& text) {
    core::Channel channel(harness_->client_env(), harness_->client_network(), address_);
    Result<SayReply> reply = internal_error("not run");
    Status run = harness_->run_client([&]() -> awaitable<Status> {
      SayArgs args{text, 1};
      reply =
          co_await codec::async_unary_call<SayReply>(channel, kSay, args, {}, asio::use_awaitable);
      co_return Status();
    });
    if (!run.ok()) return run;
    return reply;
  }

  std::unique_ptr<testing::TcpHarness> harness_;
  std::unique_ptr<codec::Server> server_;
  std::shared_ptr<HttpService> http_;
  transport::Address address_;
};

// --- the gateway --------------------------------------------------------------------------

TEST_F(HttpServiceTest, GatewayAnswersJsonOverBeast) {
  Result<HttpReply> reply = fetch(http::verb::post, kSay, R"({"text":"hi","times":2})");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u) << reply->body;
  EXPECT_EQ(reply->header("content-type"), "application/json");
  EXPECT_EQ(reply->header("meshrpc-status"), "OK");
  EXPECT_EQ(reply->json()["text"], "hihi") << reply->body;
}

TEST_F(HttpServiceTest, GatewayAnswersJsonOverCurl) {
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> reply = run_curl({"-d", R"({"text":"hi"})", url(kSay)});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200u) << reply->body;
  EXPECT_EQ(reply->header("meshrpc-status"), "OK");
  EXPECT_EQ(reply->json()["text"], "hi") << reply->body;
}

TEST_F(HttpServiceTest, BadJsonIsInvalidArgumentNamingWhatIsWrong) {
  Result<HttpReply> reply = fetch(http::verb::post, kSay, R"({"text": 5})");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 400u);
  EXPECT_EQ(reply->header("meshrpc-status"), "INVALID_ARGUMENT");
  boost::json::object body = reply->json();
  EXPECT_EQ(body["code"], "INVALID_ARGUMENT") << reply->body;
  EXPECT_EQ(body["code_number"], 3);
  EXPECT_THAT(std::string(body["message"].as_string()), HasSubstr("text")) << reply->body;

  Result<HttpReply> not_json = fetch(http::verb::post, kSay, "{not json");
  ASSERT_THAT(not_json, IsOk());
  EXPECT_EQ(not_json->status, 400u);
  EXPECT_EQ(not_json->json()["code"], "INVALID_ARGUMENT") << not_json->body;
}

TEST_F(HttpServiceTest, BadJsonOverCurlIs400WithTheErrorBody) {
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> reply = run_curl({"-d", "[1,2", url(kSay)});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400u);
  EXPECT_EQ(reply->json()["code"], "INVALID_ARGUMENT") << reply->body;
}

TEST_F(HttpServiceTest, ApplicationErrorMapsToItsHttpStatus) {
  Result<HttpReply> reply = fetch(http::verb::post, kSay, R"({"text":"x","times":-1})");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 400u);
  EXPECT_EQ(reply->json()["message"], "times is negative") << reply->body;
}

TEST_F(HttpServiceTest, UnknownMethodIsUnimplemented404) {
  Result<HttpReply> reply = fetch(http::verb::post, "/test.Echo/Nope", "{}");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 404u);
  EXPECT_EQ(reply->header("meshrpc-status"), "UNIMPLEMENTED");
  EXPECT_EQ(reply->json()["code"], "UNIMPLEMENTED") << reply->body;
}

TEST_F(HttpServiceTest, UnknownMethodOverCurlIs404) {
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> reply = run_curl({"-d", "{}", url("/test.Echo/Nope")});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 404u);
  EXPECT_EQ(reply->json()["code"], "UNIMPLEMENTED") << reply->body;
}

TEST_F(HttpServiceTest, RawBytesMethodIsRefusedWith415) {
  Result<HttpReply> reply = fetch(http::verb::post, "/test.Echo/Raw", "{}");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 415u);
  EXPECT_THAT(std::string(reply->json()["message"].as_string()), HasSubstr("raw bytes"));
}

TEST_F(HttpServiceTest, TimeoutHeaderEndsASlowCallWith504) {
  Result<HttpReply> reply =
      fetch(http::verb::post, "/test.Echo/Slow", "{}", {{"meshrpc-timeout-ms", "100"}});
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 504u) << reply->body;
  EXPECT_EQ(reply->json()["code"], "DEADLINE_EXCEEDED");
}

TEST_F(HttpServiceTest, TimeoutOverCurlIs504) {
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> reply =
      run_curl({"-d", "{}", "-H", "meshrpc-timeout-ms: 50", url("/test.Echo/Slow")});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 504u) << reply->body;
}

TEST_F(HttpServiceTest, MalformedTimeoutHeaderIsInvalidArgument) {
  Result<HttpReply> reply = fetch(http::verb::post, kSay, "{}", {{"meshrpc-timeout-ms", "soon"}});
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 400u);
  EXPECT_THAT(std::string(reply->json()["message"].as_string()), HasSubstr("meshrpc-timeout-ms"));
}

TEST_F(HttpServiceTest, MetadataRoundTripsThroughHeaders) {
  Result<HttpReply> reply =
      fetch(http::verb::post, kSay, R"({"text":"m"})", {{"meshrpc-meta-k", "value-1"}});
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->header("meshrpc-meta-echo"), "value-1");
}

TEST_F(HttpServiceTest, MetadataRoundTripsOverCurl) {
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> reply =
      run_curl({"-d", R"({"text":"m"})", "-H", "meshrpc-meta-k: from-curl", url(kSay)});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->header("meshrpc-meta-echo"), "from-curl");
}

TEST_F(HttpServiceTest, EmptyBodyIsTheEmptyMessage) {
  Result<HttpReply> reply = fetch(http::verb::post, kSay, "");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u) << reply->body;
}

// --- pages --------------------------------------------------------------------------------

TEST_F(HttpServiceTest, HealthIsServing) {
  Result<HttpReply> reply = fetch(http::verb::get, "/health");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u);
  boost::json::object body = reply->json();
  EXPECT_EQ(body["status"], "SERVING") << reply->body;
  EXPECT_EQ(body["live"], true);
  EXPECT_EQ(body["ready"], true);
}

TEST_F(HttpServiceTest, HealthIs503OnceShutdownBegan) {
  // What the server does first when it shuts down; the listener stays open here so that a
  // new connection can still ask.
  http_->shutdown();
  Result<HttpReply> reply = fetch(http::verb::get, "/health");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 503u);
  EXPECT_EQ(reply->json()["status"], "NOT_SERVING") << reply->body;
  EXPECT_EQ(reply->json()["ready"], false);
  EXPECT_TRUE(reply->closed) << "no keep-alive once shutting down";
  Result<HttpReply> call = fetch(http::verb::post, kSay, "{}");
  ASSERT_THAT(call, IsOk());
  EXPECT_EQ(call->status, 503u);
  EXPECT_EQ(call->json()["code"], "UNAVAILABLE");

  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> curl = run_curl({url("/health")});
  ASSERT_TRUE(curl.has_value());
  EXPECT_EQ(curl->status, 503u);
}

TEST_F(HttpServiceTest, ServicesListsMethodsWithSchemas) {
  Result<HttpReply> reply = fetch(http::verb::get, "/services");
  ASSERT_THAT(reply, IsOk());
  ASSERT_EQ(reply->status, 200u);
  boost::json::object body = reply->json();
  ASSERT_TRUE(body["services"].is_array()) << reply->body;
  const auto& services = body["services"].as_array();
  ASSERT_EQ(services.size(), 1u) << reply->body;
  const auto& service = services[0].as_object();
  EXPECT_EQ(service.at("name"), "test.Echo");
  const auto& methods = service.at("methods").as_array();
  ASSERT_EQ(methods.size(), 2u) << "Raw has no types, so it is not listed: " << reply->body;
  const auto& say = methods[0].as_object();
  EXPECT_EQ(say.at("name"), "Say");
  EXPECT_EQ(say.at("full_name"), kSay);
  EXPECT_EQ(say.at("kind"), "unary");
  EXPECT_EQ(say.at("idempotency"), "NO_SIDE_EFFECTS");
  EXPECT_EQ(say.at("blocking"), false);
  const auto& request = say.at("request").as_object();
  ASSERT_EQ(request.at("fields").as_array().size(), 2u) << reply->body;
  EXPECT_EQ(request.at("fields").as_array()[0].as_object().at("name"), "text");
  EXPECT_EQ(request.at("fields").as_array()[1].as_object().at("type"), "int32");
  EXPECT_TRUE(say.at("response").is_object());
  EXPECT_EQ(methods[1].as_object().at("full_name"), "/test.Echo/Slow");
}

TEST_F(HttpServiceTest, AddedPageAnswersWithItsQuery) {
  Result<HttpReply> reply = fetch(http::verb::get, "/hello?name=a%20b");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->header("content-type"), "text/plain");
  EXPECT_EQ(reply->body, "hello a b");
}

TEST_F(HttpServiceTest, UnknownPageIs404) {
  Result<HttpReply> reply = fetch(http::verb::get, "/no/such/page");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 404u);
  EXPECT_EQ(reply->json()["code"], "NOT_FOUND") << reply->body;
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> curl = run_curl({url("/nothing")});
  ASSERT_TRUE(curl.has_value());
  EXPECT_EQ(curl->status, 404u);
}

TEST_F(HttpServiceTest, WrongHttpMethodIs405WithAllow) {
  Result<HttpReply> get = fetch(http::verb::get, kSay);
  ASSERT_THAT(get, IsOk());
  EXPECT_EQ(get->status, 405u);
  EXPECT_EQ(get->header("allow"), "POST");
  Result<HttpReply> post = fetch(http::verb::post, "/health", "{}");
  ASSERT_THAT(post, IsOk());
  EXPECT_EQ(post->status, 405u);
  EXPECT_EQ(post->header("allow"), "GET");
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> curl = run_curl({url(kSay)});
  ASSERT_TRUE(curl.has_value());
  EXPECT_EQ(curl->status, 405u);
}

// --- limits and bad input ---------------------------------------------------------------

TEST_F(HttpServiceTest, OversizedBodyIs413AndCloses) {
  const std::string big = R"({"text":")" + std::string(5000, 'x') + R"("})";
  Result<HttpReply> reply = fetch(http::verb::post, kSay, big);
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 413u);
  EXPECT_THAT(std::string(reply->json()["message"].as_string()), HasSubstr("max_body_bytes 4096"));
  EXPECT_TRUE(reply->closed);
  if (!have_curl()) GTEST_SKIP() << kCurl << " is not installed";
  std::optional<HttpReply> curl = run_curl({"-d", big, url(kSay)});
  ASSERT_TRUE(curl.has_value());
  EXPECT_EQ(curl->status, 413u);
}

TEST_F(HttpServiceTest, OversizedHeadersAre431) {
  Result<HttpReply> reply =
      fetch(http::verb::get, "/health", "", {{"x-padding", std::string(4000, 'p')}});
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 431u);
  EXPECT_TRUE(reply->closed);
}

TEST_F(HttpServiceTest, GarbageGets400AndTheServerServesOn) {
  // A NUL in the middle: a string from the whole array.
  static constexpr char kJunk[] = "POST \x01\x02\x00\xff\xfe junk\r\n\r\n";
  const std::string binary_junk(kJunk, sizeof kJunk - 1);
  const std::vector<std::string> garbage = {
      "GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
      binary_junk,
      "GET /health HTTP/9.9\r\n\r\n",
      "POST /test.Echo/Say HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
  };
  for (const std::string& bytes : garbage) {
    SCOPED_TRACE(bytes);
    Result<HttpReply> reply = send_raw(bytes);
    ASSERT_THAT(reply, IsOk());
    EXPECT_EQ(reply->status, 400u);
    EXPECT_EQ(reply->json()["code"], "INVALID_ARGUMENT") << reply->body;
    EXPECT_TRUE(reply->closed);
  }
  Result<SayReply> typed = meshrpc_say("still here");
  ASSERT_THAT(typed, IsOk());
  EXPECT_EQ(typed->text, "still here");
  Result<HttpReply> health = fetch(http::verb::get, "/health");
  ASSERT_THAT(health, IsOk());
  EXPECT_EQ(health->status, 200u);
}

// --- connections --------------------------------------------------------------------------

TEST_F(HttpServiceTest, MeshrpcAndHttpShareThePort) {
  Result<SayReply> typed = meshrpc_say("over meshrpc");
  ASSERT_THAT(typed, IsOk());
  EXPECT_EQ(typed->text, "over meshrpc");
  Result<HttpReply> gateway = fetch(http::verb::post, kSay, R"({"text":"over http"})");
  ASSERT_THAT(gateway, IsOk());
  EXPECT_EQ(gateway->json()["text"], "over http");
  Result<SayReply> again = meshrpc_say("and again");
  ASSERT_THAT(again, IsOk());
}

TEST_F(HttpServiceTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::vector<unsigned> statuses;
  Status run = harness_->run_client([&]() -> awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    const transport::Address target = address_;
    auto [ec, stream] =
        co_await harness_->client_network().async_connect(target, ex, use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "connect");
    boost::beast::flat_buffer buffer;
    for (int i = 0; i < 3; ++i) {
      auto request = make_request(http::verb::post, kSay, R"({"text":"k"})", {});
      Result<HttpReply> reply = co_await exchange(*stream, buffer, std::move(request));
      if (!reply.ok()) co_return reply.status();
      statuses.push_back(reply->status);
    }
    auto nowhere = make_request(http::verb::get, "/nowhere", "", {});
    Result<HttpReply> unknown = co_await exchange(*stream, buffer, std::move(nowhere));
    if (!unknown.ok()) co_return unknown.status();
    statuses.push_back(unknown->status);
    co_return Status();
  });
  ASSERT_THAT(run, IsOk());
  EXPECT_THAT(statuses, ::testing::ElementsAre(200u, 200u, 200u, 404u));
}

TEST_F(HttpServiceTest, ServerShutdownFinishesTheRequestInFlightAndClosesIdleConnections) {
  std::atomic<bool> in_flight{false};
  // The slow call runs until its 300 ms deadline while the server shuts down.
  Result<HttpReply> slow = internal_error("not run");
  bool idle_closed = false;
  Status run = harness_->run_client([&]() -> awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    const transport::Address target = address_;
    auto [ec1, idle] =
        co_await harness_->client_network().async_connect(target, ex, use_nothrow_awaitable);
    if (ec1) co_return transport::to_status(ec1, "connect");
    boost::beast::flat_buffer idle_buffer;
    auto health = make_request(http::verb::get, "/health", "", {});
    Result<HttpReply> first = co_await exchange(*idle, idle_buffer, std::move(health));
    if (!first.ok()) co_return first.status();
    auto [ec2, busy] =
        co_await harness_->client_network().async_connect(target, ex, use_nothrow_awaitable);
    if (ec2) co_return transport::to_status(ec2, "connect");
    auto request =
        make_request(http::verb::post, "/test.Echo/Slow", "{}", {{"meshrpc-timeout-ms", "300"}});
    auto [wec, wn] = co_await http::async_write(*busy, request, use_nothrow_awaitable);
    if (wec) co_return transport::to_status(wec, "write");
    // Wait until the server runs the call, then shut it down.
    while (server_->active_calls() == 0) {
      co_await harness_->client_env().async_wait_for(1ms, use_nothrow_awaitable);
    }
    in_flight = true;
    server_->shutdown(10s, [] {});
    char byte;
    auto [end, n] = co_await idle->async_read_some(asio::buffer(&byte, 1), use_nothrow_awaitable);
    idle_closed = end == asio::error::eof || end == asio::error::connection_reset;
    boost::beast::flat_buffer buffer;
    slow = co_await read_reply(*busy, buffer);
    co_return Status();
  });
  ASSERT_THAT(run, IsOk());
  EXPECT_TRUE(in_flight);
  EXPECT_TRUE(idle_closed) << "an idle keep-alive connection is closed by shutdown";
  ASSERT_THAT(slow, IsOk());
  EXPECT_EQ(slow->status, 504u) << "the call in flight ran to its own end";
  EXPECT_TRUE(slow->closed) << "and its connection closed after the reply";
}

// A connection may outlive the server (the server destroyed on another thread while a
// request runs): it reads the server only through a handle, so the pages still answer (with
// the methods copied at start) and the gateway says UNAVAILABLE. Under ASan, a page that
// kept a reference to the destroyed server fails here; the leak check fails if the handle
// kept the server's state alive (the state holds the service: a cycle).
TEST_F(HttpServiceTest, ConnectionsHandedOverAfterTheServerIsGoneStillGetAnswers) {
  Result<HttpReply> said = fetch(http::verb::post, std::string(kSay), R"({"text":"hi"})");
  ASSERT_THAT(said, IsOk());
  ASSERT_EQ(said->status, 200u);
  server_.reset();

  // Connections accepted by a listener of our own and handed to the service, as the server
  // does with connections whose first bytes are HTTP.
  auto listener = harness_->server_network().listen(harness_->listen_address());
  ASSERT_THAT(listener, IsOk());
  const transport::Address address = (*listener)->local_address();
  const std::vector<std::pair<http::verb, std::string>> requests = {
      {http::verb::get, "/rpcz?text=1"},
      {http::verb::get, "/status.json"},
      {http::verb::get, "/services"},
      {http::verb::get, "/health"},
      {http::verb::post, std::string(kSay)}};
  std::vector<Result<HttpReply>> replies;
  // One accept loop per shard (TCP has one per io thread; the kernel picks the shard); the
  // last connection closes the listener, which ends the other loops.
  std::atomic<size_t> to_accept = requests.size();
  auto accept_and_hand_over = [&](size_t shard) -> awaitable<Status> {
    for (;;) {
      auto [ec, stream] = co_await (*listener)->async_accept(shard, use_nothrow_awaitable);
      if (ec == asio::error::operation_aborted) co_return Status();
      if (ec) co_return transport::to_status(ec, "accept");
      http_->serve(std::shared_ptr<transport::ByteStream>(std::move(stream)), Buffer());
      if (to_accept.fetch_sub(1) == 1) (*listener)->close();
    }
  };
  std::vector<std::pair<runtime::Env*, testing::TransportHarness::Task>> tasks;
  for (size_t shard = 0; shard < (*listener)->shard_count(); ++shard) {
    tasks.emplace_back(&harness_->server_env(), [&, shard]() -> awaitable<Status> {
      co_return co_await asio::co_spawn((*listener)->shard_executor(shard),
                                        accept_and_hand_over(shard), asio::use_awaitable);
    });
  }
  tasks.emplace_back(&harness_->client_env(), [&]() -> awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    for (const auto& [verb, target] : requests) {
      auto [ec, stream] =
          co_await harness_->client_network().async_connect(address, ex, use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "connect");
      boost::beast::flat_buffer buffer;
      const std::string body = verb == http::verb::post ? R"({"text":"hi"})" : "";
      replies.push_back(co_await exchange(*stream, buffer, make_request(verb, target, body, {})));
    }
    co_return Status();
  });
  Status run = harness_->run(std::move(tasks));
  ASSERT_THAT(run, IsOk());
  ASSERT_EQ(replies.size(), requests.size());
  for (const auto& reply : replies) ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(replies[0]->status, 200u);
  EXPECT_EQ(replies[1]->status, 200u);
  EXPECT_THAT(replies[1]->body, HasSubstr("test.Echo"));
  EXPECT_EQ(replies[2]->status, 200u);
  EXPECT_THAT(replies[2]->body, HasSubstr("Say"));
  EXPECT_EQ(replies[3]->status, 503u) << replies[3]->body;
  EXPECT_EQ(replies[4]->status, 503u) << replies[4]->body;
  EXPECT_THAT(replies[4]->body, HasSubstr("UNAVAILABLE"));
  for (const auto& reply : replies) EXPECT_TRUE(reply->closed) << "one answer, then closed";
}

// --- virtual time -------------------------------------------------------------------------

TEST(HttpServiceSimTest, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  testing::SimHarness harness(7);
  codec::Server server(harness.server_env(), harness.server_network());
  add_test_methods(server);
  HttpService::Options options;
  options.idle_timeout = 5s;
  auto http = HttpService::attach(server, options);
  auto address = server.start(harness.listen_address());
  ASSERT_THAT(address, IsOk());
  runtime::Env& env = harness.client_env();
  Result<HttpReply> reply = internal_error("not run");
  error_code end;
  runtime::Duration idle_for{};
  ASSERT_THAT(harness.run_client([&]() -> awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    const transport::Address target = *address;
    auto [ec, stream] =
        co_await harness.client_network().async_connect(target, ex, use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "connect");
    boost::beast::flat_buffer buffer;
    auto request = make_request(http::verb::post, kSay, R"({"text":"sim"})", {});
    reply = co_await exchange(*stream, buffer, std::move(request));
    const runtime::TimePoint replied = env.now();
    char byte;
    auto [read_end, n] =
        co_await stream->async_read_some(asio::buffer(&byte, 1), use_nothrow_awaitable);
    end = read_end;
    idle_for = env.now() - replied;
    co_return Status();
  }),
              IsOk());
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(reply->json()["text"], "sim");
  EXPECT_TRUE(end == asio::error::eof || end == asio::error::connection_reset) << end.message();
  // Virtual time: closed at the timeout (plus a link delay), not before and not much after.
  EXPECT_GE(idle_for, 5s - 100ms);
  EXPECT_LT(idle_for, 6s);
}

}  // namespace
}  // namespace meshrpc::observe
