// Channel: single call attempts to one endpoint (retries, hedging and breakers live one
// layer up, in cluster/, per DESIGN.md).
//
//   core::Channel channel(env, network, {"127.0.0.1", 7000});
//   core::CallResult r = co_await channel.async_call("/demo.Echo/Say", request, {},
//                                                    asio::use_awaitable);
//
// The channel keeps one sub-connection per executor of the env, so a call made on an io
// thread uses that thread's connection without locks; calls from other threads spread over
// them. A sub-connection connects on first use (with connect_timeout); when connecting
// fails, calls fail fast with UNAVAILABLE and the next attempt waits an exponential,
// jittered backoff. Calls beyond the peer's max concurrent streams queue on the client, up
// to max_queued_calls, then fail with RESOURCE_EXHAUSTED (not processed).
//
// Wait for ready (CallOptions::wait_for_ready): such a call does not fail fast. It queues on
// its sub-connection until a connection is up, and while it waits the sub-connection
// reconnects by itself when each backoff ends (one timer per sub-connection, not per call).
// The call fails with UNAVAILABLE (not processed) once its wait_for_ready bound passes, with
// DEADLINE_EXCEEDED once its deadline passes, and with CANCELLED when the caller cancels it
// or the channel is destroyed. Calls without it queued behind the same connect still fail
// with that connect's error.
//
// Completion tokens: the signature is void(CallResult); callbacks, std::future and
// co_await all work. The handler runs on its associated executor. Cancelling through the
// handler's cancellation slot (from that executor) sends CANCEL to the server and completes
// with CANCELLED promptly, so `co_await (call() || timer())` never waits on the loser.
//
// Threading: async_call from any thread. Lifetime: the env and network outlive the channel;
// calls in flight keep its internals alive until they complete.
#pragma once

#include <atomic>
#include <boost/asio/cancellation_signal.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/call_invoker.h"
#include "meshrpc/core/call_log.h"
#include "meshrpc/core/connection.h"
#include "meshrpc/core/interceptor.h"
#include "meshrpc/core/stream.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::core {

struct ChannelOptions {
  ConnectionOptions connection;
  // A connect that takes longer fails with UNAVAILABLE. 5 s: longer than any healthy
  // handshake in a datacenter, short enough to move on from a black hole.
  runtime::Duration connect_timeout = std::chrono::seconds(5);
  // Reconnect backoff: initial, growth and cap; each wait is jittered by +-20%. gRPC's
  // documented defaults (connection-backoff.md) are 1 s initial, x1.6, jitter 0.2 and a 120 s
  // cap; growth and jitter are kept, the initial wait and the cap are not. Those target
  // mobile and WAN clients, where an endpoint stays away for minutes and thousands of devices
  // must not stampede it. In a datacenter a restarted server is back within seconds: with a
  // 5 s cap a client notices within 5 s that an endpoint is back (and a wait-for-ready call
  // waits at most that long past it), while one SYN every 5 s per client per endpoint is
  // negligible load. 100 ms initial covers a fast restart or a brief blip without a visible
  // stall.
  runtime::Duration backoff_initial = std::chrono::milliseconds(100);
  double backoff_multiplier = 1.6;
  runtime::Duration backoff_max = std::chrono::seconds(5);
  // Calls waiting per sub-connection for a stream slot or for the connection to come up.
  // 10,000: bounded memory, far above one thread's useful backlog.
  size_t max_queued_calls = 10'000;
  // Run around every call, in order (see interceptor.h).
  ClientInterceptors interceptors;
  // The idle timeout of streams opened without one (seed 002's with_default_timeout):
  // nullopt, none; a stream's StreamOptions::idle_timeout overrides it.
  std::optional<runtime::Duration> default_stream_idle_timeout = std::nullopt;
  // Where the channel's metrics are exposed (meshrpc_client_*, labelled with the endpoint;
  // docs/metrics.md): per method, calls started and finished by code, latency, bytes, in
  // flight; connections. Null turns recording off. The registry outlives the channel.
  MetricRegistry* metrics = &MetricRegistry::global();
  // The channel's recent and slowest attempts (client spans, call_log.h), for /rpcz and
  // tests. Off by default (nullopt): a cluster client keeps a channel per endpoint, and a
  // broadcast to 1,000 endpoints would keep up to 64 spans for each; the server side of a
  // call is logged by its server anyway. Turn on with e.g.
  // CallLogOptions{.recent_capacity = 64, .slowest_per_method = 4}.
  std::optional<CallLogOptions> rpcz;
};

// A call as the sub-connections see it; defined in channel.cc.
struct PendingCall;
struct CallCancel;
class SubChannel;
struct ChannelMetrics;
struct ChannelSpans;

class Channel final : public CallInvoker {
 public:
  Channel(runtime::Env& env, transport::Network& network, transport::Address target,
          ChannelOptions options = {});
  // On real threads, closes its connections and waits for that to happen on the env's
  // threads, which must still be running (destroy channels before stopping the env).
  ~Channel() override;

  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // async_call(method, request, options, token): see CallInvoker.
  asio::any_io_executor default_executor() override { return pick_executor(); }
  void start_call(std::string method, Buffer request, CallOptions options,
                  asio::any_io_executor completion_executor, CallHandler handler) override;

  // Opens a stream (stream.h) to `method`: returns at once; the call starts as a unary call
  // would (connection, queueing, deadline), and writes wait until it has. Interceptors do
  // not run for streams.
  ClientStream open_stream(std::string method, StreamOptions options = {}) override;

  const transport::Address& target() const { return target_; }
  // Sub-connections whose connection is up (for tests and status pages; approximate when
  // read from another thread).
  size_t connected_count() const;
  // The attempts this channel made (ChannelOptions::rpcz), one span each: trace ids as sent,
  // the endpoint, timing and status. Null when off. Lives as long as the channel.
  const CallLog* call_log() const;

 private:
  asio::any_io_executor pick_executor();
  SubChannel& pick_subchannel();
  awaitable<void> intercepted_call(std::shared_ptr<SubChannel> sub,
                                   std::shared_ptr<ClientCallInfo> info, Buffer request,
                                   asio::any_io_executor completion_executor,
                                   std::shared_ptr<CallHandler> handler,
                                   asio::cancellation_slot caller_slot,
                                   std::shared_ptr<CallCancel> cancel);
  static void submit(SubChannel& sub, const std::shared_ptr<PendingCall>& call, CallCancel& cancel);

  runtime::Env& env_;
  transport::Address target_;
  ClientInterceptors interceptors_;
  std::optional<runtime::Duration> default_stream_idle_timeout_;
  std::vector<std::shared_ptr<SubChannel>> subchannels_;
  std::atomic<size_t> next_subchannel_{0};
  std::shared_ptr<ChannelMetrics> metrics_;  // null when ChannelOptions::metrics is
  std::shared_ptr<ChannelSpans> spans_;      // null when ChannelOptions::rpcz is
  // Last, so destroyed first: no collector reads metrics_ once the channel is going.
  MetricRegistry::Registration metrics_registration_;
};

}  // namespace meshrpc::core
