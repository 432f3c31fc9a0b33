// Interceptors: code that runs around every call, on the client (ChannelOptions) and on the
// server (ServerOptions): authentication, metadata injection, logging, metrics, policy.
//
// An interceptor is asynchronous where it may need to wait (before_*: fetch a token, ask a
// policy service) and synchronous where it only observes (after_*). Interceptors run in the
// order given before the call and in reverse order after it, like nested scopes; after_*
// runs only for interceptors whose before_* ran, whatever the outcome.
//
// Streams (a later issue) use the same interfaces: `kind` tells what the call is, before_*
// runs when the stream opens and after_* when it ends with its final status.
//
// Threading: before_call runs on the channel's executor for the call, after_call on the
// caller's completion executor; server hooks on the connection's executor. Interceptors are
// shared by all calls and threads: keep their state thread-safe or immutable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/server_context.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::core {

enum class CallKind { kUnary, kServerStreaming, kClientStreaming, kBidiStreaming };

// A client call as interceptors see it before it leaves. `options` may be changed: add or
// rewrite metadata, shorten the deadline.
struct ClientCallInfo {
  std::string method;
  transport::Address target;
  CallKind kind = CallKind::kUnary;
  CallOptions options;
};

class ClientInterceptor {
 public:
  virtual ~ClientInterceptor() = default;
  // A non-OK status short-circuits: the call ends with it (not processed) without reaching
  // the network or later interceptors.
  virtual awaitable<Status> before_call(ClientCallInfo& call) {
    (void)call;
    co_return Status();
  }
  // The call ended (also when short-circuited by a later interceptor); `elapsed` is measured
  // from before the first interceptor ran.
  virtual void after_call(const ClientCallInfo& call, const CallResult& result,
                          runtime::Duration elapsed) {
    (void)call, (void)result, (void)elapsed;
  }
};

class ServerInterceptor {
 public:
  virtual ~ServerInterceptor() = default;
  // Before the handler: read ctx.metadata(), set ctx.response_metadata(). A non-OK status
  // ends the call with it; the handler does not run (the client sees "not processed").
  virtual awaitable<Status> before_handler(ServerContext& ctx) {
    (void)ctx;
    co_return Status();
  }
  // The call ended with `status` after `elapsed` (from before the first interceptor).
  virtual void after_handler(ServerContext& ctx, const Status& status, runtime::Duration elapsed) {
    (void)ctx, (void)status, (void)elapsed;
  }
};

using ClientInterceptors = std::vector<std::shared_ptr<ClientInterceptor>>;
using ServerInterceptors = std::vector<std::shared_ptr<ServerInterceptor>>;

}  // namespace meshrpc::core
