#include "meshrpc/base/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>

namespace meshrpc {
namespace {

struct CodeCase {
  StatusCode code;
  std::string_view name;
  Status (*make)(std::string_view message);  // null for OK, which has no constructor
};

// Every canonical code with its gRPC name and number, in order.
constexpr CodeCase kCodeCases[] = {
    {StatusCode::kOk, "OK", nullptr},
    {StatusCode::kCancelled, "CANCELLED", cancelled_error},
    {StatusCode::kUnknown, "UNKNOWN", unknown_error},
    {StatusCode::kInvalidArgument, "INVALID_ARGUMENT", invalid_argument_error},
    {StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED", deadline_exceeded_error},
    {StatusCode::kNotFound, "NOT_FOUND", not_found_error},
    {StatusCode::kAlreadyExists, "ALREADY_EXISTS", already_exists_error},
    {StatusCode::kPermissionDenied, "PERMISSION_DENIED", permission_denied_error},
    {StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED", resource_exhausted_error},
    {StatusCode::kFailedPrecondition, "FAILED_PRECONDITION", failed_precondition_error},
    {StatusCode::kAborted, "ABORTED", aborted_error},
    {StatusCode::kOutOfRange, "OUT_OF_RANGE", out_of_range_error},
    {StatusCode::kUnimplemented, "UNIMPLEMENTED", unimplemented_error},
    {StatusCode::kInternal, "INTERNAL", internal_error},
    {StatusCode::kUnavailable, "UNAVAILABLE", unavailable_error},
    {StatusCode::kDataLoss, "DATA_LOSS", data_loss_error},
    {StatusCode::kUnauthenticated, "UNAUTHENTICATED", unauthenticated_error},
};

TEST(StatusCode, TableCoversEveryCodeWithGrpcNumbers) {
  ASSERT_EQ(std::size(kCodeCases), static_cast<size_t>(kStatusCodeCount));
  for (size_t i = 0; i < std::size(kCodeCases); ++i) {
    EXPECT_EQ(static_cast<size_t>(kCodeCases[i].code), i) << kCodeCases[i].name;
  }
}

TEST(StatusCode, NameRoundTripsThroughParse) {
  for (const CodeCase& c : kCodeCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(status_code_name(c.code), c.name);
    StatusCode parsed = StatusCode::kInternal;
    ASSERT_TRUE(parse_status_code(c.name, &parsed));
    EXPECT_EQ(parsed, c.code);
  }
}

TEST(StatusCode, ParseRejectsUnknownNames) {
  StatusCode parsed = StatusCode::kInternal;
  for (std::string_view name : {"", "ok", "Unavailable", "UNAVAILABLE ", "UNKNOWN_CODE", "17"}) {
    EXPECT_FALSE(parse_status_code(name, &parsed)) << '"' << name << '"';
  }
  EXPECT_EQ(parsed, StatusCode::kInternal);
}

TEST(StatusCode, OutOfRangeValueHasPlaceholderName) {
  EXPECT_EQ(status_code_name(static_cast<StatusCode>(kStatusCodeCount)), "UNKNOWN_CODE");
  EXPECT_EQ(status_code_name(static_cast<StatusCode>(255)), "UNKNOWN_CODE");
}

TEST(StatusCode, StreamsItsName) {
  std::ostringstream os;
  os << StatusCode::kDeadlineExceeded;
  EXPECT_EQ(os.str(), "DEADLINE_EXCEEDED");
}

TEST(Status, ConstructorsSetCodeAndMessage) {
  for (const CodeCase& c : kCodeCases) {
    if (c.make == nullptr) continue;
    SCOPED_TRACE(c.name);
    Status status = c.make("what went wrong");
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), c.code);
    EXPECT_EQ(status.message(), "what went wrong");
    EXPECT_EQ(status.details(), "");
    EXPECT_EQ(status, Status(c.code, "what went wrong"));
  }
}

TEST(Status, DefaultIsOkWithNoMessage) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.details(), "");
  EXPECT_EQ(status, Status::ok_status());
}

TEST(Status, OkDropsMessageAndDetails) {
  Status status(StatusCode::kOk, "ignored", "also ignored");
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.details(), "");
  EXPECT_EQ(status, Status());
}

TEST(Status, KeepsDetails) {
  Status status(StatusCode::kAborted, "conflict", "\x01\x02payload");
  EXPECT_EQ(status.details(), "\x01\x02payload");
}

TEST(Status, CopyIsIndependentDeepCopy) {
  Status original(StatusCode::kNotFound, "key k1", "d");
  Status copy(original);
  EXPECT_EQ(copy, original);
  EXPECT_NE(copy.message().data(), original.message().data());  // not shared storage

  Status assigned = unavailable_error("x");
  assigned = original;
  EXPECT_EQ(assigned, original);
  assigned = Status();
  EXPECT_TRUE(assigned.ok());
  EXPECT_EQ(original.code(), StatusCode::kNotFound);
}

TEST(Status, SelfCopyAssignmentKeepsValue) {
  Status status = internal_error("bug");
  Status& alias = status;
  status = alias;
  EXPECT_EQ(status, internal_error("bug"));
}

TEST(Status, MoveTransfersValue) {
  Status source = data_loss_error("block 7 corrupt");
  Status moved(std::move(source));
  EXPECT_EQ(moved, data_loss_error("block 7 corrupt"));

  Status target;
  target = std::move(moved);
  EXPECT_EQ(target.code(), StatusCode::kDataLoss);
  EXPECT_EQ(target.message(), "block 7 corrupt");
}

TEST(Status, WithContextPrependsAndKeepsCodeAndDetails) {
  Status status(StatusCode::kUnavailable, "connection refused", "detail");
  Status wrapped = status.with_context("dial 10.0.0.1:7000");
  EXPECT_EQ(wrapped.code(), StatusCode::kUnavailable);
  EXPECT_EQ(wrapped.message(), "dial 10.0.0.1:7000: connection refused");
  EXPECT_EQ(wrapped.details(), "detail");
  EXPECT_EQ(status.message(), "connection refused");  // the original is unchanged
}

TEST(Status, WithContextOnOkStaysOk) { EXPECT_EQ(Status().with_context("anything"), Status()); }

TEST(Status, EqualityComparesCodeMessageAndDetails) {
  Status base(StatusCode::kAborted, "m", "d");
  EXPECT_EQ(base, Status(StatusCode::kAborted, "m", "d"));
  EXPECT_NE(base, Status(StatusCode::kCancelled, "m", "d"));
  EXPECT_NE(base, Status(StatusCode::kAborted, "other", "d"));
  EXPECT_NE(base, Status(StatusCode::kAborted, "m", "other"));
  EXPECT_NE(base, Status());
  EXPECT_NE(Status(), base);
}

TEST(Status, ToStringShowsNameAndMessage) {
  EXPECT_EQ(Status().to_string(), "OK");
  EXPECT_EQ(unavailable_error("connection refused").to_string(), "UNAVAILABLE: connection refused");
  EXPECT_EQ(Status(StatusCode::kCancelled, "").to_string(), "CANCELLED");

  std::ostringstream os;
  os << not_found_error("no key");
  EXPECT_EQ(os.str(), "NOT_FOUND: no key");
}

}  // namespace
}  // namespace meshrpc
