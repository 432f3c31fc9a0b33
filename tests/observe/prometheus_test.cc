#include "meshrpc/observe/prometheus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/observe/metrics_page.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::observe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Prometheus, RendersFamiliesSortedWithOneHeaderEach) {
  MetricRegistry registry;
  auto first = registry.add([](MetricWriter& out) {
    out.counter("rpc_calls_total", "Calls.", {{"method", "/b"}, {"code", "OK"}}, 3);
    out.gauge("alpha_depth", "Queue depth.", {}, 0.5);
  });
  // A second source of the same family: grouped with the first, and the same series added.
  auto second = registry.add([](MetricWriter& out) {
    out.counter("rpc_calls_total", "Calls.", {{"method", "/a"}, {"code", "OK"}}, 1);
    out.counter("rpc_calls_total", "Calls.", {{"method", "/b"}, {"code", "OK"}}, 2);
  });
  EXPECT_EQ(render_prometheus(registry),
            "# HELP alpha_depth Queue depth.\n"
            "# TYPE alpha_depth gauge\n"
            "alpha_depth 0.5\n"
            "# HELP rpc_calls_total Calls.\n"
            "# TYPE rpc_calls_total counter\n"
            "rpc_calls_total{method=\"/a\",code=\"OK\"} 1\n"
            "rpc_calls_total{method=\"/b\",code=\"OK\"} 5\n");
}

TEST(Prometheus, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  MetricRegistry registry;
  auto registration = registry.add([](MetricWriter& out) {
    out.gauge("g", "Line one\nand a \\ backslash.", {{"path", "C:\\dir \"x\"\n"}}, -1);
  });
  EXPECT_EQ(render_prometheus(registry),
            "# HELP g Line one\\nand a \\\\ backslash.\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"x\\\"\\n\"} -1\n");
}

TEST(Prometheus, DropsInvalidNamesAndTypeClashesWithAComment) {
  MetricRegistry registry;
  auto registration = registry.add([](MetricWriter& out) {
    out.counter("bad-name_total", "x", {}, 1);
    out.counter("ok_total", "x", {{"0bad", "v"}}, 1);
    out.counter("clash", "x", {}, 1);
    out.gauge("clash", "x", {}, 2);
  });
  EXPECT_EQ(render_prometheus(registry),
            "# HELP clash x\n"
            "# TYPE clash counter\n"
            "clash 1\n"
            "# meshrpc dropped: invalid metric name 'bad-name_total'\n"
            "# meshrpc dropped: ok_total: invalid label name '0bad'\n"
            "# meshrpc dropped: clash: written as gauge and as counter\n");
}

// Values in ns: 3 us, 25 us, 2 ms and 1 s, exposed in seconds.
TEST(Prometheus, HistogramBucketsAreCumulativeMonotoneAndMatchTheCount) {
  Histogram latency;
  for (uint64_t ns : {3'000u, 25'000u, 2'000'000u, 1'000'000'000u}) latency.record(ns);
  MetricRegistry registry;
  auto registration = registry.add([&](MetricWriter& out) {
    out.histogram("op_seconds", "Op latency.", {{"op", "x"}}, latency.snapshot(), 1e-9);
  });
  const std::string text = render_prometheus(registry);
  uint64_t previous = 0;
  std::vector<std::pair<std::string, uint64_t>> buckets;
  for (const std::string& line : lines_of(text)) {
    if (!line.starts_with("op_seconds_bucket")) continue;
    const uint64_t value = std::stoull(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(value, previous) << line;
    previous = value;
    const size_t le = line.find("le=\"") + 4;
    buckets.emplace_back(line.substr(le, line.find('"', le) - le), value);
  }
  using Bucket = std::pair<std::string, uint64_t>;
  ASSERT_EQ(buckets.size(), 21u);             // 20 boundaries and +Inf
  EXPECT_EQ(buckets[0], Bucket("1e-05", 1));  // 3 us: bucket [2816, 3071] ns
  // 25 us is in the bucket [24576, 26623] ns, which straddles the 2.5e-05 boundary: it is
  // counted from the next boundary up (the documented rounding down).
  EXPECT_EQ(buckets[1], Bucket("2.5e-05", 1));
  EXPECT_EQ(buckets[2], Bucket("5e-05", 2));
  EXPECT_EQ(buckets[6], Bucket("0.001", 2));
  EXPECT_EQ(buckets[7], Bucket("0.0025", 3));  // 2 ms: bucket [1966080, 2097151] ns
  EXPECT_EQ(buckets[15], Bucket("1", 3));      // 1 s: bucket [939524096, 1006632959] ns
  EXPECT_EQ(buckets[16], Bucket("2.5", 4));
  EXPECT_EQ(buckets[19], Bucket("30", 4));
  EXPECT_EQ(buckets[20], Bucket("+Inf", 4));
  EXPECT_THAT(text, HasSubstr("\nop_seconds_count{op=\"x\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("\nop_seconds_sum{op=\"x\"} 1.002028\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE op_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE op_seconds_percentile gauge\n"));
  // p50 by nearest rank is the 2nd value (25 us): its bucket's midpoint, 25599 ns (integer).
  EXPECT_THAT(text, HasSubstr("\nop_seconds_percentile{op=\"x\",percentile=\"p50\"} 2.5599e-05\n"));
  // p99 is the 4th value (1 s): the midpoint of [939524096, 1006632959] ns.
  EXPECT_THAT(text,
              HasSubstr("\nop_seconds_percentile{op=\"x\",percentile=\"p99\"} 0.973078527\n"));
}

TEST(Prometheus, ABoundaryThatIsABucketUpperBoundIsExact) {
  // With scale 1 the plain boundaries apply; 5 is a bucket of its own (values 0..7 are).
  Histogram sizes;
  for (uint64_t v : {5u, 5u, 6u}) sizes.record(v);
  MetricRegistry registry;
  auto registration = registry.add(
      [&](MetricWriter& out) { out.histogram("things", "Things.", {}, sizes.snapshot(), 1.0); });
  const std::string text = render_prometheus(registry);
  EXPECT_THAT(text, HasSubstr("\nthings_bucket{le=\"2.5\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nthings_bucket{le=\"5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nthings_bucket{le=\"10\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("\nthings_sum 16\n"));
}

TEST(Prometheus, EmptyHistogramHasNaNPercentiles) {
  Histogram empty;
  MetricRegistry registry;
  auto registration = registry.add([&](MetricWriter& out) {
    out.histogram("idle_seconds", "Idle.", {}, empty.snapshot(), 1e-9);
  });
  const std::string text = render_prometheus(registry);
  EXPECT_THAT(text, HasSubstr("\nidle_seconds_count 0\n"));
  EXPECT_THAT(text, HasSubstr("\nidle_seconds_percentile{percentile=\"p99\"} NaN\n"));
}

TEST(Prometheus, FilterKeepsMatchingSamplesWithTheirHeaders) {
  const std::string text =
      "# HELP a A.\n# TYPE a counter\na{m=\"x\"} 1\na{m=\"y\"} 2\n"
      "# HELP b B.\n# TYPE b gauge\nb 3\n";
  EXPECT_EQ(filter_prometheus(text, "m=\"y\""), "# HELP a A.\n# TYPE a counter\na{m=\"y\"} 2\n");
  EXPECT_EQ(filter_prometheus(text, "b "), "# HELP b B.\n# TYPE b gauge\nb 3\n");
  EXPECT_EQ(filter_prometheus(text, "nothing"), "");
  EXPECT_EQ(filter_prometheus(text, ""), text);
}

TEST(MetricsPage, ServesTheTextFormatAndFiltersWithGrep) {
  MetricRegistry registry;
  auto registration = registry.add([](MetricWriter& out) {
    out.counter("x_total", "X.", {{"k", "one"}}, 1);
    out.counter("x_total", "X.", {{"k", "two"}}, 2);
  });
  PageHandler page = metrics_page(registry);
  asio::io_context io;
  HttpRequest request;
  request.method = "GET";
  request.path = "/metrics";
  request.query["grep"] = "two";
  HttpResponse response;
  asio::co_spawn(io, page(request), [&](std::exception_ptr, HttpResponse r) { response = r; });
  io.run();
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.body, "# HELP x_total X.\n# TYPE x_total counter\nx_total{k=\"two\"} 2\n");
}

// --- promtool --------------------------------------------------------------------------------

// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  // Named per process and call: ctest runs the tests of this file in parallel processes.
  static int calls = 0;
  const std::string out_path = ::testing::TempDir() + "promtool_out." + std::to_string(::getpid()) +
                               "." + std::to_string(++calls) + ".txt";
  const std::string command = "promtool check metrics > '" + out_path + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "w");
  if (pipe == nullptr) return {-1, "popen failed"};
  fwrite(text.data(), 1, text.size(), pipe);
  const int status = pclose(pipe);
  std::ifstream in(out_path);
  std::stringstream output;
  output << in.rdbuf();
  return {status, output.str()};
}

bool have_promtool() { return std::filesystem::exists("/usr/bin/promtool"); }

TEST(Promtool, AcceptsAHandWrittenRegistry) {
  if (!have_promtool()) GTEST_SKIP() << "promtool not installed";
  MetricRegistry registry;
  registry.counter("app_requests_total", "Requests.", {{"path", "/a \"b\"\n"}}).add(3);
  registry.gauge("app_temperature_celsius", "Temperature.").set(21);
  registry.histogram("app_wait_seconds", "Wait.", {}, 1e-9).record(1234567);
  registry.histogram("app_payload_bytes", "Payload.").record(5000);
  const std::string text = render_prometheus(registry);
  auto [status, output] = promtool_check(text);
  EXPECT_EQ(status, 0) << output << "\n" << text;
  EXPECT_EQ(output, "") << text;  // no lint complaints either
}

TEST(Promtool, RejectsBrokenText) {
  if (!have_promtool()) GTEST_SKIP() << "promtool not installed";
  // The check must be able to fail: a sample with a malformed value.
  auto [status, output] = promtool_check("# TYPE x counter\nx{a=\"b\"} notanumber\n");
  EXPECT_NE(status, 0) << output;
}

TEST(Promtool, AcceptsTheMetricsOfAServerAndChannelThatServedCalls) {
  if (!have_promtool()) GTEST_SKIP() << "promtool not installed";
  testing::SimHarness harness(7);
  MetricRegistry registry;
  core::ServerOptions server_options;
  server_options.metrics = &registry;
  core::Server server(harness.server_env(), harness.server_network(), server_options);
  server.register_method(
      "/pkg.Echo/Say",
      [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
  server.register_method("/pkg.Echo/Fail",
                         [](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                           co_return Status(StatusCode::kFailedPrecondition, "no");
                         });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());
  core::ChannelOptions channel_options;
  channel_options.metrics = &registry;
  core::Channel channel(harness.client_env(), harness.client_network(), *address, channel_options);
  ASSERT_THAT(harness.run_client([&]() -> awaitable<Status> {
    for (const char* method : {"/pkg.Echo/Say", "/pkg.Echo/Say", "/pkg.Echo/Fail", "/pkg.X/Y"}) {
      core::CallResult result =
          co_await channel.async_call(method, Buffer::copy_of("hi"), {}, asio::use_awaitable);
      (void)result;
    }
    co_return Status();
  }),
              ::meshrpc::testing::IsOk());
  const std::string text = render_prometheus(registry);
  EXPECT_THAT(text, HasSubstr("meshrpc_server_calls_finished_total{method=\"/pkg.Echo/Say\","
                              "code=\"OK\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("meshrpc_client_calls_finished_total{method=\"/pkg.Echo/Fail\","
                              "endpoint=\"" +
                              address->to_string() + "\",code=\"FAILED_PRECONDITION\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("meshrpc_server_call_duration_seconds_bucket{method=\"other\","
                              "le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("# meshrpc dropped")));
  auto [status, output] = promtool_check(text);
  EXPECT_EQ(status, 0) << output << "\n" << text;
  EXPECT_EQ(output, "") << text;
}

}  // namespace
}  // namespace meshrpc::observe
