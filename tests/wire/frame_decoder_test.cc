#include "meshrpc/wire/frame_decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "raw_frames.h"

namespace meshrpc::wire {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using namespace ::meshrpc::wire::testing;  // NOLINT(google-build-using-namespace): test helpers

constexpr uint8_t kUnknownType = 42;

std::string ping_frame(uint64_t opaque = 7) {
  return raw_frame(FrameType::kPing, 0, 0, u64(opaque));
}

// A minimal valid HEADERS payload: no deadline, method "/s/m", no metadata.
std::string headers_payload() { return u64(0) + u16(4) + "/s/m" + u16(0); }

// Every case is rejected as soon as the bytes shown are in, even when they end right after a
// 16-byte header whose payload never arrives.
struct HeaderErrorCase {
  std::string name;
  Role role;
  std::string bytes;
  StatusCode code;
  std::string message;
  Limits limits = {};
};

class HeaderErrorTest : public ::testing::TestWithParam<HeaderErrorCase> {};

TEST_P(HeaderErrorTest, RejectsWithPreciseStatus) {
  const HeaderErrorCase& c = GetParam();
  FrameDecoder decoder(c.role, c.limits);
  EXPECT_THAT(decode_all(decoder, c.bytes), StatusIs(c.code, HasSubstr(c.message)));
}

Limits small_stream_ids() {
  Limits limits;
  limits.max_stream_id = 100;
  return limits;
}

const Role kServer = Role::kServer;
const Role kClient = Role::kClient;
const StatusCode kExhausted = StatusCode::kResourceExhausted;
const StatusCode kInternal = StatusCode::kInternal;

INSTANTIATE_TEST_SUITE_P(
    Header, HeaderErrorTest,
    ::testing::Values(
        HeaderErrorCase{"OversizedFrame", kClient, raw_header(9000000, FrameType::kData, 0, 1),
                        kExhausted, "frame length 9000000 exceeds max_frame_bytes 1048576"},
        HeaderErrorCase{"OversizedUnknownFrame", kClient, raw_header(1048577, kUnknownType, 0, 1),
                        kExhausted, "frame length 1048577 exceeds max_frame_bytes 1048576"},
        HeaderErrorCase{"OversizedHeaders", kServer, raw_header(65537, FrameType::kHeaders, 0, 1),
                        kExhausted, "HEADERS length 65537 exceeds max_header_bytes 65536"},
        HeaderErrorCase{"OversizedTrailers", kClient, raw_header(70000, FrameType::kTrailers, 0, 1),
                        kExhausted, "TRAILERS length 70000 exceeds max_header_bytes 65536"},
        HeaderErrorCase{"DataOnStreamZero", kClient, raw_header(3, FrameType::kData, 0, 0),
                        kInternal, "DATA frame on stream 0"},
        HeaderErrorCase{"HeadersOnStreamZero", kServer, raw_header(14, FrameType::kHeaders, 0, 0),
                        kInternal, "HEADERS frame on stream 0"},
        HeaderErrorCase{"TrailersOnStreamZero", kClient, raw_header(14, FrameType::kTrailers, 0, 0),
                        kInternal, "TRAILERS frame on stream 0"},
        HeaderErrorCase{"CancelOnStreamZero", kClient, raw_header(5, FrameType::kCancel, 0, 0),
                        kInternal, "CANCEL frame on stream 0"},
        HeaderErrorCase{"PingOnStream", kClient, raw_header(8, FrameType::kPing, 0, 5), kInternal,
                        "PING frame on stream 5; PING belongs to the connection"},
        HeaderErrorCase{"SettingsOnStream", kClient, raw_header(0, FrameType::kSettings, 0, 1),
                        kInternal, "SETTINGS frame on stream 1"},
        HeaderErrorCase{"GoAwayOnStream", kClient, raw_header(13, FrameType::kGoAway, 0, 3),
                        kInternal, "GOAWAY frame on stream 3"},
        HeaderErrorCase{"UnknownMandatoryType", kClient,
                        raw_header(4, kUnknownType, kFlagMandatory, 0), kInternal,
                        "unknown frame type 42 has the MANDATORY flag"},
        HeaderErrorCase{"PingTooShort", kClient, raw_header(7, FrameType::kPing, 0, 0), kInternal,
                        "PING length 7 must be 8"},
        HeaderErrorCase{"PingTooLong", kClient, raw_header(9, FrameType::kPing, kFlagAck, 0),
                        kInternal, "PING length 9 must be 8"},
        HeaderErrorCase{"WindowUpdateWrongLength", kClient,
                        raw_header(5, FrameType::kWindowUpdate, 0, 0), kInternal,
                        "WINDOW_UPDATE length 5 must be 4"},
        HeaderErrorCase{"SettingsNotMultipleOfTen", kClient,
                        raw_header(15, FrameType::kSettings, 0, 0), kInternal,
                        "SETTINGS length 15 is not a multiple of 10"},
        HeaderErrorCase{"SettingsAckWithPayload", kClient,
                        raw_header(10, FrameType::kSettings, kFlagAck, 0), kInternal,
                        "SETTINGS length 10 must be 0"},
        HeaderErrorCase{"TooManySettings", kClient, raw_header(650, FrameType::kSettings, 0, 0),
                        kExhausted, "SETTINGS has 65 entries, exceeds max_settings_entries 64"},
        HeaderErrorCase{"DataCompressedNotNegotiated", kClient,
                        raw_header(3, FrameType::kData, kFlagCompressed, 1), kInternal,
                        "COMPRESSED"},
        HeaderErrorCase{"NoMessageWithoutEndStream", kClient,
                        raw_header(0, FrameType::kData, kFlagNoMessage, 1), kInternal,
                        "NO_MESSAGE, which needs END_STREAM"},
        HeaderErrorCase{
            "NoMessageWithContinued", kClient,
            raw_header(0, FrameType::kData, kFlagNoMessage | kFlagEndStream | kFlagContinued, 1),
            kInternal, "NO_MESSAGE, which needs END_STREAM and no CONTINUED"},
        HeaderErrorCase{"NoMessageWithPayload", kClient,
                        raw_header(3, FrameType::kData, kFlagNoMessage | kFlagEndStream, 1),
                        kInternal, "NO_MESSAGE and a 3-byte payload"},
        HeaderErrorCase{"StreamIdAboveLimit", kClient, raw_header(0, FrameType::kData, 0, 101),
                        kExhausted, "stream id 101 exceeds max_stream_id 100", small_stream_ids()},
        HeaderErrorCase{"TrailersToServer", kServer, raw_header(11, FrameType::kTrailers, 0, 1),
                        kInternal, "received by a server"},
        HeaderErrorCase{"StreamIdReuse", kServer,
                        raw_frame(FrameType::kHeaders, 0, 5, headers_payload()) +
                            raw_header(14, FrameType::kHeaders, 0, 5),
                        kInternal,
                        "HEADERS on stream 5: stream id reuse or regression (highest opened 5)"},
        HeaderErrorCase{"StreamIdRegression", kServer,
                        raw_frame(FrameType::kHeaders, 0, 5, headers_payload()) +
                            raw_header(14, FrameType::kHeaders, 0, 3),
                        kInternal,
                        "HEADERS on stream 3: stream id reuse or regression (highest opened 5)"}),
    [](const auto& info) { return info.param.name; });

TEST(FrameDecoder, WaitsForAPartialHeaderWithoutError) {
  FrameDecoder decoder(Role::kClient, Limits{});
  std::string frame = ping_frame(99);
  decoder.feed(Buffer::copy_of(frame.substr(0, 15)));
  EXPECT_THAT(decoder.next(), ::meshrpc::testing::IsOkAndHolds(std::nullopt));
  decoder.feed(Buffer::copy_of(frame.substr(15)));
  Result<std::optional<Frame>> next = decoder.next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->header.type, FrameType::kPing);
  EXPECT_EQ((*next)->payload.to_string(), u64(99));
}

TEST(FrameDecoder, WaitsForAPartialPayloadWithoutError) {
  FrameDecoder decoder(Role::kClient, Limits{});
  std::string frame = raw_frame(FrameType::kData, 0, 3, std::string(1000, 'x'));
  decoder.feed(Buffer::copy_of(frame.substr(0, 500)));
  EXPECT_THAT(decoder.next(), ::meshrpc::testing::IsOkAndHolds(std::nullopt));
  EXPECT_THAT(decoder.next(), ::meshrpc::testing::IsOkAndHolds(std::nullopt));
  EXPECT_EQ(decoder.buffered_bytes(), 500u - kFrameHeaderBytes);
  decoder.feed(Buffer::copy_of(frame.substr(500)));
  Result<std::optional<Frame>> next = decoder.next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->payload.to_string(), std::string(1000, 'x'));
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameDecoder, DecodesOneByteAtATime) {
  std::string bytes = raw_frame(FrameType::kSettings, 0, 0, u16(2) + u64(1 << 20)) +
                      raw_frame(FrameType::kHeaders, kFlagEndStream, 1, headers_payload()) +
                      raw_frame(FrameType::kData, kFlagEndStream, 1, "hello") + ping_frame();
  FrameDecoder decoder(Role::kServer, Limits{});
  std::vector<Frame> frames;
  for (char byte : bytes) {
    decoder.feed(Buffer::copy_of(std::string_view(&byte, 1)));
    Result<std::optional<Frame>> next = decoder.next();
    ASSERT_THAT(next, IsOk());
    if (next->has_value()) frames.push_back(std::move(**next));
  }
  ASSERT_THAT(frames, SizeIs(4));
  EXPECT_EQ(frames[0].header.type, FrameType::kSettings);
  EXPECT_EQ(frames[1].header, (FrameHeader{16, FrameType::kHeaders, kFlagEndStream, 1}));
  EXPECT_EQ(frames[2].payload.to_string(), "hello");
  EXPECT_EQ(frames[3].header.type, FrameType::kPing);
}

TEST(FrameDecoder, SkipsUnknownOptionalFrameAndDecodesTheNext) {
  std::string bytes = raw_header(5, kUnknownType, 0x01, 9) + "abcde" + ping_frame(3);
  FrameDecoder decoder(Role::kClient, Limits{});
  Result<std::vector<Frame>> frames = decode_all(decoder, bytes);
  ASSERT_THAT(frames, IsOk());
  ASSERT_THAT(*frames, SizeIs(1));
  EXPECT_EQ((*frames)[0].header.type, FrameType::kPing);
  EXPECT_EQ((*frames)[0].payload.to_string(), u64(3));
}

TEST(FrameDecoder, SkipsUnknownPayloadArrivingInPieces) {
  FrameDecoder decoder(Role::kClient, Limits{});
  decoder.feed(Buffer::copy_of(raw_header(1000, kUnknownType, 0, 0) + std::string(10, 'z')));
  EXPECT_THAT(decoder.next(), ::meshrpc::testing::IsOkAndHolds(std::nullopt));
  // Skipped bytes are dropped as they arrive, not buffered.
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  decoder.feed(Buffer::copy_of(std::string(990, 'z') + ping_frame()));
  Result<std::optional<Frame>> next = decoder.next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->header.type, FrameType::kPing);
}

TEST(FrameDecoder, IgnoresReservedBytesAndUndefinedFlags) {
  std::string bytes =
      raw_header(8, static_cast<uint8_t>(FrameType::kPing), 0x40, 0, 0xBEEF) + u64(1);
  FrameDecoder decoder(Role::kClient, Limits{});
  Result<std::vector<Frame>> frames = decode_all(decoder, bytes);
  ASSERT_THAT(frames, IsOk());
  ASSERT_THAT(*frames, SizeIs(1));
  EXPECT_EQ((*frames)[0].header, (FrameHeader{8, FrameType::kPing, 0x40, 0}));
}

TEST(FrameDecoder, AcceptsEveryValidDataShape) {
  Limits limits;
  limits.allow_compression = true;
  std::string bytes = raw_frame(FrameType::kData, 0, 1, "") +  // an empty message
                      raw_frame(FrameType::kData, kFlagContinued, 1, "part") +
                      raw_frame(FrameType::kData, kFlagCompressed, 1, "zz") +
                      raw_frame(FrameType::kData, kFlagNoMessage | kFlagEndStream, 1, "");
  FrameDecoder decoder(Role::kClient, limits);
  Result<std::vector<Frame>> frames = decode_all(decoder, bytes);
  ASSERT_THAT(frames, IsOk());
  EXPECT_THAT(*frames, SizeIs(4));
}

TEST(FrameDecoder, WindowUpdateMayTargetConnectionOrStream) {
  std::string bytes = raw_frame(FrameType::kWindowUpdate, 0, 0, u32(10)) +
                      raw_frame(FrameType::kWindowUpdate, 0, 7, u32(10));
  FrameDecoder decoder(Role::kServer, Limits{});
  Result<std::vector<Frame>> frames = decode_all(decoder, bytes);
  ASSERT_THAT(frames, IsOk());
  EXPECT_THAT(*frames, SizeIs(2));
}

TEST(FrameDecoder, ServerAcceptsIncreasingStreamIdsWithGaps) {
  constexpr uint64_t kMaxId = std::numeric_limits<uint64_t>::max();
  std::string bytes = raw_frame(FrameType::kHeaders, 0, 1, headers_payload()) +
                      raw_frame(FrameType::kHeaders, 0, 2, headers_payload()) +
                      raw_frame(FrameType::kData, 0, 1, "late data on an older stream") +
                      raw_frame(FrameType::kHeaders, 0, kMaxId, headers_payload());
  FrameDecoder decoder(Role::kServer, Limits{});
  Result<std::vector<Frame>> frames = decode_all(decoder, bytes);
  ASSERT_THAT(frames, IsOk());
  EXPECT_THAT(*frames, SizeIs(4));
  EXPECT_EQ(decoder.highest_opened_stream_id(), kMaxId);
}

TEST(FrameDecoder, ClientAcceptsResponseHeadersOnTheSameStream) {
  std::string bytes = raw_frame(FrameType::kHeaders, 0, 5, headers_payload()) +
                      raw_frame(FrameType::kHeaders, 0, 5, headers_payload()) +
                      raw_frame(FrameType::kHeaders, 0, 3, headers_payload());
  FrameDecoder decoder(Role::kClient, Limits{});
  EXPECT_THAT(decode_all(decoder, bytes), IsOk());
}

TEST(FrameDecoder, ErrorIsSticky) {
  FrameDecoder decoder(Role::kClient, Limits{});
  Result<std::vector<Frame>> first = decode_all(decoder, raw_header(0, FrameType::kData, 0, 0));
  ASSERT_THAT(first, StatusIs(StatusCode::kInternal));
  decoder.feed(Buffer::copy_of(ping_frame()));
  Result<std::optional<Frame>> again = decoder.next();
  EXPECT_EQ(again.status(), first.status());
  EXPECT_EQ(decoder.status(), first.status());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameDecoder, PayloadSharesTheFedBlock) {
  Buffer input = Buffer::copy_of(raw_frame(FrameType::kData, 0, 1, "zero copy"));
  const Block* block = input.slices()[0].block();
  FrameDecoder decoder(Role::kClient, Limits{});
  decoder.feed(std::move(input));
  Result<std::optional<Frame>> next = decoder.next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  ASSERT_THAT((*next)->payload.slices(), SizeIs(1));
  EXPECT_EQ((*next)->payload.slices()[0].block(), block);
}

TEST(FrameDecoder, ParsesHeaderLittleEndian) {
  std::string bytes = "\x04\x03\x02\x01\x03\x05\xff\xff\x08\x07\x06\x05\x04\x03\x02\x01";
  FrameHeader header = parse_frame_header(bytes.data());
  EXPECT_EQ(header, (FrameHeader{0x01020304, FrameType::kData, 0x05, 0x0102030405060708}));
}

}  // namespace
}  // namespace meshrpc::wire
