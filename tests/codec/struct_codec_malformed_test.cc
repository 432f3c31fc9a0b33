// The struct decoder on malformed input: every failure is INVALID_ARGUMENT naming the field,
// never a crash, whatever the bytes (tables, every truncation, nesting bombs, random and
// mutated bytes).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/struct_codec.h"
#include "struct_test_types.h"

namespace meshrpc::codec {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace ::meshrpc::codec::testing;  // NOLINT(google-build-using-namespace): test types

template <DescribedStruct T>
Status decode_as(std::string_view bytes) {
  T out;
  return decode_struct(bytes, out);
}

struct MalformedCase {
  std::string_view name;
  Status (*decode)(std::string_view);
  std::string_view bytes;
  std::string_view error;
};

constexpr MalformedCase kMalformedCases[] = {
    {"truncated varint", decode_as<Leaf>, "08 96",
     "Leaf.id (field 1): truncated varint at offset 2"},
    {"varint as I32", decode_as<Leaf>, "0d 01 02 03 04",
     "Leaf.id (field 1): wire type I32, expected VARINT"},
    {"string as VARINT", decode_as<Leaf>, "10 01",
     "Leaf.label (field 2): wire type VARINT, expected LEN"},
    {"length past the end", decode_as<Leaf>, "12 05 61",
     "Leaf.label (field 2): length 5 runs past the end (1 bytes left) at offset 2"},
    {"double as VARINT", decode_as<Scalars>, "78 01",
     "Scalars.f64 (field 15): wire type VARINT, expected I64"},
    {"float as I64", decode_as<Scalars>, "71 00 00 00 00 00 00 00 00",
     "Scalars.f32 (field 14): wire type I64, expected I32"},
    {"truncated float", decode_as<Scalars>, "75 00 00",
     "Scalars.f32 (field 14): truncated 4-byte value at offset 1"},
    {"bytes as I32", decode_as<Scalars>, "8d 01 00 00 00 00",
     "Scalars.blob (field 17): wire type I32, expected LEN"},
    {"group wire type", decode_as<Leaf>, "0b",
     "Leaf: field 1 has wire type 3 (SGROUP), which meshrpc does not accept at offset 1"},
    {"wire type 7", decode_as<Leaf>, "08 01 1f",
     "Leaf: field 3 has wire type 7 (invalid), which meshrpc does not accept at offset 3"},
    {"field number 0", decode_as<Leaf>, "00", "Leaf: field number 0 at offset 1"},
    {"truncated tag", decode_as<Leaf>, "08 01 80", "Leaf: truncated varint at offset 3"},
    {"truncated unknown field", decode_as<Leaf>, "3a 05 01",
     "Leaf unknown field 7: length 5 runs past the end (1 bytes left) at offset 2"},
    {"nested struct as VARINT", decode_as<Outer>, "08 01",
     "Outer.middle (field 1): wire type VARINT, expected LEN"},
    {"error two levels down", decode_as<Outer>, "0a 04 0a 02 10 01",
     "Outer.middle (field 1): Middle.leaf (field 1): Leaf.label (field 2): wire type VARINT, "
     "expected LEN"},
    {"optional struct past the end", decode_as<Outer>, "12 03 08",
     "Outer.spare (field 2): length 3 runs past the end (1 bytes left) at offset 2"},
    {"optional string as VARINT", decode_as<Optionals>, "38 01",
     "Optionals.text (field 7): wire type VARINT, expected LEN"},
    {"truncated packed varint", decode_as<Repeated>, "22 02 03 8e",
     "Repeated.i32s (field 4): truncated varint at offset 2"},
    {"packed floats not a multiple of 4", decode_as<Repeated>, "5a 03 00 00 80",
     "Repeated.f32s (field 11): truncated 4-byte value at offset 0"},
    {"unpacked int32 as I64", decode_as<Repeated>, "21 00 00 00 00 00 00 00 00",
     "Repeated.i32s (field 4): wire type I64, expected VARINT"},
    {"repeated string as VARINT", decode_as<Repeated>, "68 01",
     "Repeated.texts (field 13): wire type VARINT, expected LEN"},
    {"map entry as VARINT", decode_as<Maps>, "08 01",
     "Maps.counts (field 1): wire type VARINT, expected LEN"},
    {"map key of wrong type", decode_as<Maps>, "0a 02 08 01",
     "Maps.counts (field 1): map key: wire type VARINT, expected LEN"},
    {"map value of wrong type", decode_as<Maps>, "0a 02 12 00",
     "Maps.counts (field 1): map value: wire type LEN, expected VARINT"},
    {"map entry truncated tag", decode_as<Maps>, "0a 01 80",
     "Maps.counts (field 1): map entry: truncated varint at offset 1"},
    {"map entry truncated unknown field", decode_as<Maps>, "0a 02 18 80",
     "Maps.counts (field 1): map entry unknown field 3: truncated varint at offset 2"},
    {"map struct value malformed", decode_as<Maps>, "12 04 12 02 10 01",
     "Maps.leaves (field 2): map value: Leaf.label (field 2): wire type VARINT, expected LEN"},
};

TEST(StructCodecMalformed, FailsWithInvalidArgumentNamingTheField) {
  for (const MalformedCase& c : kMalformedCases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(c.decode(hex(c.bytes)),
                StatusIs(StatusCode::kInvalidArgument, std::string(c.error)));
  }
}

// A prefix of a valid encoding either ends between fields and decodes to exactly those fields
// (so it re-encodes to itself), or ends inside one and fails; never anything else.
template <DescribedStruct T>
void expect_every_prefix_decodes_or_fails_cleanly() {
  for (int i = 0; i < 50; ++i) {
    const uint64_t seed = kSeed + static_cast<uint64_t>(i);
    SCOPED_TRACE("seed " + std::to_string(seed));
    T value;
    RandomValues(seed).fill(value);
    const std::string bytes = to_bytes(value);
    int failures = 0;
    for (size_t size = 0; size < bytes.size(); ++size) {
      const std::string_view prefix = std::string_view(bytes).substr(0, size);
      Result<T> decoded = from_bytes<T>(prefix);
      if (decoded.ok()) {
        ASSERT_EQ(to_bytes(*decoded), prefix) << "prefix " << size;
      } else {
        ASSERT_THAT(decoded, StatusIs(StatusCode::kInvalidArgument)) << "prefix " << size;
        ++failures;
      }
    }
    if (bytes.size() > 1) {
      EXPECT_GT(failures, 0);
    }
  }
}

TEST(StructCodecMalformed, EveryTruncationOfValidEncodingDecodesFewerFieldsOrFails) {
  expect_every_prefix_decodes_or_fails_cleanly<Scalars>();
  expect_every_prefix_decodes_or_fails_cleanly<Outer>();
  expect_every_prefix_decodes_or_fails_cleanly<Optionals>();
  expect_every_prefix_decodes_or_fails_cleanly<Repeated>();
  expect_every_prefix_decodes_or_fails_cleanly<Node>();
}

Node chain(int levels) {
  Node node{{}, 1};
  for (int i = 1; i < levels; ++i) node = Node{{std::move(node)}, 0};
  return node;
}

TEST(StructCodecMalformed, DecodesNestingUpToTheLimit) {
  const Node deep = chain(kMaxNestingDepth);
  Result<Node> back = from_bytes<Node>(to_bytes(deep));
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(*back == deep);
}

TEST(StructCodecMalformed, RejectsNestingDeeperThanTheLimit) {
  EXPECT_THAT(from_bytes<Node>(to_bytes(chain(kMaxNestingDepth + 1))),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(StartsWith("Node.children (field 1): Node.children (field 1): "),
                             HasSubstr("nesting deeper than kMaxNestingDepth 100"))));
}

TEST(StructCodecMalformed, RejectsNestingBombWithoutExhaustingTheStack) {
  std::string bomb;  // Node.children nested 5000 deep: 0a <len> 0a <len> ...
  for (int i = 0; i < 5000; ++i) {
    char length[kMaxVarintBytes];
    WireWriter writer(length);
    writer.varint(bomb.size());
    bomb.insert(0, length, static_cast<size_t>(writer.position() - length));
    bomb.insert(0, 1, '\x0a');
  }
  EXPECT_THAT(from_bytes<Node>(bomb), StatusIs(StatusCode::kInvalidArgument,
                                               HasSubstr("nesting deeper than kMaxNestingDepth")));
  // The same bomb inside fields the decoder does not know is skipped, not descended into.
  EXPECT_THAT(from_bytes<Leaf>("\x1a" + bomb.substr(1)), IsOk());
}

TEST(StructCodecMalformed, RandomBytesNeverCrash) {
  std::mt19937_64 rng(kSeed);
  int accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    Result<Everything> value = from_bytes<Everything>(bytes);
    if (value.ok()) {
      ++accepted;
      ASSERT_THAT(from_bytes<Everything>(to_bytes(*value)), IsOk()) << to_hex(bytes);
    } else {
      ASSERT_THAT(value, StatusIs(StatusCode::kInvalidArgument)) << to_hex(bytes);
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(StructCodecMalformed, MutatedValidEncodingsNeverCrash) {
  std::mt19937_64 rng(kSeed);
  int accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    const uint64_t seed = kSeed + static_cast<uint64_t>(i % 100);
    Everything original;
    RandomValues(seed).fill(original);
    std::string bytes = to_bytes(original);
    if (bytes.empty()) continue;
    for (uint64_t flips = 1 + rng() % 3; flips > 0; --flips) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + " mutated " + to_hex(bytes));
    Result<Everything> value = from_bytes<Everything>(bytes);
    if (value.ok()) {
      ++accepted;
      ASSERT_THAT(from_bytes<Everything>(to_bytes(*value)), IsOk());
    } else {
      ASSERT_THAT(value, StatusIs(StatusCode::kInvalidArgument));
    }
  }
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace meshrpc::codec
