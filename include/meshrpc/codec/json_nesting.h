// How deeply JSON text nests objects and arrays, measured before any parser reads it. Parsers
// that recurse, or that take time superlinear in the depth (protobuf 3.21's takes 11 s of CPU
// on a 20 KB body of nested google.protobuf.Value lists, and does not count arrays toward its
// own depth limit), are given only text that passed this check.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace meshrpc::codec {

// The offset of the first '{' or '[' that opens container number max_depth + 1 inside one
// another, or nullopt. One pass, no recursion, no allocation; it does not validate the JSON
// (the parser does) and skips the contents of strings, so brackets in text do not count.
std::optional<size_t> find_excess_json_nesting(std::string_view json, size_t max_depth);

}  // namespace meshrpc::codec
