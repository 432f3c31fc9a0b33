#include "meshrpc/wire/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::wire {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

SettingsEntry entry(SettingId id, uint64_t value) { return {static_cast<uint16_t>(id), value}; }

TEST(Settings, AdvertisesEveryNegotiableLimit) {
  Limits ours;
  ours.max_frame_bytes = 32768;
  Settings settings = settings_for(ours);
  EXPECT_FALSE(settings.ack);
  EXPECT_THAT(settings.entries,
              ::testing::ElementsAre(entry(SettingId::kProtocolVersion, kProtocolVersion),
                                     entry(SettingId::kMaxFrameBytes, 32768),
                                     entry(SettingId::kMaxHeaderBytes, ours.max_header_bytes),
                                     entry(SettingId::kMaxMetadataEntries, 64),
                                     entry(SettingId::kMaxConcurrentStreams, 100),
                                     entry(SettingId::kInitialStreamWindowBytes, 1 << 20),
                                     entry(SettingId::kConnectionWindowBytes, 16 << 20),
                                     entry(SettingId::kMaxMessageBytes, 4 << 20)));
}

TEST(Settings, NegotiatingWithOurOwnSettingsChangesNothing) {
  Limits ours;
  Result<NegotiatedLimits> negotiated = negotiate(ours, settings_for(ours));
  ASSERT_THAT(negotiated, IsOk());
  EXPECT_EQ(negotiated->send, ours);
  EXPECT_EQ(negotiated->protocol_version, kProtocolVersion);
}

TEST(Settings, SizeLimitsTakeTheMinimumWindowsTakeThePeers) {
  Limits ours;
  ours.max_frame_bytes = 65536;
  ours.initial_stream_window_bytes = 1000000;
  Settings peer{
      false,
      {entry(SettingId::kMaxFrameBytes, 1 << 20), entry(SettingId::kMaxHeaderBytes, 8192),
       entry(SettingId::kMaxMetadataEntries, 10), entry(SettingId::kMaxConcurrentStreams, 1000),
       entry(SettingId::kMaxMessageBytes, 1 << 30),
       entry(SettingId::kInitialStreamWindowBytes, 65535),
       entry(SettingId::kConnectionWindowBytes, 1 << 30)}};
  Result<NegotiatedLimits> negotiated = negotiate(ours, peer);
  ASSERT_THAT(negotiated, IsOk());
  const Limits& send = negotiated->send;
  EXPECT_EQ(send.max_frame_bytes, 65536u);  // ours is lower
  EXPECT_EQ(send.max_header_bytes, 8192u);  // the peer's is lower
  EXPECT_EQ(send.max_metadata_entries, 10u);
  EXPECT_EQ(send.max_concurrent_streams, 100u);         // ours is lower
  EXPECT_EQ(send.max_message_bytes, 4u << 20);          // ours is lower
  EXPECT_EQ(send.initial_stream_window_bytes, 65535u);  // the peer's buffer, even if smaller
  EXPECT_EQ(send.connection_window_bytes, 1u << 30);    // the peer's buffer, even if larger
}

TEST(Settings, AbsentIdsMeanProtocolDefaultsAndUnknownIdsAreIgnored) {
  Limits ours;
  ours.max_frame_bytes = 4u << 20;
  ours.connection_window_bytes = 1 << 20;
  Result<NegotiatedLimits> negotiated = negotiate(ours, Settings{false, {{999, 7}, {0, 0}}});
  ASSERT_THAT(negotiated, IsOk());
  EXPECT_EQ(negotiated->send.max_frame_bytes, Limits{}.max_frame_bytes);
  EXPECT_EQ(negotiated->send.connection_window_bytes, Limits{}.connection_window_bytes);
}

TEST(Settings, LastEntryForAnIdWins) {
  Settings peer{
      false, {entry(SettingId::kMaxMetadataEntries, 5), entry(SettingId::kMaxMetadataEntries, 9)}};
  Result<NegotiatedLimits> negotiated = negotiate(Limits{}, peer);
  ASSERT_THAT(negotiated, IsOk());
  EXPECT_EQ(negotiated->send.max_metadata_entries, 9u);
}

TEST(Settings, NewerPeerVersionNegotiatesDownToOurs) {
  Result<NegotiatedLimits> negotiated =
      negotiate(Limits{}, Settings{false, {entry(SettingId::kProtocolVersion, 7)}});
  ASSERT_THAT(negotiated, IsOk());
  EXPECT_EQ(negotiated->protocol_version, kProtocolVersion);
}

TEST(Settings, HugeValuesClampToU32) {
  Settings peer{false, {entry(SettingId::kMaxFrameBytes, std::numeric_limits<uint64_t>::max())}};
  Limits ours;
  ours.max_frame_bytes = std::numeric_limits<uint32_t>::max();
  Result<NegotiatedLimits> negotiated = negotiate(ours, peer);
  ASSERT_THAT(negotiated, IsOk());
  EXPECT_EQ(negotiated->send.max_frame_bytes, std::numeric_limits<uint32_t>::max());
}

struct BadSettingCase {
  std::string name;
  SettingsEntry entry;
  StatusCode code;
  std::string message;
};

class BadSettingTest : public ::testing::TestWithParam<BadSettingCase> {};

TEST_P(BadSettingTest, IsRejected) {
  const BadSettingCase& c = GetParam();
  EXPECT_THAT(negotiate(Limits{}, Settings{false, {c.entry}}),
              StatusIs(c.code, HasSubstr(c.message)));
}

INSTANTIATE_TEST_SUITE_P(
    Negotiate, BadSettingTest,
    ::testing::Values(
        BadSettingCase{"VersionZero", entry(SettingId::kProtocolVersion, 0),
                       StatusCode::kUnimplemented,
                       "peer speaks protocol version 0, this side speaks 1..1"},
        BadSettingCase{"TinyFrames", entry(SettingId::kMaxFrameBytes, 100), StatusCode::kInternal,
                       "SETTINGS MAX_FRAME_BYTES value 100 is below minimum 16384"},
        BadSettingCase{"TinyHeaders", entry(SettingId::kMaxHeaderBytes, 10), StatusCode::kInternal,
                       "SETTINGS MAX_HEADER_BYTES value 10 is below minimum 1024"},
        BadSettingCase{"HugeStreamWindow", entry(SettingId::kInitialStreamWindowBytes, 1ull << 31),
                       StatusCode::kInternal,
                       "INITIAL_STREAM_WINDOW_BYTES value 2147483648 is above maximum 2147483647"},
        BadSettingCase{"HugeConnectionWindow", entry(SettingId::kConnectionWindowBytes, 1ull << 40),
                       StatusCode::kInternal, "CONNECTION_WINDOW_BYTES value 1099511627776"}),
    [](const auto& info) { return info.param.name; });

TEST(Settings, NegotiatingFromAnAckIsACallerBug) {
  EXPECT_THAT(negotiate(Limits{}, Settings{true, {}}), StatusIs(StatusCode::kInternal));
}

}  // namespace
}  // namespace meshrpc::wire
