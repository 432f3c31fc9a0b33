// The typed payload decoders (decode_headers(), ...) on hand-built payloads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/wire/frame_decoder.h"
#include "raw_frames.h"

namespace meshrpc::wire {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::IsOkAndHolds;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using namespace ::meshrpc::wire::testing;  // NOLINT(google-build-using-namespace): test helpers

const Limits kLimits;

std::string valid_headers() {
  return u64(1500000000) + u16(10) + "/svc/Echo1" + raw_metadata({{"k", "v"}, {"trace", "abc"}});
}
std::string valid_trailers() {
  return u8(5) + u32(9) + "not found" + u32(3) + "det" + raw_metadata({{"retry", "no"}});
}
std::string valid_settings() { return u16(1) + u64(1) + u16(999) + u64(42); }
std::string valid_cancel() { return u8(1) + u32(4) + "bye!"; }
std::string valid_goaway() { return u64(77) + u8(14) + u32(8) + "draining"; }

// Decodes `payload` as a frame of `type` (stream 1, or 0 when connection-scoped) and returns
// just the status: the common shape of the error tests.
Status decode_status(FrameType type, std::string_view payload, uint8_t flags = 0,
                     const Limits& limits = kLimits) {
  uint64_t stream = is_connection_scoped(type) ? 0 : 1;
  Frame frame = make_frame(type, flags, stream, payload);
  switch (type) {
    case FrameType::kHeaders:
      return decode_headers(frame, limits).status();
    case FrameType::kTrailers:
      return decode_trailers(frame, limits).status();
    case FrameType::kSettings:
      return decode_settings(frame, limits).status();
    case FrameType::kCancel:
      return decode_cancel(frame).status();
    case FrameType::kWindowUpdate:
      return decode_window_update(frame).status();
    case FrameType::kPing:
      return decode_ping(frame).status();
    case FrameType::kGoAway:
      return decode_goaway(frame).status();
    case FrameType::kData:
      break;
  }
  return internal_error("no typed decoder");
}

TEST(DecodeHeaders, DecodesAllFields) {
  Headers expected{
      std::chrono::nanoseconds(1500000000), "/svc/Echo1", {{"k", "v"}, {"trace", "abc"}}};
  EXPECT_THAT(decode_headers(make_frame(FrameType::kHeaders, 0, 1, valid_headers()), kLimits),
              IsOkAndHolds(expected));
}

TEST(DecodeTrailers, DecodesAllFields) {
  Result<Trailers> trailers = decode_trailers(
      make_frame(FrameType::kTrailers, kFlagRejectedBeforeDispatch, 1, valid_trailers()), kLimits);
  ASSERT_THAT(trailers, IsOk());
  EXPECT_EQ(trailers->status, Status(StatusCode::kNotFound, "not found", "det"));
  EXPECT_TRUE(trailers->rejected_before_dispatch);
  EXPECT_EQ(trailers->metadata, (Metadata{{"retry", "no"}}));
}

TEST(DecodeSettings, KeepsUnknownIdsForTheNegotiationToIgnore) {
  Settings expected{false, {{1, 1}, {999, 42}}};
  EXPECT_THAT(decode_settings(make_frame(FrameType::kSettings, 0, 0, valid_settings()), kLimits),
              IsOkAndHolds(expected));
  EXPECT_THAT(decode_settings(make_frame(FrameType::kSettings, kFlagAck, 0, ""), kLimits),
              IsOkAndHolds(Settings{true, {}}));
}

TEST(DecodeSmallFrames, DecodeAllFields) {
  EXPECT_THAT(decode_cancel(make_frame(FrameType::kCancel, 0, 1, valid_cancel())),
              IsOkAndHolds(Cancel{StatusCode::kCancelled, "bye!"}));
  EXPECT_THAT(decode_goaway(make_frame(FrameType::kGoAway, 0, 0, valid_goaway())),
              IsOkAndHolds(GoAway{77, StatusCode::kUnavailable, "draining"}));
  EXPECT_THAT(decode_ping(make_frame(FrameType::kPing, kFlagAck, 0, u64(0x1122334455667788))),
              IsOkAndHolds(Ping{true, 0x1122334455667788}));
  EXPECT_THAT(decode_window_update(make_frame(FrameType::kWindowUpdate, 0, 0, u32(65536))),
              IsOkAndHolds(WindowUpdate{65536}));
}

// Every strict prefix of a valid payload is an error (never a crash, never a value), and so is
// the payload with a byte appended.
TEST(TypedDecoders, RejectEveryTruncationAndTrailingBytes) {
  const std::vector<std::pair<FrameType, std::string>> cases = {
      {FrameType::kHeaders, valid_headers()},
      {FrameType::kTrailers, valid_trailers()},
      {FrameType::kCancel, valid_cancel()},
      {FrameType::kWindowUpdate, u32(1)},
      {FrameType::kPing, u64(5)},
      {FrameType::kGoAway, valid_goaway()},
  };
  for (const auto& [type, payload] : cases) {
    SCOPED_TRACE(frame_type_name(type));
    ASSERT_THAT(decode_status(type, payload), IsOk());
    for (size_t size = 0; size < payload.size(); ++size) {
      SCOPED_TRACE(size);
      EXPECT_THAT(decode_status(type, payload.substr(0, size)),
                  StatusIs(StatusCode::kInternal, HasSubstr("truncated")));
    }
    EXPECT_THAT(decode_status(type, payload + "!"),
                StatusIs(StatusCode::kInternal, HasSubstr("1 trailing bytes")));
  }
}

struct PayloadErrorCase {
  std::string name;
  FrameType type;
  uint8_t flags;
  std::string payload;
  StatusCode code;
  std::string message;
};

class PayloadErrorTest : public ::testing::TestWithParam<PayloadErrorCase> {};

TEST_P(PayloadErrorTest, RejectsWithPreciseStatus) {
  const PayloadErrorCase& c = GetParam();
  EXPECT_THAT(decode_status(c.type, c.payload, c.flags), StatusIs(c.code, HasSubstr(c.message)));
}

std::string many_metadata(int count) {
  std::string out = u16(count);
  for (int i = 0; i < count; ++i) out += u16(1) + "k" + u32(0);
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Payload, PayloadErrorTest,
    ::testing::Values(
        PayloadErrorCase{"MethodLengthBeyondPayload", FrameType::kHeaders, 0,
                         u64(0) + u16(100) + "abc", StatusCode::kInternal,
                         "HEADERS payload truncated: method needs 100 bytes, 3 remain"},
        PayloadErrorCase{"MetadataKeyLengthBeyondPayload", FrameType::kHeaders, 0,
                         u64(0) + u16(0) + u16(1) + u16(9) + "k", StatusCode::kInternal,
                         "metadata key needs 9 bytes, 1 remain"},
        PayloadErrorCase{"MetadataValueLengthBeyondPayload", FrameType::kHeaders, 0,
                         u64(0) + u16(0) + u16(1) + u16(1) + "k" + u32(0xFFFFFFFF),
                         StatusCode::kInternal, "metadata value needs 4294967295 bytes, 0 remain"},
        PayloadErrorCase{"MetadataCountBeyondPayload", FrameType::kHeaders, 0,
                         u64(0) + u16(0) + u16(3) + u16(1) + "k" + u32(0), StatusCode::kInternal,
                         "metadata key length needs 2 bytes, 0 remain"},
        PayloadErrorCase{"TooManyMetadataEntries", FrameType::kHeaders, 0,
                         u64(0) + u16(0) + many_metadata(65), StatusCode::kResourceExhausted,
                         "HEADERS has 65 metadata entries, exceeds max_metadata_entries 64"},
        PayloadErrorCase{"TooManyTrailerMetadataEntries", FrameType::kTrailers, 0,
                         u8(0) + u32(0) + u32(0) + u16(65535), StatusCode::kResourceExhausted,
                         "TRAILERS has 65535 metadata entries, exceeds max_metadata_entries 64"},
        PayloadErrorCase{"TimeoutAboveInt64", FrameType::kHeaders, 0,
                         u64(uint64_t{1} << 63) + u16(0) + u16(0), StatusCode::kInternal,
                         "timeout_ns 9223372036854775808 exceeds 2^63-1"},
        PayloadErrorCase{"TrailersBadStatusCode", FrameType::kTrailers, 0,
                         u8(17) + u32(0) + u32(0) + u16(0), StatusCode::kInternal,
                         "TRAILERS status code 17 is not a canonical status code (0..16)"},
        PayloadErrorCase{"TrailersOkWithMessage", FrameType::kTrailers, 0,
                         u8(0) + u32(2) + "hi" + u32(0) + u16(0), StatusCode::kInternal,
                         "status OK carries a message"},
        PayloadErrorCase{"TrailersMessageBeyondPayload", FrameType::kTrailers, 0,
                         u8(2) + u32(1000) + "x", StatusCode::kInternal,
                         "status message needs 1000 bytes, 1 remain"},
        PayloadErrorCase{"CancelWithOkCode", FrameType::kCancel, 0, u8(0) + u32(0),
                         StatusCode::kInternal,
                         "CANCEL code 0 is not a canonical status code (1..16)"},
        PayloadErrorCase{"CancelBadCode", FrameType::kCancel, 0, u8(99) + u32(0),
                         StatusCode::kInternal, "CANCEL code 99"},
        PayloadErrorCase{"GoAwayBadCode", FrameType::kGoAway, 0, u64(0) + u8(200) + u32(0),
                         StatusCode::kInternal, "GOAWAY code 200"},
        PayloadErrorCase{"GoAwayReasonBeyondPayload", FrameType::kGoAway, 0,
                         u64(0) + u8(0) + u32(5) + "abc", StatusCode::kInternal,
                         "reason needs 5 bytes, 3 remain"},
        PayloadErrorCase{"WindowUpdateZero", FrameType::kWindowUpdate, 0, u32(0),
                         StatusCode::kInternal, "WINDOW_UPDATE on stream 1 has increment 0"},
        PayloadErrorCase{"SettingsNotMultipleOfTen", FrameType::kSettings, 0,
                         valid_settings() + "x", StatusCode::kInternal,
                         "SETTINGS length 21 is not a multiple of 10"},
        PayloadErrorCase{"SettingsAckWithEntries", FrameType::kSettings, kFlagAck, valid_settings(),
                         StatusCode::kInternal, "SETTINGS ACK has a 20-byte payload"},
        PayloadErrorCase{"TooManySettings", FrameType::kSettings, 0, std::string(650, '\0'),
                         StatusCode::kResourceExhausted,
                         "SETTINGS has 65 entries, exceeds max_settings_entries 64"}),
    [](const auto& info) { return info.param.name; });

// Payloads arrive as chains of slices; fields straddling slice boundaries must read the same.
TEST(TypedDecoders, ReadFieldsAcrossSliceBoundaries) {
  std::string payload = valid_headers();
  Buffer split;
  for (char byte : payload) split.append(Slice::copy_of(std::string_view(&byte, 1)));
  ASSERT_EQ(split.slices().size(), payload.size());
  Frame frame{FrameHeader{static_cast<uint32_t>(payload.size()), FrameType::kHeaders, 0, 1},
              std::move(split)};
  EXPECT_THAT(
      decode_headers(frame, kLimits),
      IsOkAndHolds(*decode_headers(make_frame(FrameType::kHeaders, 0, 1, payload), kLimits)));
}

TEST(TypedDecoders, MetadataLimitFollowsLimits) {
  Limits limits;
  limits.max_metadata_entries = 1;
  std::string payload = u64(0) + u16(0) + raw_metadata({{"a", "1"}, {"b", "2"}});
  EXPECT_THAT(decode_status(FrameType::kHeaders, payload, 0, limits),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_metadata_entries 1")));
  limits.max_metadata_entries = 2;
  EXPECT_THAT(decode_status(FrameType::kHeaders, payload, 0, limits), IsOk());
}

}  // namespace
}  // namespace meshrpc::wire
