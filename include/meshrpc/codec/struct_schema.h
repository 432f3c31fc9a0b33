// The MessageSchema of a MESHRPC_STRUCT type, built once per type from its field list.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "meshrpc/codec/schema.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec {

// T's schema: fields in MESHRPC_STRUCT order, protobuf type names (integers by width and
// sign, 8- and 16-bit ones as int32/uint32), nested structs sharing their own schema. Built on
// first use, thread-safe; the reference lives as long as the program.
template <DescribedStruct T>
const MessageSchema& struct_schema();

namespace detail {

// Set while this thread builds T's schema: a member that leads back to T (a tree node's
// children) then gets T's name but no `message`, instead of re-entering the static's
// initialization. Per thread, because another thread asking for T simply waits for it.
template <DescribedStruct T>
bool& schema_in_progress() {
  thread_local bool in_progress = false;
  return in_progress;
}

// Protobuf's name for a scalar type, the struct's name for a nested one.
template <Value V>
std::string schema_type_name() {
  if constexpr (std::is_same_v<V, bool>) {
    return "bool";
  } else if constexpr (std::is_enum_v<V>) {
    return "enum";
  } else if constexpr (std::is_same_v<V, float>) {
    return "float";
  } else if constexpr (std::is_floating_point_v<V>) {
    return "double";
  } else if constexpr (std::is_integral_v<V>) {
    if constexpr (std::is_signed_v<V>)
      return sizeof(V) > 4 ? "int64" : "int32";
    else
      return sizeof(V) > 4 ? "uint64" : "uint32";
  } else if constexpr (Bytes<V>) {
    return "bytes";
  } else if constexpr (DescribedStruct<V>) {
    return std::string(struct_name<V>());
  } else {
    return "string";
  }
}

template <Value V>
void set_schema_value_type(FieldSchema& field) {
  field.type = schema_type_name<V>();
  if constexpr (DescribedStruct<V>) {
    if (!schema_in_progress<V>()) {
      // Aliasing, not owning: the schema is a function-local static that outlives every user.
      field.message =
          std::shared_ptr<const MessageSchema>(std::shared_ptr<void>(), &struct_schema<V>());
    }
  }
}

template <typename M>
FieldSchema field_schema(std::string_view name, uint32_t number) {
  FieldSchema field;
  field.name = std::string(name);
  field.number = number;
  if constexpr (IsOptional<M>::value) {
    field.label = FieldSchema::Label::kOptional;
    set_schema_value_type<typename M::value_type>(field);
  } else if constexpr (Bytes<M>) {
    set_schema_value_type<M>(field);
  } else if constexpr (IsVector<M>::value) {
    field.label = FieldSchema::Label::kRepeated;
    set_schema_value_type<typename M::value_type>(field);
  } else if constexpr (IsMap<M>::value) {
    field.label = FieldSchema::Label::kMap;
    field.key_type = schema_type_name<typename M::key_type>();
    set_schema_value_type<typename M::mapped_type>(field);
  } else {
    set_schema_value_type<M>(field);
  }
  return field;
}

template <DescribedStruct T>
MessageSchema build_schema() {
  struct InProgress {  // cleared on the way out, exceptions included
    bool& flag;
    explicit InProgress(bool& f) : flag(f) { flag = true; }
    ~InProgress() { flag = false; }
    InProgress(const InProgress&) = delete;
    InProgress& operator=(const InProgress&) = delete;
  } in_progress(schema_in_progress<T>());
  MessageSchema schema;
  schema.name = std::string(struct_name<T>());
  std::apply(
      [&schema](const auto&... f) {
        (schema.fields.push_back(
             field_schema<typename std::remove_cvref_t<decltype(f)>::member_type>(
                 f.name, std::remove_cvref_t<decltype(f)>::kNumber)),
         ...);
      },
      fields_of<T>());
  return schema;
}

}  // namespace detail

template <DescribedStruct T>
const MessageSchema& struct_schema() {
  static const MessageSchema schema = detail::build_schema<T>();
  return schema;
}

}  // namespace meshrpc::codec
