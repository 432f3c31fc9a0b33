// The struct codec (MESHRPC_STRUCT): random round trips over every supported member type,
// exact bytes against the protobuf encoding, protobuf's decoding rules (unpacked repeated
// fields, last one wins, merging) and schema evolution. Malformed input:
// struct_codec_malformed_test.cc.
#include "meshrpc/codec/struct_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "struct_test_types.h"

namespace meshrpc::codec {
namespace {

using ::meshrpc::testing::IsOk;
using namespace ::meshrpc::codec::testing;  // NOLINT(google-build-using-namespace): test types

// Encodes random values of T, decodes them and expects the value back; also that the
// encoding is canonical (decoded values re-encode to the same bytes, unordered maps aside).
template <DescribedStruct T>
void expect_random_values_round_trip() {
  for (int i = 0; i < kIterations; ++i) {
    const uint64_t seed = kSeed + static_cast<uint64_t>(i);
    SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: RandomValues(seed).fill(value))");
    T value;
    RandomValues(seed).fill(value);
    const std::string bytes = to_bytes(value);
    Result<T> decoded = from_bytes<T>(bytes);
    ASSERT_THAT(decoded, IsOk()) << to_hex(bytes);
    ASSERT_TRUE(*decoded == value) << to_hex(bytes);
    if constexpr (!std::is_same_v<T, Maps> && !std::is_same_v<T, Everything>) {
      ASSERT_EQ(to_bytes(*decoded), bytes);
    }
  }
}

// ---- round trips ----

// A plain enum without a fixed underlying type cannot hold values a newer peer adds (undefined
// behaviour), so it is refused at compile time; enum class and `enum E : T` are accepted.
enum PlainEnum { kPlainA, kPlainB };
enum FixedPlainEnum : int32_t { kFixedA, kFixedB };
static_assert(!detail::supported_member<PlainEnum>());
static_assert(detail::supported_member<FixedPlainEnum>());
static_assert(detail::supported_member<std::vector<FixedPlainEnum>>());

TEST(StructCodec, RoundTripsRandomScalarsOfEveryType) {
  expect_random_values_round_trip<Scalars>();
}
TEST(StructCodec, RoundTripsRandomNestedStructs) { expect_random_values_round_trip<Outer>(); }
TEST(StructCodec, RoundTripsRandomOptionals) { expect_random_values_round_trip<Optionals>(); }
TEST(StructCodec, RoundTripsRandomRepeatedFieldsOfEveryType) {
  expect_random_values_round_trip<Repeated>();
}
TEST(StructCodec, RoundTripsRandomMapsOfEveryKeyKind) { expect_random_values_round_trip<Maps>(); }
TEST(StructCodec, RoundTripsRandomRecursiveStructs) { expect_random_values_round_trip<Node>(); }
TEST(StructCodec, RoundTripsRandomValuesOfEveryKindTogether) {
  expect_random_values_round_trip<Everything>();
}

TEST(StructCodec, RoundTripsFloatBitPatternsIncludingNaNPayloads) {
  const uint32_t floats[] = {0x7fc00000, 0x7fc00001, 0xffc12345, 0x7f800001, 0x80000000,
                             0x7f800000, 0xff800000, 0x00000001, 0x3f800000};
  const uint64_t doubles[] = {0x7ff8000000000000, 0x7ff8000000000001, 0xfff0000000abcdef,
                              0x7ff0000000000001, 0x8000000000000000, 0x7ff0000000000000,
                              0xfff0000000000000, 0x0000000000000001, 0x3ff0000000000000};
  for (size_t i = 0; i < std::size(floats); ++i) {
    SCOPED_TRACE(i);
    Scalars scalars;
    scalars.f32 = std::bit_cast<float>(floats[i]);
    scalars.f64 = std::bit_cast<double>(doubles[i]);
    Repeated repeated;
    repeated.f32s = {scalars.f32, 1.0f};
    repeated.f64s = {scalars.f64};
    Optionals optionals;
    optionals.f32 = scalars.f32;
    optionals.f64 = scalars.f64;
    Maps maps;
    maps.ratios[-1] = scalars.f64;

    Result<Scalars> scalars_back = from_bytes<Scalars>(to_bytes(scalars));
    Result<Repeated> repeated_back = from_bytes<Repeated>(to_bytes(repeated));
    Result<Optionals> optionals_back = from_bytes<Optionals>(to_bytes(optionals));
    Result<Maps> maps_back = from_bytes<Maps>(to_bytes(maps));
    ASSERT_THAT(scalars_back, IsOk());
    ASSERT_THAT(repeated_back, IsOk());
    ASSERT_THAT(optionals_back, IsOk());
    ASSERT_THAT(maps_back, IsOk());
    EXPECT_EQ(std::bit_cast<uint32_t>(scalars_back->f32), floats[i]);
    EXPECT_EQ(std::bit_cast<uint64_t>(scalars_back->f64), doubles[i]);
    ASSERT_EQ(repeated_back->f32s.size(), 2u);
    EXPECT_EQ(std::bit_cast<uint32_t>(repeated_back->f32s[0]), floats[i]);
    ASSERT_EQ(repeated_back->f64s.size(), 1u);
    EXPECT_EQ(std::bit_cast<uint64_t>(repeated_back->f64s[0]), doubles[i]);
    ASSERT_TRUE(optionals_back->f32 && optionals_back->f64);
    EXPECT_EQ(std::bit_cast<uint32_t>(*optionals_back->f32), floats[i]);
    EXPECT_EQ(std::bit_cast<uint64_t>(*optionals_back->f64), doubles[i]);
    EXPECT_EQ(std::bit_cast<uint64_t>(maps_back->ratios.at(-1)), doubles[i]);
  }
}

TEST(StructCodec, WritesNegativeZeroButOmitsPositiveZero) {
  Scalars scalars;
  scalars.f64 = -0.0;
  EXPECT_EQ(to_hex(to_bytes(scalars)), "79 00 00 00 00 00 00 00 80");
  scalars.f64 = 0.0;
  EXPECT_EQ(to_bytes(scalars), "");
  scalars.f32 = -0.0f;
  Result<Scalars> back = from_bytes<Scalars>(to_bytes(scalars));
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(std::signbit(back->f32));
}

TEST(StructCodec, RoundTripsFieldNumbersAtTagSizeBoundaries) {
  const FarFields value{1, 2, 3, 4, 5, 6, 7, "x"};
  EXPECT_EQ(to_hex(to_bytes(value)),
            "08 01 78 02 80 01 03 f8 7f 04 80 80 01 05 b8 a3 09 06 80 e2 09 07 "
            "fa ff ff ff 0f 01 78");
  Result<FarFields> back = from_bytes<FarFields>(to_bytes(value));
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(*back == value);
}

// ---- exact bytes: the examples of protobuf's encoding guide, and more ----

struct Test1 {
  int32_t a = 0;
};
MESHRPC_STRUCT(Test1, (a, 1));
struct Test2 {
  std::string b;
};
MESHRPC_STRUCT(Test2, (b, 2));
struct Test3 {
  Test1 c;
};
MESHRPC_STRUCT(Test3, (c, 3));

TEST(StructCodecGolden, MatchesProtobufEncodingGuideExamples) {
  EXPECT_EQ(to_hex(to_bytes(Test1{150})), "08 96 01");
  EXPECT_EQ(to_hex(to_bytes(Test2{"testing"})), "12 07 74 65 73 74 69 6e 67");
  EXPECT_EQ(to_hex(to_bytes(Test3{Test1{150}})), "1a 03 08 96 01");
  Repeated packed;
  packed.i32s = {3, 270, 86942};
  EXPECT_EQ(to_hex(to_bytes(packed)), "22 06 03 8e 02 9e a7 05");
}

TEST(StructCodecGolden, EncodesScalarsLikeProtobuf) {
  struct Case {
    std::string_view name;
    Scalars value;
    std::string_view bytes;
  };
  auto with = [](auto setter) {
    Scalars s;
    setter(s);
    return s;
  };
  const Case cases[] = {
      {"bool", with([](Scalars& s) { s.flag = true; }), "08 01"},
      {"int8 -1 sign-extended", with([](Scalars& s) { s.i8 = -1; }),
       "10 ff ff ff ff ff ff ff ff ff 01"},
      {"int32 -1 sign-extended", with([](Scalars& s) { s.i32 = -1; }),
       "20 ff ff ff ff ff ff ff ff ff 01"},
      {"int64 min", with([](Scalars& s) { s.i64 = std::numeric_limits<int64_t>::min(); }),
       "28 80 80 80 80 80 80 80 80 80 01"},
      {"uint8 200", with([](Scalars& s) { s.u8 = 200; }), "30 c8 01"},
      {"uint32 max", with([](Scalars& s) { s.u32 = 0xffffffff; }), "40 ff ff ff ff 0f"},
      {"enum", with([](Scalars& s) { s.color = Color::kBlue; }), "50 02"},
      {"negative enum", with([](Scalars& s) { s.color = static_cast<Color>(-3); }),
       "50 fd ff ff ff ff ff ff ff ff 01"},
      {"uint8 enum", with([](Scalars& s) { s.level = Level::kHigh; }), "58 c8 01"},
      {"unscoped enum", with([](Scalars& s) { s.legacy = kLegacyB; }), "68 07"},
      {"float", with([](Scalars& s) { s.f32 = 1.0f; }), "75 00 00 80 3f"},
      {"double", with([](Scalars& s) { s.f64 = 1.0; }), "79 00 00 00 00 00 00 f0 3f"},
      {"string with NUL", with([](Scalars& s) { s.text = std::string("a\0b", 3); }),
       "82 01 03 61 00 62"},
      {"bytes", with([](Scalars& s) { s.blob = blob_of("\x01\xff"); }), "8a 01 02 01 ff"},
      {"fields in number order", with([](Scalars& s) {
         s.u64 = 1;
         s.flag = true;
       }),
       "08 01 48 01"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(to_hex(to_bytes(c.value)), c.bytes);
    Result<Scalars> back = from_bytes<Scalars>(hex(c.bytes));
    ASSERT_THAT(back, IsOk());
    EXPECT_TRUE(*back == c.value);
  }
}

TEST(StructCodecGolden, DefaultStructsEncodeToNothing) {
  EXPECT_EQ(to_bytes(Scalars{}), "");
  EXPECT_EQ(to_bytes(Outer{}), "");
  EXPECT_EQ(to_bytes(Optionals{}), "");
  EXPECT_EQ(to_bytes(Repeated{}), "");
  EXPECT_EQ(to_bytes(Maps{}), "");
  EXPECT_EQ(to_bytes(Everything{}), "");
  Outer nested_default;
  nested_default.middle.leaf = Leaf{};  // a nested struct that encodes to nothing is omitted
  EXPECT_EQ(to_bytes(nested_default), "");
}

TEST(StructCodecGolden, WritesOptionalsPresentWithDefaultValues) {
  Optionals value;
  value.flag = false;
  value.i32 = 0;
  value.f64 = 0.0;
  value.text = "";
  value.blob = std::vector<std::byte>{};
  value.leaf = Leaf{};
  EXPECT_EQ(to_hex(to_bytes(value)), "08 00 10 00 31 00 00 00 00 00 00 00 00 3a 00 42 00 4a 00");
  Result<Optionals> back = from_bytes<Optionals>(to_bytes(value));
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(*back == value);
  EXPECT_TRUE(back->leaf.has_value());
  EXPECT_FALSE(back->u64.has_value());
}

TEST(StructCodecGolden, WritesEachRepeatedElementIncludingDefaults) {
  Repeated value;
  value.flags = {true, false, true};
  value.f32s = {1.0f};
  value.texts = {"a", ""};
  value.leaves = {Leaf{}, Leaf{1, ""}};
  EXPECT_EQ(to_hex(to_bytes(value)),
            "0a 03 01 00 01 5a 04 00 00 80 3f 6a 01 61 6a 00 7a 00 7a 02 08 01");
}

TEST(StructCodecGolden, WritesMapEntriesAsKeyOneValueTwoMessages) {
  Maps value;
  value.counts = {{"a", 1}, {"", 0}};  // an entry writes its key and value even when default
  value.leaves = {{"k", Leaf{}}};
  value.names = {{-1, "x"}};
  EXPECT_EQ(to_hex(to_bytes(value)),
            "0a 04 0a 00 10 00 0a 05 0a 01 61 10 01 "
            "12 05 0a 01 6b 12 00 "
            "22 0e 08 ff ff ff ff ff ff ff ff ff 01 12 01 78");
}

// ---- protobuf's decoding rules ----

TEST(StructCodecDecode, AcceptsUnpackedRepeatedScalars) {
  Result<Repeated> value =
      from_bytes<Repeated>(hex("20 03 20 8e 02 20 9e a7 05 08 01 08 00 5d 00 00 80 3f"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->i32s, (std::vector<int32_t>{3, 270, 86942}));
  EXPECT_EQ(value->flags, (std::vector<bool>{true, false}));
  EXPECT_EQ(value->f32s, (std::vector<float>{1.0f}));
}

TEST(StructCodecDecode, AppendsMixedPackedAndUnpackedChunks) {
  Result<Repeated> value = from_bytes<Repeated>(hex("22 03 03 8e 02 20 9e a7 05 22 00 22 01 07"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->i32s, (std::vector<int32_t>{3, 270, 86942, 7}));
}

TEST(StructCodecDecode, AppendsToRepeatedFieldsAlreadyInTheTarget) {
  Repeated value;
  value.texts = {"old"};
  ASSERT_THAT(decode_struct(hex("6a 03 6e 65 77"), value), IsOk());
  EXPECT_EQ(value.texts, (std::vector<std::string>{"old", "new"}));
}

TEST(StructCodecDecode, LastOccurrenceOfSingularFieldWins) {
  Result<Scalars> value = from_bytes<Scalars>(hex("20 01 82 01 01 61 20 02 82 01 01 62"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->i32, 2);
  EXPECT_EQ(value->text, "b");
  Result<Optionals> optional = from_bytes<Optionals>(hex("10 05 10 00"));
  ASSERT_THAT(optional, IsOk());
  EXPECT_EQ(optional->i32, 0);
}

TEST(StructCodecDecode, MergesNestedMessageSplitAcrossOccurrences) {
  // Outer.middle twice: first {leaf {id 1}}, then {leaf {label "x"}, weight 9}.
  Result<Outer> value =
      from_bytes<Outer>(hex("0a 04 0a 02 08 01 0a 05 0a 03 12 01 78 0a 02 18 09"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->middle.leaf, (Leaf{1, "x"}));
  EXPECT_EQ(value->middle.weight, 9);
  // An optional struct merges the same way.
  Result<Outer> spare = from_bytes<Outer>(hex("12 02 08 07 12 03 12 01 79"));
  ASSERT_THAT(spare, IsOk());
  EXPECT_EQ(spare->spare, (Leaf{7, "y"}));
}

TEST(StructCodecDecode, LastDuplicateMapKeyWinsAndEntriesMayBePartial) {
  // {"a": 1}, {"a": 2}, {value 5} (key ""), {key "b"} (value 0), {value then key "c": 3}.
  Result<Maps> value =
      from_bytes<Maps>(hex("0a 05 0a 01 61 10 01 0a 05 0a 01 61 10 02 0a 02 10 05 0a 03 0a 01 62 "
                           "0a 05 10 03 0a 01 63"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->counts, (std::map<std::string, int32_t>{{"a", 2}, {"", 5}, {"b", 0}, {"c", 3}}));
}

TEST(StructCodecDecode, SkipsUnknownFieldsInMapEntries) {
  Result<Maps> value = from_bytes<Maps>(hex("0a 0c 18 05 0a 01 61 25 00 00 00 00 10 04"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->counts, (std::map<std::string, int32_t>{{"a", 4}}));
}

TEST(StructCodecDecode, SkipsUnknownFieldsOfEveryWireType) {
  const std::string bytes =
      hex("08 01"                             // id = 1
          "38 ff ff ff ff ff ff ff ff ff 01"  // field 7, VARINT (10 bytes)
          "41 01 02 03 04 05 06 07 08"        // field 8, I64
          "4a 04 0b 0c 00 ff"                 // field 9, LEN (not parsed: groups inside are fine)
          "55 01 02 03 04"                    // field 10, I32
          "c0 a3 09 05"                       // field 19000 (reserved), VARINT
          "fa ff ff ff 0f 00"                 // field 2^29-1, empty LEN
          "12 01 78");                        // label = "x"
  Result<Leaf> value = from_bytes<Leaf>(bytes);
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(*value, (Leaf{1, "x"}));
}

TEST(StructCodecDecode, DecodesFieldsInAnyOrder) {
  Result<Leaf> value = from_bytes<Leaf>(hex("12 01 78 08 01"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(*value, (Leaf{1, "x"}));
}

TEST(StructCodecDecode, TruncatesWideVarintsIntoNarrowMembersLikeProtobuf) {
  // uint8 = 300 (0x12c) keeps the low byte; bool is "not zero".
  Result<Scalars> value = from_bytes<Scalars>(hex("30 ac 02 08 02"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->u8, 0x2c);
  EXPECT_TRUE(value->flag);
}

// ---- schema evolution ----

struct Inner {
  int32_t code = 0;
  std::string note;
  bool operator==(const Inner&) const = default;
};
MESHRPC_STRUCT(Inner, (code, 1), (note, 2));

namespace v1 {
struct Record {
  std::string name;
  int64_t size = 0;
  bool operator==(const Record&) const = default;
};
MESHRPC_STRUCT(Record, (name, 1), (size, 2));
}  // namespace v1

namespace v2 {
// Members reordered (numbers, not order, identify fields) and fields added with new numbers.
struct Record {
  int64_t size = 0;
  std::string name;
  std::vector<std::string> tags;
  std::optional<double> ratio;
  Inner extra;
  bool operator==(const Record&) const = default;
};
MESHRPC_STRUCT(Record, (name, 1), (size, 2), (tags, 3), (ratio, 4), (extra, 5));
}  // namespace v2

TEST(StructCodecEvolution, OldReaderSkipsFieldsAddedLater) {
  const v2::Record record{7, "disk", {"a", "b"}, 0.5, Inner{3, "n"}};
  Result<v1::Record> old = from_bytes<v1::Record>(to_bytes(record));
  ASSERT_THAT(old, IsOk());
  EXPECT_EQ(*old, (v1::Record{"disk", 7}));
}

TEST(StructCodecEvolution, NewReaderDefaultsFieldsAnOldWriterLacks) {
  const std::string bytes = to_bytes(v1::Record{"disk", 7});
  Result<v2::Record> fresh = from_bytes<v2::Record>(bytes);
  ASSERT_THAT(fresh, IsOk());
  EXPECT_EQ(*fresh, (v2::Record{7, "disk", {}, std::nullopt, Inner{}}));
  EXPECT_EQ(to_bytes(*fresh), bytes);  // same numbers, same bytes
}

TEST(StructCodecEvolution, RandomNewRecordsDecodeAsOldOnes) {
  for (int i = 0; i < kIterations; ++i) {
    const uint64_t seed = kSeed + static_cast<uint64_t>(i);
    SCOPED_TRACE("seed " + std::to_string(seed));
    v2::Record record;
    RandomValues(seed).fill(record);
    Result<v1::Record> old = from_bytes<v1::Record>(to_bytes(record));
    ASSERT_THAT(old, IsOk());
    ASSERT_EQ(*old, (v1::Record{record.name, record.size}));
  }
}

}  // namespace
}  // namespace meshrpc::codec
