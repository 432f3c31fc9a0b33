// echo_client: calls /meshrpc.examples.Echo/Say (echo.proto) through the generated
// Echo::Client over one core::Channel.
//
//   echo_client --target HOST:PORT --message TEXT [--count N] [--concurrency C]
//               [--timeout 1s] [--interval 100ms]
//   echo_client --target HOST:PORT --stream N [--timeout 1s]   (Echo.Stream)
//   echo_client --target HOST:PORT --chat N [--timeout 1s]     (Echo.Chat)
//
// --stream N asks for N streamed replies and prints "stream: N of N replies in order in T ms
// (R msg/s, B MB/s)"; --chat N makes N round trips on one bidirectional stream and prints
// "chat: N round trips in T ms (R/s)". Both exit 1 on a failure, printing the StreamError
// ("stream failed: Transport(UNAVAILABLE: ...)"); --timeout is then the idle timeout of each
// read.
//
// Makes N calls, at most C in flight, call i starting no earlier than (i-1) * interval after
// the first. Prints "reply N: TEXT" or "call N failed: CODE_NAME: message" per call as it
// completes (so not necessarily in order when C > 1), a summary on stderr, and exits 0 when
// every call succeeded, 1 otherwise (2: bad flags).
#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <charconv>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "echo.meshrpc.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace echo {

using namespace meshrpc;

// Calls in flight at once: the channel queues past the server's stream limit anyway, and
// 10,000 keeps a typo from queueing millions.
constexpr int kMaxConcurrency = 10'000;

struct Flags {
  std::string target;
  std::string message;
  int count = 1;
  int concurrency = 1;
  std::string timeout = "1s";
  std::string interval = "0ms";
  int stream = 0;  // --stream N
  int chat = 0;    // --chat N
};

// "500ms", "1s", "2m" (also "us", "ns", "h"); a bare "0" is zero.
Result<runtime::Duration> parse_duration(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, text.data() + text.size() - end);
  if (ec != std::errc() || value < 0) {
    return invalid_argument_error("duration '" + std::string(text) + "' is not N<unit>");
  }
  using namespace std::chrono;
  if (unit == "ns" || (unit.empty() && value == 0)) return nanoseconds(value);
  if (unit == "us") return microseconds(value);
  if (unit == "ms") return milliseconds(value);
  if (unit == "s") return seconds(value);
  if (unit == "m") return minutes(value);
  if (unit == "h") return hours(value);
  return invalid_argument_error("duration '" + std::string(text) +
                                "' needs a unit: ns, us, ms, s, m or h");
}

struct Plan {
  int count;
  std::string message;
  runtime::Duration timeout;
  runtime::Duration interval;
};

struct Tally {
  int next = 0;  // the last call number handed out (all on one io thread)
  int ok = 0;
  int failed = 0;
};

void print_result(int n, const Result<examples::SayReply>& result) {
  if (result.ok()) {
    std::printf("reply %d: %s\n", n, result->text().c_str());
  } else {
    std::printf("call %d failed: %s\n", n, result.status().to_string().c_str());
  }
  std::fflush(stdout);
}

// One of C workers: takes the next call number until all N are taken.
awaitable<void> call_worker(runtime::Env& env, examples::Echo::Client& echo_client,
                            const Plan& plan, runtime::TimePoint start, Tally& tally) {
  while (tally.next < plan.count) {
    const int n = ++tally.next;
    if (plan.interval.count() > 0) {
      const runtime::TimePoint due = start + (n - 1) * plan.interval;
      co_await env.async_wait_until(due, use_nothrow_awaitable);
    }
    core::CallOptions options;
    options.timeout = plan.timeout;
    examples::SayRequest request;
    request.set_text(plan.message);
    Result<examples::SayReply> result =
        co_await echo_client.Say(request, std::move(options), asio::use_awaitable);
    print_result(n, result);
    ++(result.ok() ? tally.ok : tally.failed);
  }
}

int run(const transport::Address& target, const Plan& plan, int concurrency) {
  // One io thread: every worker and completion runs on it, over one connection.
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  transport::TcpNetwork network(env);
  Tally tally;
  {
    core::Channel channel(env, network, target);
    examples::Echo::Client echo_client(channel);
    const runtime::TimePoint start = env.now();
    std::vector<std::future<void>> workers;
    for (int i = 0; i < concurrency; ++i) {
      workers.push_back(asio::co_spawn(
          env.executor(0), call_worker(env, echo_client, plan, start, tally), asio::use_future));
    }
    // Bounded: every call has a deadline.
    for (auto& worker : workers) worker.get();
  }  // the channel closes its connection on the io thread, which must still run
  std::fprintf(stderr, "echo_client: %d ok, %d failed\n", tally.ok, tally.failed);
  return tally.failed == 0 ? 0 : 1;
}

// Prints the failure and returns 1.
int stream_failed(const char* what, const std::string& why) {
  std::printf("%s failed: %s\n", what, why.c_str());
  std::fflush(stdout);
  return 1;
}

double seconds_between(runtime::TimePoint from, runtime::TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

// --stream N: one Echo.Stream call asking for N replies; checks their order.
awaitable<int> run_stream(runtime::Env& env, examples::Echo::Client& echo_client, int count,
                          runtime::Duration idle_timeout) {
  const runtime::TimePoint start = env.now();
  auto stream = echo_client.Stream({.idle_timeout = idle_timeout});
  examples::SayRequest request;
  request.set_count(count);
  Status sent = co_await stream.async_write_last(request, asio::use_awaitable);
  if (!sent.ok()) {
    // The stream has ended: a read says how (transport or application).
    codec::StreamRead<examples::SayReply> why = co_await stream.async_read(asio::use_awaitable);
    co_return stream_failed("stream", why.error ? why.error->to_string() : sent.to_string());
  }
  int in_order = 0;
  uint64_t bytes = 0;
  for (;;) {
    codec::StreamRead<examples::SayReply> reply = co_await stream.async_read(asio::use_awaitable);
    if (reply.error) co_return stream_failed("stream", reply.error->to_string());
    if (!reply.message) break;
    if (reply.message->text() != std::to_string(in_order)) {
      co_return stream_failed(
          "stream", "reply " + std::to_string(in_order) + " was \"" + reply.message->text() + "\"");
    }
    bytes += reply.message->ByteSizeLong();
    ++in_order;
  }
  const double seconds = seconds_between(start, env.now());
  std::printf("stream: %d of %d replies in order in %.1f ms (%.0f msg/s, %.2f MB/s)\n", in_order,
              count, seconds * 1e3, in_order / seconds, bytes / seconds / 1e6);
  co_return in_order == count ? 0 : stream_failed("stream", "replies missing");
}

// --chat N: N round trips on one Echo.Chat stream.
awaitable<int> run_chat(runtime::Env& env, examples::Echo::Client& echo_client, int count,
                        const std::string& message, runtime::Duration idle_timeout) {
  const runtime::TimePoint start = env.now();
  auto chat = echo_client.Chat({.idle_timeout = idle_timeout});
  examples::SayRequest request;
  request.set_text(message);
  for (int i = 0; i < count; ++i) {
    Status sent = co_await chat.async_write(request, asio::use_awaitable);
    if (!sent.ok()) {
      codec::StreamRead<examples::SayReply> why = co_await chat.async_read(asio::use_awaitable);
      co_return stream_failed("chat", why.error ? why.error->to_string() : sent.to_string());
    }
    codec::StreamRead<examples::SayReply> reply = co_await chat.async_read(asio::use_awaitable);
    if (reply.error) co_return stream_failed("chat", reply.error->to_string());
    if (!reply.message || reply.message->text() != message) {
      co_return stream_failed("chat", "round trip " + std::to_string(i) + " got no echo");
    }
  }
  Status done = co_await chat.async_writes_done(asio::use_awaitable);
  if (!done.ok()) co_return stream_failed("chat", done.to_string());
  Status final_status = co_await chat.async_finish(asio::use_awaitable);
  if (!final_status.ok()) co_return stream_failed("chat", final_status.to_string());
  const double seconds = seconds_between(start, env.now());
  std::printf("chat: %d round trips in %.1f ms (%.0f/s)\n", count, seconds * 1e3, count / seconds);
  co_return 0;
}

int run_streaming(const transport::Address& target, const Flags& flags,
                  runtime::Duration idle_timeout) {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  transport::TcpNetwork network(env);
  int exit_code = 1;
  {
    core::Channel channel(env, network, target);
    examples::Echo::Client echo_client(channel);
    auto task = flags.stream > 0
                    ? run_stream(env, echo_client, flags.stream, idle_timeout)
                    : run_chat(env, echo_client, flags.chat, flags.message, idle_timeout);
    exit_code = asio::co_spawn(env.executor(0), std::move(task), asio::use_future).get();
  }  // the channel closes its connection on the io thread, which must still run
  return exit_code;
}

}  // namespace echo

int main(int argc, char** argv) {
  echo::Flags flags;
  CLI::App app{"meshrpc echo client: calls /meshrpc.examples.Echo/Say"};
  app.add_option("--target", flags.target, "HOST:PORT of the echo server")->required();
  auto* message = app.add_option("--message", flags.message, "request text");
  auto* stream = app.add_option("--stream", flags.stream, "ask Echo.Stream for N replies")
                     ->check(CLI::Range(1, 1'000'000'000));
  auto* chat = app.add_option("--chat", flags.chat, "N round trips on one Echo.Chat stream")
                   ->check(CLI::Range(1, 1'000'000'000));
  stream->excludes(chat);
  app.add_option("--count", flags.count, "calls to make")->check(CLI::Range(1, 1'000'000'000));
  app.add_option("--concurrency", flags.concurrency, "calls in flight at most")
      ->check(CLI::Range(1, echo::kMaxConcurrency));
  app.add_option("--timeout", flags.timeout, "per-call timeout, e.g. 500ms, 1s, 2m")
      ->capture_default_str();
  app.add_option("--interval", flags.interval, "time between call starts, e.g. 100ms")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  using meshrpc::Result;
  Result<meshrpc::transport::Address> target = meshrpc::transport::Address::parse(flags.target);
  Result<meshrpc::runtime::Duration> timeout = echo::parse_duration(flags.timeout);
  Result<meshrpc::runtime::Duration> interval = echo::parse_duration(flags.interval);
  for (const meshrpc::Status& status : {target.status(), timeout.status(), interval.status()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "echo_client: %s\n", status.to_string().c_str());
      return 2;
    }
  }
  if (timeout->count() <= 0) {
    std::fprintf(stderr, "echo_client: --timeout must be above 0 (every call is bounded)\n");
    return 2;
  }
  if (flags.stream > 0 || flags.chat > 0) {
    if (flags.chat > 0 && flags.message.empty()) flags.message = "chat";
    return echo::run_streaming(*target, flags, *timeout);
  }
  if (message->count() == 0) {
    std::fprintf(stderr, "echo_client: --message is required (or --stream N / --chat N)\n");
    return 2;
  }
  const echo::Plan plan{flags.count, flags.message, *timeout, *interval};
  return echo::run(*target, plan, flags.concurrency);
}
