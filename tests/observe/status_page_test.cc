// /status and /status.json on a real server over TCP: the JSON after a known sequence of
// calls is exact, the page is self-contained, and headless Chromium renders it (service and
// method names, a non-empty latency chart, live refreshes) and takes a screenshot, saved in
// test_output/ under the working directory (the build's tests directory under ctest).
#include "meshrpc/observe/status_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/base/version.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/observe/http_service.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::observe {
namespace status_test {

struct GreetArgs {
  std::string name;
  int32_t times = 1;
};
MESHRPC_STRUCT(GreetArgs, (name, 1), (times, 2));

struct GreetReply {
  std::string text;
};
MESHRPC_STRUCT(GreetReply, (text, 1));

}  // namespace status_test

namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using status_test::GreetArgs;
using status_test::GreetReply;
using ::testing::HasSubstr;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

constexpr char kHello[] = "/demo.Greeter/Hello";
constexpr char kGoodbye[] = "/demo.Greeter/Goodbye";
constexpr char kStats[] = "/demo.Stats/Get";
constexpr char kChromium[] = "/usr/bin/chromium";
// Chromium takes several seconds to start on a loaded CI machine; this only bounds a hang.
constexpr auto kChromiumTimeout = 60s;

struct Page {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

// One GET on a fresh connection, from the test thread (its own io_context).
Page get(uint16_t port, const std::string& target) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::connection, "close");
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  return {response.result_int(), std::string(response[http::field::content_type]), response.body()};
}

class StatusPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<testing::TcpHarness>();
    core::ServerOptions server_options;
    server_options.metrics = &registry_;
    server_ = std::make_unique<codec::Server>(harness_->server_env(), harness_->server_network(),
                                              server_options);
    auto greet = [](core::ServerContext&, const GreetArgs& args) -> Result<GreetReply> {
      if (args.times < 0) return invalid_argument_error("times is negative");
      GreetReply reply;
      for (int32_t i = 0; i < args.times; ++i) reply.text += "hello " + args.name;
      return reply;
    };
    server_->handle<GreetArgs, GreetReply>(kHello, greet);
    server_->handle<GreetArgs, GreetReply>(kGoodbye, greet);
    server_->handle<GreetArgs, GreetReply>(kStats, greet);
    HttpService::Options http_options;
    http_options.metrics = &registry_;
    http_ = HttpService::attach(*server_, http_options);
    auto address = server_->start(harness_->listen_address());
    ASSERT_THAT(address, IsOk());
    address_ = *address;
    core::ChannelOptions channel_options;
    channel_options.metrics = &registry_;
    channel_ = std::make_unique<core::Channel>(harness_->client_env(), harness_->client_network(),
                                               address_, channel_options);
  }

  void TearDown() override {
    channel_.reset();
    http_.reset();
    server_.reset();
    harness_.reset();
  }

  // Calls `method` with `times` (negative: the server answers INVALID_ARGUMENT) `count` times.
  Status call(const std::string& method, int32_t times, int count = 1) {
    return harness_->run_client([&]() -> awaitable<Status> {
      for (int i = 0; i < count; ++i) {
        GreetArgs args{"status", times};
        Result<GreetReply> reply = co_await codec::async_unary_call<GreetReply>(
            *channel_, method, args, {}, asio::use_awaitable);
        if (times >= 0 && !reply.ok()) co_return reply.status();
      }
      co_return Status();
    });
  }

  // 5 Hello (one fails), 2 Goodbye, no Stats.
  void make_known_calls() {
    ASSERT_THAT(call(kHello, 1, 4), IsOk());
    ASSERT_THAT(call(kHello, -1), IsOk());
    ASSERT_THAT(call(kGoodbye, 2, 2), IsOk());
  }

  uint16_t port() const { return address_.port; }

  MetricRegistry registry_;
  std::unique_ptr<testing::TcpHarness> harness_;
  std::unique_ptr<codec::Server> server_;
  std::shared_ptr<HttpService> http_;
  std::unique_ptr<core::Channel> channel_;
  transport::Address address_;
};

const boost::json::object* find_by(const boost::json::array& list, std::string_view key,
                                   std::string_view value) {
  for (const auto& entry : list) {
    if (entry.as_object().at(key).as_string() == value) return &entry.as_object();
  }
  return nullptr;
}

TEST_F(StatusPageTest, JsonCountsEachMethodExactly) {
  make_known_calls();
  registry_
      .gauge("meshrpc_client_circuit_state", "Breaker state.",
             {{"endpoint", "10.0.0.9:7001"}, {"state", "open"}})
      .set(1);
  Page page = get(port(), "/status.json");
  ASSERT_EQ(page.status, 200u) << page.body;
  EXPECT_EQ(page.content_type, "application/json");
  const boost::json::object body = boost::json::parse(page.body).as_object();

  const auto& process = body.at("process").as_object();
  EXPECT_EQ(process.at("pid").as_int64(), static_cast<int64_t>(getpid()));
  EXPECT_FALSE(process.at("host").as_string().empty());
  EXPECT_GE(process.at("uptime_seconds").as_double(), 0.0);
  EXPECT_EQ(process.at("version").as_string(), kVersion);

  // Typed services in registered order, called or not; methods known only from the metrics
  // (the built-in health check, "other") once they have calls.
  const auto& services = body.at("services").as_array();
  std::vector<std::string> names;
  for (const auto& service : services) {
    names.emplace_back(service.as_object().at("name").as_string());
  }
  EXPECT_THAT(names, ::testing::ElementsAre("demo.Greeter", "demo.Stats")) << page.body;
  ASSERT_GE(services.size(), 2u);
  const auto& methods = services[0].as_object().at("methods").as_array();
  ASSERT_EQ(methods.size(), 2u);
  const auto& hello = methods[0].as_object();
  EXPECT_EQ(hello.at("method"), kHello);
  EXPECT_EQ(hello.at("name"), "Hello");
  EXPECT_EQ(hello.at("started").to_number<int64_t>(), 5);
  EXPECT_EQ(hello.at("finished").to_number<int64_t>(), 5);
  EXPECT_EQ(hello.at("errors").to_number<int64_t>(), 1);
  EXPECT_EQ(hello.at("in_flight").to_number<int64_t>(), 0);
  EXPECT_EQ(hello.at("codes").as_object().at("OK").to_number<int64_t>(), 4);
  EXPECT_EQ(hello.at("codes").as_object().at("INVALID_ARGUMENT").to_number<int64_t>(), 1);
  const auto& latency = hello.at("latency").as_object();
  EXPECT_EQ(latency.at("count").to_number<int64_t>(), 5);
  EXPECT_GT(latency.at("p50").to_number<double>(), 0);
  EXPECT_LE(latency.at("p50").to_number<double>(), latency.at("p99").to_number<double>());
  EXPECT_LE(latency.at("p99").to_number<double>(), latency.at("max").to_number<double>());
  double bucketed = 0;
  for (const auto& bucket : latency.at("buckets").as_array()) {
    bucketed += bucket.as_array()[1].to_number<double>();
  }
  EXPECT_EQ(bucketed, 5);
  const auto& goodbye = methods[1].as_object();
  EXPECT_EQ(goodbye.at("started").to_number<int64_t>(), 2);
  EXPECT_EQ(goodbye.at("errors").to_number<int64_t>(), 0);
  const auto& stats = services[1].as_object().at("methods").as_array()[0].as_object();
  EXPECT_EQ(stats.at("method"), kStats);
  EXPECT_EQ(stats.at("started").to_number<int64_t>(), 0) << "listed before its first call";

  // The channel's side: one row per (method, endpoint).
  const auto& clients = body.at("clients").as_array();
  const boost::json::object* client_hello = find_by(clients, "method", kHello);
  ASSERT_NE(client_hello, nullptr) << page.body;
  EXPECT_EQ(client_hello->at("started").to_number<int64_t>(), 5);
  EXPECT_EQ(client_hello->at("errors").to_number<int64_t>(), 1);
  EXPECT_EQ(client_hello->at("endpoint").as_string(), "127.0.0.1:" + std::to_string(port()));

  // Families without a method label, known or not, come through generically.
  const auto& series = body.at("series").as_array();
  const boost::json::object* breaker = find_by(series, "name", "meshrpc_client_circuit_state");
  ASSERT_NE(breaker, nullptr) << page.body;
  EXPECT_EQ(breaker->at("type"), "gauge");
  EXPECT_EQ(breaker->at("labels").as_object().at("state"), "open");
  EXPECT_EQ(breaker->at("value").to_number<int64_t>(), 1);
  EXPECT_NE(find_by(series, "name", "meshrpc_server_connections_open"), nullptr);
}

TEST_F(StatusPageTest, PageIsOneSelfContainedHtmlDocument) {
  Page page = get(port(), "/status");
  ASSERT_EQ(page.status, 200u);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(page.body, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(page.body, HasSubstr("fetch(\"status.json\""));
  // Works offline: nothing loaded from elsewhere (the SVG namespace is a name, not a fetch).
  EXPECT_THAT(page.body, ::testing::Not(HasSubstr("<link")));
  EXPECT_THAT(page.body, ::testing::Not(HasSubstr(" src=")));
  EXPECT_THAT(page.body, ::testing::Not(HasSubstr("https://")));
}

// --- headless Chromium --------------------------------------------------------------------

// Runs Chromium on /status with `mode_args` while calls keep arriving (so the page sees
// traffic between refreshes); returns its exit code, its output in `output`.
class ChromiumRun {
 public:
  explicit ChromiumRun(fs::path dir) : dir_(std::move(dir)) {}

  std::optional<int> run(uint16_t port, std::vector<std::string> mode_args, std::string& output) {
    std::vector<std::string> argv = {kChromium,
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--disable-dev-shm-usage",
                                     "--no-first-run",
                                     "--hide-scrollbars",
                                     "--user-data-dir=" + (dir_ / "profile").string(),
                                     "--virtual-time-budget=5000"};
    argv.insert(argv.end(), mode_args.begin(), mode_args.end());
    argv.push_back("http://127.0.0.1:" + std::to_string(port) + "/status");
    const std::string log = (dir_ / ("chromium" + std::to_string(runs_++) + ".log")).string();
    fs::remove(log);
    auto child = testing::Subprocess::start(argv, log);
    if (!child.ok()) {
      ADD_FAILURE() << child.status();
      return std::nullopt;
    }
    std::optional<int> code = (*child)->wait(kChromiumTimeout);
    output = (*child)->output();
    return code;
  }

 private:
  fs::path dir_;
  int runs_ = 0;
};

// The value of `attribute` in the first tag of a serialized DOM containing `marker`, or -1.
long attribute_of(const std::string& dom, const std::string& marker, const std::string& attribute) {
  const size_t at = dom.find(marker);
  if (at == std::string::npos) return -1;
  const size_t tag_end = dom.find('>', at);
  const std::string tag = dom.substr(at, tag_end - at);
  std::smatch match;
  if (!std::regex_search(tag, match, std::regex(attribute + "=\"([0-9]+)\""))) return -1;
  return std::stol(match[1]);
}

TEST_F(StatusPageTest, ChromiumRendersServicesAndALatencyChart) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is not installed";
  make_known_calls();
  registry_
      .gauge("meshrpc_client_circuit_state", "Breaker state.",
             {{"endpoint", "10.0.0.9:7001"}, {"state", "open"}})
      .set(1);

  // Traffic while the browser polls: paced calls until the browser is done.
  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    runtime::Env& env = harness_->client_env();
    // Short batches: each run_client stays far inside the harness's hang watchdog.
    for (int batch = 0; !stop.load(); ++batch) {
      Status status = harness_->run_client([&]() -> awaitable<Status> {
        for (int i = 0; i < 20 && !stop.load(); ++i) {
          GreetArgs args{"traffic", (batch + i) % 4};
          const std::string method = i % 3 == 0 ? kGoodbye : kHello;
          Result<GreetReply> reply = co_await codec::async_unary_call<GreetReply>(
              *channel_, method, args, {}, asio::use_awaitable);
          if (!reply.ok()) co_return reply.status();
          // Pacing, not synchronisation: leaves the CPU to Chromium.
          co_await env.async_wait_for(5ms, use_nothrow_awaitable);
        }
        co_return Status();
      });
      EXPECT_THAT(status, IsOk());
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop, traffic};

  const fs::path out_dir = fs::absolute("test_output");
  fs::create_directories(out_dir);
  ChromiumRun chromium(out_dir);

  std::string dom;
  std::optional<int> code = chromium.run(port(), {"--dump-dom"}, dom);
  ASSERT_EQ(code, 0) << dom;
  // Rendered by the script, not present in the HTML the server sent.
  EXPECT_THAT(dom, HasSubstr("data-service=\"demo.Greeter\"")) << dom;
  EXPECT_THAT(dom, HasSubstr("data-service=\"demo.Stats\""));
  EXPECT_THAT(dom, HasSubstr("data-method=\"/demo.Greeter/Hello\""));
  EXPECT_THAT(dom, HasSubstr(">Goodbye</td>"));
  EXPECT_THAT(dom, HasSubstr(">client_circuit_state</td>")) << "breakers shown";
  EXPECT_GE(attribute_of(dom, "id=\"latency-chart\"", "data-points"), 1) << dom;
  EXPECT_GE(attribute_of(dom, "id=\"latency-histogram\"", "data-bars"), 1) << dom;
  EXPECT_THAT(dom, HasSubstr("class=\"point\"")) << "points drawn";
  EXPECT_GE(attribute_of(dom, "<body", "data-samples"), 2) << "the page refreshes itself";

  const fs::path png = out_dir / "status_page.png";
  fs::remove(png);
  std::string log;
  code = chromium.run(port(), {"--screenshot=" + png.string(), "--window-size=1280,900"}, log);
  ASSERT_EQ(code, 0) << log;
  ASSERT_TRUE(fs::exists(png)) << log;
  std::cout << "screenshot: " << png.string() << "\n";
  RecordProperty("screenshot", png.string());
  std::ifstream file(png, std::ios::binary);
  std::string header(8, '\0');
  file.read(header.data(), 8);
  EXPECT_EQ(header, std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(fs::file_size(png), 10'000u) << "a rendered page, not a blank image";
}

}  // namespace
}  // namespace meshrpc::observe
