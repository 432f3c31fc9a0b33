// What is known about a typed method: its name, kind and idempotency (from the .proto's
// `idempotency_level` option or the MethodOptions given to Server::handle), and, for the
// HTTP/JSON gateway and `meshctl list`, its message schemas and JSON converters.
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/codec/schema.h"
#include "meshrpc/core/call.h"

namespace meshrpc::codec {

enum class MethodKind : uint8_t { kUnary, kServerStreaming, kClientStreaming, kBidiStreaming };
std::string_view method_kind_name(MethodKind kind);

// A method as generated code declares it (a constant per method).
struct MethodInfo {
  std::string_view name;  // canonical: "/package.Service/Method"
  MethodKind kind = MethodKind::kUnary;
  core::Idempotency idempotency = core::Idempotency::kUnknown;
};

// What Server::handle takes besides the handler.
struct MethodOptions {
  core::Idempotency idempotency = core::Idempotency::kUnknown;
};

// A unary method with its types, for the IDL-free road: declared once, shared by the server
// and its clients, so both agree on the name, the request and reply types (checked by the
// compiler) and the idempotency (which the client's CallOptions then carry to retry policies).
//
//   inline constexpr codec::Method<GetChunkHandleArgs, GetChunkHandleReply> kGetChunkHandle{
//       "Master.GetChunkHandle", core::Idempotency::kIdempotent};
//   server.handle(kGetChunkHandle, handler);
//   Result<GetChunkHandleReply> reply = client.call(master, kGetChunkHandle, args, options);
template <typename Req, typename Reply>
struct Method {
  using Request = Req;
  using Response = Reply;
  std::string_view name;  // dotted or canonical form
  core::Idempotency idempotency = core::Idempotency::kUnknown;

  constexpr MethodInfo info() const { return {name, MethodKind::kUnary, idempotency}; }
};

// A registered method, as the server describes it to tools.
struct MethodDescription {
  std::string name;  // canonical
  MethodKind kind = MethodKind::kUnary;
  core::Idempotency idempotency = core::Idempotency::kUnknown;
  bool blocking = false;  // runs on the worker pool
  // Null for types without a schema (raw Buffer).
  const MessageSchema* request_schema = nullptr;
  const MessageSchema* response_schema = nullptr;
  // JSON request -> wire bytes and wire reply -> JSON, for the gateway; null for raw Buffer.
  Result<Buffer> (*request_from_json)(std::string_view json) = nullptr;
  Result<std::string> (*response_to_json)(const Buffer& wire) = nullptr;
};

namespace detail {

template <Encodable T>
Result<Buffer> wire_from_json(std::string_view json) {
  T value{};
  if (Status status = Codec<T>::from_json(json, value); !status.ok()) return status;
  return encode(value);
}

template <Encodable T>
Result<std::string> json_from_wire(const Buffer& wire) {
  Result<T> value = decode<T>(wire);
  if (!value.ok()) return std::move(value).status();
  return Codec<T>::to_json(*value);
}

}  // namespace detail

// The description of a method carrying Req and Reply.
template <Encodable Req, Encodable Reply>
MethodDescription describe_method(std::string canonical_name, MethodKind kind,
                                  core::Idempotency idempotency, bool blocking) {
  MethodDescription description;
  description.name = std::move(canonical_name);
  description.kind = kind;
  description.idempotency = idempotency;
  description.blocking = blocking;
  if constexpr (Describable<Req>) {
    description.request_schema = &Codec<Req>::schema();
    description.request_from_json = &detail::wire_from_json<Req>;
  }
  if constexpr (Describable<Reply>) {
    description.response_schema = &Codec<Reply>::schema();
    description.response_to_json = &detail::json_from_wire<Reply>;
  }
  return description;
}

}  // namespace meshrpc::codec
