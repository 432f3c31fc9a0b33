// echo_server: serves /meshrpc.examples.Echo/Say (echo.proto; the reply's text is the
// request's), Stream (count replies "0", "1", ...) and Chat (an echo per message) over TCP until
// SIGINT or SIGTERM, then shuts down gracefully: no new calls, calls in flight finish.
//
//   echo_server --listen 127.0.0.1:0 [--threads N] [--delay-ms D] [--verbose]
//
// Prints "echo_server listening on HOST:PORT" (the real port when asked for port 0) once it
// accepts calls, "echo_server call N started" per call with --verbose, and on a signal
// "echo_server drained N calls, exiting" (N: calls that were in flight and finished during
// the drain), then exits 0; exit 1 when it cannot listen. Calls still running when the
// grace period ends are cancelled.
//
// The port also speaks HTTP/1.1 (observe::HttpService), e.g.
//   curl -d '{"text":"hi"}' http://127.0.0.1:PORT/meshrpc.examples.Echo/Say
#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <future>
#include <memory>
#include <string>

#include "echo.meshrpc.h"
#include "meshrpc/base/logging.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace echo {

using namespace meshrpc;
using namespace std::chrono_literals;

// How long calls in flight get to finish after a signal: far above --delay-ms in the tests
// and demo, short enough that a stuck call does not hold up a restart.
constexpr runtime::Duration kDrainGrace = 5s;

struct Flags {
  std::string listen;
  size_t threads = 0;
  int delay_ms = 0;
  bool verbose = false;
};

// Counts calls, and the calls that finish once the drain has begun.
struct CallStats {
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> drained{0};
  std::atomic<bool> draining{false};
};

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// The Echo service of echo.proto. Lifetime: outlives the server it is added to.
class EchoService final : public examples::Echo::Service {
 public:
  EchoService(const Flags& flags, CallStats& stats)
      : delay_(std::chrono::milliseconds(flags.delay_ms)), verbose_(flags.verbose), stats_(stats) {}

  awaitable<Result<examples::SayReply>> Say(core::ServerContext& ctx,
                                            const examples::SayRequest& request) override {
    const uint64_t n = ++stats_.started;
    if (verbose_) print_line("echo_server call " + std::to_string(n) + " started");
    if (delay_.count() > 0) {
      auto [ec] = co_await ctx.env().async_wait_for(delay_, use_nothrow_awaitable);
      if (ec) co_return cancelled_error("call cancelled while waiting --delay-ms");
    }
    if (stats_.draining.load()) ++stats_.drained;
    examples::SayReply reply;
    reply.set_text(request.text());
    co_return reply;
  }

  awaitable<Status> Stream(
      core::ServerContext&,
      codec::ServerStream<examples::SayRequest, examples::SayReply>& stream) override {
    codec::StreamRead<examples::SayRequest> request =
        co_await stream.async_read(asio::use_awaitable);
    if (request.error) co_return request.error->status;
    if (!request.message) co_return invalid_argument_error("Stream needs a request");
    if (request.message->count() < 0) {
      co_return invalid_argument_error("count " + std::to_string(request.message->count()) +
                                       " is negative");
    }
    if (verbose_) print_line("echo_server stream of " + std::to_string(request.message->count()));
    examples::SayReply reply;
    for (int32_t i = 0; i < request.message->count(); ++i) {
      reply.set_text(std::to_string(i));
      Status sent = co_await stream.async_write(reply, asio::use_awaitable);
      if (!sent.ok()) co_return sent;
    }
    co_return Status();
  }

  awaitable<Status> Chat(
      core::ServerContext&,
      codec::ServerStream<examples::SayRequest, examples::SayReply>& stream) override {
    examples::SayReply reply;
    for (;;) {
      codec::StreamRead<examples::SayRequest> request =
          co_await stream.async_read(asio::use_awaitable);
      if (request.error) co_return request.error->status;
      if (!request.message) co_return Status();  // the client is done
      reply.set_text(request.message->text());
      Status sent = co_await stream.async_write(reply, asio::use_awaitable);
      if (!sent.ok()) co_return sent;
    }
  }

 private:
  const runtime::Duration delay_;
  const bool verbose_;
  CallStats& stats_;
};

// Blocks until SIGINT or SIGTERM; the signal_set lives on one of the env's executors.
int wait_for_signal(asio::signal_set& signals) {
  std::promise<int> caught;
  signals.async_wait(
      [&caught](const error_code& ec, int signal) { caught.set_value(ec ? 0 : signal); });
  return caught.get_future().get();
}

int run(const Flags& flags) {
  Result<transport::Address> address = transport::Address::parse(flags.listen);
  if (!address.ok()) {
    std::fprintf(stderr, "echo_server: --listen: %s\n", address.status().to_string().c_str());
    return 1;
  }
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = flags.threads});
  transport::TcpNetwork network(env);
  // Installed before "listening" is printed: a signal sent on seeing that line is ours.
  asio::signal_set signals(env.executor(0), SIGINT, SIGTERM);
  CallStats stats;
  EchoService service(flags, stats);
  auto server = std::make_unique<codec::Server>(env, network);
  server->add_service(service);
  // The same port answers HTTP/1.1: the JSON gateway, /health, /services (docs/observe.md).
  observe::HttpService::attach(*server);
  Result<transport::Address> bound = server->start(*address);
  if (!bound.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", bound.status().to_string().c_str());
    return 1;
  }
  print_line("echo_server listening on " + bound->to_string());

  const int signal = wait_for_signal(signals);
  if (flags.verbose) print_line("echo_server caught signal " + std::to_string(signal));
  stats.draining = true;
  std::promise<void> drained;
  server->shutdown(kDrainGrace, [&drained] { drained.set_value(); });
  // shutdown() calls back at the latest when the grace period ends.
  drained.get_future().wait();
  // The server's destructor waits for its connections to close, which flushes the last
  // replies; it must run while the env's threads do.
  server.reset();
  print_line("echo_server drained " + std::to_string(stats.drained.load()) + " calls, exiting");
  return 0;
}

}  // namespace echo

int main(int argc, char** argv) {
  echo::Flags flags;
  CLI::App app{"meshrpc echo server: serves /meshrpc.examples.Echo/Say until SIGINT/SIGTERM"};
  app.add_option("--listen", flags.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->required();
  app.add_option("--threads", flags.threads, "io threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--delay-ms", flags.delay_ms, "wait this long before each reply")
      ->check(CLI::Range(0, 3'600'000));
  app.add_flag("--verbose", flags.verbose, "print a line per call");
  std::string log_spec;
  app.add_option("--log", log_spec,
                 "log levels, e.g. 'info' or 'warn,cluster=debug' (components: base, runtime, "
                 "transport, wire, core, codec, resilience, cluster, observe, other)");
  CLI11_PARSE(app, argc, argv);
  if (!log_spec.empty()) {
    if (meshrpc::Status status = meshrpc::set_log_levels(log_spec); !status.ok()) {
      std::fprintf(stderr, "echo_server: --log: %s\n", std::string(status.message()).c_str());
      return 2;
    }
  }
  return echo::run(flags);
}
