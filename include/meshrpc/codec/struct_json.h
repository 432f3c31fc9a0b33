// The JSON form of MESHRPC_STRUCT types, following protobuf's JSON mapping so a struct and the
// equivalent .proto message print and parse alike (HTTP/JSON gateway, meshctl).
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec {

struct JsonParseOptions {
  // Unknown keys fail with INVALID_ARGUMENT naming the key (a typo in a hand-written request
  // should not be silently dropped); set to skip them instead.
  bool ignore_unknown_fields = false;
};

template <DescribedStruct T>
std::string struct_to_json(const T& value);

template <DescribedStruct T>
Status struct_from_json(std::string_view json, T& out, const JsonParseOptions& options = {});

}  // namespace meshrpc::codec
