// Codec<T> for plain structs described by MESHRPC_STRUCT: the binary form (struct_codec.h),
// the JSON form (struct_json.h) and the schema (struct_schema.h). Include this header to use
// a struct as a request or reply.
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/codec/codec.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/struct_json.h"
#include "meshrpc/codec/struct_schema.h"

namespace meshrpc::codec {

template <DescribedStruct T>
struct Codec<T> {
  static Status encode(const T& value, Buffer& out) {
    encode_struct(value, out);
    return Status();
  }
  static Status decode(std::string_view bytes, T& value) { return decode_struct(bytes, value); }
  static Result<std::string> to_json(const T& value) { return struct_to_json(value); }
  static Status from_json(std::string_view json, T& value) { return struct_from_json(json, value); }
  static const MessageSchema& schema() { return struct_schema<T>(); }
};

}  // namespace meshrpc::codec
