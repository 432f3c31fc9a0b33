#include <gmock/gmock.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codec_test.pb.h"
#include "legacy.pb.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/protobuf.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::meshrpc::test::Inner;
using ::meshrpc::test::LegacyRecord;
using ::meshrpc::test::Node;
using ::meshrpc::test::Record;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

Record full_record() {
  Record record;
  record.set_count(-7);
  record.set_name("chunk-0001");
  record.set_payload(std::string("\x00\xff\x10", 3));
  record.set_score(2.5);
  record.set_ratio(-0.25f);
  record.set_checksum(0xdeadbeef);
  record.set_delta(-300);
  record.mutable_inner()->set_id(1ll << 40);
  record.mutable_inner()->set_note("naïve");
  record.add_samples(1);
  record.add_samples(-1);
  record.add_children()->set_id(3);
  (*record.mutable_by_name())["a"].set_note("first");
  record.set_version(0);  // set, so present although zero
  record.set_kind(test::KIND_DIRECTORY);
  return record;
}

TEST(ProtobufCodec, RoundTripsEveryFieldKind) {
  const Record record = full_record();
  Result<Buffer> encoded = encode(record);
  ASSERT_THAT(encoded, IsOk());
  EXPECT_EQ(encoded->to_string(), record.SerializeAsString());

  Result<Record> decoded = decode<Record>(*encoded);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_TRUE(MessageDifferencer::Equals(*decoded, record)) << decoded->DebugString();
  EXPECT_TRUE(decoded->has_version());
}

TEST(ProtobufCodec, DefaultMessageEncodesToNothing) {
  Buffer out;
  ASSERT_THAT(Codec<Record>::encode(Record(), out), IsOk());
  EXPECT_TRUE(out.empty());

  Result<Record> decoded = decode<Record>(std::string_view());
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->ByteSizeLong(), 0u);
}

TEST(ProtobufCodec, EncodeAppendsAfterExistingBytes) {
  Record record;
  record.set_count(1);
  Buffer out = Buffer::copy_of("head");
  ASSERT_THAT(Codec<Record>::encode(record, out), IsOk());
  EXPECT_EQ(out.to_string(), "head" + record.SerializeAsString());
}

TEST(ProtobufCodec, DecodeReplacesWhatTheMessageHeld) {
  Record record;
  record.set_name("old");
  record.add_samples(9);
  Record update;
  update.set_count(2);
  ASSERT_THAT(Codec<Record>::decode(update.SerializeAsString(), record), IsOk());
  EXPECT_TRUE(MessageDifferencer::Equals(record, update)) << record.DebugString();
}

// Every case is bytes protobuf's own parser rejects; the codec names the field.
struct ParseFailureCase {
  std::string name;
  std::string bytes;
  std::string message;
};

std::vector<ParseFailureCase> parse_failure_cases() {
  using namespace std::string_literals;
  return {
      {"TruncatedTag", "\x80"s, "meshrpc.test.Record: truncated varint at offset 1"},
      {"FieldNumberZero", "\x00"s, "meshrpc.test.Record: field number 0 at offset 1"},
      {"TruncatedVarint", "\x08\x80"s,
       "meshrpc.test.Record.count (field 1): truncated varint at offset 2"},
      {"VarintOverTenBytes", "\x08" + std::string(10, '\xff') + "\x01",
       "meshrpc.test.Record.count (field 1): varint longer than 10 bytes at offset 11"},
      {"TruncatedFixed64", "\x21\x00\x00"s,
       "meshrpc.test.Record.score (field 4): truncated 8-byte value at offset 1"},
      {"TruncatedFixed32", "\x35\x01"s,
       "meshrpc.test.Record.checksum (field 6): truncated 4-byte value at offset 1"},
      {"LengthPastEnd",
       "\x12\x05"
       "ab"s,
       "meshrpc.test.Record.name (field 2): length 5 runs past the end (2 bytes left) at "
       "offset 2"},
      {"InvalidUtf8InString", "\x12\x02\xc3\x28"s,
       "meshrpc.test.Record.name (field 2): invalid UTF-8 at byte 0 of a 2-byte string"},
      {"SurrogateInString",
       "\x12\x04"
       "a\xed\xa0\x80"s,
       "meshrpc.test.Record.name (field 2): invalid UTF-8 at byte 1 of a 4-byte string"},
      {"TruncatedPackedElement", "\x4a\x02\x01\x80"s,
       "meshrpc.test.Record.samples (field 9): packed element: truncated varint at offset 2"},
      {"NestedLengthPastEnd", "\x42\x05\x08\x01"s,
       "meshrpc.test.Record.inner (field 8): length 5 runs past the end (2 bytes left) at "
       "offset 2"},
      {"NestedInvalidUtf8", "\x42\x04\x12\x02\xff\xfe"s,
       "meshrpc.test.Record.inner (field 8): meshrpc.test.Inner.note (field 2): invalid UTF-8 "
       "at byte 0 of a 2-byte string"},
      {"RepeatedMessageElement", "\x52\x02\x08\x80"s,
       "meshrpc.test.Record.children (field 10): meshrpc.test.Inner.id (field 1): truncated "
       "varint at offset 2"},
      {"MapValue", "\x5a\x07\x0a\x01k\x12\x02\x08\x80"s,
       "meshrpc.test.Record.by_name (field 11): meshrpc.test.Record.ByNameEntry.value (field "
       "2): meshrpc.test.Inner.id (field 1): truncated varint at offset 2"},
      {"InvalidUtf8InMapKey", "\x5a\x03\x0a\x01\xff"s,
       "meshrpc.test.Record.by_name (field 11): meshrpc.test.Record.ByNameEntry.key (field 1): "
       "invalid UTF-8 at byte 0 of a 1-byte string"},
      {"UnknownFieldTruncated", "\x78\x80"s,
       "meshrpc.test.Record unknown field 15: truncated varint at offset 2"},
      {"KnownFieldOtherWireTypeTruncated", "\x10\x80"s,
       "meshrpc.test.Record.name (field 2): truncated varint at offset 2"},
      {"FailureAfterOtherWireTypeWins", "\x15\x00\x00\x00\x00\x08\x80"s,
       "meshrpc.test.Record.count (field 1): truncated varint at offset 7"},
  };
}

class ProtobufParseFailure : public ::testing::TestWithParam<ParseFailureCase> {};

TEST_P(ProtobufParseFailure, NamesTheField) {
  const ParseFailureCase& c = GetParam();
  const google::protobuf::LogSilencer quiet;  // protobuf logs each invalid UTF-8 string
  Record record;
  EXPECT_FALSE(record.ParseFromString(c.bytes)) << "protobuf accepts the case";
  EXPECT_THAT(Codec<Record>::decode(c.bytes, record),
              StatusIs(StatusCode::kInvalidArgument, c.message));
}

INSTANTIATE_TEST_SUITE_P(Cases, ProtobufParseFailure, ::testing::ValuesIn(parse_failure_cases()),
                         [](const auto& info) { return info.param.name; });

// A Node holding `nested` more, each the child of the one before.
std::string nested_nodes(int nested) {
  Node root;
  Node* node = &root;
  for (int i = 0; i < nested; ++i) node = node->mutable_child();
  node->set_name("leaf");
  return root.SerializeAsString();
}

TEST(ProtobufCodec, DecodesNestingUpToProtobufsLimit) {
  Result<Node> decoded = decode<Node>(std::string_view(nested_nodes(kMaxNestingDepth)));
  EXPECT_THAT(decoded, IsOk());
}

TEST(ProtobufCodec, NestingPastProtobufsLimitNamesTheLimit) {
  const std::string bytes = nested_nodes(kMaxNestingDepth + 1);
  Node node;
  EXPECT_FALSE(node.ParseFromString(bytes));
  EXPECT_THAT(Codec<Node>::decode(bytes, node),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(StartsWith("meshrpc.test.Node.child (field 2): "),
                             HasSubstr("nesting deeper than kMaxNestingDepth 100"))));
}

TEST(ProtobufCodec, KeepsKnownFieldWithOtherWireTypeAsUnknownLikeProtobuf) {
  const std::string bytes("\x15\x00\x00\x00\x00", 5);  // name (field 2) as I32
  Result<Record> decoded = decode<Record>(std::string_view(bytes));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->name(), "");
  EXPECT_EQ(decoded->SerializeAsString(), bytes);  // kept as an unknown field
}

TEST(ProtobufCodec, DescribesOtherWireTypeWhenNothingElseIsWrong) {
  EXPECT_THAT(protobuf::describe_parse_failure(*Record::descriptor(),
                                               std::string("\x42\x05\x15\x00\x00\x00\x00", 7)),
              StatusIs(StatusCode::kInvalidArgument,
                       "meshrpc.test.Record.inner (field 8): meshrpc.test.Inner.note (field 2): "
                       "wire type I32, expected LEN"));
}

TEST(ProtobufCodec, DescribesWellFormedBytesAsRejectedByProtobuf) {
  EXPECT_THAT(
      protobuf::describe_parse_failure(*Record::descriptor(), full_record().SerializeAsString()),
      StatusIs(StatusCode::kInvalidArgument, "meshrpc.test.Record: protobuf rejected the message"));
}

TEST(ProtobufCodec, MissingRequiredFieldsAreNamed) {
  LegacyRecord partial;
  partial.set_id(1);
  LegacyRecord decoded;
  EXPECT_THAT(Codec<LegacyRecord>::decode(partial.SerializePartialAsString(), decoded),
              StatusIs(StatusCode::kInvalidArgument,
                       "meshrpc.test.LegacyRecord: missing required fields name"));
}

TEST(ProtobufCodec, Proto2StringsAreNotCheckedForUtf8) {
  LegacyRecord record;
  record.set_id(1);
  record.set_name("\xff\xfe");
  Result<LegacyRecord> decoded = decode<LegacyRecord>(std::string_view(record.SerializeAsString()));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->name(), "\xff\xfe");
}

TEST(ProtobufCodec, ToJsonUsesProtoFieldNamesAndOmitsDefaults) {
  Record record;
  record.set_count(3);
  record.mutable_inner()->set_id(1ll << 40);
  record.set_kind(test::KIND_FILE);
  record.set_version(0);
  EXPECT_THAT(
      Codec<Record>::to_json(record),
      ::meshrpc::testing::IsOkAndHolds(
          R"({"count":3,"inner":{"id":"1099511627776"},"version":"0","kind":"KIND_FILE"})"));
}

TEST(ProtobufCodec, JsonRoundTripsEveryFieldKind) {
  const Record record = full_record();
  Result<std::string> json = Codec<Record>::to_json(record);
  ASSERT_THAT(json, IsOk());
  Record parsed;
  ASSERT_THAT(Codec<Record>::from_json(*json, parsed), IsOk());
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, record)) << *json;
}

TEST(ProtobufCodec, FromJsonRejectsUnknownKeysNamingThem) {
  Record record;
  EXPECT_THAT(Codec<Record>::from_json(R"({"count": 1, "cuont": 2})", record),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(StartsWith("meshrpc.test.Record from JSON: "), HasSubstr("cuont"))));
}

TEST(ProtobufCodec, FromJsonRejectsMalformedJson) {
  Record record;
  EXPECT_THAT(
      Codec<Record>::from_json(R"({"count": )", record),
      StatusIs(StatusCode::kInvalidArgument, StartsWith("meshrpc.test.Record from JSON: ")));
}

TEST(ProtobufCodec, FromJsonRejectsWrongValueType) {
  Record record;
  EXPECT_THAT(
      Codec<Record>::from_json(R"({"count": "many"})", record),
      StatusIs(StatusCode::kInvalidArgument, StartsWith("meshrpc.test.Record from JSON: ")));
}

TEST(ProtobufSchema, DescribesEveryFieldWithItsProtoType) {
  const MessageSchema& schema = Codec<Record>::schema();
  EXPECT_EQ(schema.to_text(), R"(message meshrpc.test.Record {
  int32 count = 1;
  string name = 2;
  bytes payload = 3;
  double score = 4;
  float ratio = 5;
  fixed32 checksum = 6;
  sint64 delta = 7;
  meshrpc.test.Inner inner = 8;
  repeated int32 samples = 9;
  repeated meshrpc.test.Inner children = 10;
  map<string, meshrpc.test.Inner> by_name = 11;
  optional uint64 version = 12;
  enum kind = 13;
}

message meshrpc.test.Inner {
  int64 id = 1;
  string note = 2;
}
)");
}

TEST(ProtobufSchema, NestedMessagesShareOneSchema) {
  const MessageSchema schema = protobuf::schema_of(*Record::descriptor());
  const auto& inner = schema.fields[7].message;
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->name, "meshrpc.test.Inner");
  EXPECT_EQ(schema.fields[9].message, inner);   // children
  EXPECT_EQ(schema.fields[10].message, inner);  // by_name's values
  EXPECT_EQ(schema.fields[10].key_type, "string");
  EXPECT_EQ(schema.fields[0].message, nullptr);
}

TEST(ProtobufSchema, MessageContainingItselfEndsTheLoopWithTheName) {
  const MessageSchema schema = protobuf::schema_of(*Node::descriptor());
  EXPECT_EQ(schema.fields[1].message, nullptr);
  EXPECT_EQ(schema.to_text(), R"(message meshrpc.test.Node {
  string name = 1;
  meshrpc.test.Node child = 2;
}
)");
}

TEST(ProtobufSchema, Proto2OptionalKeepsPresenceAndRequiredIsSingular) {
  EXPECT_EQ(protobuf::schema_of(*LegacyRecord::descriptor()).to_text(),
            R"(message meshrpc.test.LegacyRecord {
  int32 id = 1;
  string name = 2;
  optional string note = 3;
}
)");
}

}  // namespace
}  // namespace meshrpc::codec
