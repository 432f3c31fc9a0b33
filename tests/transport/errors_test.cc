#include "meshrpc/transport/errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/error.hpp>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::transport {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct MappingCase {
  error_code ec;
  StatusCode code;
};

// What the call path does with each transport failure: give up (CANCELLED), report a missed
// deadline, back off on exhausted resources, or retry elsewhere (UNAVAILABLE).
TEST(ToStatus, MapsEachTransportErrorToTheCanonicalCode) {
  const MappingCase cases[] = {
      {asio::error::operation_aborted, StatusCode::kCancelled},
      {asio::error::timed_out, StatusCode::kDeadlineExceeded},
      {asio::error::no_buffer_space, StatusCode::kResourceExhausted},
      {asio::error::no_descriptors, StatusCode::kResourceExhausted},
      {asio::error::eof, StatusCode::kUnavailable},
      {asio::error::connection_reset, StatusCode::kUnavailable},
      {asio::error::connection_refused, StatusCode::kUnavailable},
      {asio::error::connection_aborted, StatusCode::kUnavailable},
      {asio::error::broken_pipe, StatusCode::kUnavailable},
      {asio::error::host_unreachable, StatusCode::kUnavailable},
      {asio::error::network_unreachable, StatusCode::kUnavailable},
      {asio::error::host_not_found, StatusCode::kUnavailable},
  };
  for (const MappingCase& test : cases) {
    EXPECT_THAT(to_status(test.ec, "op"), StatusIs(test.code)) << test.ec.message();
  }
}

TEST(ToStatus, SuccessIsOk) { EXPECT_THAT(to_status(error_code(), "connect x:1"), IsOk()); }

TEST(ToStatus, MessageStartsWithTheContextThenTheError) {
  const error_code refused = asio::error::connection_refused;
  EXPECT_THAT(
      to_status(refused, "connect 10.0.0.1:80"),
      StatusIs(StatusCode::kUnavailable, StartsWith("connect 10.0.0.1:80: " + refused.message())));
  EXPECT_THAT(to_status(refused, ""),
              StatusIs(StatusCode::kUnavailable, HasSubstr(refused.message())));
}

}  // namespace
}  // namespace meshrpc::transport
