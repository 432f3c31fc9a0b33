#include "meshrpc/codec/schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_schema.h"

// Test types: MESHRPC_STRUCT goes at namespace scope in the type's namespace.
namespace meshrpc::codec::schema_test {

enum class Kind : uint8_t { kFile = 1, kDirectory = 2 };

struct Leaf {
  double weight = 0;
};
MESHRPC_STRUCT(Leaf, (weight, 1));

struct Inner {
  std::string name;
  Leaf leaf;
};
MESHRPC_STRUCT(Inner, (name, 1), (leaf, 2));

// One member of every kind, numbered out of declaration order.
struct Record {
  std::string path;
  int64_t chunk_index = 0;
  std::optional<int32_t> x;
  std::vector<std::string> names;
  std::map<std::string, Inner> by_name;
  Kind kind = Kind::kFile;
  std::vector<std::byte> blob;
  std::optional<std::vector<std::byte>> maybe_blob;
  std::vector<std::vector<std::byte>> blobs;
  uint16_t port = 0;
  int8_t tiny = 0;
  uint64_t size = 0;
  bool flag = false;
  float ratio = 0;
  std::map<uint32_t, Leaf> by_id;
  Inner inner;
  std::vector<Inner> inners;
  std::map<int64_t, Kind> kinds;
};
MESHRPC_STRUCT(Record, (path, 1), (chunk_index, 2), (x, 3), (names, 4), (by_name, 5), (kind, 6),
               (blob, 7), (maybe_blob, 8), (blobs, 9), (port, 10), (tiny, 11), (size, 12),
               (flag, 13), (ratio, 14), (by_id, 15), (inner, 16), (inners, 17), (kinds, 20));

struct Catalog {
  std::map<int64_t, Inner> by_id;
  std::vector<Leaf> leaves;
  std::optional<bool> sealed;
};
MESHRPC_STRUCT(Catalog, (by_id, 1), (leaves, 2), (sealed, 3));

// Contains itself.
struct Node {
  std::string name;
  std::vector<Node> children;
};
MESHRPC_STRUCT(Node, (name, 1), (children, 2));

}  // namespace meshrpc::codec::schema_test

namespace meshrpc::codec::schema_test {
namespace {

TEST(StructSchema, ListsFieldsWithProtobufTypeNames) {
  const MessageSchema& schema = struct_schema<Record>();
  EXPECT_EQ(schema.name, "Record");
  ASSERT_EQ(schema.fields.size(), 18u);
  const FieldSchema& by_name = schema.fields[4];
  EXPECT_EQ(by_name.name, "by_name");
  EXPECT_EQ(by_name.number, 5u);
  EXPECT_EQ(by_name.label, FieldSchema::Label::kMap);
  EXPECT_EQ(by_name.key_type, "string");
  EXPECT_EQ(by_name.type, "Inner");
  const FieldSchema& kinds = schema.fields[17];
  EXPECT_EQ(kinds.number, 20u);
  EXPECT_EQ(kinds.key_type, "int64");
  EXPECT_EQ(kinds.type, "enum");
  EXPECT_EQ(kinds.message, nullptr);
}

TEST(StructSchema, NestedStructsShareTheirOwnSchema) {
  const MessageSchema& schema = struct_schema<Record>();
  EXPECT_EQ(schema.fields[4].message.get(), &struct_schema<Inner>());   // map value
  EXPECT_EQ(schema.fields[15].message.get(), &struct_schema<Inner>());  // singular
  EXPECT_EQ(schema.fields[16].message.get(), &struct_schema<Inner>());  // repeated
  EXPECT_EQ(schema.fields[14].message.get(), &struct_schema<Leaf>());
  EXPECT_EQ(&struct_schema<Record>(), &schema);  // built once
  EXPECT_EQ(&Codec<Record>::schema(), &schema);
}

TEST(StructSchema, PrintsProtoLikeTextWithEachNestedMessageOnce) {
  EXPECT_EQ(struct_schema<Record>().to_text(),
            "message Record {\n"
            "  string path = 1;\n"
            "  int64 chunk_index = 2;\n"
            "  optional int32 x = 3;\n"
            "  repeated string names = 4;\n"
            "  map<string, Inner> by_name = 5;\n"
            "  enum kind = 6;\n"
            "  bytes blob = 7;\n"
            "  optional bytes maybe_blob = 8;\n"
            "  repeated bytes blobs = 9;\n"
            "  uint32 port = 10;\n"
            "  int32 tiny = 11;\n"
            "  uint64 size = 12;\n"
            "  bool flag = 13;\n"
            "  float ratio = 14;\n"
            "  map<uint32, Leaf> by_id = 15;\n"
            "  Inner inner = 16;\n"
            "  repeated Inner inners = 17;\n"
            "  map<int64, enum> kinds = 20;\n"
            "}\n"
            "\n"
            "message Inner {\n"
            "  string name = 1;\n"
            "  Leaf leaf = 2;\n"
            "}\n"
            "\n"
            "message Leaf {\n"
            "  double weight = 1;\n"
            "}\n");
}

TEST(StructSchema, PrintsJsonWithNestedMessagesByName) {
  EXPECT_EQ(boost::json::serialize(struct_schema<Catalog>().to_json()),
            R"({"name":"Catalog","fields":[)"
            R"({"name":"by_id","number":1,"label":"map","type":"Inner","key_type":"int64",)"
            R"("message":"Inner"},)"
            R"({"name":"leaves","number":2,"label":"repeated","type":"Leaf","message":"Leaf"},)"
            R"({"name":"sealed","number":3,"label":"optional","type":"bool"}]})");
}

TEST(StructSchema, RecursiveStructGetsItsNameWithoutALoop) {
  const MessageSchema& schema = struct_schema<Node>();
  ASSERT_EQ(schema.fields.size(), 2u);
  const FieldSchema& children = schema.fields[1];
  EXPECT_EQ(children.label, FieldSchema::Label::kRepeated);
  EXPECT_EQ(children.type, "Node");
  EXPECT_EQ(children.message, nullptr);  // the field that closes the loop
  EXPECT_EQ(schema.to_text(),
            "message Node {\n"
            "  string name = 1;\n"
            "  repeated Node children = 2;\n"
            "}\n");
  EXPECT_EQ(
      boost::json::serialize(schema.to_json()),
      R"({"name":"Node","fields":[)"
      R"({"name":"name","number":1,"label":"singular","type":"string"},)"
      R"({"name":"children","number":2,"label":"repeated","type":"Node","message":"Node"}]})");
}

TEST(MessageSchema, TextAndJsonOfHandBuiltSchemasWithCycles) {
  // Protobuf schemas name messages in full and use the other .proto scalar types.
  auto a = std::make_shared<MessageSchema>();
  auto b = std::make_shared<MessageSchema>();
  a->name = "pkg.A";
  b->name = "pkg.B";
  a->fields.push_back({"b", 1, FieldSchema::Label::kSingular, "pkg.B", "", b});
  a->fields.push_back({"d", 2, FieldSchema::Label::kRepeated, "sint64", "", nullptr});
  b->fields.push_back({"a", 1, FieldSchema::Label::kOptional, "pkg.A", "", nullptr});
  EXPECT_EQ(a->to_text(),
            "message pkg.A {\n"
            "  pkg.B b = 1;\n"
            "  repeated sint64 d = 2;\n"
            "}\n"
            "\n"
            "message pkg.B {\n"
            "  optional pkg.A a = 1;\n"
            "}\n");
  EXPECT_EQ(boost::json::serialize(b->to_json()),
            R"({"name":"pkg.B","fields":[)"
            R"({"name":"a","number":1,"label":"optional","type":"pkg.A","message":"pkg.A"}]})");
  EXPECT_EQ(boost::json::serialize(a->to_json()),
            R"({"name":"pkg.A","fields":[)"
            R"({"name":"b","number":1,"label":"singular","type":"pkg.B","message":"pkg.B"},)"
            R"({"name":"d","number":2,"label":"repeated","type":"sint64"}]})");
}

TEST(MessageSchema, LabelNames) {
  const std::pair<FieldSchema::Label, std::string_view> cases[] = {
      {FieldSchema::Label::kSingular, "singular"},
      {FieldSchema::Label::kOptional, "optional"},
      {FieldSchema::Label::kRepeated, "repeated"},
      {FieldSchema::Label::kMap, "map"},
  };
  for (const auto& [label, name] : cases) EXPECT_EQ(label_name(label), name);
}

}  // namespace
}  // namespace meshrpc::codec::schema_test
