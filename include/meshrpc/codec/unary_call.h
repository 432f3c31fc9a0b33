// Typed unary calls over any core::CallInvoker (a Channel, or the cluster layer's client):
//
//   Result<GetChunkHandleReply> reply = co_await codec::async_unary_call<GetChunkHandleReply>(
//       channel, "Master.GetChunkHandle", args, options, asio::use_awaitable);
//
// Completion signature void(Result<Reply>). The request is encoded before the call starts
// (an encoding failure completes with the encoder's status, with context, without sending
// anything); a reply that does
// not decode completes with INTERNAL naming the field, since the server sent something this
// client cannot read. The handler's associated executor and cancellation slot carry through
// to the call, so cancelling it cancels the call on the server.
#pragma once

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include "meshrpc/base/result.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/call_invoker.h"

namespace meshrpc::codec {

// The typed result of a finished call: the decoded reply or the call's status.
template <Encodable Reply>
Result<Reply> reply_from(core::CallResult result) {
  if (!result.ok()) return std::move(result.status);
  Result<Reply> reply = decode<Reply>(result.response);
  if (!reply.ok()) {
    return internal_error("reply does not decode: " + std::string(reply.status().message()));
  }
  return reply;
}

// Starts a call whose request is already encoded; `handler` takes Result<Reply>. Its
// associated executor and cancellation slot carry through to the call.
template <Encodable Reply, typename Handler>
void start_unary_call(core::CallInvoker& invoker, std::string method, Buffer request,
                      core::CallOptions options, Handler handler) {
  auto executor = asio::get_associated_executor(handler, invoker.default_executor());
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto decode_reply = [handler = std::move(handler)](core::CallResult result) mutable {
    std::move(handler)(reply_from<Reply>(std::move(result)));
  };
  invoker.start_call(std::move(method), std::move(request), std::move(options), executor,
                     core::CallInvoker::CallHandler(asio::bind_cancellation_slot(
                         slot, asio::bind_executor(executor, std::move(decode_reply)))));
}

template <Encodable Reply, Encodable Request, typename CompletionToken>
auto async_unary_call(core::CallInvoker& invoker, std::string method, const Request& request,
                      core::CallOptions options, CompletionToken&& token) {
  // Encoded now, so the request need not outlive this call (lazy tokens start it later).
  Result<Buffer> bytes = encode(request);
  return asio::async_initiate<CompletionToken, void(Result<Reply>)>(
      [&invoker](auto handler, std::string method, Result<Buffer> bytes,
                 core::CallOptions options) {
        if (!bytes.ok()) {
          auto executor = asio::get_associated_executor(handler, invoker.default_executor());
          Status status = bytes.status().with_context("request does not encode");
          asio::post(executor,
                     [handler = std::move(handler), status = std::move(status)]() mutable {
                       std::move(handler)(Result<Reply>(std::move(status)));
                     });
          return;
        }
        start_unary_call<Reply>(invoker, std::move(method), std::move(*bytes), std::move(options),
                                std::move(handler));
      },
      token, std::move(method), std::move(bytes), std::move(options));
}

}  // namespace meshrpc::codec
