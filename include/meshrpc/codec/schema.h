// MessageSchema: what a message type looks like (field names, numbers and types), for people
// and tools: `meshctl list`, the status pages and the HTTP/JSON gateway read it. Both roads
// produce one: plain structs from their MESHRPC_STRUCT line, protobuf messages from their
// descriptors.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace meshrpc::codec {

struct MessageSchema;

struct FieldSchema {
  enum class Label {
    kSingular,  // absent on the wire when it holds the default (proto3 semantics)
    kOptional,  // std::optional / proto3 `optional`: presence is kept
    kRepeated,  // std::vector / `repeated`
    kMap,       // std::map / `map<K, V>`
  };
  std::string name;
  uint32_t number = 0;
  Label label = Label::kSingular;
  // Scalar types use protobuf's names: "bool", "int32", "int64", "uint32", "uint64",
  // "float", "double", "string", "bytes", "enum"; protobuf messages also have the other
  // .proto types under their exact names ("sint64", "fixed32", "sfixed64", ...), which differ
  // on the wire from the nearest of those. A nested message uses its name (the full name, with
  // the package, for protobuf messages). For a map, the value type.
  std::string type;
  std::string key_type;  // maps only
  // Set when `type` names a message, except on the field that closes a loop (a message that
  // contains itself, directly or not), which has only the name: shared_ptrs cannot cycle.
  std::shared_ptr<const MessageSchema> message;
};

struct MessageSchema {
  std::string name;
  std::vector<FieldSchema> fields;

  // Proto-like text, one field per line, nested messages after it:
  //   message GetChunkHandleArgs {
  //     string path = 1;
  //     int64 chunk_index = 2;
  //   }
  std::string to_text() const;
  // {"name": ..., "fields": [{"name", "number", "label", "type", "key_type"?, "message"?}]}
  boost::json::value to_json() const;
};

std::string_view label_name(FieldSchema::Label label);

}  // namespace meshrpc::codec
