// What struct_decoder_fuzz decodes into and the properties it checks, shared with the unit
// test that replays the seed corpus (tests/codec/struct_decoder_corpus_test.cc).
//
// Target has a member of every kind MESHRPC_STRUCT supports: each scalar type, string,
// bytes, nested structs two levels deep, a self-referential struct (to reach the nesting
// limit), optionals, packed and repeated vectors, ordered and unordered maps, and a field
// with the largest number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec::fuzz {

enum class Kind : int32_t { kNone = 0, kSmall = 1, kLarge = 2 };

struct Leaf {
  int32_t id = 0;
  std::string label;
  std::vector<std::byte> blob;
  float weight = 0;
  Kind kind = Kind::kNone;
};
MESHRPC_STRUCT(Leaf, (id, 1), (label, 2), (blob, 3), (weight, 4), (kind, 5));

struct Tree {
  std::vector<Tree> children;
  uint32_t value = 0;
};
MESHRPC_STRUCT(Tree, (children, 1), (value, 2));

struct Branch {
  Leaf leaf;
  std::vector<Leaf> leaves;
  std::optional<Leaf> spare;
  std::map<std::string, Leaf> by_name;
  Tree tree;
};
MESHRPC_STRUCT(Branch, (leaf, 1), (leaves, 2), (spare, 3), (by_name, 4), (tree, 5));

struct Target {
  bool flag = false;
  int8_t i8 = 0;
  int16_t i16 = 0;
  int32_t i32 = 0;
  int64_t i64 = 0;
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  Kind kind = Kind::kNone;
  float f32 = 0;
  double f64 = 0;
  std::string text;
  std::vector<std::byte> blob;
  Leaf leaf;
  Branch branch;
  std::optional<int64_t> opt_i64;
  std::optional<double> opt_f64;
  std::optional<std::string> opt_text;
  std::optional<std::vector<std::byte>> opt_blob;
  std::optional<Leaf> opt_leaf;
  std::vector<bool> flags;
  std::vector<int32_t> i32s;
  std::vector<uint64_t> u64s;
  std::vector<int8_t> i8s;
  std::vector<Kind> kinds;
  std::vector<float> f32s;
  std::vector<double> f64s;
  std::vector<std::string> texts;
  std::vector<std::vector<std::byte>> blobs;
  std::vector<Leaf> leaves;
  std::map<std::string, int64_t> counts;
  std::map<int64_t, Leaf> leaves_by_id;
  std::map<int32_t, std::vector<std::byte>> blobs_by_id;
  std::unordered_map<uint32_t, std::string> labels;
  Tree tree;
  uint32_t far = 0;
};
MESHRPC_STRUCT(Target, (flag, 1), (i8, 2), (i16, 3), (i32, 4), (i64, 5), (u8, 6), (u16, 7),
               (u32, 8), (u64, 9), (kind, 10), (f32, 11), (f64, 12), (text, 13), (blob, 14),
               (leaf, 15), (branch, 16), (opt_i64, 17), (opt_f64, 18), (opt_text, 19),
               (opt_blob, 20), (opt_leaf, 21), (flags, 22), (i32s, 23), (u64s, 24), (i8s, 25),
               (kinds, 26), (f32s, 27), (f64s, 28), (texts, 29), (blobs, 30), (leaves, 31),
               (counts, 32), (leaves_by_id, 33), (blobs_by_id, 34), (labels, 35), (tree, 36),
               (far, 536870911));

inline std::string encode_target(const Target& value) {
  Buffer out;
  encode_struct(value, out);
  return out.to_string();
}

// Decodes `bytes` as a Target and checks, returning what failed or nullptr if all hold:
//   1. Failures are INVALID_ARGUMENT (and no crash or out-of-bounds read: ASan/UBSan).
//   2. A decoded value encodes to encoded_size() bytes, and those bytes decode again.
//   3. Idempotence: the second value re-encodes byte-identically to the first. Compared
//      without the unordered map, whose iteration order (and so its encoding's order) depends
//      on insertion history; its contents must still match.
inline const char* struct_decoder_violation(std::string_view bytes) {
  Target first;
  const Status status = decode_struct(bytes, first);
  if (!status.ok()) {
    return status.code() == StatusCode::kInvalidArgument ? nullptr
                                                         : "decode errors are INVALID_ARGUMENT";
  }
  const std::string once = encode_target(first);
  if (once.size() != encoded_size(first)) return "encoded_size() matches the bytes written";
  Target second;
  if (!decode_struct(once, second).ok()) return "a re-encoded value decodes";
  if (second.labels != first.labels) return "the unordered map survives re-encoding";
  first.labels.clear();
  second.labels.clear();
  if (encode_target(second) != encode_target(first)) return "re-encoding is byte-identical";
  return nullptr;
}

}  // namespace meshrpc::codec::fuzz
