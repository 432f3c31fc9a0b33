#include "meshrpc/wire/frame_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "raw_frames.h"

namespace meshrpc::wire {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using namespace ::meshrpc::wire::testing;  // NOLINT(google-build-using-namespace): test helpers

// The encoder's output is compared with bytes built by hand from docs/protocol.md.
TEST(FrameEncoder, EncodesHeadersByteForByte) {
  FrameEncoder encoder{Limits{}};
  Buffer out;
  Headers headers{std::chrono::milliseconds(250), "/kv.Store/Get", {{"auth", "tok"}}};
  ASSERT_THAT(encoder.encode_headers(9, kFlagEndStream, headers, out), IsOk());
  std::string payload =
      u64(250000000) + u16(13) + "/kv.Store/Get" + raw_metadata({{"auth", "tok"}});
  EXPECT_EQ(out.to_string(), raw_frame(FrameType::kHeaders, kFlagEndStream, 9, payload));
}

TEST(FrameEncoder, EncodesTrailersByteForByte) {
  FrameEncoder encoder{Limits{}};
  Buffer out;
  Trailers trailers{Status(StatusCode::kAborted, "conflict", "\x01\x02"), true, {{"a", "b"}}};
  ASSERT_THAT(encoder.encode_trailers(3, trailers, out), IsOk());
  std::string payload =
      u8(10) + u32(8) + "conflict" + u32(2) + "\x01\x02" + raw_metadata({{"a", "b"}});
  EXPECT_EQ(out.to_string(),
            raw_frame(FrameType::kTrailers, kFlagRejectedBeforeDispatch, 3, payload));
}

TEST(FrameEncoder, EncodesControlFramesByteForByte) {
  FrameEncoder encoder{Limits{}};
  Buffer out;
  ASSERT_THAT(encoder.encode_settings(Settings{false, {{2, 16384}}}, out), IsOk());
  ASSERT_THAT(encoder.encode_settings(Settings{true, {}}, out), IsOk());
  ASSERT_THAT(encoder.encode_cancel(4, Cancel{StatusCode::kCancelled, "bye"}, out), IsOk());
  ASSERT_THAT(encoder.encode_window_update(0, WindowUpdate{1000}, out), IsOk());
  ASSERT_THAT(encoder.encode_ping(Ping{true, 0x0102030405060708}, out), IsOk());
  ASSERT_THAT(encoder.encode_goaway(GoAway{12, StatusCode::kOk, "restart"}, out), IsOk());
  EXPECT_EQ(out.to_string(),
            raw_frame(FrameType::kSettings, 0, 0, u16(2) + u64(16384)) +
                raw_frame(FrameType::kSettings, kFlagAck, 0, "") +
                raw_frame(FrameType::kCancel, 0, 4, u8(1) + u32(3) + "bye") +
                raw_frame(FrameType::kWindowUpdate, 0, 0, u32(1000)) +
                raw_frame(FrameType::kPing, kFlagAck, 0, "\x08\x07\x06\x05\x04\x03\x02\x01") +
                raw_frame(FrameType::kGoAway, 0, 0, u64(12) + u8(0) + u32(7) + "restart"));
  // Control frames land contiguously in one block: one iovec for the whole batch.
  EXPECT_THAT(out.slices(), SizeIs(1));
}

TEST(FrameEncoder, DataSharesTheMessageBlocks) {
  FrameEncoder encoder{Limits{}};
  Buffer message = Buffer::copy_of(std::string(5000, 'm'));
  const Block* message_block = message.slices()[0].block();
  Buffer out;
  ASSERT_THAT(encoder.encode_data(1, kFlagEndStream, message, out), IsOk());
  EXPECT_EQ(out.to_string(),
            raw_frame(FrameType::kData, kFlagEndStream, 1, std::string(5000, 'm')));
  ASSERT_THAT(out.slices(), SizeIs(2));
  EXPECT_EQ(out.slices()[1].block(), message_block);
}

TEST(FrameEncoder, EncodesEmptyMessageAndPureHalfClose) {
  FrameEncoder encoder{Limits{}};
  Buffer out;
  ASSERT_THAT(encoder.encode_data(1, 0, Buffer(), out), IsOk());
  ASSERT_THAT(encoder.encode_data(1, kFlagNoMessage | kFlagEndStream, Buffer(), out), IsOk());
  EXPECT_EQ(out.to_string(),
            raw_frame(FrameType::kData, 0, 1, "") +
                raw_frame(FrameType::kData, kFlagNoMessage | kFlagEndStream, 1, ""));
}

struct EncodeErrorCase {
  std::string name;
  std::function<Status(const FrameEncoder&, Buffer&)> encode;
  StatusCode code;
  std::string message;
};

class EncodeErrorTest : public ::testing::TestWithParam<EncodeErrorCase> {};

// Errors leave the output untouched, so one bad call does not corrupt a connection's batch.
TEST_P(EncodeErrorTest, RejectsAndLeavesOutputUnchanged) {
  const EncodeErrorCase& c = GetParam();
  Limits limits;
  limits.max_stream_id = 1000;
  FrameEncoder encoder(limits);
  Buffer out = Buffer::copy_of("batch so far");
  EXPECT_THAT(c.encode(encoder, out), StatusIs(c.code, HasSubstr(c.message)));
  EXPECT_EQ(out.to_string(), "batch so far");
}

Headers headers_with_metadata(size_t entries) {
  Headers headers;
  headers.method = "/m";
  for (size_t i = 0; i < entries; ++i) headers.metadata.emplace_back("k", "v");
  return headers;
}

const StatusCode kExhausted = StatusCode::kResourceExhausted;
const StatusCode kInvalid = StatusCode::kInvalidArgument;

INSTANTIATE_TEST_SUITE_P(
    Encode, EncodeErrorTest,
    ::testing::Values(
        EncodeErrorCase{
            "MethodTooLong",
            [](const FrameEncoder& e, Buffer& out) {
              return e.encode_headers(1, 0, Headers{{}, std::string(65536, 'm'), {}}, out);
            },
            kExhausted, "method length 65536 exceeds 65535"},
        EncodeErrorCase{"MetadataKeyTooLong",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_headers(
                              1, 0, Headers{{}, "/m", {{std::string(65536, 'k'), ""}}}, out);
                        },
                        kExhausted, "metadata key length 65536 exceeds 65535"},
        EncodeErrorCase{"TooManyMetadataEntries",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_headers(1, 0, headers_with_metadata(65), out);
                        },
                        kExhausted,
                        "HEADERS has 65 metadata entries, exceeds max_metadata_entries 64"},
        EncodeErrorCase{"HeaderBlockTooBig",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_headers(
                              1, 0, Headers{{}, "/m", {{"k", std::string(70000, 'v')}}}, out);
                        },
                        kExhausted, "HEADERS payload 70021 bytes exceeds max_header_bytes 65536"},
        EncodeErrorCase{
            "TrailerBlockTooBig",
            [](const FrameEncoder& e, Buffer& out) {
              Trailers t{Status(StatusCode::kInternal, std::string(65536, 'x')), false, {}};
              return e.encode_trailers(1, t, out);
            },
            kExhausted, "TRAILERS payload 65547 bytes exceeds max_header_bytes 65536"},
        EncodeErrorCase{
            "NegativeTimeout",
            [](const FrameEncoder& e, Buffer& out) {
              return e.encode_headers(1, 0, Headers{std::chrono::nanoseconds(-1), "/m", {}}, out);
            },
            kInvalid, "timeout -1ns is negative"},
        EncodeErrorCase{"HeadersUndefinedFlag",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_headers(1, 0x02, Headers{{}, "/m", {}}, out);
                        },
                        kInvalid, "HEADERS flags 2 include bits outside 1"},
        EncodeErrorCase{"HeadersOnStreamZero",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_headers(0, 0, Headers{{}, "/m", {}}, out);
                        },
                        kInvalid, "HEADERS needs a stream id != 0"},
        EncodeErrorCase{"StreamIdAboveLimit",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_headers(1001, 0, Headers{{}, "/m", {}}, out);
                        },
                        kExhausted, "stream id 1001 exceeds max_stream_id 1000"},
        EncodeErrorCase{"DataTooBig",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_data(1, 0, Buffer::copy_of(std::string(1048577, 'd')),
                                               out);
                        },
                        kExhausted, "DATA payload 1048577 bytes exceeds max_frame_bytes 1048576"},
        EncodeErrorCase{"DataCompressedNotNegotiated",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_data(1, kFlagCompressed, Buffer::copy_of("z"), out);
                        },
                        kInvalid, "COMPRESSED"},
        EncodeErrorCase{
            "NoMessageWithPayload",
            [](const FrameEncoder& e, Buffer& out) {
              return e.encode_data(1, kFlagNoMessage | kFlagEndStream, Buffer::copy_of("abc"), out);
            },
            kInvalid, "NO_MESSAGE needs END_STREAM, no CONTINUED and an empty part (got 3"},
        EncodeErrorCase{"NoMessageWithoutEndStream",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_data(1, kFlagNoMessage, Buffer(), out);
                        },
                        kInvalid, "NO_MESSAGE needs END_STREAM"},
        EncodeErrorCase{"CancelWithOk",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_cancel(1, Cancel{StatusCode::kOk, ""}, out);
                        },
                        kInvalid, "CANCEL code 0 is not a canonical status code (1..16)"},
        EncodeErrorCase{"GoAwayBadCode",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_goaway(GoAway{0, static_cast<StatusCode>(17), ""}, out);
                        },
                        kInvalid, "GOAWAY code 17"},
        EncodeErrorCase{"WindowUpdateZero",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_window_update(0, WindowUpdate{0}, out);
                        },
                        kInvalid, "increment must be > 0"},
        EncodeErrorCase{"SettingsAckWithEntries",
                        [](const FrameEncoder& e, Buffer& out) {
                          return e.encode_settings(Settings{true, {{1, 1}}}, out);
                        },
                        kInvalid, "SETTINGS ACK with 1 entries"},
        EncodeErrorCase{
            "TooManySettings",
            [](const FrameEncoder& e, Buffer& out) {
              return e.encode_settings(Settings{false, std::vector<SettingsEntry>(65)}, out);
            },
            kExhausted, "SETTINGS has 65 entries, exceeds max_settings_entries 64"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace meshrpc::wire
