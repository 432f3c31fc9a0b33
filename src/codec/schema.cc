#include "meshrpc/codec/schema.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <set>
#include <string_view>

namespace meshrpc::codec {

namespace {

// Every .proto scalar type name: any other `type` names a message (whose `message` may be
// null on a field that closes a loop, so the name is what tells).
bool is_scalar_type(std::string_view type) {
  static constexpr std::string_view kScalars[] = {
      "bool",    "int32",    "int64",    "uint32", "uint64", "sint32", "sint64", "fixed32",
      "fixed64", "sfixed32", "sfixed64", "float",  "double", "string", "bytes",  "enum"};
  return std::find(std::begin(kScalars), std::end(kScalars), type) != std::end(kScalars);
}

bool names_message(const FieldSchema& field) {
  return field.message != nullptr || !is_scalar_type(field.type);
}

// One message alone, without the messages its fields use.
std::string message_text(const MessageSchema& schema) {
  std::string out = "message " + schema.name + " {\n";
  for (const FieldSchema& field : schema.fields) {
    out += "  ";
    switch (field.label) {
      case FieldSchema::Label::kSingular:
        out += field.type;
        break;
      case FieldSchema::Label::kOptional:
        out += "optional " + field.type;
        break;
      case FieldSchema::Label::kRepeated:
        out += "repeated " + field.type;
        break;
      case FieldSchema::Label::kMap:
        out += "map<" + field.key_type + ", " + field.type + ">";
        break;
    }
    out += " " + field.name + " = " + std::to_string(field.number) + ";\n";
  }
  out += "}\n";
  return out;
}

// The messages `schema` uses, directly or not, each once, in the order fields name them.
// `seen` holds the names already listed (the root's to begin with), which also ends cycles.
void collect_nested(const MessageSchema& schema, std::set<std::string>& seen,
                    std::vector<const MessageSchema*>& out) {
  for (const FieldSchema& field : schema.fields) {
    if (field.message == nullptr || !seen.insert(field.message->name).second) continue;
    out.push_back(field.message.get());
    collect_nested(*field.message, seen, out);
  }
}

}  // namespace

std::string_view label_name(FieldSchema::Label label) {
  switch (label) {
    case FieldSchema::Label::kSingular:
      return "singular";
    case FieldSchema::Label::kOptional:
      return "optional";
    case FieldSchema::Label::kRepeated:
      return "repeated";
    case FieldSchema::Label::kMap:
      return "map";
  }
  return "invalid";
}

std::string MessageSchema::to_text() const {
  std::string out = message_text(*this);
  std::set<std::string> seen = {name};
  std::vector<const MessageSchema*> nested;
  collect_nested(*this, seen, nested);
  for (const MessageSchema* message : nested) {
    out += "\n";
    out += message_text(*message);
  }
  return out;
}

boost::json::value MessageSchema::to_json() const {
  boost::json::array fields_json;
  fields_json.reserve(fields.size());
  for (const FieldSchema& field : fields) {
    boost::json::object entry;
    entry["name"] = field.name;
    entry["number"] = field.number;
    entry["label"] = label_name(field.label);
    entry["type"] = field.type;
    if (field.label == FieldSchema::Label::kMap) entry["key_type"] = field.key_type;
    // By name, not inlined: messages may contain themselves.
    if (names_message(field)) entry["message"] = field.type;
    fields_json.push_back(std::move(entry));
  }
  boost::json::object out;
  out["name"] = name;
  out["fields"] = std::move(fields_json);
  return out;
}

}  // namespace meshrpc::codec
