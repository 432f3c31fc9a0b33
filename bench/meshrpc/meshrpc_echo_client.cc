// meshrpc echo client for bench/run: keeps --inflight calls outstanding over --connections
// channels (one connection each) from one io thread, and reports like every peer client.
#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <memory>
#include <vector>

#include "../common/client_run.h"
#include "../common/echo_flags.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace meshrpc::bench {
namespace {

using Clock = ClientRun::Clock;

// Everything below runs on the env's single io thread (ClientRun is not thread-safe).
class EchoLoad {
 public:
  EchoLoad(const ClientFlags& flags, std::vector<std::unique_ptr<core::Channel>>& channels)
      : flags_(flags),
        channels_(channels),
        run_(flags),
        payload_(Buffer::copy_of(std::string(flags.payload_bytes, 'x'))) {}

  void start() {
    for (uint32_t i = 0; i < flags_.inflight; ++i) issue();
  }

  // The run is over: nothing outstanding, or the drain deadline passed.
  bool finished(Clock::time_point now) {
    run_.advance(now);
    return !run_.issuing() && (outstanding_ == 0 || now >= run_.drain_deadline());
  }
  Clock::time_point next_wakeup() const { return run_.next_wakeup(); }
  int report() const { return run_.report(); }

 private:
  void issue() {
    core::Channel& channel = *channels_[next_channel_++ % channels_.size()];
    ++outstanding_;
    const Clock::time_point start = Clock::now();
    channel.async_call("/bench.Echo/Echo", payload_, {}, [this, start](core::CallResult result) {
      --outstanding_;
      const Clock::time_point end = Clock::now();
      run_.advance(end);
      if (result.ok() && result.response.size() == flags_.payload_bytes) {
        run_.on_call_done(start, end);
      } else {
        run_.on_call_failed();
      }
      if (run_.issuing()) issue();
    });
  }

  const ClientFlags& flags_;
  std::vector<std::unique_ptr<core::Channel>>& channels_;
  ClientRun run_;
  Buffer payload_;
  size_t next_channel_ = 0;
  uint64_t outstanding_ = 0;
};

awaitable<int> drive(runtime::Env& env, EchoLoad& load) {
  load.start();
  while (!load.finished(Clock::now())) {
    // Wake at the next phase change, or every 10 ms to notice the drain ending.
    const auto wake = std::min(load.next_wakeup(), Clock::now() + std::chrono::milliseconds(10));
    const auto at =
        runtime::TimePoint(std::chrono::duration_cast<runtime::Duration>(wake.time_since_epoch()));
    co_await env.async_wait_until(at, use_nothrow_awaitable);
  }
  co_return load.report();
}

}  // namespace
}  // namespace meshrpc::bench

int main(int argc, char** argv) {
  using namespace meshrpc;
  CLI::App app("meshrpc echo client (benchmark)");
  bench::ClientFlags flags;
  bench::add_client_flags(app, flags);
  CLI11_PARSE(app, argc, argv);

  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  transport::TcpNetwork network(env);
  std::vector<std::unique_ptr<core::Channel>> channels;
  for (uint32_t i = 0; i < flags.connections; ++i) {
    channels.push_back(std::make_unique<core::Channel>(
        env, network, transport::Address{flags.target.host, flags.target.port}));
  }
  bench::EchoLoad load(flags, channels);
  auto result = asio::co_spawn(env.executor(0), bench::drive(env, load), asio::use_future);
  const int code = result.get();
  channels.clear();
  return code;
}
