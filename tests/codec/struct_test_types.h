// Test structs with a member of every kind MESHRPC_STRUCT supports, random values of any
// described struct, and encoding to and decoding from strings (byte_strings.h spells the
// bytes): shared by the struct codec tests.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "byte_strings.h"
#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec::testing {

enum class Color : int32_t { kRed = 0, kGreen = 1, kBlue = 2 };
enum class Level : uint8_t { kLow = 0, kHigh = 200 };
enum class Wide : int64_t { kZero = 0 };
enum Legacy : int { kLegacyA = 0, kLegacyB = 7 };

struct Scalars {
  bool flag = false;
  int8_t i8 = 0;
  int16_t i16 = 0;
  int32_t i32 = 0;
  int64_t i64 = 0;
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  Color color = Color::kRed;
  Level level = Level::kLow;
  Wide wide = Wide::kZero;
  Legacy legacy = kLegacyA;
  float f32 = 0;
  double f64 = 0;
  std::string text;
  std::vector<std::byte> blob;
  bool operator==(const Scalars&) const = default;
};
MESHRPC_STRUCT(Scalars, (flag, 1), (i8, 2), (i16, 3), (i32, 4), (i64, 5), (u8, 6), (u16, 7),
               (u32, 8), (u64, 9), (color, 10), (level, 11), (wide, 12), (legacy, 13), (f32, 14),
               (f64, 15), (text, 16), (blob, 17));

struct Leaf {
  int32_t id = 0;
  std::string label;
  bool operator==(const Leaf&) const = default;
};
MESHRPC_STRUCT(Leaf, (id, 1), (label, 2));

struct Middle {
  Leaf leaf;
  std::vector<Leaf> leaves;
  int64_t weight = 0;
  bool operator==(const Middle&) const = default;
};
MESHRPC_STRUCT(Middle, (leaf, 1), (leaves, 2), (weight, 3));

struct Outer {
  Middle middle;
  std::optional<Leaf> spare;
  std::string name;
  bool operator==(const Outer&) const = default;
};
MESHRPC_STRUCT(Outer, (middle, 1), (spare, 2), (name, 3));

struct Optionals {
  std::optional<bool> flag;
  std::optional<int32_t> i32;
  std::optional<uint64_t> u64;
  std::optional<Color> color;
  std::optional<float> f32;
  std::optional<double> f64;
  std::optional<std::string> text;
  std::optional<std::vector<std::byte>> blob;
  std::optional<Leaf> leaf;
  bool operator==(const Optionals&) const = default;
};
MESHRPC_STRUCT(Optionals, (flag, 1), (i32, 2), (u64, 3), (color, 4), (f32, 5), (f64, 6), (text, 7),
               (blob, 8), (leaf, 9));

struct Repeated {
  std::vector<bool> flags;
  std::vector<int8_t> i8s;
  std::vector<int16_t> i16s;
  std::vector<int32_t> i32s;
  std::vector<int64_t> i64s;
  std::vector<uint8_t> u8s;
  std::vector<uint16_t> u16s;
  std::vector<uint32_t> u32s;
  std::vector<uint64_t> u64s;
  std::vector<Color> colors;
  std::vector<float> f32s;
  std::vector<double> f64s;
  std::vector<std::string> texts;
  std::vector<std::vector<std::byte>> blobs;
  std::vector<Leaf> leaves;
  bool operator==(const Repeated&) const = default;
};
MESHRPC_STRUCT(Repeated, (flags, 1), (i8s, 2), (i16s, 3), (i32s, 4), (i64s, 5), (u8s, 6), (u16s, 7),
               (u32s, 8), (u64s, 9), (colors, 10), (f32s, 11), (f64s, 12), (texts, 13), (blobs, 14),
               (leaves, 15));

struct Maps {
  std::map<std::string, int32_t> counts;
  std::map<std::string, Leaf> leaves;
  std::map<std::string, std::vector<std::byte>> blobs;
  std::map<int64_t, std::string> names;
  std::map<int64_t, double> ratios;
  std::map<int32_t, Color> colors;
  std::map<uint64_t, Leaf> leaves_by_id;
  std::unordered_map<uint32_t, std::string> labels;
  bool operator==(const Maps&) const = default;
};
MESHRPC_STRUCT(Maps, (counts, 1), (leaves, 2), (blobs, 3), (names, 4), (ratios, 5), (colors, 6),
               (leaves_by_id, 7), (labels, 8));

// Self-referential: the depth limit's natural enemy.
struct Node {
  std::vector<Node> children;
  int32_t value = 0;
  bool operator==(const Node&) const = default;
};
MESHRPC_STRUCT(Node, (children, 1), (value, 2));

struct Everything {
  Scalars scalars;
  Outer outer;
  Optionals optionals;
  Repeated repeated;
  Maps maps;
  Node tree;
  bool operator==(const Everything&) const = default;
};
MESHRPC_STRUCT(Everything, (scalars, 1), (outer, 2), (optionals, 3), (repeated, 4), (maps, 5),
               (tree, 6));

// Field numbers at the tag-size boundaries and around the reserved range.
struct FarFields {
  int32_t f1 = 0;
  int32_t f15 = 0;
  int32_t f16 = 0;
  int32_t f2047 = 0;
  int32_t f2048 = 0;
  int32_t f18999 = 0;
  int32_t f20000 = 0;
  std::string f_max;
  bool operator==(const FarFields&) const = default;
};
MESHRPC_STRUCT(FarFields, (f1, 1), (f15, 15), (f16, 16), (f2047, 2047), (f2048, 2048),
               (f18999, 18999), (f20000, 20000), (f_max, 536870911));

// encode_struct() into a string, checking encoded_size() on the way.
template <DescribedStruct T>
std::string to_bytes(const T& value) {
  Buffer out;
  encode_struct(value, out);
  EXPECT_EQ(out.size(), encoded_size(value));
  return out.to_string();
}

// decode_struct() into a fresh T.
template <DescribedStruct T>
Result<T> from_bytes(std::string_view bytes) {
  T out;
  Status status = decode_struct(bytes, out);
  if (!status.ok()) return status;
  return out;
}

// Random values of any described struct, walking its fields. Defaults (0, "", empty) come up
// often so omitted fields are exercised too; floats are never NaN (NaN != NaN breaks ==; the
// bit patterns are tested separately).
class RandomValues {
 public:
  explicit RandomValues(uint64_t seed) : rng_(seed) {}

  template <typename T>
  void fill(T& out) {
    if constexpr (std::is_same_v<T, bool>) {
      out = (rng_() & 1) != 0;
    } else if constexpr (std::is_enum_v<T>) {
      out = static_cast<T>(integer<std::underlying_type_t<T>>());  // unknown values too
    } else if constexpr (std::is_integral_v<T>) {
      out = integer<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      out = floating<T>();
    } else if constexpr (std::is_same_v<T, std::string> || detail::Bytes<T>) {
      out.resize(length());
      for (auto& c : out) c = static_cast<typename T::value_type>(rng_());  // NULs included
    } else if constexpr (detail::IsOptional<T>::value) {
      out.reset();
      if (rng_() % 2 == 0) fill(out.emplace());
    } else if constexpr (detail::IsVector<T>::value) {
      out.clear();
      for (size_t n = count(); n > 0; --n) {
        typename T::value_type element{};
        fill(element);
        out.push_back(std::move(element));
      }
    } else if constexpr (detail::IsMap<T>::value) {
      out.clear();
      for (size_t n = count(); n > 0; --n) {
        typename T::key_type key{};
        typename T::mapped_type value{};
        fill(key);
        fill(value);
        out.insert_or_assign(std::move(key), std::move(value));
      }
    } else {
      static_assert(DescribedStruct<T>);
      ++depth_;
      std::apply([&](const auto&... f) { (fill(out.*(f.member)), ...); }, fields_of<T>());
      --depth_;
    }
  }

 private:
  template <typename T>
  T integer() {
    using Limits = std::numeric_limits<T>;
    switch (rng_() % 6) {
      case 0:
        return T{0};
      case 1:
        return Limits::min();
      case 2:
        return Limits::max();
      case 3:
        return static_cast<T>(rng_() % 300);  // around the one/two-byte varint boundary
      default:
        return static_cast<T>(rng_() >> (rng_() % 64));
    }
  }

  template <typename T>
  T floating() {
    using Limits = std::numeric_limits<T>;
    const T specials[] = {T{0},
                          T{-0.0},
                          T{1},
                          T{-1.5},
                          Limits::infinity(),
                          -Limits::infinity(),
                          Limits::max(),
                          Limits::lowest(),
                          Limits::min(),
                          Limits::denorm_min()};
    if (rng_() % 2 == 0) return specials[rng_() % std::size(specials)];
    using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    const T value = std::bit_cast<T>(static_cast<Bits>(rng_()));
    return std::isnan(value) ? T{0.25} : value;
  }

  size_t length() {
    switch (rng_() % 4) {
      case 0:
        return 0;
      case 1:
        return 128 + rng_() % 200;  // a two-byte length prefix
      default:
        return rng_() % 10;
    }
  }

  // Element counts shrink with depth so recursive types stay small.
  size_t count() { return depth_ > 3 ? 0 : rng_() % (depth_ > 1 ? 3 : 6); }

  std::mt19937_64 rng_;
  int depth_ = 0;
};

inline constexpr uint64_t kSeed = 20240501;
inline constexpr int kIterations = 500;

}  // namespace meshrpc::codec::testing
