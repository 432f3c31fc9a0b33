// The protobuf wire-format primitives: varint and fixed encodings byte by byte at their size
// boundaries, zigzag, and WireReader's errors and skip().
#include "meshrpc/codec/wire_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "byte_strings.h"

namespace meshrpc::codec {
namespace {

using ::meshrpc::codec::testing::hex;
using ::testing::HasSubstr;

std::string varint_bytes(uint64_t value) {
  char out[kMaxVarintBytes];
  WireWriter writer(out);
  writer.varint(value);
  return std::string(out, writer.position());
}

struct VarintCase {
  uint64_t value;
  std::string_view bytes;
};

constexpr VarintCase kVarintCases[] = {
    {0, "00"},
    {1, "01"},
    {127, "7f"},
    {128, "80 01"},
    {150, "96 01"},
    {300, "ac 02"},
    {16383, "ff 7f"},
    {16384, "80 80 01"},
    {uint64_t{0xffffffff}, "ff ff ff ff 0f"},
    {uint64_t{1} << 32, "80 80 80 80 10"},
    {uint64_t{std::numeric_limits<int64_t>::max()}, "ff ff ff ff ff ff ff ff 7f"},
    {uint64_t{1} << 63, "80 80 80 80 80 80 80 80 80 01"},
    {std::numeric_limits<uint64_t>::max(), "ff ff ff ff ff ff ff ff ff 01"},
    // Negative int32/int64 values are sign-extended to 64 bits, so they always take 10 bytes.
    {static_cast<uint64_t>(int64_t{-1}), "ff ff ff ff ff ff ff ff ff 01"},
    {static_cast<uint64_t>(int64_t{-2}), "fe ff ff ff ff ff ff ff ff 01"},
    {static_cast<uint64_t>(int64_t{std::numeric_limits<int32_t>::min()}),
     "80 80 80 80 f8 ff ff ff ff 01"},
};

TEST(Varint, EncodesBoundaryValuesByteForByte) {
  for (const VarintCase& c : kVarintCases) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(varint_bytes(c.value), hex(c.bytes));
    EXPECT_EQ(varint_size(c.value), hex(c.bytes).size());
  }
}

TEST(Varint, DecodesBoundaryValues) {
  for (const VarintCase& c : kVarintCases) {
    SCOPED_TRACE(c.value);
    const std::string bytes = hex(c.bytes);
    WireReader reader(bytes);
    uint64_t value = 12345;
    ASSERT_TRUE(reader.read_varint(value)) << reader.error();
    EXPECT_EQ(value, c.value);
    EXPECT_TRUE(reader.at_end());
  }
}

TEST(Varint, SizeGrowsByOneByteEverySevenBits) {
  for (int bits = 1; bits <= 64; ++bits) {
    SCOPED_TRACE(bits);
    const uint64_t largest = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    const size_t expected = static_cast<size_t>((bits + 6) / 7);
    EXPECT_EQ(varint_size(largest), expected);
    EXPECT_EQ(varint_bytes(largest).size(), expected);
  }
  EXPECT_EQ(varint_size(0), 1u);
}

TEST(Varint, AcceptsNonCanonicalPaddedEncodings) {
  const std::string bytes = hex("81 80 80 00");  // 1, padded to four bytes
  WireReader reader(bytes);
  uint64_t value = 0;
  ASSERT_TRUE(reader.read_varint(value)) << reader.error();
  EXPECT_EQ(value, 1u);
  EXPECT_TRUE(reader.at_end());
}

TEST(Varint, TenthByteContributesOnlyBit63) {
  // Like protobuf's parser: bits above 63 in the tenth byte are dropped, not an error.
  const std::string bytes = hex("ff ff ff ff ff ff ff ff ff 7f");
  WireReader reader(bytes);
  uint64_t value = 0;
  ASSERT_TRUE(reader.read_varint(value)) << reader.error();
  EXPECT_EQ(value, std::numeric_limits<uint64_t>::max());
}

TEST(Zigzag, MapsSmallMagnitudesToSmallNumbers) {
  struct Case {
    int64_t value;
    uint64_t encoded;
  };
  const Case cases[] = {
      {0, 0},
      {-1, 1},
      {1, 2},
      {-2, 3},
      {2147483647, 4294967294u},
      {-2147483648, 4294967295u},
      {std::numeric_limits<int64_t>::max(), std::numeric_limits<uint64_t>::max() - 1},
      {std::numeric_limits<int64_t>::min(), std::numeric_limits<uint64_t>::max()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(zigzag_encode(c.value), c.encoded);
    EXPECT_EQ(zigzag_decode(c.encoded), c.value);
  }
}

TEST(Fixed, WritesLittleEndian) {
  char out[12];
  WireWriter writer(out);
  writer.fixed32(0x12345678);
  writer.fixed64(0x0102030405060708);
  ASSERT_EQ(writer.position(), out + 12);
  EXPECT_EQ(std::string(out, 12), hex("78 56 34 12 08 07 06 05 04 03 02 01"));
}

TEST(Fixed, ReadsLittleEndian) {
  const std::string bytes = hex("78 56 34 12 08 07 06 05 04 03 02 f1");
  WireReader reader(bytes);
  uint32_t value32 = 0;
  uint64_t value64 = 0;
  ASSERT_TRUE(reader.read_fixed32(value32));
  ASSERT_TRUE(reader.read_fixed64(value64));
  EXPECT_EQ(value32, 0x12345678u);
  EXPECT_EQ(value64, 0xf102030405060708u);
  EXPECT_TRUE(reader.at_end());
}

TEST(WireWriter, WritesTagsAndLengthDelimitedBytes) {
  char out[16];
  WireWriter writer(out);
  writer.tag(2, WireType::kLen);
  writer.varint(7);
  writer.bytes("testing", 7);
  writer.bytes(nullptr, 0);
  EXPECT_EQ(std::string(out, writer.position()), hex("12 07 74 65 73 74 69 6e 67"));
}

TEST(WireFormat, MakesTagsFromNumberAndWireType) {
  EXPECT_EQ(make_tag(1, WireType::kVarint), 0x08u);
  EXPECT_EQ(make_tag(1, WireType::kI64), 0x09u);
  EXPECT_EQ(make_tag(2, WireType::kLen), 0x12u);
  EXPECT_EQ(make_tag(3, WireType::kI32), 0x1du);
  EXPECT_EQ(make_tag(kMaxFieldNumber, WireType::kLen), 0xfffffffau);
}

TEST(WireFormat, NamesWireTypes) {
  EXPECT_EQ(wire_type_name(0), "VARINT");
  EXPECT_EQ(wire_type_name(1), "I64");
  EXPECT_EQ(wire_type_name(2), "LEN");
  EXPECT_EQ(wire_type_name(3), "SGROUP");
  EXPECT_EQ(wire_type_name(4), "EGROUP");
  EXPECT_EQ(wire_type_name(5), "I32");
  EXPECT_EQ(wire_type_name(6), "invalid");
  EXPECT_EQ(wire_type_name(7), "invalid");
}

TEST(WireReader, ReadsTagsOfEveryAcceptedWireType) {
  const std::string bytes = hex("08 11 12 1d f8 ff ff ff 0f");
  WireReader reader(bytes);
  const std::pair<uint32_t, WireType> expected[] = {{1, WireType::kVarint},
                                                    {2, WireType::kI64},
                                                    {2, WireType::kLen},
                                                    {3, WireType::kI32},
                                                    {kMaxFieldNumber, WireType::kVarint}};
  for (const auto& [number, type] : expected) {
    uint32_t got_number = 0;
    WireType got_type{};
    ASSERT_TRUE(reader.read_tag(got_number, got_type)) << reader.error();
    EXPECT_EQ(got_number, number);
    EXPECT_EQ(got_type, type);
  }
  EXPECT_TRUE(reader.at_end());
}

TEST(WireReader, ReadsLengthDelimitedValueAsViewIntoInput) {
  const std::string bytes = hex("07 74 65 73 74 69 6e 67 00");
  WireReader reader(bytes);
  std::string_view value;
  ASSERT_TRUE(reader.read_length_delimited(value));
  EXPECT_EQ(value, "testing");
  EXPECT_EQ(value.data(), bytes.data() + 1);
  ASSERT_TRUE(reader.read_length_delimited(value));
  EXPECT_EQ(value, "");
  EXPECT_TRUE(reader.at_end());
}

// Each case is one read on malformed bytes; the error names what and where.
enum class Read { kVarint, kTag, kFixed32, kFixed64, kLengthDelimited };
struct ErrorCase {
  std::string_view name;
  Read read;
  std::string_view bytes;
  std::string_view error;
};

constexpr ErrorCase kErrorCases[] = {
    {"empty varint", Read::kVarint, "", "truncated varint at offset 0"},
    {"truncated varint", Read::kVarint, "96", "truncated varint at offset 1"},
    {"truncated 9-byte varint", Read::kVarint, "ff ff ff ff ff ff ff ff ff",
     "truncated varint at offset 9"},
    {"11-byte varint", Read::kVarint, "ff ff ff ff ff ff ff ff ff ff 01",
     "varint longer than 10 bytes at offset 10"},
    {"truncated tag", Read::kTag, "80", "truncated varint at offset 1"},
    {"field number 0 (VARINT)", Read::kTag, "00", "field number 0 at offset 1"},
    {"field number 0 (LEN)", Read::kTag, "02", "field number 0 at offset 1"},
    {"wire type 3", Read::kTag, "0b",
     "field 1 has wire type 3 (SGROUP), which meshrpc does not accept at offset 1"},
    {"wire type 4", Read::kTag, "0c",
     "field 1 has wire type 4 (EGROUP), which meshrpc does not accept at offset 1"},
    {"wire type 6", Read::kTag, "16",
     "field 2 has wire type 6 (invalid), which meshrpc does not accept at offset 1"},
    {"wire type 7", Read::kTag, "ff ff ff ff 0f",
     "field 536870911 has wire type 7 (invalid), which meshrpc does not accept at offset 5"},
    {"tag above 32 bits", Read::kTag, "80 80 80 80 10", "tag 4294967296 above 32 bits at offset 5"},
    {"truncated fixed32", Read::kFixed32, "01 02 03", "truncated 4-byte value at offset 0"},
    {"truncated fixed64", Read::kFixed64, "01 02 03 04 05 06 07",
     "truncated 8-byte value at offset 0"},
    {"length past the end", Read::kLengthDelimited, "05 61 62 63",
     "length 5 runs past the end (3 bytes left) at offset 1"},
    {"huge length", Read::kLengthDelimited, "ff ff ff ff ff ff ff ff ff 01",
     "length 18446744073709551615 runs past the end (0 bytes left) at offset 10"},
    {"truncated length", Read::kLengthDelimited, "85", "truncated varint at offset 1"},
};

bool read_once(WireReader& reader, Read read) {
  uint64_t value64 = 0;
  uint32_t value32 = 0;
  WireType type{};
  std::string_view view;
  switch (read) {
    case Read::kVarint:
      return reader.read_varint(value64);
    case Read::kTag:
      return reader.read_tag(value32, type);
    case Read::kFixed32:
      return reader.read_fixed32(value32);
    case Read::kFixed64:
      return reader.read_fixed64(value64);
    case Read::kLengthDelimited:
      return reader.read_length_delimited(view);
  }
  return false;
}

TEST(WireReader, RejectsMalformedInputWithErrorNamingWhatAndWhere) {
  for (const ErrorCase& c : kErrorCases) {
    SCOPED_TRACE(c.name);
    const std::string bytes = hex(c.bytes);
    WireReader reader(bytes);
    EXPECT_FALSE(read_once(reader, c.read));
    EXPECT_EQ(reader.error(), c.error);
  }
}

TEST(WireReader, StaysFailedAfterAnError) {
  const std::string bytes = hex("06 61 62 63 08 01");
  WireReader reader(bytes);
  std::string_view value;
  ASSERT_FALSE(reader.read_length_delimited(value));
  EXPECT_TRUE(reader.at_end());
  EXPECT_EQ(reader.remaining(), 0u);
  uint64_t number = 0;
  EXPECT_FALSE(reader.read_varint(number));
  EXPECT_THAT(reader.error(), HasSubstr("truncated varint"));
}

TEST(WireReader, SkipsValueOfEveryWireType) {
  struct Case {
    WireType type;
    std::string_view value;
  };
  const Case cases[] = {
      {WireType::kVarint, "96 01"},
      {WireType::kVarint, "ff ff ff ff ff ff ff ff ff 01"},
      {WireType::kI64, "01 02 03 04 05 06 07 08"},
      {WireType::kLen, "03 61 62 63"},
      {WireType::kLen, "00"},
      {WireType::kI32, "01 02 03 04"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    const std::string bytes = hex(c.value) + "\x2a";  // the skipped value, then one more byte
    WireReader reader(bytes);
    ASSERT_TRUE(reader.skip(c.type)) << reader.error();
    EXPECT_EQ(reader.remaining(), 1u);
    uint64_t next = 0;
    ASSERT_TRUE(reader.read_varint(next));
    EXPECT_EQ(next, 0x2au);
  }
}

TEST(WireReader, SkipFailsOnTruncatedValueOfEveryWireType) {
  struct Case {
    WireType type;
    std::string_view value;
    std::string_view error;
  };
  const Case cases[] = {
      {WireType::kVarint, "96", "truncated varint at offset 1"},
      {WireType::kI64, "01 02 03 04 05 06 07", "truncated 8-byte value at offset 0"},
      {WireType::kLen, "04 61 62 63", "length 4 runs past the end (3 bytes left) at offset 1"},
      {WireType::kI32, "01 02 03", "truncated 4-byte value at offset 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    const std::string bytes = hex(c.value);
    WireReader reader(bytes);
    EXPECT_FALSE(reader.skip(c.type));
    EXPECT_EQ(reader.error(), c.error);
  }
}

TEST(WireReader, ReadsBackRandomVarintsWritten) {
  std::vector<uint64_t> values;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 1000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    values.push_back(x >> (x % 64));  // all sizes from 1 to 10 bytes
  }
  std::string bytes;
  for (uint64_t value : values) bytes += varint_bytes(value);
  WireReader reader(bytes);
  for (uint64_t expected : values) {
    uint64_t value = 0;
    ASSERT_TRUE(reader.read_varint(value)) << reader.error();
    ASSERT_EQ(value, expected);
  }
  EXPECT_TRUE(reader.at_end());
}

}  // namespace
}  // namespace meshrpc::codec
