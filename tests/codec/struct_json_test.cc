#include "meshrpc/codec/struct_json.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "byte_strings.h"
#include "interop.pb.h"
#include "interop_types.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/struct.h"

// Test types besides the twins of tests/protos/interop.proto (interop_types.h).
// MESHRPC_STRUCT goes at namespace scope in the type's namespace.
namespace meshrpc::codec::json_test {

// Narrow integers and the other map key types, for range checks.
struct Narrow {
  int8_t i8 = 0;
  int16_t i16 = 0;
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  std::unordered_map<uint32_t, std::string> by_id;
  std::map<int8_t, bool> by_small;
  bool operator==(const Narrow&) const = default;
};
MESHRPC_STRUCT(Narrow, (i8, 1), (i16, 2), (u8, 3), (u16, 4), (by_id, 5), (by_small, 6));

struct GetChunkHandleArgs {
  std::string path;
  int64_t chunk_index = 0;
  bool operator==(const GetChunkHandleArgs&) const = default;
};
MESHRPC_STRUCT(GetChunkHandleArgs, (path, 1), (chunk_index, 2));

struct Inner {
  std::string name;
  int32_t count = 0;
  bool operator==(const Inner&) const = default;
};
MESHRPC_STRUCT(Inner, (name, 1), (count, 2));

struct Outer {
  Inner inner;
  std::vector<Inner> items;
  std::map<std::string, Inner> by_name;
  bool operator==(const Outer&) const = default;
};
MESHRPC_STRUCT(Outer, (inner, 1), (items, 2), (by_name, 3));

// Contains itself: nesting as deep as the data.
struct Node {
  std::string name;
  std::vector<Node> children;
  bool operator==(const Node&) const = default;
};
MESHRPC_STRUCT(Node, (name, 1), (children, 2));

}  // namespace meshrpc::codec::json_test

namespace meshrpc::codec::json_test {
namespace {

using ::meshrpc::codec::testing::blob_of;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using namespace ::meshrpc::codec::interop_types;  // NOLINT(google-build-using-namespace): test
                                                  // types
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

static_assert(Describable<Scalars>, "structs have Codec<T>::to_json, from_json and schema");

Scalars full_scalars() {
  Scalars s;
  s.flag = true;
  s.i32 = -7;
  s.i64 = -(int64_t{1} << 40);
  s.u32 = 4000000000u;
  s.u64 = UINT64_MAX;
  s.color = Color::kNegative;
  s.f32 = 0.1f;
  s.f64 = -2.5e-300;
  s.text = "naïve \"quoted\"\n";
  s.blob = blob_of(std::string("\x00\xff\x10", 3));
  s.point = {3, -4, "p"};
  return s;
}

Optionals defaults_present() {
  Optionals o;
  o.flag = false;
  o.i32 = 0;
  o.i64 = 0;
  o.u32 = 0;
  o.u64 = 0;
  o.color = Color::kUnspecified;
  o.f32 = 0;
  o.f64 = 0;
  o.text = "";
  o.blob.emplace();
  o.point.emplace();
  return o;
}

Repeated full_repeated() {
  Repeated r;
  r.flags = {true, false};
  r.i32s = {1, -1, INT32_MIN};
  r.i64s = {INT64_MIN, INT64_MAX};
  r.u32s = {0, UINT32_MAX};
  r.u64s = {UINT64_MAX};
  r.colors = {Color::kRed, Color::kUnspecified};
  r.f32s = {1.5f, -0.0f};
  r.f64s = {0.1, 1e300};
  r.texts = {"", "a"};
  r.blobs = {{}, blob_of("f")};
  r.points = {{}, {1, 2, "two"}};
  return r;
}

Maps full_maps() {
  Maps m;
  m.counts = {{"a", 1}, {"", 0}};
  m.names = {{-5, "minus five"}, {INT64_MAX, "max"}};
  m.points = {{"origin", {}}, {"p", {1, 2, "x"}}};
  m.blobs = {{1, blob_of("fo")}, {2, {}}};
  m.weights = {{"w", 0.5}};
  return m;
}

template <DescribedStruct T>
T parse_or_die(std::string_view json) {
  T out{};
  const Status status = struct_from_json(json, out);
  EXPECT_THAT(status, IsOk()) << json;
  return out;
}

template <DescribedStruct T>
void expect_round_trip(const T& value) {
  const std::string json = struct_to_json(value);
  T parsed{};
  ASSERT_THAT(struct_from_json(json, parsed), IsOk()) << json;
  EXPECT_TRUE(parsed == value) << json << " read back as " << struct_to_json(parsed);
}

// ---- output ----

TEST(StructJson, PrintsGoldenJson) {
  EXPECT_EQ(struct_to_json(GetChunkHandleArgs{"/data/a", 7}),
            R"({"path":"/data/a","chunk_index":"7"})");
  EXPECT_EQ(struct_to_json(full_scalars()),
            R"({"flag":true,"i32":-7,"i64":"-1099511627776","u32":4000000000,)"
            R"("u64":"18446744073709551615","color":-1,"f32":0.1,"f64":-2.5e-300,)"
            R"("text":"naïve \"quoted\"\n","blob":"AP8Q","point":{"x":3,"y":"-4","label":"p"}})");
  EXPECT_EQ(struct_to_json(full_repeated()),
            R"({"flags":[true,false],"i32s":[1,-1,-2147483648],)"
            R"("i64s":["-9223372036854775808","9223372036854775807"],"u32s":[0,4294967295],)"
            R"("u64s":["18446744073709551615"],"colors":[1,0],"f32s":[1.5,-0],)"
            R"("f64s":[0.1,1e+300],"texts":["","a"],"blobs":["","Zg=="],)"
            R"("points":[{},{"x":1,"y":"2","label":"two"}]})");
  EXPECT_EQ(struct_to_json(full_maps()),
            R"({"counts":{"":0,"a":1},"names":{"-5":"minus five","9223372036854775807":"max"},)"
            R"("points":{"origin":{},"p":{"x":1,"y":"2","label":"x"}},)"
            R"("blobs":{"1":"Zm8=","2":""},"weights":{"w":0.5}})");
}

TEST(StructJson, OmitsMembersHoldingTheirDefault) {
  EXPECT_EQ(struct_to_json(Scalars{}), "{}");
  EXPECT_EQ(struct_to_json(Repeated{}), "{}");
  EXPECT_EQ(struct_to_json(Maps{}), "{}");
  EXPECT_EQ(struct_to_json(Optionals{}), "{}");
  Outer outer;
  outer.inner.count = 0;  // still default: the nested struct encodes to nothing
  EXPECT_EQ(struct_to_json(outer), "{}");
  outer.inner.count = 1;
  EXPECT_EQ(struct_to_json(outer), R"({"inner":{"count":1}})");
}

TEST(StructJson, PrintsSetOptionalsEvenAtTheirDefault) {
  EXPECT_EQ(struct_to_json(defaults_present()),
            R"({"flag":false,"i32":0,"i64":"0","u32":0,"u64":"0","color":0,"f32":0,"f64":0,)"
            R"("text":"","blob":"","point":{}})");
}

TEST(StructJson, WritesNegativeZeroButNotPositiveZero) {
  Scalars s;
  s.f64 = -0.0;
  EXPECT_EQ(struct_to_json(s), R"({"f64":-0})");
  const Scalars parsed = parse_or_die<Scalars>(R"({"f64":-0})");
  EXPECT_TRUE(std::signbit(parsed.f64));
}

TEST(StructJson, EscapesControlCharacters) {
  Scalars s;
  s.text = std::string("tab\t nul\0 bell\x07 back\\slash", 26);
  EXPECT_EQ(struct_to_json(s), R"({"text":"tab\t nul\u0000 bell\u0007 back\\slash"})");
  expect_round_trip(s);
}

// ---- round trips ----

TEST(StructJson, RoundTripsEveryMemberKind) {
  expect_round_trip(full_scalars());
  expect_round_trip(defaults_present());
  expect_round_trip(full_repeated());
  expect_round_trip(full_maps());
  Narrow narrow;
  narrow.i8 = INT8_MIN;
  narrow.i16 = INT16_MAX;
  narrow.u8 = UINT8_MAX;
  narrow.u16 = UINT16_MAX;
  narrow.by_id = {{0, "zero"}, {UINT32_MAX, "max"}};
  narrow.by_small = {{INT8_MIN, true}, {INT8_MAX, false}};
  expect_round_trip(narrow);
  Outer outer;
  outer.inner = {"in", 1};
  outer.items = {{}, {"b", -2}};
  outer.by_name = {{"k", {"v", 3}}};
  expect_round_trip(outer);
}

TEST(StructJson, RoundTripsDoublesAndFloatsExactly) {
  // Shortest-form text read back with correct rounding: every bit pattern survives.
  std::mt19937_64 rng(20240601);
  Repeated r;
  for (int i = 0; i < 5000; ++i) {
    const double d = std::bit_cast<double>(rng());
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isfinite(d)) r.f64s.push_back(d);
    if (std::isfinite(f)) r.f32s.push_back(f);
  }
  r.f64s.insert(r.f64s.end(), {5e-324, std::numeric_limits<double>::max(), 0.1, 1.0 / 3});
  r.f32s.insert(r.f32s.end(), {1e-45f, std::numeric_limits<float>::max(), 0.1f});
  expect_round_trip(r);
}

TEST(StructJson, PrintsFloatsInTheirOwnShortestForm) {
  Repeated r;
  r.f32s = {0.1f, 3.4028235e38f, 16777216.0f};
  EXPECT_EQ(struct_to_json(r), R"({"f32s":[0.1,3.4028235e+38,16777216]})");
}

TEST(StructJson, WritesNonFiniteNumbersAsStrings) {
  Repeated r;
  r.f64s = {std::nan(""), INFINITY, -INFINITY};
  r.f32s = {std::nanf(""), INFINITY, -INFINITY};
  EXPECT_EQ(struct_to_json(r), R"({"f32s":["NaN","Infinity","-Infinity"],)"
                               R"("f64s":["NaN","Infinity","-Infinity"]})");
  Repeated parsed;
  ASSERT_THAT(struct_from_json(struct_to_json(r), parsed), IsOk());
  ASSERT_EQ(parsed.f64s.size(), 3u);
  ASSERT_EQ(parsed.f32s.size(), 3u);
  EXPECT_TRUE(std::isnan(parsed.f64s[0]));
  EXPECT_EQ(parsed.f64s[1], INFINITY);
  EXPECT_EQ(parsed.f64s[2], -INFINITY);
  EXPECT_TRUE(std::isnan(parsed.f32s[0]));
  EXPECT_EQ(parsed.f32s[1], INFINITY);
  EXPECT_EQ(parsed.f32s[2], -INFINITY);
}

// ---- numbers on input ----

// Each accepted input, printed again: the value it was read as, in canonical form.
struct AcceptCase {
  std::string_view json;
  std::string_view printed;
};

TEST(StructJson, AcceptsIntegersAsNumbersOrDecimalStrings) {
  const AcceptCase cases[] = {
      {R"({"i32":5})", R"({"i32":5})"},
      {R"({"i32":"-5"})", R"({"i32":-5})"},
      {R"({"i32":1e2})", R"({"i32":100})"},
      {R"({"i32":7.0})", R"({"i32":7})"},
      {R"({"i32":-2147483648})", R"({"i32":-2147483648})"},
      {R"({"i32":"-0"})", "{}"},
      {R"({"u32":"-0"})", "{}"},
      {R"({"u32":4294967295})", R"({"u32":4294967295})"},
      {R"({"i64":-9223372036854775808})", R"({"i64":"-9223372036854775808"})"},
      {R"({"i64":"9223372036854775807"})", R"({"i64":"9223372036854775807"})"},
      {R"({"u64":18446744073709551615})", R"({"u64":"18446744073709551615"})"},
      {R"({"u64":"18446744073709551615"})", R"({"u64":"18446744073709551615"})"},
      {R"({"u64":"007"})", R"({"u64":"7"})"},
      {R"({"color":"2"})", R"({"color":2})"},
      {R"({"color":-1})", R"({"color":-1})"},
  };
  for (const AcceptCase& c : cases) {
    EXPECT_EQ(struct_to_json(parse_or_die<Scalars>(c.json)), c.printed) << c.json;
  }
}

TEST(StructJson, AcceptsFloatsAsNumbersOrStrings) {
  const AcceptCase cases[] = {
      {R"({"f64":1})", R"({"f64":1})"},
      {R"({"f64":"2.5"})", R"({"f64":2.5})"},
      {R"({"f64":"-1e-3"})", R"({"f64":-0.001})"},
      {R"({"f64":18446744073709551615})", R"({"f64":18446744073709551616})"},
      {R"({"f64":"NaN"})", R"({"f64":"NaN"})"},
      {R"({"f64":"-Infinity"})", R"({"f64":"-Infinity"})"},
      {R"({"f32":"Infinity"})", R"({"f32":"Infinity"})"},
      // Protobuf prints FLT_MAX so; as a double it is a little above FLT_MAX.
      {R"({"f32":3.4028235e+38})", R"({"f32":3.4028235e+38})"},
      {R"({"f32":-3.4028235e+38})", R"({"f32":-3.4028235e+38})"},
  };
  for (const AcceptCase& c : cases) {
    EXPECT_EQ(struct_to_json(parse_or_die<Scalars>(c.json)), c.printed) << c.json;
  }
}

// ---- errors ----

struct ErrorCase {
  std::string_view json;
  std::string_view message;  // a substring of the INVALID_ARGUMENT message
};

template <DescribedStruct T>
void expect_errors(std::span<const ErrorCase> cases) {
  for (const ErrorCase& c : cases) {
    T out{};
    EXPECT_THAT(struct_from_json(c.json, out),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(std::string(c.message))))
        << c.json;
  }
}

TEST(StructJson, RejectsMismatchedScalarsNamingTheFieldAndValue) {
  const ErrorCase cases[] = {
      {R"({"i32":"abc"})", R"(Scalars.i32: expected an integer, got string "abc")"},
      {R"({"i32":1.5})", "Scalars.i32: expected an integer, got number 1.5"},
      {R"({"i32":true})", "Scalars.i32: expected an integer, got true"},
      {R"({"i32":" 5"})", R"(Scalars.i32: expected an integer, got string " 5")"},
      {R"({"i32":"+5"})", R"(Scalars.i32: expected an integer, got string "+5")"},
      {R"({"i32":"1e2"})", R"(Scalars.i32: expected an integer, got string "1e2")"},
      {R"({"i32":[]})", "Scalars.i32: expected an integer, got an array"},
      {R"({"i32":2147483648})",
       "Scalars.i32: expected an integer in [-2147483648, 2147483647], got number 2147483648"},
      {R"({"i32":"-2147483649"})",
       R"(Scalars.i32: expected an integer in [-2147483648, 2147483647], got string "-2147483649")"},
      {R"({"u32":-1})", "Scalars.u32: expected an integer in [0, 4294967295], got number -1"},
      {R"({"u64":"18446744073709551616"})",
       "Scalars.u64: expected an integer in [0, 18446744073709551615]"},
      {R"({"u64":1e20})", "Scalars.u64: expected an integer in [0, 18446744073709551615]"},
      {R"({"i64":"-9223372036854775809"})",
       "Scalars.i64: expected an integer in [-9223372036854775808, 9223372036854775807]"},
      {R"({"i64":9223372036854775808})",
       "Scalars.i64: expected an integer in [-9223372036854775808, 9223372036854775807]"},
      {R"({"color":"red"})", R"(Scalars.color: expected an integer, got string "red")"},
      {R"({"color":2147483648})", "Scalars.color: expected an integer in [-2147483648"},
      {R"({"flag":"true"})", R"(Scalars.flag: expected true or false, got string "true")"},
      {R"({"flag":1})", "Scalars.flag: expected true or false, got number 1"},
      {R"({"f64":"abc"})", R"(Scalars.f64: expected a number, "NaN", "Infinity" or)"},
      {R"({"f64":"inf"})", R"(Scalars.f64: expected a number, "NaN", "Infinity" or)"},
      {R"({"f64":"nan"})", R"(Scalars.f64: expected a number, "NaN", "Infinity" or)"},
      {R"({"f64":1e999})", "Scalars.f64: expected a number in double's range"},
      {R"({"f64":{}})", "Scalars.f64: expected a number, got an object"},
      {R"({"f32":1e39})", "Scalars.f32: expected a number in float's range"},
      {R"({"f32":-3.5e38})", "Scalars.f32: expected a number in float's range"},
      {R"({"text":5})", "Scalars.text: expected a string, got number 5"},
      {R"({"blob":5})", "Scalars.blob: expected a base64 string, got number 5"},
      {R"({"point":"p"})", R"(Scalars.point: expected an object, got string "p")"},
      {R"({"point":{"y":"x"}})", R"(Scalars.point.y: expected an integer, got string "x")"},
  };
  expect_errors<Scalars>(cases);
}

TEST(StructJson, RejectsOutOfRangeNarrowIntegers) {
  const ErrorCase cases[] = {
      {R"({"i8":128})", "Narrow.i8: expected an integer in [-128, 127], got number 128"},
      {R"({"i8":-129})", "Narrow.i8: expected an integer in [-128, 127], got number -129"},
      {R"({"u8":256})", "Narrow.u8: expected an integer in [0, 255], got number 256"},
      {R"({"i16":"32768"})", R"(Narrow.i16: expected an integer in [-32768, 32767])"},
      {R"({"u16":-1})", "Narrow.u16: expected an integer in [0, 65535], got number -1"},
  };
  expect_errors<Narrow>(cases);
}

TEST(StructJson, RejectsErrorsInNestedValuesNamingTheirPath) {
  const ErrorCase cases[] = {
      {R"({"inner":{"name":5}})", "Outer.inner.name: expected a string, got number 5"},
      {R"({"inner":[]})", "Outer.inner: expected an object, got an array"},
      {R"({"inner":{"bogus":1}})", "Outer.inner: unknown field 'bogus'"},
      {R"({"items":{}})", "Outer.items: expected an array, got an object"},
      {R"({"items":[null]})", "Outer.items[0]: expected an object, got null"},
      {R"({"items":[{},{"count":"x"}]})",
       R"(Outer.items[1].count: expected an integer, got string "x")"},
      {R"({"by_name":[]})", "Outer.by_name: expected an object, got an array"},
      {R"({"by_name":{"k":null}})", R"(Outer.by_name["k"]: expected an object, got null)"},
      {R"({"by_name":{"k":{"count":true}}})",
       R"(Outer.by_name["k"].count: expected an integer, got true)"},
      {"[]", "Outer: expected an object, got an array"},
      {"5", "Outer: expected an object, got number 5"},
      {"null", "Outer: expected an object, got null"},
  };
  expect_errors<Outer>(cases);
}

TEST(StructJson, RejectsBadMapKeysNamingTheKey) {
  const ErrorCase cases[] = {
      {R"({"names":{"abc":"x"}})",
       R"(Maps.names: expected a map key that is an integer in [-9223372036854775808, )"
       R"(9223372036854775807], got "abc")"},
      {R"({"names":{"1.0":"x"}})", R"(Maps.names: expected a map key that is an integer)"},
      {R"({"names":{"9223372036854775808":"x"}})",
       R"(Maps.names: expected a map key that is an integer)"},
      {R"({"counts":{"a":"b"}})", R"(Maps.counts["a"]: expected an integer, got string "b")"},
      {R"({"points":{"p":{"x":{}}}})", R"(Maps.points["p"].x: expected an integer, got an object)"},
      {R"({"blobs":{"1":"!"}})", R"(Maps.blobs["1"]: expected a base64 string, got string "!")"},
  };
  expect_errors<Maps>(cases);
  const ErrorCase narrow_cases[] = {
      {R"({"by_id":{"-1":"x"}})", R"(Narrow.by_id: expected a map key that is an integer in [0, )"
                                  R"(4294967295], got "-1")"},
      {R"({"by_small":{"200":true}})",
       R"(Narrow.by_small: expected a map key that is an integer in [-128, 127], got "200")"},
  };
  expect_errors<Narrow>(narrow_cases);
}

TEST(StructJson, QuotesOnlyTheStartOfLongValuesInErrors) {
  const std::string long_text(1000, 'x');
  Scalars out;
  const Status status = struct_from_json(R"({"i32":")" + long_text + R"("})", out);
  EXPECT_THAT(status, StatusIs(StatusCode::kInvalidArgument,
                               AllOf(HasSubstr(std::string(64, 'x') + "...\""),
                                     Not(HasSubstr(std::string(65, 'x'))))));
}

TEST(StructJson, RejectsMalformedJsonWithTheParsersReason) {
  const ErrorCase cases[] = {
      {"", "GetChunkHandleArgs: invalid JSON at offset 0"},
      {"{", "GetChunkHandleArgs: invalid JSON at offset 1"},
      {R"({"path":})", "GetChunkHandleArgs: invalid JSON at offset 8: syntax error"},
      {R"({"path":"a",})", "GetChunkHandleArgs: invalid JSON"},
      {R"({} {})", "GetChunkHandleArgs: invalid JSON at offset 3: extra data"},
      {"{\"path\":\"\xff\"}", "GetChunkHandleArgs: invalid JSON"},  // not UTF-8
      {"{/* comment */}", "GetChunkHandleArgs: invalid JSON"},
  };
  expect_errors<GetChunkHandleArgs>(cases);
}

TEST(StructJson, RejectsNestingDeeperThanTheLimit) {
  // An unknown key's value is parsed too: the limit guards the parser, not just the structs.
  const auto nested_arrays = [](int depth) {
    return R"({"x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  const JsonParseOptions ignore{.ignore_unknown_fields = true};
  GetChunkHandleArgs out;
  EXPECT_THAT(struct_from_json(nested_arrays(kMaxNestingDepth - 1), out, ignore), IsOk());
  EXPECT_THAT(struct_from_json(nested_arrays(kMaxNestingDepth), out, ignore),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("(more than 100 nested objects and arrays)")));
  EXPECT_THAT(
      struct_from_json(nested_arrays(1000000), out, ignore),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("GetChunkHandleArgs: invalid JSON")));
}

TEST(StructJson, RoundTripsRecursiveStructsWithinTheLimit) {
  // Each level is an object in an array: 49 levels below the root make 99 JSON levels.
  Node root{"root", {}};
  Node* leaf = &root;
  for (int i = 0; i < 49; ++i) {
    leaf->children.push_back({"n" + std::to_string(i), {}});
    leaf = &leaf->children.back();
  }
  expect_round_trip(root);
  leaf->children.push_back({"one too many", {}});
  Node parsed;
  EXPECT_THAT(struct_from_json(struct_to_json(root), parsed),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Node: invalid JSON")));
}

// ---- bytes ----

TEST(StructJson, WritesBytesAsPaddedStandardBase64) {
  struct Case {
    std::string_view bytes;
    std::string_view base64;
  };
  const Case cases[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"\xfb\xff", "+/8="},
      {"\xfb\xef\xbe", "++++"},
  };
  for (const Case& c : cases) {
    Optionals o;
    o.blob = blob_of(c.bytes);
    EXPECT_EQ(struct_to_json(o), R"({"blob":")" + std::string(c.base64) + R"("})") << c.base64;
    EXPECT_EQ(parse_or_die<Optionals>(struct_to_json(o)).blob, o.blob) << c.base64;
  }
}

TEST(StructJson, RoundTripsEveryByteValueAndLargeBlobs) {
  Repeated r;
  std::vector<std::byte> all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::byte>(i));
  r.blobs.push_back(all);
  // Larger than one EVP_EncodeBlock chunk, and not a multiple of 3.
  std::vector<std::byte> large(200001);
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<std::byte>(i * 7);
  r.blobs.push_back(large);
  expect_round_trip(r);
}

TEST(StructJson, AcceptsUrlSafeAndUnpaddedBase64) {
  struct Case {
    std::string_view base64;
    std::string_view bytes;
  };
  const Case cases[] = {
      {"-_8=", "\xfb\xff"}, {"-_8", "\xfb\xff"}, {"Zg", "f"},
      {"Zm8", "fo"},        {"Zm9v", "foo"},     {"", ""},
  };
  for (const Case& c : cases) {
    const Optionals parsed =
        parse_or_die<Optionals>(R"({"blob":")" + std::string(c.base64) + R"("})");
    EXPECT_EQ(parsed.blob, blob_of(c.bytes)) << c.base64;
  }
}

TEST(StructJson, RejectsInvalidBase64) {
  const ErrorCase cases[] = {
      {R"({"blob":"Z"})", R"(Optionals.blob: expected a base64 string, got string "Z")"},
      {R"({"blob":"Zg="})", R"(Optionals.blob: expected a base64 string, got string "Zg=")"},
      {R"({"blob":"Z==="})", "Optionals.blob: expected a base64 string"},
      {R"({"blob":"Zg==Zg=="})", "Optionals.blob: expected a base64 string"},
      {R"({"blob":"Zm9v!"})", "Optionals.blob: expected a base64 string"},
      {R"({"blob":"Zm 9v"})", "Optionals.blob: expected a base64 string"},
      {R"({"blob":" Zm9v"})", "Optionals.blob: expected a base64 string"},
      {R"({"blob":"Zm9v\n"})", "Optionals.blob: expected a base64 string"},
      {R"({"blob":"===="})", "Optionals.blob: expected a base64 string"},
  };
  expect_errors<Optionals>(cases);
}

// ---- presence, null, names ----

TEST(StructJson, KeepsOptionalPresence) {
  const Optionals zero = parse_or_die<Optionals>(R"({"i32":0,"text":""})");
  EXPECT_EQ(zero.i32, std::optional<int32_t>(0));
  EXPECT_EQ(zero.text, std::optional<std::string>(""));
  EXPECT_FALSE(zero.i64.has_value());
  const Optionals null = parse_or_die<Optionals>(R"({"i32":null,"point":null})");
  EXPECT_FALSE(null.i32.has_value());
  EXPECT_FALSE(null.point.has_value());
}

TEST(StructJson, NullLeavesTheMemberAsItWas) {
  Scalars s;
  s.i32 = 5;
  s.text = "kept";
  ASSERT_THAT(struct_from_json(R"({"i32":null,"text":null,"point":null,"blob":null})", s), IsOk());
  EXPECT_EQ(s.i32, 5);
  EXPECT_EQ(s.text, "kept");
}

TEST(StructJson, ReplacesRepeatedAndMapMembers) {
  Outer outer;
  outer.items = {{"old", 1}};
  outer.by_name = {{"old", {}}};
  ASSERT_THAT(struct_from_json(R"({"items":[{"name":"new"}],"by_name":{"new":{}}})", outer),
              IsOk());
  EXPECT_EQ(outer.items, std::vector<Inner>({{"new", 0}}));
  EXPECT_EQ(outer.by_name, (std::map<std::string, Inner>{{"new", {}}}));
}

TEST(StructJson, AcceptsLowerCamelCaseNames) {
  EXPECT_EQ(parse_or_die<GetChunkHandleArgs>(R"({"path":"p","chunkIndex":"3"})"),
            (GetChunkHandleArgs{"p", 3}));
  EXPECT_EQ(parse_or_die<GetChunkHandleArgs>(R"({"chunk_index":4})"), (GetChunkHandleArgs{"", 4}));
  EXPECT_EQ(json_detail::json_name("chunk_index"), "chunkIndex");
  EXPECT_EQ(json_detail::json_name("a_b_c"), "aBC");
  EXPECT_EQ(json_detail::json_name("path"), "path");
  EXPECT_FALSE(json_detail::key_matches("ChunkIndex", "chunk_index"));
  EXPECT_FALSE(json_detail::key_matches("chunkIndexx", "chunk_index"));
  EXPECT_FALSE(json_detail::key_matches("chunkindex", "chunk_index"));
}

TEST(StructJson, RejectsAFieldGivenUnderBothNames) {
  GetChunkHandleArgs out;
  EXPECT_THAT(struct_from_json(R"({"chunk_index":1,"chunkIndex":2})", out),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("GetChunkHandleArgs: field 'chunk_index' given twice, as "
                                 "'chunk_index' and 'chunkIndex'")));
}

TEST(StructJson, RejectsUnknownKeysUnlessToldToIgnoreThem) {
  const std::string_view json = R"({"path":"p","chunk_idx":3,"extra":{"a":[1,{}]}})";
  GetChunkHandleArgs out;
  EXPECT_THAT(struct_from_json(json, out),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("GetChunkHandleArgs: unknown field 'chunk_idx'")));
  GetChunkHandleArgs ignored;
  EXPECT_THAT(struct_from_json(json, ignored, {.ignore_unknown_fields = true}), IsOk());
  EXPECT_EQ(ignored, (GetChunkHandleArgs{"p", 0}));
}

TEST(StructJson, CodecUsesTheJsonForm) {
  Result<std::string> json = Codec<GetChunkHandleArgs>::to_json({"p", 1});
  ASSERT_THAT(json, IsOk());
  EXPECT_EQ(*json, R"({"path":"p","chunk_index":"1"})");
  GetChunkHandleArgs out;
  EXPECT_THAT(Codec<GetChunkHandleArgs>::from_json(R"({"chunk_idx":1})", out),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown field 'chunk_idx'")));
}

// ---- protobuf's JSON ----

// What protobuf prints, we read; what we print, protobuf reads: through each message's JSON
// and back through the binary form (which interop_test.cc shows is the same for both).
template <DescribedStruct T, typename Message>
void expect_protobuf_reads_and_writes_alike(const T& value) {
  Buffer binary;
  encode_struct(value, binary);
  Message message;
  ASSERT_TRUE(message.ParseFromString(binary.to_string()));

  std::string printed;
  google::protobuf::util::JsonPrintOptions print_options;
  print_options.preserve_proto_field_names = true;
  // Structs have no enum names: protobuf must print the numbers (it reads either).
  print_options.always_print_enums_as_ints = true;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(message, &printed, print_options).ok());
  T from_protobuf{};
  ASSERT_THAT(struct_from_json(printed, from_protobuf), IsOk()) << printed;
  EXPECT_TRUE(from_protobuf == value) << printed;

  const std::string ours = struct_to_json(value);
  Message parsed;
  const auto status = google::protobuf::util::JsonStringToMessage(ours, &parsed);
  ASSERT_TRUE(status.ok()) << status.ToString() << " in " << ours;
  T back{};
  ASSERT_THAT(decode_struct(parsed.SerializeAsString(), back), IsOk());
  EXPECT_TRUE(back == value) << ours;
}

TEST(StructJsonInterop, ProtobufReadsAndWritesTheSameJson) {
  namespace pb = ::meshrpc::test::interop;
  expect_protobuf_reads_and_writes_alike<Scalars, pb::Scalars>(full_scalars());
  expect_protobuf_reads_and_writes_alike<Optionals, pb::Optionals>(defaults_present());
  expect_protobuf_reads_and_writes_alike<Repeated, pb::Repeated>(full_repeated());
  expect_protobuf_reads_and_writes_alike<Maps, pb::Maps>(full_maps());
}

TEST(StructJsonInterop, ProtobufAgreesOnNonFiniteNumbers) {
  ::meshrpc::test::interop::Scalars message;
  Scalars s;
  s.f64 = INFINITY;
  s.f32 = -INFINITY;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(struct_to_json(s), &message).ok());
  EXPECT_EQ(message.f64(), INFINITY);
  EXPECT_EQ(message.f32(), -INFINITY);
  std::string printed;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(message, &printed).ok());
  EXPECT_EQ(parse_or_die<Scalars>(printed), s) << printed;
}

}  // namespace
}  // namespace meshrpc::codec::json_test
