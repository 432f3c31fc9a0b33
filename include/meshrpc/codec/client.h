// codec::Client: typed unary calls by address, without IDL or generated code.
//
//   codec::Client client(env);  // a RealEnv: the client makes its TCP network
//   // blocking, from a thread that is not the env's:
//   Result<GetChunkHandleReply> reply =
//       client.call<GetChunkHandleReply>(master, "Master.GetChunkHandle", args, options);
//   // asynchronous, with any completion token:
//   Result<GetChunkHandleReply> reply = co_await client.call<GetChunkHandleReply>(
//       master, "Master.GetChunkHandle", args, options, asio::use_awaitable);
//
// It keeps one core::Channel per address (a sync::Client underneath), so calls to an address
// share its connections. Blocking calls follow sync::Client's rules (FAILED_PRECONDITION on
// an env thread or under simulation; a default timeout when none is set); asynchronous ones
// follow codec::async_unary_call's. Status codes: as the call ended, plus INVALID_ARGUMENT
// from a server that could not decode the request and INTERNAL for a reply that does not
// decode here.
//
// Threading: from any thread. Lifetime: the env (and network) outlive the client; destroy it
// from a thread that is not the env's.
#pragma once

#include <boost/asio/post.hpp>
#include <string>
#include <utility>

#include "meshrpc/base/result.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/codec/method.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/call.h"
#include "meshrpc/core/sync_client.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::codec {

class Client {
 public:
  explicit Client(runtime::Env& env, sync::ClientOptions options = {})
      : env_(env), calls_(env, std::move(options)) {}
  Client(runtime::Env& env, transport::Network& network, sync::ClientOptions options = {})
      : env_(env), calls_(env, network, std::move(options)) {}

  // Blocks until the call completes.
  template <Encodable Reply, Encodable Request>
  Result<Reply> call(const transport::Address& address, std::string method, const Request& request,
                     const core::CallOptions& options = {}) {
    Result<Buffer> bytes = encode(request);
    if (!bytes.ok()) {
      return bytes.status().with_context("request does not encode");
    }
    return reply_from<Reply>(
        calls_.call_detailed(address, std::move(method), std::move(*bytes), options));
  }

  // Completes with void(Result<Reply>).
  template <Encodable Reply, Encodable Request, typename CompletionToken>
  auto call(const transport::Address& address, std::string method, const Request& request,
            core::CallOptions options, CompletionToken&& token) {
    // Encoded now, so the request need not outlive this call (lazy tokens start it later).
    Result<Buffer> bytes = encode(request);
    return asio::async_initiate<CompletionToken, void(Result<Reply>)>(
        [this](auto handler, transport::Address address, std::string method, Result<Buffer> bytes,
               core::CallOptions options) {
          Result<core::Channel*> channel = calls_.channel(address);
          if (!channel.ok() || !bytes.ok()) {
            Status status = !bytes.ok() ? bytes.status().with_context("request does not encode")
                                        : std::move(channel).status();
            auto executor = asio::get_associated_executor(handler, env_.pick_executor());
            asio::post(executor,
                       [handler = std::move(handler), status = std::move(status)]() mutable {
                         std::move(handler)(Result<Reply>(std::move(status)));
                       });
            return;
          }
          start_unary_call<Reply>(**channel, std::move(method), std::move(*bytes),
                                  std::move(options), std::move(handler));
        },
        token, address, std::move(method), std::move(bytes), std::move(options));
  }

  // The same for a method declared with its types (codec::Method): the reply type follows,
  // and the call carries the method's idempotency.
  template <Encodable Request, Encodable Reply>
  Result<Reply> call(const transport::Address& address, const Method<Request, Reply>& method,
                     const Request& request, core::CallOptions options = {}) {
    options.idempotency = method.idempotency;
    return call<Reply>(address, std::string(method.name), request, options);
  }
  template <Encodable Request, Encodable Reply, typename CompletionToken>
  auto call(const transport::Address& address, const Method<Request, Reply>& method,
            const Request& request, core::CallOptions options, CompletionToken&& token) {
    options.idempotency = method.idempotency;
    return call<Reply>(address, std::string(method.name), request, std::move(options),
                       std::forward<CompletionToken>(token));
  }

  // The channel to `address` (for generated clients: `Echo::Client echo(**client.channel(a))`).
  Result<core::Channel*> channel(const transport::Address& address) {
    return calls_.channel(address);
  }

 private:
  runtime::Env& env_;
  sync::Client calls_;
};

}  // namespace meshrpc::codec
