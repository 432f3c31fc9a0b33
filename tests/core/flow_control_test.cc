#include "meshrpc/core/flow_control.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SendWindow, ConsumesAndIsRefilledByGrants) {
  SendWindow window(100);
  EXPECT_EQ(window.available(), 100u);
  window.consume(100);
  EXPECT_EQ(window.available(), 0u);
  EXPECT_THAT(window.grant(40, "stream 1"), IsOk());
  EXPECT_EQ(window.available(), 40u);
}

TEST(SendWindow, GrantPastTheMaximumIsAProtocolError) {
  SendWindow window(static_cast<uint32_t>(kMaxWindowBytes));
  EXPECT_THAT(window.grant(1, "stream 3"),
              StatusIs(StatusCode::kInternal, HasSubstr("stream 3 window update of 1")));
}

TEST(ReceiveWindow, ASenderExceedingItsGrantIsCaught) {
  ReceiveWindow window(1000);
  EXPECT_THAT(window.on_received(600, "stream 1"), IsOk());
  EXPECT_THAT(window.on_received(401, "stream 1"),
              StatusIs(StatusCode::kInternal, HasSubstr("received 401 bytes with only 400")));
}

TEST(ReceiveWindow, GrantsInBatchesOfAtLeastHalfTheWindow) {
  ReceiveWindow window(1000);
  ASSERT_THAT(window.on_received(1000, "c"), IsOk());
  EXPECT_EQ(window.on_consumed(300), std::nullopt);
  EXPECT_EQ(window.on_consumed(199), std::nullopt);
  EXPECT_EQ(window.on_consumed(1), std::optional<uint32_t>(500));
  EXPECT_EQ(window.remaining(), 500u);
  EXPECT_EQ(window.on_consumed(500), std::optional<uint32_t>(500));
  EXPECT_EQ(window.remaining(), 1000u);
}

// Property: a receiver that grants what it consumes keeps a well-behaved sender going
// forever, and the sender never has more than the window outstanding.
TEST(FlowControl, SenderAndReceiverNeverDeadlockOrOverrun) {
  SendWindow send(4096);
  ReceiveWindow receive(4096);
  uint64_t in_flight = 0, delivered = 0;
  for (int step = 0; step < 100'000; ++step) {
    const uint64_t chunk = std::min<uint64_t>(send.available(), 1 + step % 1500);
    if (chunk > 0) {
      send.consume(chunk);
      ASSERT_THAT(receive.on_received(chunk, "stream"), IsOk());
      in_flight += chunk;
    }
    ASSERT_LE(in_flight, 4096u);
    const uint64_t read = std::min<uint64_t>(in_flight, 700);
    in_flight -= read;
    delivered += read;
    if (auto grant = receive.on_consumed(read)) {
      ASSERT_THAT(send.grant(*grant, "stream"), IsOk());
    }
  }
  EXPECT_GT(delivered, 50'000'000u);
}

}  // namespace
}  // namespace meshrpc::core
