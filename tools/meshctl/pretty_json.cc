#include "pretty_json.h"

#include <boost/json/serialize.hpp>

namespace meshrpc::meshctl {

namespace {

void append_pretty(const boost::json::value& value, int depth, std::string& out) {
  const std::string indent(static_cast<size_t>(depth + 1) * 2, ' ');
  const std::string closing_indent(static_cast<size_t>(depth) * 2, ' ');
  if (value.is_object() && !value.as_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& member : value.as_object()) {
      if (!first) out += ",\n";
      first = false;
      out += indent + boost::json::serialize(boost::json::value(member.key())) + ": ";
      append_pretty(member.value(), depth + 1, out);
    }
    out += "\n" + closing_indent + "}";
  } else if (value.is_array() && !value.as_array().empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& element : value.as_array()) {
      if (!first) out += ",\n";
      first = false;
      out += indent;
      append_pretty(element, depth + 1, out);
    }
    out += "\n" + closing_indent + "]";
  } else {
    out += boost::json::serialize(value);
  }
}

}  // namespace

std::string to_pretty_json(const boost::json::value& value) {
  std::string out;
  append_pretty(value, 0, out);
  return out;
}

}  // namespace meshrpc::meshctl
