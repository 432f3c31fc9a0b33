// Codec<T>: the one seam between typed values and the bytes a call carries.
//
// Every type a typed handler or client (plain or generated) can carry has a Codec specialization:
//   - plain structs described by MESHRPC_STRUCT (codec/struct.h),
//   - protobuf messages (codec/protobuf.h),
//   - Buffer itself, raw bytes unchanged (here).
// A specialization provides
//   static Status encode(const T& value, Buffer& out);         // appends the encoding
//   static Status decode(std::string_view bytes, T& value);    // into a default T
// and, for the gateway and tools (not Buffer),
//   static Result<std::string> to_json(const T& value);
//   static Status from_json(std::string_view json, T& value);
//   static const MessageSchema& schema();
// Decode errors are INVALID_ARGUMENT naming the field that failed; the typed layer turns a
// bad request into INVALID_ARGUMENT for the caller and a bad response into INTERNAL.
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/schema.h"

namespace meshrpc::codec {

template <typename T>
struct Codec;  // specialized per family of types; see above

template <typename T>
concept Encodable = requires(const T& value, Buffer& out, std::string_view bytes, T& into) {
  { Codec<T>::encode(value, out) } -> std::same_as<Status>;
  { Codec<T>::decode(bytes, into) } -> std::same_as<Status>;
};

// Types with a JSON form and a schema (the gateway and meshctl need both).
template <typename T>
concept Describable = Encodable<T> && requires(const T& value, std::string_view json, T& into) {
  { Codec<T>::to_json(value) } -> std::same_as<Result<std::string>>;
  { Codec<T>::from_json(json, into) } -> std::same_as<Status>;
  { Codec<T>::schema() } -> std::same_as<const MessageSchema&>;
};

// Raw bytes: the request or response exactly as sent.
template <>
struct Codec<Buffer> {
  static Status encode(const Buffer& value, Buffer& out) {
    out.append(value);
    return Status();
  }
  static Status decode(std::string_view bytes, Buffer& value) {
    value = Buffer::copy_of(bytes);
    return Status();
  }
};

template <Encodable T>
Result<Buffer> encode(const T& value) {
  Buffer out;
  if (Status status = Codec<T>::encode(value, out); !status.ok()) return status;
  return out;
}

template <Encodable T>
Result<T> decode(std::string_view bytes) {
  T value{};
  if (Status status = Codec<T>::decode(bytes, value); !status.ok()) return status;
  return value;
}

// Decodes from a chain of slices: a view of the only slice, or a joined copy.
template <Encodable T>
Result<T> decode(const Buffer& bytes) {
  if constexpr (std::is_same_v<T, Buffer>) {
    return bytes;  // no copy: share the slices
  } else {
    if (bytes.slices().size() <= 1) {
      return decode<T>(bytes.empty() ? std::string_view() : bytes.slices()[0].view());
    }
    const std::string joined = bytes.to_string();
    return decode<T>(std::string_view(joined));
  }
}

}  // namespace meshrpc::codec
