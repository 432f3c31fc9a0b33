// meshrpc echo client for bench/run, from one io thread over --connections channels (one
// connection each), reporting like every peer client:
//   --mode unary   keeps --inflight /bench.Echo/Echo calls outstanding;
//   --mode stream  opens --inflight /bench.Echo/Stream streams and counts the messages.
// --metrics off turns off the channels' call metrics (ChannelOptions::metrics = null).
// --tls-ca (and --tls-cert/--tls-key for mTLS) connect over TLS 1.3 (transport::TlsNetwork);
// each channel's handshake happens in the warmup, so the run measures established sessions.
#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "../common/client_run.h"
#include "../common/echo_flags.h"
#include "echo_tls.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/stream.h"
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

  void start(const asio::any_io_executor& /*executor: calls complete on the channels'*/) {
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

// Server streaming: each stream sends one --payload-byte message and then reads what the
// server streams back until the run is over, when it aborts the stream (not an error).
class StreamLoad {
 public:
  StreamLoad(const ClientFlags& flags, std::vector<std::unique_ptr<core::Channel>>& channels)
      : flags_(flags),
        channels_(channels),
        run_(flags),
        payload_(Buffer::copy_of(std::string(flags.payload_bytes, 'x'))) {}

  // Opens every stream; their readers run on `executor` (the env's one io thread).
  void start(const asio::any_io_executor& executor) {
    streams_.reserve(flags_.inflight);  // readers hold references into it
    for (uint32_t i = 0; i < flags_.inflight; ++i) {
      core::Channel& channel = *channels_[i % channels_.size()];
      streams_.push_back(channel.open_stream("/bench.Echo/Stream", {}));
      ++outstanding_;
      asio::co_spawn(executor, read_stream(streams_.back()), asio::detached);
    }
  }

  // Once the run is over every stream is aborted, which also wakes a reader whose server
  // went quiet; the run ends when every reader has returned.
  bool finished(Clock::time_point now) {
    run_.advance(now);
    if (run_.issuing()) return false;
    for (core::ClientStream& stream : streams_) stream.abort();
    return outstanding_ == 0 || now >= run_.drain_deadline();
  }
  Clock::time_point next_wakeup() const { return run_.next_wakeup(); }
  int report() const { return run_.report(); }

 private:
  awaitable<void> read_stream(core::ClientStream& stream) {
    Buffer request = payload_;
    Status sent = co_await stream.async_write_last(std::move(request), asio::use_awaitable);
    if (!sent.ok()) {
      fail("request not sent: " + sent.to_string());
      co_return;
    }
    for (;;) {
      core::ReadResult read = co_await stream.async_read(asio::use_awaitable);
      const Clock::time_point now = Clock::now();
      run_.advance(now);
      if (!run_.issuing()) break;  // whatever the read gave: the run is over
      if (!read.message) {
        fail(read.error ? read.error->to_string() : "the server ended the stream");
        co_return;
      }
      if (read.message->size() != flags_.payload_bytes) {
        fail("message of " + std::to_string(read.message->size()) + " bytes");
        co_return;
      }
      run_.on_message(now);
    }
    --outstanding_;
  }

  void fail(const std::string& why) {
    std::fprintf(stderr, "stream failed: %s\n", why.c_str());
    run_.on_call_failed();
    --outstanding_;
  }

  const ClientFlags& flags_;
  std::vector<std::unique_ptr<core::Channel>>& channels_;
  ClientRun run_;
  Buffer payload_;
  std::vector<core::ClientStream> streams_;
  uint64_t outstanding_ = 0;
};

template <typename Load>
awaitable<int> drive(runtime::Env& env, Load& load) {
  load.start(env.executor(0));
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
  bool metrics = true;
  bench::add_metrics_flag(app, metrics);
  bench::TlsFlags tls;
  bench::add_client_tls_flags(app, tls);
  CLI11_PARSE(app, argc, argv);

  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  transport::TcpNetwork tcp(env);
  transport::Network* network = &tcp;
  std::optional<transport::TlsNetwork> tls_network;
  if (tls.enabled()) {
    auto credentials = bench::make_tls_credentials(tls, transport::TlsRole::kClient);
    if (!credentials.ok()) {
      std::fprintf(stderr, "meshrpc_echo_client: %s\n", credentials.status().to_string().c_str());
      return 1;
    }
    network = &tls_network.emplace(tcp, std::move(credentials).value());
  }
  std::vector<std::unique_ptr<core::Channel>> channels;
  for (uint32_t i = 0; i < flags.connections; ++i) {
    core::ChannelOptions options;
    if (!metrics) options.metrics = nullptr;
    channels.push_back(std::make_unique<core::Channel>(
        env, *network, transport::Address{flags.target.host, flags.target.port},
        std::move(options)));
  }
  int code = 0;
  if (flags.mode == bench::Mode::kStream) {
    bench::StreamLoad load(flags, channels);
    code = asio::co_spawn(env.executor(0), bench::drive(env, load), asio::use_future).get();
  } else {
    bench::EchoLoad load(flags, channels);
    code = asio::co_spawn(env.executor(0), bench::drive(env, load), asio::use_future).get();
  }
  channels.clear();
  return code;
}
