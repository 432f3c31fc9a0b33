#include "meshrpc/codec/json_nesting.h"

namespace meshrpc::codec {

std::optional<size_t> find_excess_json_nesting(std::string_view json, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, which may be a quote
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return i;
    } else if ((c == '}' || c == ']') && depth > 0) {
      // Unbalanced closers are malformed JSON: the parser says so, this only measures depth.
      --depth;
    }
  }
  return std::nullopt;
}

}  // namespace meshrpc::codec
