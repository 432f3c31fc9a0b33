#include "meshrpc/codec/json_nesting.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <gtest/gtest.h>

#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/protobuf.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec {
namespace {

using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(JsonNesting, FindsTheFirstContainerPastTheLimit) {
  EXPECT_EQ(find_excess_json_nesting(nested_arrays(3), 3), std::nullopt);
  EXPECT_EQ(find_excess_json_nesting(nested_arrays(4), 3), 3u);
  EXPECT_EQ(find_excess_json_nesting(R"({"a":[{"b":1}]})", 3), std::nullopt);
  EXPECT_EQ(find_excess_json_nesting(R"({"a":[{"b":[1]}]})", 3), 11u);
}

TEST(JsonNesting, SiblingsDoNotAddUp) {
  EXPECT_EQ(find_excess_json_nesting("[[1],[2],[3],[[4]]]", 3), std::nullopt);
}

TEST(JsonNesting, BracketsInsideStringsDoNotCount) {
  EXPECT_EQ(find_excess_json_nesting(R"(["[[[[", "\"[[[[\\"])", 1), std::nullopt);
  EXPECT_EQ(find_excess_json_nesting(R"(["\"", [1]])", 1), 7u);
}

TEST(JsonNesting, MalformedTextIsMeasuredNotJudged) {
  EXPECT_EQ(find_excess_json_nesting("]]]][", 1), std::nullopt);
  EXPECT_EQ(find_excess_json_nesting(std::string(100'000, '['), 100), 100u);
  EXPECT_EQ(find_excess_json_nesting("", 0), std::nullopt);
}

// protobuf's parser would spend seconds on this (quadratic in the nesting of Value lists)
// before refusing it; from_json refuses it up front, naming the limit.
TEST(JsonNesting, ProtobufFromJsonRefusesDeepNestingBeforeParsing) {
  google::protobuf::Value value;
  EXPECT_THAT(protobuf::from_json(nested_arrays(10'000), value),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(protobuf::from_json(nested_arrays(10'000), value).message()),
              HasSubstr("nested more than 100 objects and arrays deep (at byte 100)"));
  EXPECT_TRUE(protobuf::from_json(nested_arrays(20), value).ok());
}

}  // namespace
}  // namespace meshrpc::codec
