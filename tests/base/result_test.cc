#include "meshrpc/base/result.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "meshrpc/base/status.h"
#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"

namespace meshrpc {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::IsOkAndHolds;
using ::meshrpc::testing::StatusIs;
using ::testing::ExplainMatchResult;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pointee;
using ::testing::StringMatchResultListener;

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return invalid_argument_error(std::string("not a digit: ") + c);
  return c - '0';
}

TEST(Result, HoldsValue) {
  Result<int> result = parse_digit('7');
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(static_cast<bool>(result));
  EXPECT_EQ(result.value(), 7);
  EXPECT_EQ(*result, 7);
  EXPECT_TRUE(result.status().ok());
  EXPECT_EQ(result.value_or(-1), 7);
}

TEST(Result, HoldsError) {
  Result<int> result = parse_digit('x');
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(static_cast<bool>(result));
  EXPECT_EQ(result.status(), invalid_argument_error("not a digit: x"));
  EXPECT_EQ(result.value_or(-1), -1);
}

TEST(Result, FromOkStatusBecomesInternal) {
  Result<int> result = Status();
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInternal);
}

TEST(Result, ConvertsFromCompatibleValue) {
  Result<std::string> result = "hello";  // const char* -> std::string
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->size(), 5u);
}

TEST(Result, HoldsMoveOnlyValue) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(42);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(**result, 42);

  Result<std::unique_ptr<int>> moved = std::move(result);
  std::unique_ptr<int> taken = std::move(moved).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 42);
}

TEST(Result, MovesStatusOut) {
  Result<std::unique_ptr<int>> result = not_found_error("gone");
  Status status = std::move(result).status();
  EXPECT_EQ(status, not_found_error("gone"));
}

// Counts how far a function got, to prove the macros return early.
struct Progress {
  int steps = 0;
};

Result<int> sum_digits(const std::string& text, Progress& progress) {
  int sum = 0;
  for (char c : text) {
    MESHRPC_ASSIGN_OR_RETURN(int digit, parse_digit(c));
    sum += digit;
    ++progress.steps;
  }
  return sum;
}

TEST(StatusMacros, AssignOrReturnAssignsValues) {
  Progress progress;
  EXPECT_THAT(sum_digits("123", progress), IsOkAndHolds(6));
  EXPECT_EQ(progress.steps, 3);
}

TEST(StatusMacros, AssignOrReturnReturnsFirstError) {
  Progress progress;
  EXPECT_THAT(sum_digits("12x4", progress),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a digit: x")));
  EXPECT_EQ(progress.steps, 2);
}

Result<std::unique_ptr<int>> make_box(int value) {
  if (value < 0) return out_of_range_error("negative");
  return std::make_unique<int>(value);
}

Result<int> unbox(int value) {
  std::unique_ptr<int> box;
  MESHRPC_ASSIGN_OR_RETURN(box, make_box(value));  // assigns to an existing variable
  return *box;
}

TEST(StatusMacros, AssignOrReturnMovesMoveOnlyValues) {
  EXPECT_THAT(unbox(5), IsOkAndHolds(5));
  EXPECT_THAT(unbox(-1), StatusIs(StatusCode::kOutOfRange));
}

Status check_all(std::initializer_list<Status> steps, Progress& progress) {
  for (const Status& step : steps) {
    MESHRPC_RETURN_IF_ERROR(step);
    ++progress.steps;
  }
  return Status();
}

TEST(StatusMacros, ReturnIfErrorContinuesOnOk) {
  Progress progress;
  EXPECT_THAT(check_all({Status(), Status()}, progress), IsOk());
  EXPECT_EQ(progress.steps, 2);
}

TEST(StatusMacros, ReturnIfErrorReturnsFirstError) {
  Progress progress;
  Status result = check_all({Status(), aborted_error("first"), internal_error("second")}, progress);
  EXPECT_EQ(result, aborted_error("first"));
  EXPECT_EQ(progress.steps, 1);
}

Result<int> checked_digit(char c, Progress& progress) {
  MESHRPC_RETURN_IF_ERROR(c == '0' ? failed_precondition_error("zero") : Status());
  ++progress.steps;
  return parse_digit(c);
}

TEST(StatusMacros, ReturnIfErrorWorksInResultFunctions) {
  Progress progress;
  EXPECT_THAT(checked_digit('0', progress), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_EQ(progress.steps, 0);
  EXPECT_THAT(checked_digit('3', progress), IsOkAndHolds(3));
  EXPECT_EQ(progress.steps, 1);
}

TEST(StatusMatchers, IsOkMatchesOkStatusAndResult) {
  EXPECT_THAT(Status(), IsOk());
  EXPECT_THAT(parse_digit('1'), IsOk());
  EXPECT_THAT(unavailable_error("down"), Not(IsOk()));
  EXPECT_THAT(parse_digit('z'), Not(IsOk()));
}

TEST(StatusMatchers, IsOkExplainsMismatch) {
  StringMatchResultListener listener;
  EXPECT_FALSE(ExplainMatchResult(IsOk(), unavailable_error("down"), &listener));
  EXPECT_EQ(listener.str(), "whose status is UNAVAILABLE: down");
}

TEST(StatusMatchers, StatusIsChecksCode) {
  EXPECT_THAT(unavailable_error("down"), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(Status(), StatusIs(StatusCode::kOk));
  EXPECT_THAT(parse_digit('z'), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(unavailable_error("down"), Not(StatusIs(StatusCode::kInternal)));
  EXPECT_THAT(parse_digit('1'), Not(StatusIs(StatusCode::kInvalidArgument)));
}

TEST(StatusMatchers, StatusIsExplainsMismatch) {
  StringMatchResultListener listener;
  EXPECT_FALSE(
      ExplainMatchResult(StatusIs(StatusCode::kInternal), aborted_error("conflict"), &listener));
  EXPECT_EQ(listener.str(), "whose status is ABORTED: conflict");
  EXPECT_EQ(::testing::DescribeMatcher<Status>(StatusIs(StatusCode::kInternal)),
            "has status code INTERNAL");
}

TEST(StatusMatchers, StatusIsChecksMessage) {
  Status status = resource_exhausted_error("frame length 9000000 exceeds max_frame_bytes");
  EXPECT_THAT(status, StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_frame_bytes")));
  EXPECT_THAT(status, Not(StatusIs(StatusCode::kResourceExhausted, HasSubstr("window"))));
  EXPECT_THAT(status, Not(StatusIs(StatusCode::kInternal, HasSubstr("max_frame_bytes"))));
  EXPECT_THAT(aborted_error("exact"), StatusIs(StatusCode::kAborted, "exact"));
}

TEST(StatusMatchers, StatusIsWithMessageExplainsMismatch) {
  StringMatchResultListener listener;
  EXPECT_FALSE(ExplainMatchResult(StatusIs(StatusCode::kAborted, HasSubstr("window")),
                                  aborted_error("conflict"), &listener));
  EXPECT_THAT(listener.str(), HasSubstr("whose status is ABORTED: conflict"));
}

TEST(StatusMatchers, IsOkAndHoldsChecksValue) {
  EXPECT_THAT(parse_digit('4'), IsOkAndHolds(4));
  EXPECT_THAT(parse_digit('4'), IsOkAndHolds(::testing::Gt(3)));
  EXPECT_THAT(parse_digit('4'), Not(IsOkAndHolds(5)));
  EXPECT_THAT(parse_digit('x'), Not(IsOkAndHolds(4)));
  EXPECT_THAT(make_box(9), IsOkAndHolds(Pointee(9)));
}

TEST(StatusMatchers, IsOkAndHoldsExplainsMismatch) {
  StringMatchResultListener error_listener;
  EXPECT_FALSE(ExplainMatchResult(IsOkAndHolds(4), parse_digit('x'), &error_listener));
  EXPECT_EQ(error_listener.str(), "whose status is INVALID_ARGUMENT: not a digit: x");

  StringMatchResultListener value_listener;
  EXPECT_FALSE(
      ExplainMatchResult(IsOkAndHolds(::testing::Gt(5)), parse_digit('4'), &value_listener));
  EXPECT_EQ(::testing::DescribeMatcher<Result<int>>(IsOkAndHolds(4)),
            "is OK and holds a value that is equal to 4");
}

}  // namespace
}  // namespace meshrpc
