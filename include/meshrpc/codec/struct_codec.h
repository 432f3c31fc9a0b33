// Plain C++ structs on the protobuf wire format: one MESHRPC_STRUCT line per type gives each
// member an explicit, stable field number, and the struct then encodes exactly like the
// equivalent proto3 message, so the two interoperate.
//
//   struct GetChunkHandleArgs {
//     std::string path;
//     int64_t chunk_index = 0;
//   };
//   MESHRPC_STRUCT(GetChunkHandleArgs, (path, 1), (chunk_index, 2));
//
// The line goes in the struct's namespace (it is found by argument-dependent lookup). Field
// numbers, not member order, identify fields: reordering members is safe, renumbering is not.
// The numbers are checked at compile time (unique, 1 .. 2^29-1, not 19000-19999).
//
// Member types and what they are on the wire (and in a .proto):
//   bool, integers         VARINT (bool, int32/int64 sign-extended, uint32/uint64)
//   enums                  VARINT of the underlying value (enum); enum class, or a plain enum
//                          with a fixed underlying type (values a newer peer added decode)
//   float / double         I32 / I64 (float, double)
//   std::string            LEN (string; bytes are not checked for UTF-8)
//   std::vector<std::byte> LEN (bytes)
//   described struct       LEN (a nested message); omitted when it encodes to nothing
//   std::optional<V>       V when set, whatever its value (proto3 `optional`)
//   std::vector<V>         repeated V; numbers and bools packed (proto3 default), both
//                          packed and unpacked accepted on decode
//   std::map / unordered_map<K, V>  map<K, V>: K integral or std::string
// Singular fields holding their default (0, false, "", empty) are not written (proto3), so a
// default struct encodes to zero bytes. Fields are written in the order MESHRPC_STRUCT lists
// them: list them by number to get exactly protobuf's bytes (any order decodes the same).
//
// Decoding skips unknown fields (old and new binaries talk), lets the last occurrence of a
// singular field win and appends repeated ones, like protobuf. It fails with
// INVALID_ARGUMENT naming the field, e.g. "ForwardDataArgs.replicas (field 2): truncated
// varint at offset 7", on truncated or malformed input, a known field with the wrong wire
// type, or nesting deeper than kMaxNestingDepth.
#pragma once

#include <bit>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/wire_format.h"

namespace meshrpc::codec {

// Messages nested deeper than this, counting the outermost, fail to decode: a bound on the
// stack a hostile message can make the decoder use. protobuf's default limit is the same
// number but does not count the outermost message, so it accepts one level more.
inline constexpr int kMaxNestingDepth = 100;

// One described member: its stable number, its name (for errors, JSON and schemas) and where
// it lives in the struct.
template <uint32_t Number, typename Struct, typename Member>
struct FieldRef {
  static constexpr uint32_t kNumber = Number;
  using struct_type = Struct;
  using member_type = Member;
  std::string_view name;
  Member Struct::*member;
};

template <uint32_t Number, typename Struct, typename Member>
constexpr FieldRef<Number, Struct, Member> field(std::string_view name, Member Struct::*member) {
  return {name, member};
}

// A struct described by MESHRPC_STRUCT.
template <typename T>
concept DescribedStruct = std::is_class_v<T> && requires(const T* p) {
  meshrpc_struct_fields(p);
  { meshrpc_struct_name(p) } -> std::convertible_to<std::string_view>;
};

template <DescribedStruct T>
constexpr auto fields_of() {
  return meshrpc_struct_fields(static_cast<const T*>(nullptr));
}
template <DescribedStruct T>
constexpr std::string_view struct_name() {
  return meshrpc_struct_name(static_cast<const T*>(nullptr));
}

namespace detail {

template <typename T>
struct IsVector : std::false_type {};
template <typename E, typename A>
struct IsVector<std::vector<E, A>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename V>
struct IsOptional<std::optional<V>> : std::true_type {};
template <typename T>
struct IsMap : std::false_type {};
template <typename K, typename V, typename C, typename A>
struct IsMap<std::map<K, V, C, A>> : std::true_type {};
template <typename K, typename V, typename H, typename E, typename A>
struct IsMap<std::unordered_map<K, V, H, E, A>> : std::true_type {};

template <typename T>
concept Bytes = std::is_same_v<T, std::vector<std::byte>>;
// An enum with a fixed underlying type (every enum class, or `enum E : int32_t`): it may hold
// any value of that type, so a value a newer peer added decodes without undefined behaviour.
// A plain `enum E { ... }` may not hold values outside its enumerators' range.
template <typename T>
concept FixedEnum = std::is_enum_v<T> && requires {
  T{std::underlying_type_t<T>{}};
};
// Encoded as one VARINT / I32 / I64 value, packable in a repeated field.
template <typename T>
concept Number = std::is_arithmetic_v<T> || FixedEnum<T>;
// What a single (non-repeated) value can be.
template <typename T>
concept Value = Number<T> || std::is_same_v<T, std::string> || Bytes<T> || DescribedStruct<T>;
template <typename T>
concept MapKey = (std::integral<T> && !std::is_same_v<T, bool>) || std::is_same_v<T, std::string>;

template <Number T>
constexpr WireType number_wire_type() {
  if constexpr (std::is_same_v<T, float>) {
    return WireType::kI32;
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(std::is_same_v<T, double>, "floating-point members must be float or double");
    return WireType::kI64;
  } else {
    return WireType::kVarint;
  }
}
template <Value T>
constexpr WireType value_wire_type() {
  if constexpr (Number<T>) {
    return number_wire_type<T>();
  } else {
    return WireType::kLen;
  }
}

// The VARINT payload of an integer, bool or enum: signed values are sign-extended to 64 bits
// (protobuf int32/int64), so -1 takes 10 bytes as it does in protobuf.
template <Number T>
constexpr uint64_t varint_bits(T value) {
  if constexpr (std::is_enum_v<T>) {
    return varint_bits(static_cast<std::underlying_type_t<T>>(value));
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? 1 : 0;
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(value));
  } else {
    return static_cast<uint64_t>(value);
  }
}
template <Number T>
constexpr T from_varint_bits(uint64_t bits) {
  if constexpr (std::is_enum_v<T>) {
    return static_cast<T>(from_varint_bits<std::underlying_type_t<T>>(bits));
  } else if constexpr (std::is_same_v<T, bool>) {
    return bits != 0;
  } else {
    return static_cast<T>(bits);  // truncates like protobuf's int32 parse
  }
}

template <typename T>
bool is_default(const T& value) {
  if constexpr (std::is_floating_point_v<T>) {
    // By bits, as protobuf does: -0.0 is written, +0.0 is not.
    if constexpr (std::is_same_v<T, float>)
      return std::bit_cast<uint32_t>(value) == 0;
    else
      return std::bit_cast<uint64_t>(value) == 0;
  } else if constexpr (Number<T>) {
    return value == T{};
  } else if constexpr (std::is_same_v<T, std::string> || Bytes<T>) {
    return value.empty();
  } else {
    return false;  // structs: decided by their encoded size
  }
}

// ---- size pass ----

template <DescribedStruct T>
size_t struct_size(const T& value);

template <Number T>
size_t number_size(T value) {
  if constexpr (number_wire_type<T>() == WireType::kI32)
    return 4;
  else if constexpr (number_wire_type<T>() == WireType::kI64)
    return 8;
  else
    return varint_size(varint_bits(value));
}

// The value alone, without tag; LEN values include their length prefix.
template <Value T>
size_t value_size(const T& value) {
  if constexpr (Number<T>) {
    return number_size(value);
  } else {
    size_t body;
    if constexpr (DescribedStruct<T>)
      body = struct_size(value);
    else
      body = value.size();
    return varint_size(body) + body;
  }
}

template <typename K, typename V>
size_t map_entry_body_size(const K& key, const V& value) {
  return 1 + value_size(key) + 1 + value_size(value);  // tags 1 and 2 take one byte each
}

template <uint32_t N, typename M>
size_t field_size(const M& member) {
  constexpr size_t tag_bytes = varint_size(make_tag(N, WireType::kVarint));
  if constexpr (IsOptional<M>::value) {
    return member ? tag_bytes + value_size(*member) : 0;
  } else if constexpr (Bytes<M>) {
    return member.empty() ? 0 : tag_bytes + value_size(member);
  } else if constexpr (IsVector<M>::value) {
    using E = typename M::value_type;
    if (member.empty()) return 0;
    if constexpr (Number<E>) {  // packed
      size_t body = 0;
      for (const auto& element : member) body += number_size(static_cast<E>(element));
      return tag_bytes + varint_size(body) + body;
    } else {
      size_t total = 0;
      for (const auto& element : member) total += tag_bytes + value_size(element);
      return total;
    }
  } else if constexpr (IsMap<M>::value) {
    size_t total = 0;
    for (const auto& [key, value] : member) {
      const size_t body = map_entry_body_size(key, value);
      total += tag_bytes + varint_size(body) + body;
    }
    return total;
  } else if constexpr (DescribedStruct<M>) {
    const size_t body = struct_size(member);
    return body == 0 ? 0 : tag_bytes + varint_size(body) + body;
  } else {
    return is_default(member) ? 0 : tag_bytes + value_size(member);
  }
}

template <DescribedStruct T>
size_t struct_size(const T& value) {
  return std::apply(
      [&value](const auto&... f) {
        return (size_t{0} + ... +
                field_size<std::remove_cvref_t<decltype(f)>::kNumber>(value.*(f.member)));
      },
      fields_of<T>());
}

// ---- write pass ----

template <DescribedStruct T>
void write_struct(WireWriter& w, const T& value);

template <Number T>
void write_number(WireWriter& w, T value) {
  if constexpr (std::is_same_v<T, float>)
    w.fixed32(std::bit_cast<uint32_t>(value));
  else if constexpr (std::is_floating_point_v<T>)
    w.fixed64(std::bit_cast<uint64_t>(value));
  else
    w.varint(varint_bits(value));
}

template <Value T>
void write_value(WireWriter& w, const T& value) {
  if constexpr (Number<T>) {
    write_number(w, value);
  } else if constexpr (DescribedStruct<T>) {
    w.varint(struct_size(value));
    write_struct(w, value);
  } else {
    w.varint(value.size());
    w.bytes(value.data(), value.size());
  }
}

template <uint32_t N, Value T>
void write_tagged(WireWriter& w, const T& value) {
  w.tag(N, value_wire_type<T>());
  write_value(w, value);
}

template <uint32_t N, typename M>
void write_field(WireWriter& w, const M& member) {
  if constexpr (IsOptional<M>::value) {
    if (member) write_tagged<N>(w, *member);
  } else if constexpr (Bytes<M>) {
    if (!member.empty()) write_tagged<N>(w, member);
  } else if constexpr (IsVector<M>::value) {
    using E = typename M::value_type;
    if (member.empty()) return;
    if constexpr (Number<E>) {
      size_t body = 0;
      for (const auto& element : member) body += number_size(static_cast<E>(element));
      w.tag(N, WireType::kLen);
      w.varint(body);
      for (const auto& element : member) write_number(w, static_cast<E>(element));
    } else {
      for (const auto& element : member) write_tagged<N>(w, element);
    }
  } else if constexpr (IsMap<M>::value) {
    for (const auto& [key, value] : member) {
      w.tag(N, WireType::kLen);
      w.varint(map_entry_body_size(key, value));
      write_tagged<1>(w, key);
      write_tagged<2>(w, value);
    }
  } else if constexpr (DescribedStruct<M>) {
    const size_t body = struct_size(member);
    if (body == 0) return;
    w.tag(N, WireType::kLen);
    w.varint(body);
    write_struct(w, member);
  } else {
    if (!is_default(member)) write_tagged<N>(w, member);
  }
}

template <DescribedStruct T>
void write_struct(WireWriter& w, const T& value) {
  std::apply(
      [&](const auto&... f) {
        (write_field<std::remove_cvref_t<decltype(f)>::kNumber>(w, value.*(f.member)), ...);
      },
      fields_of<T>());
}

// ---- read pass ----

// Carries the nesting depth down and the error message up (built only on failure).
struct DecodeState {
  int depth = 0;
  std::string error;

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
};

template <DescribedStruct T>
bool read_struct(std::string_view bytes, T& out, DecodeState& state);

inline bool wrong_wire_type(DecodeState& state, WireType got, WireType expected) {
  return state.fail("wire type " + std::string(wire_type_name(static_cast<uint32_t>(got))) +
                    ", expected " + std::string(wire_type_name(static_cast<uint32_t>(expected))));
}

template <Number T>
bool read_number(WireReader& r, T& out, DecodeState& state) {
  bool ok;
  if constexpr (std::is_same_v<T, float>) {
    uint32_t bits = 0;
    ok = r.read_fixed32(bits);
    out = std::bit_cast<float>(bits);
  } else if constexpr (std::is_floating_point_v<T>) {
    uint64_t bits = 0;
    ok = r.read_fixed64(bits);
    out = std::bit_cast<double>(bits);
  } else {
    uint64_t bits = 0;
    ok = r.read_varint(bits);
    out = from_varint_bits<T>(bits);
  }
  return ok || state.fail(r.error());
}

// One value whose tag said `type`.
template <Value T>
bool read_value(WireReader& r, WireType type, T& out, DecodeState& state) {
  if (type != value_wire_type<T>()) return wrong_wire_type(state, type, value_wire_type<T>());
  if constexpr (Number<T>) {
    return read_number(r, out, state);
  } else {
    std::string_view bytes;
    if (!r.read_length_delimited(bytes)) return state.fail(r.error());
    if constexpr (DescribedStruct<T>) {
      return read_struct(bytes, out, state);  // merges into `out`, as protobuf does
    } else if constexpr (Bytes<T>) {
      const auto* data = reinterpret_cast<const std::byte*>(bytes.data());
      out.assign(data, data + bytes.size());
      return true;
    } else {
      out.assign(bytes.data(), bytes.size());
      return true;
    }
  }
}

template <typename M>
bool read_map_entry(std::string_view bytes, M& map, DecodeState& state) {
  typename M::key_type key{};
  typename M::mapped_type value{};
  WireReader r(bytes);
  while (!r.at_end()) {
    uint32_t number = 0;
    WireType type{};
    if (!r.read_tag(number, type)) return state.fail("map entry: " + r.error());
    bool ok = true;
    if (number == 1) {
      ok = read_value(r, type, key, state) || state.fail("map key: " + state.error);
    } else if (number == 2) {
      ok = read_value(r, type, value, state) || state.fail("map value: " + state.error);
    } else {
      ok = r.skip(type) ||
           state.fail("map entry unknown field " + std::to_string(number) + ": " + r.error());
    }
    if (!ok) return false;
  }
  map.insert_or_assign(std::move(key), std::move(value));  // the last duplicate wins
  return true;
}

template <typename M>
bool read_field(WireReader& r, WireType type, M& member, DecodeState& state) {
  if constexpr (IsOptional<M>::value) {
    if (!member) member.emplace();
    return read_value(r, type, *member, state);
  } else if constexpr (Bytes<M>) {
    return read_value(r, type, member, state);
  } else if constexpr (IsVector<M>::value) {
    using E = typename M::value_type;
    if constexpr (Number<E>) {
      if (type == WireType::kLen) {  // packed
        std::string_view bytes;
        if (!r.read_length_delimited(bytes)) return state.fail(r.error());
        WireReader packed(bytes);
        while (!packed.at_end()) {
          E element{};
          if (!read_number(packed, element, state)) return false;
          member.push_back(element);
        }
        return true;
      }
    }
    E element{};
    if (!read_value(r, type, element, state)) return false;
    member.push_back(std::move(element));
    return true;
  } else if constexpr (IsMap<M>::value) {
    if (type != WireType::kLen) return wrong_wire_type(state, type, WireType::kLen);
    std::string_view bytes;
    if (!r.read_length_delimited(bytes)) return state.fail(r.error());
    return read_map_entry(bytes, member, state);
  } else {
    return read_value(r, type, member, state);
  }
}

// Prefixes the error with the field's path. Out of line and cold: building the message takes
// string temporaries that would otherwise make every field read set up a large stack frame.
[[gnu::noinline, gnu::cold]] inline bool field_failed(DecodeState& state,
                                                      std::string_view struct_name,
                                                      std::string_view field_name,
                                                      uint32_t number) {
  return state.fail(std::string(struct_name) + "." + std::string(field_name) + " (field " +
                    std::to_string(number) + "): " + state.error);
}

template <DescribedStruct T>
bool read_struct(std::string_view bytes, T& out, DecodeState& state) {
  if (state.depth >= kMaxNestingDepth) {
    return state.fail("nesting deeper than kMaxNestingDepth " + std::to_string(kMaxNestingDepth));
  }
  ++state.depth;
  // Built once at compile time, not per field read (the tuple holds every name and offset).
  static constexpr auto kFields = fields_of<T>();
  WireReader r(bytes);
  while (!r.at_end()) {
    uint32_t number = 0;
    WireType type{};
    if (!r.read_tag(number, type))
      return state.fail(std::string(struct_name<T>()) + ": " + r.error());
    bool known = false;
    bool ok = true;
    std::apply(
        [&](const auto&... f) {
          // Stops at the member with this number; (void): only the side effects matter.
          (void)((std::remove_cvref_t<decltype(f)>::kNumber == number
                      ? (known = true,
                         ok = read_field(r, type, out.*(f.member), state) ||
                              field_failed(state, struct_name<T>(), f.name, number),
                         true)
                      : false) ||
                 ...);
        },
        kFields);
    if (!ok) return false;
    if (!known && !r.skip(type)) {
      return state.fail(std::string(struct_name<T>()) + " unknown field " + std::to_string(number) +
                        ": " + r.error());
    }
  }
  --state.depth;
  return true;
}

// Compile-time check behind MESHRPC_STRUCT: unique numbers in the valid range, and member
// types the codec knows.
template <typename M>
constexpr bool supported_member() {
  if constexpr (IsOptional<M>::value) {
    return Value<typename M::value_type>;
  } else if constexpr (Bytes<M>) {
    return true;
  } else if constexpr (IsVector<M>::value) {
    return Value<typename M::value_type>;
  } else if constexpr (IsMap<M>::value) {
    return MapKey<typename M::key_type> && Value<typename M::mapped_type>;
  } else {
    return Value<M>;
  }
}

template <typename Tuple>
constexpr bool valid_field_numbers(const Tuple& fields) {
  bool valid = true;
  std::apply(
      [&](const auto&... f) {
        const uint32_t numbers[] = {std::remove_cvref_t<decltype(f)>::kNumber...};
        for (uint32_t n : numbers) {
          if (n == 0 || n > kMaxFieldNumber || (n >= 19000 && n <= 19999)) valid = false;
        }
        for (size_t i = 0; i < sizeof...(f); ++i) {
          for (size_t j = i + 1; j < sizeof...(f); ++j) {
            if (numbers[i] == numbers[j]) valid = false;
          }
        }
      },
      fields);
  return valid;
}

template <typename Tuple>
constexpr bool supported_members(const Tuple&) {
  return []<typename... F>(std::type_identity<std::tuple<F...>>) {
    return (supported_member<typename F::member_type>() && ...);
  }(std::type_identity<Tuple>{});
}

}  // namespace detail

// The encoded size of `value` in bytes.
template <DescribedStruct T>
size_t encoded_size(const T& value) {
  return detail::struct_size(value);
}

// Appends the encoding of `value` to `out` (one contiguous run).
template <DescribedStruct T>
void encode_struct(const T& value, Buffer& out) {
  const size_t size = detail::struct_size(value);
  if (size == 0) return;
  std::span<char> space = out.prepare(size);
  WireWriter writer(space.data());
  detail::write_struct(writer, value);
  assert(writer.position() == space.data() + size);
  out.commit(size);
}

// Decodes `bytes` into `out` (fields present in `bytes` are set, repeated ones appended).
template <DescribedStruct T>
Status decode_struct(std::string_view bytes, T& out) {
  detail::DecodeState state;
  if (!detail::read_struct(bytes, out, state)) return invalid_argument_error(state.error);
  return Status();
}

}  // namespace meshrpc::codec

// ---- MESHRPC_STRUCT(Type, (member, number), ...) ----
// Up to 64 fields: each rescan of MESHRPC_DETAIL_EXPAND handles one, and it rescans 4^3 times.

#define MESHRPC_DETAIL_PARENS ()
#define MESHRPC_DETAIL_EXPAND(...) \
  MESHRPC_DETAIL_EXPAND3(          \
      MESHRPC_DETAIL_EXPAND3(MESHRPC_DETAIL_EXPAND3(MESHRPC_DETAIL_EXPAND3(__VA_ARGS__))))
#define MESHRPC_DETAIL_EXPAND3(...) \
  MESHRPC_DETAIL_EXPAND2(           \
      MESHRPC_DETAIL_EXPAND2(MESHRPC_DETAIL_EXPAND2(MESHRPC_DETAIL_EXPAND2(__VA_ARGS__))))
#define MESHRPC_DETAIL_EXPAND2(...) \
  MESHRPC_DETAIL_EXPAND1(           \
      MESHRPC_DETAIL_EXPAND1(MESHRPC_DETAIL_EXPAND1(MESHRPC_DETAIL_EXPAND1(__VA_ARGS__))))
#define MESHRPC_DETAIL_EXPAND1(...) __VA_ARGS__
#define MESHRPC_DETAIL_FOR_EACH(type, ...) \
  __VA_OPT__(MESHRPC_DETAIL_EXPAND(MESHRPC_DETAIL_FOR_EACH_STEP(type, __VA_ARGS__)))
#define MESHRPC_DETAIL_FOR_EACH_STEP(type, pair, ...)     \
  MESHRPC_DETAIL_FIELD(type, MESHRPC_DETAIL_UNPAREN pair) \
  __VA_OPT__(, MESHRPC_DETAIL_FOR_EACH_AGAIN MESHRPC_DETAIL_PARENS(type, __VA_ARGS__))
#define MESHRPC_DETAIL_FOR_EACH_AGAIN() MESHRPC_DETAIL_FOR_EACH_STEP
#define MESHRPC_DETAIL_UNPAREN(...) __VA_ARGS__
#define MESHRPC_DETAIL_FIELD(type, ...) MESHRPC_DETAIL_FIELD_I(type, __VA_ARGS__)
#define MESHRPC_DETAIL_FIELD_I(type, member, number) \
  ::meshrpc::codec::field<number>(#member, &type::member)

#define MESHRPC_STRUCT(Type, ...)                                                         \
  [[maybe_unused]] inline constexpr auto meshrpc_struct_fields(const Type*) {             \
    return ::std::make_tuple(MESHRPC_DETAIL_FOR_EACH(Type, __VA_ARGS__));                 \
  }                                                                                       \
  [[maybe_unused]] inline constexpr ::std::string_view meshrpc_struct_name(const Type*) { \
    return #Type;                                                                         \
  }                                                                                       \
  static_assert(::meshrpc::codec::detail::valid_field_numbers(                            \
                    meshrpc_struct_fields(static_cast<const Type*>(nullptr))),            \
                "MESHRPC_STRUCT(" #Type                                                   \
                "): field numbers must be unique, in 1..2^29-1 and "                      \
                "outside 19000-19999");                                                   \
  static_assert(::meshrpc::codec::detail::supported_members(                              \
                    meshrpc_struct_fields(static_cast<const Type*>(nullptr))),            \
                "MESHRPC_STRUCT(" #Type "): a member has a type the codec does not support")
