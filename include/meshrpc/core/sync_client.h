// sync::Client: blocking unary calls for simple programs (tools, scripts, tests' main
// threads), on top of core::Channel.
//
//   runtime::RealEnv env;
//   meshrpc::sync::Client client(env);
//   Result<Buffer> reply = client.call({"127.0.0.1", 7000}, "/demo.Echo/Say", "hello");
//
// It keeps one core::Channel per address, made on first use and kept for the client's life
// (so later calls reuse its connections and reconnect backoff). A call blocks the calling
// thread until the call completes; it never blocks an io thread of the env or a simulation:
// there it returns FAILED_PRECONDITION at once (blocking an io thread can deadlock it on its
// own reply; a simulation only advances when its single thread returns). Asynchronous code
// uses core::Channel directly.
//
// Threading: call() from any thread that is not the env's; calls from several threads run
// concurrently. Lifetime: the env (and the network, when passed) outlive the client; destroy
// the client from a thread that is not the env's.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::sync {

struct ClientOptions {
  core::ChannelOptions channel;
  // Applied to calls that set neither a timeout nor a deadline, so that a blocked thread
  // always wakes up: a blocking call without a bound is a hang waiting to happen. 30 s: far
  // above a healthy unary call, short enough for a person to notice. nullopt: no bound.
  std::optional<runtime::Duration> default_timeout = std::chrono::seconds(30);
  // Distinct addresses with a channel (each holds a connection per io thread). 1,000: more
  // than a simple program talks to; past it calls fail with RESOURCE_EXHAUSTED.
  size_t max_channels = 1'000;
};

class Client {
 public:
  // `env` must be a runtime::RealEnv: the client makes its own transport::TcpNetwork. Under
  // any other env (a SimEnv) every call fails with FAILED_PRECONDITION.
  explicit Client(runtime::Env& env, ClientOptions options = {});
  Client(runtime::Env& env, transport::Network& network, ClientOptions options = {});
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The response, or the call's status: FAILED_PRECONDITION on an env thread or under
  // simulation (see above), RESOURCE_EXHAUSTED past max_channels, else what the call ended
  // with (UNAVAILABLE: the server is unreachable; retry after a while).
  Result<Buffer> call(const transport::Address& address, std::string method, Buffer request,
                      const core::CallOptions& options = {});
  Result<Buffer> call(const transport::Address& address, std::string method,
                      std::string_view request, const core::CallOptions& options = {});

  // The same, with trailing metadata and whether the server provably did not process it.
  core::CallResult call_detailed(const transport::Address& address, std::string method,
                                 Buffer request, const core::CallOptions& options = {});

  // The client's channel to `address`, made on first use (for asynchronous calls through the
  // same connections): RESOURCE_EXHAUSTED past max_channels, FAILED_PRECONDITION without a
  // network. The channel lives as long as the client.
  Result<core::Channel*> channel(const transport::Address& address);

 private:
  // OK when this thread may block on a call.
  Status check_may_block() const;

  runtime::Env& env_;
  ClientOptions options_;
  // Set when the client made the network itself (RealEnv); declared before channels_ so that
  // the channels go first.
  std::unique_ptr<transport::Network> owned_network_;
  transport::Network* network_;  // null: no network for this env (every call fails)
  std::mutex mutex_;             // guards channels_; held only to find or make a channel
  std::unordered_map<transport::Address, std::unique_ptr<core::Channel>> channels_;
};

}  // namespace meshrpc::sync
