// Plain structs and protobuf messages interoperate: for random values of every field kind the
// struct codec supports, a struct's bytes parse with protobuf into the equivalent message,
// protobuf's bytes decode into an equal struct, and both encode byte for byte alike. The
// structs are in interop_types.h, twins of the messages in tests/protos/interop.proto.
#include <gmock/gmock.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "interop.pb.h"
#include "interop_types.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/struct_json.h"

namespace meshrpc::codec {
namespace {

namespace pb = ::meshrpc::test::interop;
using ::google::protobuf::util::MessageDifferencer;
using ::meshrpc::testing::IsOk;
using namespace ::meshrpc::codec::interop_types;  // NOLINT(google-build-using-namespace): test
                                                  // types

using Bytes = std::vector<std::byte>;

// ---- struct -> message, field by field ----

std::string to_proto(const Bytes& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
pb::Color to_proto(Color color) { return static_cast<pb::Color>(color); }

pb::Point to_proto(const Point& point) {
  pb::Point m;
  m.set_x(point.x);
  m.set_y(point.y);
  m.set_label(point.label);
  return m;
}

pb::Scalars to_proto(const Scalars& s) {
  pb::Scalars m;
  m.set_flag(s.flag);
  m.set_i32(s.i32);
  m.set_i64(s.i64);
  m.set_u32(s.u32);
  m.set_u64(s.u64);
  m.set_color(to_proto(s.color));
  m.set_f32(s.f32);
  m.set_f64(s.f64);
  m.set_text(s.text);
  m.set_blob(to_proto(s.blob));
  // A struct member always "holds" its nested struct, written only when it encodes to bytes.
  if (encoded_size(s.point) != 0) *m.mutable_point() = to_proto(s.point);
  return m;
}

pb::Optionals to_proto(const Optionals& s) {
  pb::Optionals m;
  if (s.flag) m.set_flag(*s.flag);
  if (s.i32) m.set_i32(*s.i32);
  if (s.i64) m.set_i64(*s.i64);
  if (s.u32) m.set_u32(*s.u32);
  if (s.u64) m.set_u64(*s.u64);
  if (s.color) m.set_color(to_proto(*s.color));
  if (s.f32) m.set_f32(*s.f32);
  if (s.f64) m.set_f64(*s.f64);
  if (s.text) m.set_text(*s.text);
  if (s.blob) m.set_blob(to_proto(*s.blob));
  if (s.point) *m.mutable_point() = to_proto(*s.point);
  return m;
}

pb::Repeated to_proto(const Repeated& s) {
  pb::Repeated m;
  for (bool v : s.flags) m.add_flags(v);
  for (int32_t v : s.i32s) m.add_i32s(v);
  for (int64_t v : s.i64s) m.add_i64s(v);
  for (uint32_t v : s.u32s) m.add_u32s(v);
  for (uint64_t v : s.u64s) m.add_u64s(v);
  for (Color v : s.colors) m.add_colors(to_proto(v));
  for (float v : s.f32s) m.add_f32s(v);
  for (double v : s.f64s) m.add_f64s(v);
  for (const std::string& v : s.texts) m.add_texts(v);
  for (const Bytes& v : s.blobs) m.add_blobs(to_proto(v));
  for (const Point& v : s.points) *m.add_points() = to_proto(v);
  return m;
}

pb::Maps to_proto(const Maps& s) {
  pb::Maps m;
  for (const auto& [k, v] : s.counts) (*m.mutable_counts())[k] = v;
  for (const auto& [k, v] : s.names) (*m.mutable_names())[k] = v;
  for (const auto& [k, v] : s.points) (*m.mutable_points())[k] = to_proto(v);
  for (const auto& [k, v] : s.blobs) (*m.mutable_blobs())[k] = to_proto(v);
  for (const auto& [k, v] : s.weights) (*m.mutable_weights())[k] = v;
  return m;
}

pb::Everything to_proto(const Everything& s) {
  pb::Everything m;
  if (encoded_size(s.scalars) != 0) *m.mutable_scalars() = to_proto(s.scalars);
  if (encoded_size(s.optionals) != 0) *m.mutable_optionals() = to_proto(s.optionals);
  if (encoded_size(s.lists) != 0) *m.mutable_lists() = to_proto(s.lists);
  if (encoded_size(s.maps) != 0) *m.mutable_maps() = to_proto(s.maps);
  return m;
}

// ---- random values ----

// Values that find encoding bugs: zero (not written), small, the extremes (sign extension,
// ten-byte varints), anything.
class RandomValues {
 public:
  explicit RandomValues(uint64_t seed) : rng_(seed) {}

  bool chance(int percent) { return below(100) < static_cast<uint64_t>(percent); }
  size_t count(size_t max) { return below(max + 1); }

  template <std::integral T>
  T integer() {
    using Limits = std::numeric_limits<T>;
    switch (below(4)) {
      case 0:
        return 0;
      case 1:
        return static_cast<T>(below(8)) - static_cast<T>(Limits::is_signed ? 4 : 0);
      case 2:
        return chance(50) ? Limits::min() : Limits::max();
      default:
        return static_cast<T>(rng_());
    }
  }

  Color color() {
    static constexpr Color kColors[] = {Color::kUnspecified, Color::kRed, Color::kGreen,
                                        Color::kNegative, static_cast<Color>(77)};  // unknown
    return kColors[below(std::size(kColors))];
  }

  // Never NaN (NaN != NaN; NanKeepsItsBits covers it); -0.0, infinities and denormals included.
  template <std::floating_point T>
  T real() {
    using Limits = std::numeric_limits<T>;
    const T special[] = {T(0),
                         -T(0),
                         Limits::infinity(),
                         -Limits::infinity(),
                         Limits::max(),
                         Limits::lowest(),
                         Limits::denorm_min(),
                         T(0.1)};
    if (chance(40)) return special[below(std::size(special))];
    return std::uniform_real_distribution<T>(-1e6, 1e6)(rng_);
  }

  // Well-formed UTF-8 (a protobuf `string` must be): ASCII, NUL, and 2-, 3- and 4-byte
  // sequences.
  std::string text() {
    std::string out;
    for (size_t n = count(12); n > 0; --n) append_utf8(out, code_point());
    return out;
  }

  Bytes blob() {
    Bytes out(count(24));
    for (std::byte& b : out) b = static_cast<std::byte>(below(256));
    return out;
  }

  Point point() {
    if (chance(20)) return Point{};  // encodes to nothing
    return Point{integer<int32_t>(), integer<int64_t>(), text()};
  }

 private:
  uint64_t below(uint64_t bound) {
    return std::uniform_int_distribution<uint64_t>(0, bound - 1)(rng_);
  }

  uint32_t code_point() {
    switch (below(4)) {
      case 0:
        return static_cast<uint32_t>(below(0x80));
      case 1:
        return static_cast<uint32_t>(0x80 + below(0x800 - 0x80));
      case 2: {
        const auto c = static_cast<uint32_t>(0x800 + below(0x10000 - 0x800));
        return c >= 0xd800 && c <= 0xdfff ? 0xfffd : c;  // no surrogates
      }
      default:
        return static_cast<uint32_t>(0x10000 + below(0x110000 - 0x10000));
    }
  }

  static void append_utf8(std::string& out, uint32_t c) {
    auto byte = [&out](uint32_t b) { out.push_back(static_cast<char>(b)); };
    if (c < 0x80) {
      byte(c);
    } else if (c < 0x800) {
      byte(0xc0 | (c >> 6)), byte(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      byte(0xe0 | (c >> 12)), byte(0x80 | ((c >> 6) & 0x3f)), byte(0x80 | (c & 0x3f));
    } else {
      byte(0xf0 | (c >> 18)), byte(0x80 | ((c >> 12) & 0x3f));
      byte(0x80 | ((c >> 6) & 0x3f)), byte(0x80 | (c & 0x3f));
    }
  }

  std::mt19937_64 rng_;
};

Scalars random_scalars(RandomValues& r) {
  return Scalars{r.chance(50),
                 r.integer<int32_t>(),
                 r.integer<int64_t>(),
                 r.integer<uint32_t>(),
                 r.integer<uint64_t>(),
                 r.color(),
                 r.real<float>(),
                 r.real<double>(),
                 r.text(),
                 r.blob(),
                 r.point()};
}

// Each optional is set half the time, possibly to its default (still written: presence).
Optionals random_optionals(RandomValues& r) {
  Optionals s;
  auto maybe = [&r](auto& member, auto make) {
    if (r.chance(50)) member = make();
  };
  maybe(s.flag, [&] { return r.chance(50); });
  maybe(s.i32, [&] { return r.integer<int32_t>(); });
  maybe(s.i64, [&] { return r.integer<int64_t>(); });
  maybe(s.u32, [&] { return r.integer<uint32_t>(); });
  maybe(s.u64, [&] { return r.integer<uint64_t>(); });
  maybe(s.color, [&] { return r.color(); });
  maybe(s.f32, [&] { return r.real<float>(); });
  maybe(s.f64, [&] { return r.real<double>(); });
  maybe(s.text, [&] { return r.text(); });
  maybe(s.blob, [&] { return r.blob(); });
  maybe(s.point, [&] { return r.point(); });
  return s;
}

template <typename T, typename Make>
std::vector<T> random_list(RandomValues& r, Make make) {
  std::vector<T> out;
  for (size_t n = r.count(5); n > 0; --n) out.push_back(make());
  return out;
}

Repeated random_repeated(RandomValues& r) {
  Repeated s;
  s.flags = random_list<bool>(r, [&] { return r.chance(50); });
  s.i32s = random_list<int32_t>(r, [&] { return r.integer<int32_t>(); });
  s.i64s = random_list<int64_t>(r, [&] { return r.integer<int64_t>(); });
  s.u32s = random_list<uint32_t>(r, [&] { return r.integer<uint32_t>(); });
  s.u64s = random_list<uint64_t>(r, [&] { return r.integer<uint64_t>(); });
  s.colors = random_list<Color>(r, [&] { return r.color(); });
  s.f32s = random_list<float>(r, [&] { return r.real<float>(); });
  s.f64s = random_list<double>(r, [&] { return r.real<double>(); });
  s.texts = random_list<std::string>(r, [&] { return r.text(); });
  s.blobs = random_list<Bytes>(r, [&] { return r.blob(); });
  s.points = random_list<Point>(r, [&] { return r.point(); });
  return s;
}

template <typename K, typename V, typename MakeKey, typename MakeValue>
std::map<K, V> random_map(RandomValues& r, MakeKey key, MakeValue value) {
  std::map<K, V> out;
  for (size_t n = r.count(4); n > 0; --n) out[key()] = value();
  return out;
}

Maps random_maps(RandomValues& r) {
  auto text = [&] { return r.text(); };
  auto int64 = [&] { return r.integer<int64_t>(); };
  return Maps{random_map<std::string, int32_t>(r, text, [&] { return r.integer<int32_t>(); }),
              random_map<int64_t, std::string>(r, int64, text),
              random_map<std::string, Point>(r, text, [&] { return r.point(); }),
              random_map<int64_t, Bytes>(r, int64, [&] { return r.blob(); }),
              random_map<std::string, double>(r, text, [&] { return r.real<double>(); })};
}

// Each part is left default a fifth of the time, so empty nested messages are covered.
Everything random_everything(uint64_t seed) {
  RandomValues r(seed);
  Everything s;
  if (!r.chance(20)) s.scalars = random_scalars(r);
  if (!r.chance(20)) s.optionals = random_optionals(r);
  if (!r.chance(20)) s.lists = random_repeated(r);
  if (!r.chance(20)) s.maps = random_maps(r);
  return s;
}

// ---- helpers ----

// Change kFirstSeed to the failing seed printed in the trace to replay one case.
constexpr uint64_t kFirstSeed = 0x5eed;
constexpr int kIterations = 300;

std::string struct_bytes(const Everything& s) {
  Buffer out;
  encode_struct(s, out);
  return out.to_string();
}

// Protobuf writes map entries in hash order unless asked to sort them by key, as std::map
// iterates.
std::string deterministic_bytes(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    EXPECT_TRUE(message.SerializeToCodedStream(&coded));
  }
  return out;
}

// Protobuf's JSON as a struct reads it: .proto field names, and enums as numbers (a struct's
// enum has no value names, so struct_from_json cannot read protobuf's default "COLOR_RED").
std::string message_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_enums_as_ints = true;
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json, options).ok());
  return json;
}

// Empty when equal, else protobuf's list of differing fields.
std::string differences(const google::protobuf::Message& got,
                        const google::protobuf::Message& want) {
  std::string report;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  return differencer.Compare(got, want) ? "" : report;
}

pb::Everything parse_message_json(const std::string& json) {
  pb::Everything message;
  google::protobuf::util::JsonParseOptions strict;  // unknown keys fail
  const auto status = google::protobuf::util::JsonStringToMessage(json, &message, strict);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

// ---- tests ----

TEST(StructProtobufInterop, StructBytesParseAsTheEquivalentMessage) {
  for (uint64_t seed = kFirstSeed; seed < kFirstSeed + kIterations; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Everything value = random_everything(seed);
    pb::Everything parsed;
    ASSERT_TRUE(parsed.ParseFromString(struct_bytes(value)));
    ASSERT_EQ(differences(parsed, to_proto(value)), "");
  }
}

TEST(StructProtobufInterop, MessageBytesDecodeAsTheEquivalentStruct) {
  for (uint64_t seed = kFirstSeed; seed < kFirstSeed + kIterations; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Everything value = random_everything(seed);
    Everything decoded;
    ASSERT_THAT(decode_struct(to_proto(value).SerializeAsString(), decoded), IsOk());
    ASSERT_TRUE(decoded == value) << "decoded " << struct_to_json(decoded) << "\nwanted "
                                  << struct_to_json(value);
  }
}

TEST(StructProtobufInterop, StructAndMessageEncodeByteForByteAlike) {
  for (uint64_t seed = kFirstSeed; seed < kFirstSeed + kIterations; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Everything value = random_everything(seed);
    const std::string bytes = struct_bytes(value);
    ASSERT_EQ(bytes, deterministic_bytes(to_proto(value)));
    ASSERT_EQ(bytes.size(), encoded_size(value));
  }
}

// Compared with what protobuf reads from its own JSON for the equivalent message, not with
// the message itself: protobuf's JSON loses the sign of a zero ("-0" reads back as 0, so a
// proto3 double holding -0.0 comes back absent), and the struct prints "-0" as protobuf does.
TEST(StructProtobufInterop, StructJsonParsesAsTheEquivalentMessage) {
  for (uint64_t seed = kFirstSeed; seed < kFirstSeed + kIterations; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Everything value = random_everything(seed);
    const std::string json = struct_to_json(value);
    const pb::Everything parsed = parse_message_json(json);
    ASSERT_EQ(differences(parsed, parse_message_json(message_json(to_proto(value)))), "") << json;
  }
}

TEST(StructProtobufInterop, MessageJsonParsesAsTheEquivalentStruct) {
  for (uint64_t seed = kFirstSeed; seed < kFirstSeed + kIterations; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Everything value = random_everything(seed);
    const std::string json = message_json(to_proto(value));
    Everything parsed;
    ASSERT_THAT(struct_from_json(json, parsed), IsOk()) << json;
    ASSERT_TRUE(parsed == value) << json << "\nstruct prints\n" << struct_to_json(parsed);
  }
}

TEST(StructProtobufInterop, NanKeepsItsBitsBothWays) {
  const double nan = std::bit_cast<double>(uint64_t{0x7ff8'0000'dead'beef});
  const float nan32 = std::bit_cast<float>(uint32_t{0x7fc0'beef});
  Scalars value;
  value.f64 = nan;
  value.f32 = nan32;
  Buffer out;
  encode_struct(value, out);
  pb::Scalars parsed;
  ASSERT_TRUE(parsed.ParseFromString(out.to_string()));
  EXPECT_EQ(std::bit_cast<uint64_t>(parsed.f64()), std::bit_cast<uint64_t>(nan));
  EXPECT_EQ(std::bit_cast<uint32_t>(parsed.f32()), std::bit_cast<uint32_t>(nan32));

  Scalars decoded;
  ASSERT_THAT(decode_struct(parsed.SerializeAsString(), decoded), IsOk());
  EXPECT_EQ(std::bit_cast<uint64_t>(decoded.f64), std::bit_cast<uint64_t>(nan));
  EXPECT_EQ(std::bit_cast<uint32_t>(decoded.f32), std::bit_cast<uint32_t>(nan32));
}

TEST(StructProtobufInterop, StructDecodesUnpackedRepeatedNumbers) {
  pb::Unpacked unpacked;
  unpacked.add_flags(true);
  unpacked.add_flags(false);
  unpacked.add_i32s(-1);
  unpacked.add_i32s(300);
  unpacked.add_u64s(std::numeric_limits<uint64_t>::max());
  unpacked.add_colors(pb::COLOR_NEGATIVE);
  unpacked.add_f32s(1.5f);
  unpacked.add_f64s(-2.25);
  Repeated decoded;
  ASSERT_THAT(decode_struct(unpacked.SerializeAsString(), decoded), IsOk());
  EXPECT_EQ(decoded.flags, (std::vector<bool>{true, false}));
  EXPECT_EQ(decoded.i32s, (std::vector<int32_t>{-1, 300}));
  EXPECT_EQ(decoded.u64s, (std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()}));
  EXPECT_EQ(decoded.colors, (std::vector<Color>{Color::kNegative}));
  EXPECT_EQ(decoded.f32s, (std::vector<float>{1.5f}));
  EXPECT_EQ(decoded.f64s, (std::vector<double>{-2.25}));
}

// An older struct (fewer fields) and a newer message read each other: unknown fields are
// skipped by the struct and kept by protobuf.
struct PointV1 {
  int32_t x = 0;
};
MESHRPC_STRUCT(PointV1, (x, 1));

TEST(StructProtobufInterop, OlderStructAndNewerMessageReadEachOther) {
  pb::Point point;
  point.set_x(-5);
  point.set_y(1ll << 50);
  point.set_label("added later");
  PointV1 old;
  ASSERT_THAT(decode_struct(point.SerializeAsString(), old), IsOk());
  EXPECT_EQ(old.x, -5);

  Buffer out;
  encode_struct(old, out);
  pb::Point parsed;
  ASSERT_TRUE(parsed.ParseFromString(out.to_string()));
  EXPECT_EQ(parsed.x(), -5);
  EXPECT_EQ(parsed.y(), 0);
  EXPECT_EQ(parsed.label(), "");
}

}  // namespace
}  // namespace meshrpc::codec
