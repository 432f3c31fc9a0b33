#include "meshrpc/codec/protobuf.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "meshrpc/codec/json_nesting.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/wire_format.h"

namespace meshrpc::codec::protobuf {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

// ---- describe_parse_failure ----
//
// Walks the input the way protobuf's parser does, to name the field it gave up on. Protobuf
// keeps a known field that arrives with an unexpected wire type as an unknown field instead
// of failing, so such a field is only a suspect: it is reported when the walk finds no
// failure protobuf shares.

struct WalkState {
  int depth = 0;
  std::string error;    // the first failure, set when a walk function returns false
  std::string suspect;  // the first known field with an unexpected wire type

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
};

std::string field_path(const FieldDescriptor& field) {
  return field.full_name() + " (field " + std::to_string(field.number()) + "): ";
}

std::string wire_name(WireType type) {
  return std::string(wire_type_name(static_cast<uint32_t>(type)));
}

// The wire type of one value of a field of `type`; none for groups, which WireReader rejects.
std::optional<WireType> wire_type_of(FieldDescriptor::Type type) {
  switch (type) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return WireType::kI64;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return WireType::kI32;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return WireType::kLen;
    case FieldDescriptor::TYPE_GROUP:
      return std::nullopt;
    default:
      return WireType::kVarint;
  }
}

// Repeated numbers come packed (LEN) or one by one, and protobuf accepts both.
bool accepts(const FieldDescriptor& field, WireType type) {
  if (field.is_packable() && type == WireType::kLen) return true;
  return wire_type_of(field.type()) == type;
}

// The offset of the first byte that is not well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or npos. Protobuf applies the same rules.
size_t invalid_utf8_offset(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t continuation;
    uint32_t code_point;
    uint32_t smallest;
    if ((lead & 0xe0) == 0xc0) {
      continuation = 1, code_point = lead & 0x1f, smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      continuation = 2, code_point = lead & 0x0f, smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      continuation = 3, code_point = lead & 0x07, smallest = 0x10000;
    } else {
      return i;
    }
    if (text.size() - i <= continuation) return i;
    for (size_t k = 1; k <= continuation; ++k) {
      const auto byte = static_cast<uint8_t>(text[i + k]);
      if ((byte & 0xc0) != 0x80) return i;
      code_point = (code_point << 6) | (byte & 0x3f);
    }
    if (code_point < smallest || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
      return i;
    }
    i += continuation + 1;
  }
  return std::string_view::npos;
}

// Protobuf rejects invalid UTF-8 in proto3 `string` fields; proto2 only logs it.
bool checks_utf8(const FieldDescriptor& field) {
  return field.type() == FieldDescriptor::TYPE_STRING &&
         field.file()->syntax() == FileDescriptor::SYNTAX_PROTO3;
}

bool walk_message(const Descriptor& descriptor, std::string_view bytes, WalkState& state);

bool walk_packed(const FieldDescriptor& field, std::string_view bytes, WalkState& state) {
  const WireType element_type = *wire_type_of(field.type());
  WireReader packed(bytes);
  while (!packed.at_end()) {
    if (!packed.skip(element_type)) return state.fail("packed element: " + packed.error());
  }
  return true;
}

// The value of a known field whose tag said `type` (one it accepts).
bool walk_value(const FieldDescriptor& field, WireType type, WireReader& r, WalkState& state) {
  if (type != WireType::kLen) return r.skip(type) || state.fail(r.error());
  std::string_view value;
  if (!r.read_length_delimited(value)) return state.fail(r.error());
  if (field.type() == FieldDescriptor::TYPE_MESSAGE) {
    return walk_message(*field.message_type(), value, state);
  }
  if (field.is_packable()) return walk_packed(field, value, state);
  if (checks_utf8(field)) {
    if (const size_t at = invalid_utf8_offset(value); at != std::string_view::npos) {
      return state.fail("invalid UTF-8 at byte " + std::to_string(at) + " of a " +
                        std::to_string(value.size()) + "-byte string");
    }
  }
  return true;
}

// A field protobuf keeps as unknown: an unknown number, or a known one with another wire type.
bool walk_unknown(const Descriptor& descriptor, const FieldDescriptor* field, uint32_t number,
                  WireType type, WireReader& r, WalkState& state) {
  std::string where = descriptor.full_name() + " unknown field " + std::to_string(number) + ": ";
  if (field != nullptr) {
    where = field_path(*field);
    const std::optional<WireType> expected = wire_type_of(field->type());
    if (state.suspect.empty() && expected) {
      state.suspect = where + "wire type " + wire_name(type) + ", expected " + wire_name(*expected);
    }
  }
  return r.skip(type) || state.fail(where + r.error());
}

bool walk_message(const Descriptor& descriptor, std::string_view bytes, WalkState& state) {
  // Protobuf's recursion limit counts the messages inside the outermost one.
  if (state.depth > kMaxNestingDepth) {
    return state.fail("nesting deeper than kMaxNestingDepth " + std::to_string(kMaxNestingDepth));
  }
  ++state.depth;
  WireReader r(bytes);
  while (!r.at_end()) {
    uint32_t number = 0;
    WireType type{};
    if (!r.read_tag(number, type)) return state.fail(descriptor.full_name() + ": " + r.error());
    const FieldDescriptor* field = descriptor.FindFieldByNumber(static_cast<int>(number));
    if (field == nullptr || !accepts(*field, type)) {
      if (!walk_unknown(descriptor, field, number, type, r, state)) return false;
      continue;
    }
    const bool had_suspect = !state.suspect.empty();
    if (!walk_value(*field, type, r, state)) return state.fail(field_path(*field) + state.error);
    if (!had_suspect && !state.suspect.empty()) state.suspect = field_path(*field) + state.suspect;
  }
  --state.depth;
  return true;
}

// ---- schema_of ----

// Exact .proto type names, so sint64 and fixed32 stay distinguishable from int64 and uint32.
std::string type_name(const FieldDescriptor& field) {
  if (field.message_type() != nullptr) return field.message_type()->full_name();
  if (field.type() == FieldDescriptor::TYPE_ENUM) return "enum";
  return field.type_name();
}

// Builds each message's schema once and shares it between the fields that use it. A message
// that contains itself (directly or through others) would make a cycle of shared_ptrs, which
// never frees: the field that closes the loop gets the type name and no `message`.
class SchemaBuilder {
 public:
  MessageSchema build(const Descriptor& descriptor) {
    building_.insert(&descriptor);
    MessageSchema schema{descriptor.full_name(), {}};
    for (int i = 0; i < descriptor.field_count(); ++i) {
      schema.fields.push_back(field_schema(*descriptor.field(i)));
    }
    building_.erase(&descriptor);
    return schema;
  }

 private:
  std::shared_ptr<const MessageSchema> nested(const Descriptor* descriptor) {
    if (descriptor == nullptr || building_.contains(descriptor)) return nullptr;
    auto [it, inserted] = built_.try_emplace(descriptor);
    if (inserted) it->second = std::make_shared<const MessageSchema>(build(*descriptor));
    return it->second;
  }

  FieldSchema field_schema(const FieldDescriptor& field) {
    FieldSchema schema;
    schema.name = field.name();
    schema.number = static_cast<uint32_t>(field.number());
    const FieldDescriptor* value = field.is_map() ? field.message_type()->map_value() : &field;
    schema.type = type_name(*value);
    schema.message = nested(value->message_type());
    if (field.is_map()) {
      schema.label = FieldSchema::Label::kMap;
      schema.key_type = type_name(*field.message_type()->map_key());
    } else if (field.is_repeated()) {
      schema.label = FieldSchema::Label::kRepeated;
    } else if (field.has_optional_keyword()) {  // proto3 `optional`, or proto2 `optional`
      schema.label = FieldSchema::Label::kOptional;
    }
    return schema;
  }

  std::set<const Descriptor*> building_;
  std::map<const Descriptor*, std::shared_ptr<const MessageSchema>> built_;
};

std::string to_std_string(google::protobuf::StringPiece text) {
  return std::string(text.data(), text.size());
}

}  // namespace

Status describe_parse_failure(const google::protobuf::Descriptor& descriptor,
                              std::string_view bytes) {
  WalkState state;
  if (!walk_message(descriptor, bytes, state)) return invalid_argument_error(state.error);
  if (!state.suspect.empty()) return invalid_argument_error(state.suspect);
  return invalid_argument_error(descriptor.full_name() + ": protobuf rejected the message");
}

MessageSchema schema_of(const google::protobuf::Descriptor& descriptor) {
  return SchemaBuilder().build(descriptor);
}

// RESOURCE_EXHAUSTED above 2 GiB, as for a frame over max_frame_bytes: protobuf's sizes are
// ints, so no protobuf peer could parse it either. Retrying the same message cannot help.
Status encode(const google::protobuf::Message& message, Buffer& out) {
  const size_t size = message.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return resource_exhausted_error(message.GetTypeName() + " encodes to " + std::to_string(size) +
                                    " bytes, over protobuf's limit of " + std::to_string(INT_MAX));
  }
  if (size == 0) return Status();
  std::span<char> space = out.prepare(size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(space.data()));
  out.commit(size);
  return Status();
}

Status decode(std::string_view bytes, google::protobuf::Message& message) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return invalid_argument_error(message.GetTypeName() + " of " + std::to_string(bytes.size()) +
                                  " bytes, over protobuf's limit of " + std::to_string(INT_MAX));
  }
  // Partial: missing proto2 required fields get their own message below.
  if (!message.ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return describe_parse_failure(*message.GetDescriptor(), bytes);
  }
  if (!message.IsInitialized()) {
    return invalid_argument_error(message.GetTypeName() + ": missing required fields " +
                                  message.InitializationErrorString());
  }
  return Status();
}

Result<std::string> to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = false;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return internal_error(message.GetTypeName() + " to JSON: " + to_std_string(status.message()));
  }
  return json;
}

Status from_json(std::string_view json, google::protobuf::Message& message) {
  // Checked first: protobuf's own parser does not count arrays toward its depth limit, and
  // its time grows with the square of the nesting of google.protobuf.Value lists.
  if (std::optional<size_t> at = find_excess_json_nesting(json, kMaxNestingDepth)) {
    return invalid_argument_error(message.GetTypeName() + " from JSON: nested more than " +
                                  std::to_string(kMaxNestingDepth) +
                                  " objects and arrays deep (at byte " + std::to_string(*at) + ")");
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &message, options);
  if (!status.ok()) {
    return invalid_argument_error(message.GetTypeName() +
                                  " from JSON: " + to_std_string(status.message()));
  }
  return Status();
}

}  // namespace meshrpc::codec::protobuf
