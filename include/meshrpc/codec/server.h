// codec::Server: a core::Server that takes typed handlers. One line per method:
//
//   codec::Server server(env, network);
//   server.handle<GetChunkHandleArgs, GetChunkHandleReply>(
//       "Master.GetChunkHandle",
//       [&](core::ServerContext& ctx, const GetChunkHandleArgs& args)
//           -> awaitable<Result<GetChunkHandleReply>> { ... });
//   server.add_service(echo_service);  // a class generated from a .proto
//
// A handler returns awaitable<Result<Reply>> (it may suspend) or Result<Reply> (it finishes
// without suspending); handle_blocking takes one that blocks its thread and runs it on the
// worker pool. A request that does not decode fails with INVALID_ARGUMENT naming the field,
// before the handler runs; a reply that does not encode fails with the encoder's status
// (RESOURCE_EXHAUSTED for a protobuf message over 2 GiB). Raw-bytes
// handlers (core::Server::register_method) stay available on the same server.
//
// Threading and lifetime: as core::Server. Register before start().
#pragma once

#include <concepts>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/codec/method.h"
#include "meshrpc/codec/service.h"
#include "meshrpc/codec/stream.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/core/server.h"

namespace meshrpc::codec {

namespace detail {

template <typename T>
struct IsAwaitableResult : std::false_type {};
template <typename T>
struct IsAwaitableResult<awaitable<Result<T>>> : std::true_type {};

template <Encodable Req>
Result<Req> decode_request(const core::ServerContext& ctx, const Buffer& bytes) {
  Result<Req> request = decode<Req>(bytes);
  if (!request.ok()) {
    return invalid_argument_error("request to " + ctx.method() +
                                  " does not decode: " + std::string(request.status().message()));
  }
  return request;
}

template <Encodable Reply>
Result<Buffer> encode_reply(const core::ServerContext& ctx, Result<Reply> reply) {
  if (!reply.ok()) return std::move(reply).status();
  Result<Buffer> bytes = encode(*reply);
  if (!bytes.ok()) {
    return bytes.status().with_context("reply of " + ctx.method() + " does not encode");
  }
  return bytes;
}

}  // namespace detail

class Server : public core::Server {
 public:
  using core::Server::Server;

  // Registers `handler` for `method` ("Service.Method" or "/package.Service/Method"). Calls
  // on several io threads invoke it at once, so it is invoked as const (a `mutable` lambda
  // does not compile: its state would be raced on):
  //   awaitable<Result<Reply>>(core::ServerContext&, const Req&), or
  //   Result<Reply>(core::ServerContext&, const Req&) for a handler that never suspends.
  template <Encodable Req, Encodable Reply, typename Fn>
  requires std::invocable<const Fn&, core::ServerContext&, const Req&>
  void handle(std::string_view method, Fn handler, MethodOptions options = {}) {
    handle<Req, Reply>(MethodInfo{method, MethodKind::kUnary, options.idempotency},
                       std::move(handler));
  }

  // The same for a method as generated code declares it (name and idempotency from the
  // .proto). Only unary methods for now.
  template <Encodable Req, Encodable Reply, typename Fn>
  requires std::invocable<const Fn&, core::ServerContext&, const Req&>
  void handle(const MethodInfo& method, Fn handler) {
    using Returned = std::invoke_result_t<const Fn&, core::ServerContext&, const Req&>;
    static_assert(
        detail::IsAwaitableResult<Returned>::value || std::is_same_v<Returned, Result<Reply>>,
        "a handler returns awaitable<Result<Reply>> or Result<Reply>");
    if (method.kind != MethodKind::kUnary) {  // a setup-time programmer error
      throw std::invalid_argument("Server::handle: " + std::string(method.name) + " is " +
                                  std::string(method_kind_name(method.kind)) +
                                  "; register it with handle_stream");
    }
    std::string name = core::canonical_method_name(method.name);
    describe(describe_method<Req, Reply>(name, MethodKind::kUnary, method.idempotency, false));
    register_method(std::move(name),
                    [handler = std::move(handler)](core::ServerContext& ctx,
                                                   Buffer bytes) -> awaitable<Result<Buffer>> {
                      Result<Req> request = detail::decode_request<Req>(ctx, bytes);
                      if (!request.ok()) co_return std::move(request).status();
                      if constexpr (detail::IsAwaitableResult<Returned>::value) {
                        Result<Reply> reply = co_await handler(ctx, *request);
                        co_return detail::encode_reply<Reply>(ctx, std::move(reply));
                      } else {
                        co_return detail::encode_reply<Reply>(ctx, handler(ctx, *request));
                      }
                    });
  }

  // The same for a method declared with its types (codec::Method).
  template <Encodable Req, Encodable Reply, typename Fn>
  requires std::invocable<const Fn&, core::ServerContext&, const Req&>
  void handle(const Method<Req, Reply>& method, Fn handler) {
    handle<Req, Reply>(method.info(), std::move(handler));
  }

  // Registers a handler that blocks its thread, Result<Reply>(core::ServerContext&, const
  // Req&): it runs on the env's worker pool (see core::Server::register_blocking_method).
  template <Encodable Req, Encodable Reply, typename Fn>
  void handle_blocking(std::string_view method, Fn handler, MethodOptions options = {}) {
    static_assert(std::is_same_v<std::invoke_result_t<const Fn&, core::ServerContext&, const Req&>,
                                 Result<Reply>>,
                  "a blocking handler returns Result<Reply>");
    std::string name = core::canonical_method_name(method);
    describe(describe_method<Req, Reply>(name, MethodKind::kUnary, options.idempotency, true));
    register_blocking_method(
        std::move(name),
        [handler = std::move(handler)](core::ServerContext& ctx, Buffer bytes) -> Result<Buffer> {
          Result<Req> request = detail::decode_request<Req>(ctx, bytes);
          if (!request.ok()) return std::move(request).status();
          return detail::encode_reply<Reply>(ctx, handler(ctx, *request));
        });
  }

  template <Encodable Req, Encodable Reply, typename Fn>
  void handle_blocking(const Method<Req, Reply>& method, Fn handler) {
    handle_blocking<Req, Reply>(method.name, std::move(handler), {method.idempotency});
  }

  // Registers a streaming handler, awaitable<Status>(core::ServerContext&,
  // ServerStream<Req, Reply>&): it reads requests and writes replies until it returns the
  // call's final status (see stream.h). Any streaming kind: the handler decides how many
  // messages it reads and writes.
  template <Encodable Req, Encodable Reply, typename Fn>
  requires std::invocable < const Fn&, core::ServerContext&, ServerStream<Req, Reply>
  & > void handle_stream(const MethodInfo& method, Fn handler) {
    if (method.kind == MethodKind::kUnary) {  // a setup-time programmer error
      throw std::invalid_argument("Server::handle_stream: " + std::string(method.name) +
                                  " is unary; register it with handle");
    }
    std::string name = core::canonical_method_name(method.name);
    describe(describe_method<Req, Reply>(name, method.kind, method.idempotency, false));
    register_stream_method(
        std::move(name),
        [handler = std::move(handler)](core::ServerContext& ctx,
                                       core::ServerStream& raw) -> awaitable<Status> {
          ServerStream<Req, Reply> stream(raw);
          Status final_status = co_await handler(ctx, stream);
          co_return final_status;
        });
  }
  template <Encodable Req, Encodable Reply, typename Fn>
  requires std::invocable < const Fn&, core::ServerContext&, ServerStream<Req, Reply>
  & > void handle_stream(std::string_view method, Fn handler) {
    handle_stream<Req, Reply>(MethodInfo{method, MethodKind::kBidiStreaming}, std::move(handler));
  }

  // Registers every method of `service` (generated from a .proto); the service outlives the
  // server.
  void add_service(Service& service) { service.register_methods(*this); }

  // The typed methods registered so far, in registration order (for meshctl and the gateway).
  const std::vector<MethodDescription>& methods() const { return methods_; }
  // The description of `canonical_name`, or null.
  const MethodDescription* find_method(std::string_view canonical_name) const;

 private:
  void describe(MethodDescription description);

  std::vector<MethodDescription> methods_;
};

}  // namespace meshrpc::codec
