// The JSON form of MESHRPC_STRUCT types, following protobuf's JSON mapping so a struct and the
// equivalent .proto message print and parse alike (HTTP/JSON gateway, meshctl): what protobuf's
// MessageToJsonString (with preserve_proto_field_names) prints, struct_from_json reads, and
// what struct_to_json prints, JsonStringToMessage reads.
//
//   member type            JSON
//   bool                   true / false
//   integers, 32 bits      number; a decimal string is accepted too
//   integers, 64 bits      decimal string ("-12"); a number is accepted too
//   enums                  number (the underlying value); a decimal string is accepted too
//   float / double         number, or "NaN", "Infinity", "-Infinity"
//   std::string            string
//   bytes                  standard base64 with padding; URL-safe and unpadded accepted too
//   described struct       object
//   std::optional<V>       V when set (even to V's default), key absent when not
//   std::vector<V>         array of V
//   map<K, V>              object; integer keys as decimal strings
//
// Keys are the member names as written in MESHRPC_STRUCT; parsing also accepts protoc's
// lowerCamelCase JSON names (chunkIndex for chunk_index). Members holding their default (0,
// false, "", empty, a struct that encodes to nothing) are left out, as protobuf does; null
// for a member leaves it as it is. Output is compact, in MESHRPC_STRUCT order.
#pragma once

#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/json_detail.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec {

struct JsonParseOptions {
  // Unknown keys fail with INVALID_ARGUMENT naming the key (a typo in a hand-written request
  // should not be silently dropped); set to skip them instead.
  bool ignore_unknown_fields = false;
};

// `value` as compact JSON.
template <DescribedStruct T>
std::string struct_to_json(const T& value);

// Reads the JSON object `json` into `out`: members named in `json` are replaced (repeated and
// map members too), the others keep their value, so pass a default T. INVALID_ARGUMENT naming
// the member's path and the value on malformed JSON, a type mismatch, an out-of-range number,
// an unknown key (unless options.ignore_unknown_fields) or nesting deeper than
// kMaxNestingDepth objects and arrays (protobuf's JSON parser limit); `out` is then partly
// written.
template <DescribedStruct T>
Status struct_from_json(std::string_view json, T& out, const JsonParseOptions& options = {});

namespace json_detail {

// ---- writing ----

template <DescribedStruct T>
void write_struct(std::string& out, const T& value);

template <detail::Number T>
void write_number(std::string& out, T value) {
  if constexpr (std::is_enum_v<T>) {
    using U = std::underlying_type_t<T>;
    if constexpr (std::is_signed_v<U>)
      append_signed(out, static_cast<int64_t>(value), false);  // enums are numbers, any width
    else
      append_unsigned(out, static_cast<uint64_t>(value), false);
  } else if constexpr (std::is_same_v<T, bool>) {
    out += value ? "true" : "false";
  } else if constexpr (std::is_same_v<T, float>) {
    append_float(out, value);
  } else if constexpr (std::is_floating_point_v<T>) {
    append_double(out, value);
  } else if constexpr (std::is_signed_v<T>) {
    append_signed(out, value, sizeof(T) > 4);
  } else {
    append_unsigned(out, value, sizeof(T) > 4);
  }
}

template <detail::Value T>
void write_value(std::string& out, const T& value) {
  if constexpr (detail::Number<T>) {
    write_number(out, value);
  } else if constexpr (detail::Bytes<T>) {
    append_base64(out, value);
  } else if constexpr (DescribedStruct<T>) {
    write_struct(out, value);
  } else {
    append_quoted(out, value);
  }
}

template <detail::MapKey K>
void write_map_key(std::string& out, const K& key) {
  if constexpr (std::is_same_v<K, std::string>)
    append_quoted(out, key);
  else if constexpr (std::is_signed_v<K>)
    append_signed(out, key, true);
  else
    append_unsigned(out, key, true);
}

template <DescribedStruct T>
bool is_empty_struct(const T& value);

// Whether the member is left out: exactly when the binary codec writes nothing for it.
template <typename M>
bool is_omitted(const M& member) {
  if constexpr (detail::IsOptional<M>::value) {
    return !member.has_value();
  } else if constexpr (detail::Bytes<M> || detail::IsVector<M>::value || detail::IsMap<M>::value) {
    return member.empty();
  } else if constexpr (DescribedStruct<M>) {
    return is_empty_struct(member);
  } else {
    return detail::is_default(member);
  }
}

// encoded_size(value) == 0, without sizing the members that are set.
template <DescribedStruct T>
bool is_empty_struct(const T& value) {
  return std::apply([&value](const auto&... f) { return (is_omitted(value.*(f.member)) && ...); },
                    fields_of<T>());
}

template <typename M>
void write_member(std::string& out, const M& member) {
  if constexpr (detail::IsOptional<M>::value) {
    write_value(out, *member);
  } else if constexpr (detail::Bytes<M>) {
    write_value(out, member);
  } else if constexpr (detail::IsVector<M>::value) {
    using E = typename M::value_type;
    out += '[';
    bool first = true;
    for (const auto& element : member) {
      if (!first) out += ',';
      first = false;
      write_value(out, static_cast<const E&>(element));  // std::vector<bool>'s proxies
    }
    out += ']';
  } else if constexpr (detail::IsMap<M>::value) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : member) {
      if (!first) out += ',';
      first = false;
      write_map_key(out, key);
      out += ':';
      write_value(out, value);
    }
    out += '}';
  } else {
    write_value(out, member);
  }
}

template <DescribedStruct T>
void write_struct(std::string& out, const T& value) {
  out += '{';
  bool first = true;
  std::apply(
      [&](const auto&... f) {
        const auto write_one = [&](const auto& field) {
          const auto& member = value.*(field.member);
          if (is_omitted(member)) return;
          if (!first) out += ',';
          first = false;
          append_quoted(out, field.name);
          out += ':';
          write_member(out, member);
        };
        (write_one(f), ...);
      },
      fields_of<T>());
  out += '}';
}

// ---- reading ----

template <DescribedStruct T>
bool read_struct(ReadState& state, const boost::json::value& json, T& out);

template <detail::Number T>
bool read_number(ReadState& state, const boost::json::value& json, T& out) {
  if constexpr (std::is_enum_v<T>) {
    std::underlying_type_t<T> raw{};
    if (!read_number(state, json, raw)) return false;
    out = static_cast<T>(raw);
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    return state.read_bool(json, out);
  } else if constexpr (std::is_same_v<T, float>) {
    return state.read_float(json, out);
  } else if constexpr (std::is_floating_point_v<T>) {
    return state.read_double(json, out);
  } else if constexpr (std::is_signed_v<T>) {
    int64_t wide = 0;
    if (!state.read_signed(json, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(),
                           wide)) {
      return false;
    }
    out = static_cast<T>(wide);
    return true;
  } else {
    uint64_t wide = 0;
    if (!state.read_unsigned(json, std::numeric_limits<T>::max(), wide)) return false;
    out = static_cast<T>(wide);
    return true;
  }
}

template <detail::Value T>
bool read_value(ReadState& state, const boost::json::value& json, T& out) {
  if constexpr (detail::Number<T>) {
    return read_number(state, json, out);
  } else if constexpr (detail::Bytes<T>) {
    return state.read_bytes(json, out);
  } else if constexpr (DescribedStruct<T>) {
    return read_struct(state, json, out);
  } else {
    return state.read_string(json, out);
  }
}

template <detail::MapKey K>
bool read_map_key(ReadState& state, std::string_view key, K& out) {
  if constexpr (std::is_same_v<K, std::string>) {
    out.assign(key);
    return true;
  } else if constexpr (std::is_signed_v<K>) {
    int64_t wide = 0;
    if (!state.read_signed_key(key, std::numeric_limits<K>::min(), std::numeric_limits<K>::max(),
                               wide)) {
      return false;
    }
    out = static_cast<K>(wide);
    return true;
  } else {
    uint64_t wide = 0;
    if (!state.read_unsigned_key(key, std::numeric_limits<K>::max(), wide)) return false;
    out = static_cast<K>(wide);
    return true;
  }
}

template <typename M>
bool read_repeated(ReadState& state, const boost::json::value& json, M& member) {
  const boost::json::array* array = state.array_of(json);
  if (array == nullptr) return false;
  member.clear();
  member.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    typename M::value_type element{};
    const size_t mark = state.push_index(i);
    if (!read_value(state, (*array)[i], element)) return false;
    state.pop(mark);
    member.push_back(std::move(element));
  }
  return true;
}

template <typename M>
bool read_map(ReadState& state, const boost::json::value& json, M& member) {
  const boost::json::object* object = state.object_of(json);
  if (object == nullptr) return false;
  member.clear();
  for (const auto& entry : *object) {
    const std::string_view text(entry.key().data(), entry.key().size());
    typename M::key_type key{};
    if (!read_map_key(state, text, key)) return false;
    typename M::mapped_type value{};
    const size_t mark = state.push_key(text);
    if (!read_value(state, entry.value(), value)) return false;
    state.pop(mark);
    member.insert_or_assign(std::move(key), std::move(value));
  }
  return true;
}

template <typename M>
bool read_member(ReadState& state, const boost::json::value& json, M& member) {
  if constexpr (detail::IsOptional<M>::value) {
    member.emplace();
    return read_value(state, json, *member);
  } else if constexpr (detail::Bytes<M>) {
    return read_value(state, json, member);
  } else if constexpr (detail::IsVector<M>::value) {
    return read_repeated(state, json, member);
  } else if constexpr (detail::IsMap<M>::value) {
    return read_map(state, json, member);
  } else {
    return read_value(state, json, member);
  }
}

// Reads one key's value into the member it named. `given_as` remembers the key the member
// was first given under, to reject it given twice (as chunk_index and chunkIndex).
template <typename M>
bool read_field(ReadState& state, std::string_view name, std::string_view key,
                const boost::json::value& json, std::string_view& given_as, M& member) {
  if (!given_as.empty()) return state.duplicate_field(name, given_as, key);
  given_as = key;
  if (json.is_null()) return true;  // protobuf: null means "not set"
  const size_t mark = state.push_field(name);
  if (!read_member(state, json, member)) return false;
  state.pop(mark);
  return true;
}

template <DescribedStruct T>
bool read_struct(ReadState& state, const boost::json::value& json, T& out) {
  const boost::json::object* object = state.object_of(json);
  if (object == nullptr) return false;
  constexpr auto fields = fields_of<T>();
  constexpr size_t kCount = std::tuple_size_v<std::remove_const_t<decltype(fields)>>;
  std::array<std::string_view, kCount> given_as{};
  for (const auto& entry : *object) {
    const std::string_view key(entry.key().data(), entry.key().size());
    bool known = false;
    bool ok = true;
    // Finds the member `key` names and reads it; members are few, so a linear scan.
    [&]<size_t... I>(std::index_sequence<I...>) {
      (void)((key_matches(key, std::get<I>(fields).name) &&
              (known = true,
               ok = read_field(state, std::get<I>(fields).name, key, entry.value(), given_as[I],
                               out.*(std::get<I>(fields).member)),
               true)) ||
             ...);
    }
    (std::make_index_sequence<kCount>{});
    if (!ok) return false;
    if (!known && !state.unknown_field(key)) return false;
  }
  return true;
}

}  // namespace json_detail

template <DescribedStruct T>
std::string struct_to_json(const T& value) {
  std::string out;
  json_detail::write_struct(out, value);
  return out;
}

template <DescribedStruct T>
Status struct_from_json(std::string_view json, T& out, const JsonParseOptions& options) {
  // One arena for the whole document, freed at once: the tree lives only for this call.
  boost::json::monotonic_resource resource;
  boost::json::value root;
  if (Status status =
          json_detail::parse_json(json, struct_name<T>(), kMaxNestingDepth, &resource, root);
      !status.ok()) {
    return status;
  }
  json_detail::ReadState state(struct_name<T>(), options.ignore_unknown_fields);
  if (!json_detail::read_struct(state, root, out)) return state.status();
  return Status();
}

}  // namespace meshrpc::codec
