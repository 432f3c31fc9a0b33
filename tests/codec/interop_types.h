// The MESHRPC_STRUCT twins of the messages in tests/protos/interop.proto: same names, field
// numbers and types, so a struct and its message must read each other's bytes and JSON.
// interop_test.cc checks that for random values, struct_json_test.cc for golden JSON. Change
// a struct here only together with its message there. (Unpacked has no twin: it is Repeated
// written unpacked, and decodes into Repeated.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/codec/struct_codec.h"

// MESHRPC_STRUCT goes at namespace scope in the type's namespace.
namespace meshrpc::codec::interop_types {

enum class Color : int32_t { kUnspecified = 0, kRed = 1, kGreen = 2, kNegative = -1 };

struct Point {
  int32_t x = 0;
  int64_t y = 0;
  std::string label;
  bool operator==(const Point&) const = default;
};
MESHRPC_STRUCT(Point, (x, 1), (y, 2), (label, 3));

struct Scalars {
  bool flag = false;
  int32_t i32 = 0;
  int64_t i64 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  Color color = Color::kUnspecified;
  float f32 = 0;
  double f64 = 0;
  std::string text;
  std::vector<std::byte> blob;
  Point point;
  bool operator==(const Scalars&) const = default;
};
MESHRPC_STRUCT(Scalars, (flag, 1), (i32, 2), (i64, 3), (u32, 4), (u64, 5), (color, 6), (f32, 7),
               (f64, 8), (text, 9), (blob, 10), (point, 11));

struct Optionals {
  std::optional<bool> flag;
  std::optional<int32_t> i32;
  std::optional<int64_t> i64;
  std::optional<uint32_t> u32;
  std::optional<uint64_t> u64;
  std::optional<Color> color;
  std::optional<float> f32;
  std::optional<double> f64;
  std::optional<std::string> text;
  std::optional<std::vector<std::byte>> blob;
  std::optional<Point> point;
  bool operator==(const Optionals&) const = default;
};
MESHRPC_STRUCT(Optionals, (flag, 1), (i32, 2), (i64, 3), (u32, 4), (u64, 5), (color, 6), (f32, 7),
               (f64, 8), (text, 9), (blob, 10), (point, 11));

struct Repeated {
  std::vector<bool> flags;
  std::vector<int32_t> i32s;
  std::vector<int64_t> i64s;
  std::vector<uint32_t> u32s;
  std::vector<uint64_t> u64s;
  std::vector<Color> colors;
  std::vector<float> f32s;
  std::vector<double> f64s;
  std::vector<std::string> texts;
  std::vector<std::vector<std::byte>> blobs;
  std::vector<Point> points;
  bool operator==(const Repeated&) const = default;
};
MESHRPC_STRUCT(Repeated, (flags, 1), (i32s, 2), (i64s, 3), (u32s, 4), (u64s, 5), (colors, 6),
               (f32s, 7), (f64s, 8), (texts, 9), (blobs, 10), (points, 11));

struct Maps {
  std::map<std::string, int32_t> counts;
  std::map<int64_t, std::string> names;
  std::map<std::string, Point> points;
  std::map<int64_t, std::vector<std::byte>> blobs;
  std::map<std::string, double> weights;
  bool operator==(const Maps&) const = default;
};
MESHRPC_STRUCT(Maps, (counts, 1), (names, 2), (points, 3), (blobs, 4), (weights, 5));

// Field numbers far apart: multi-byte tags, up to the largest field number.
struct Everything {
  Scalars scalars;
  Optionals optionals;
  Repeated lists;
  Maps maps;
  bool operator==(const Everything&) const = default;
};
MESHRPC_STRUCT(Everything, (scalars, 1), (optionals, 16), (lists, 2048), (maps, 536870911));

}  // namespace meshrpc::codec::interop_types
