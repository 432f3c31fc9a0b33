// CallInvoker: anything that can carry a call on raw bytes to a server: a Channel (one
// endpoint), and later the cluster layer's service client (retries, failover, hedging).
// Generated clients and codec::Client are written against it, so they run over either.
//
// Threading and completion: as Channel (see channel.h): async_call from any thread; the
// handler runs on its associated executor (default: one of the invoker's); cancelling through
// its cancellation slot ends the call with CANCELLED promptly.
#pragma once

#include <string>

#include "meshrpc/base/buffer.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/stream.h"
#include "meshrpc/runtime/asio.h"

namespace meshrpc::core {

class CallInvoker {
 public:
  using CallHandler = asio::any_completion_handler<void(CallResult)>;

  virtual ~CallInvoker() = default;

  // `method` is "/package.Service/Method", or "package.Service.Method" (see
  // canonical_method_name in method_name.h).
  template <typename CompletionToken>
  auto async_call(std::string method, Buffer request, CallOptions options,
                  CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(CallResult)>(
        [this](auto handler, std::string method, Buffer request, CallOptions options) {
          auto executor = asio::get_associated_executor(handler, default_executor());
          start_call(std::move(method), std::move(request), std::move(options), std::move(executor),
                     CallHandler(std::move(handler)));
        },
        token, std::move(method), std::move(request), std::move(options));
  }

  // The executor completions run on when the handler has none of its own.
  virtual asio::any_io_executor default_executor() = 0;
  // Starts the call; `handler` runs once, on `completion_executor`.
  virtual void start_call(std::string method, Buffer request, CallOptions options,
                          asio::any_io_executor completion_executor, CallHandler handler) = 0;

  // Opens a stream (stream.h). Invokers that cannot carry streams return one that has
  // already ended with UNIMPLEMENTED as its status (a kTransport error), naming the invoker.
  virtual ClientStream open_stream(std::string method, StreamOptions options);
};

}  // namespace meshrpc::core
