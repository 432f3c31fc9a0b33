// GoogleMock matchers for Status and Result<T>, so tests check the specific code:
//   EXPECT_THAT(call(), StatusIs(StatusCode::kUnavailable));
//   EXPECT_THAT(call(), StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_frame_bytes")));
//   EXPECT_THAT(parse("7"), IsOkAndHolds(7));
//   EXPECT_THAT(status, IsOk());
#pragma once

#include <gmock/gmock.h>

#include <ostream>
#include <string>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"

namespace meshrpc::testing {

namespace internal {

inline const Status& get_status(const Status& status) { return status; }
template <typename T>
const Status& get_status(const Result<T>& result) {
  return result.status();
}

}  // namespace internal

MATCHER(IsOk, "is OK") {
  const Status& status = internal::get_status(arg);
  *result_listener << "whose status is " << status;
  return status.ok();
}

MATCHER_P(StatusIs, code, "has status code " + std::string(status_code_name(code))) {
  const Status& status = internal::get_status(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + std::string(status_code_name(code)) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const Status& status = internal::get_status(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code &&
         ::testing::Matcher<std::string>(message_matcher)
             .MatchAndExplain(std::string(status.message()), result_listener);
}

MATCHER_P(IsOkAndHolds, value_matcher,
          "is OK and holds a value that " +
              ::testing::DescribeMatcher<typename std::remove_cvref_t<arg_type>::value_type>(
                  value_matcher)) {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  using Value = typename std::decay_t<decltype(arg)>::value_type;
  return ::testing::Matcher<const Value&>(::testing::SafeMatcherCast<const Value&>(value_matcher))
      .MatchAndExplain(arg.value(), result_listener);
}

}  // namespace meshrpc::testing
