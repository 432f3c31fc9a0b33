// Status: the outcome of every operation on meshrpc's call path.
//
// A Status is a canonical code, a message, and optional opaque details (bytes the
// application chose, e.g. a serialized error proto). OK carries no allocation, so returning
// Status::ok() on the hot path is free. Statuses are values: copy, compare, move freely; a
// Status is not thread-safe to mutate concurrently, like any value type.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace meshrpc {

// The 17 canonical codes (the gRPC set, same numbers, so they map 1:1 on gateways).
// Each says what a caller should do when it sees it.
enum class StatusCode : uint8_t {
  // Not an error. Returned on success.
  kOk = 0,
  // The caller cancelled the operation. Do not retry; the caller no longer wants the result.
  kCancelled = 1,
  // An error with no better code (e.g. an unknown status from another address space).
  // Treat like kInternal unless the method documents otherwise.
  kUnknown = 2,
  // The request itself is invalid, whatever the state of the system (bad argument, malformed
  // name). Do not retry without fixing the request.
  kInvalidArgument = 3,
  // The deadline passed before the operation finished. It may still have taken effect on the
  // server; retry only if the operation is idempotent, and with a new deadline.
  kDeadlineExceeded = 4,
  // A requested entity (key, method target, file) does not exist.
  kNotFound = 5,
  // The entity a client tried to create already exists.
  kAlreadyExists = 6,
  // The caller is known but lacks permission. Do not retry with the same identity.
  kPermissionDenied = 7,
  // A limit was hit (quota, queue, message size, concurrent streams). Retry later with
  // backoff, or reduce the request; the message names the limit.
  kResourceExhausted = 8,
  // The system is not in a state required for the operation (e.g. deleting a non-empty
  // directory, a blocking call made on an io thread). Do not retry until the state is fixed.
  kFailedPrecondition = 9,
  // A concurrency conflict (transaction abort, lost leadership). Retry at a higher level:
  // restart the whole read-modify-write sequence.
  kAborted = 10,
  // The operation went past a valid range (read past end of file). Unlike kInvalidArgument,
  // this may become valid as the system changes.
  kOutOfRange = 11,
  // This server does not offer the method or feature. Do not retry here.
  kUnimplemented = 12,
  // An invariant the system relies on was broken (protocol violation, internal bug).
  // Do not retry blindly; report it.
  kInternal = 13,
  // The service is unavailable right now (connection refused or reset, server draining).
  // Usually transient: retry the failing call with backoff, if retrying it is safe.
  kUnavailable = 14,
  // Unrecoverable data loss or corruption. Report; do not retry.
  kDataLoss = 15,
  // The request has no valid credentials. Obtain credentials, then retry.
  kUnauthenticated = 16,
};

inline constexpr int kStatusCodeCount = 17;

// "OK", "CANCELLED", ..., as gRPC spells them. Unknown values give "UNKNOWN_CODE".
std::string_view status_code_name(StatusCode code);
// Inverse of status_code_name; false if `name` is not one of the 17 names.
bool parse_status_code(std::string_view name, StatusCode* code);

class [[nodiscard]] Status {
 public:
  // OK.
  Status() = default;
  Status(StatusCode code, std::string_view message);
  Status(StatusCode code, std::string_view message, std::string_view details);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status ok_status() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }
  std::string_view details() const { return rep_ ? std::string_view(rep_->details) : ""; }

  // A copy with `context + ": "` prepended to the message; keeps code and details.
  Status with_context(std::string_view context) const;

  // "OK" or "UNAVAILABLE: connection refused".
  std::string to_string() const;

  // Marks a status as consumed when a caller deliberately drops it.
  void ignore_error() const {}

  friend bool operator==(const Status& a, const Status& b);

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    std::string details;
  };
  std::unique_ptr<Rep> rep_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);
std::ostream& operator<<(std::ostream& os, StatusCode code);

// Short constructors, so call sites read as the condition they report.
Status cancelled_error(std::string_view message);
Status unknown_error(std::string_view message);
Status invalid_argument_error(std::string_view message);
Status deadline_exceeded_error(std::string_view message);
Status not_found_error(std::string_view message);
Status already_exists_error(std::string_view message);
Status permission_denied_error(std::string_view message);
Status resource_exhausted_error(std::string_view message);
Status failed_precondition_error(std::string_view message);
Status aborted_error(std::string_view message);
Status out_of_range_error(std::string_view message);
Status unimplemented_error(std::string_view message);  // StatusCode::kUnimplemented
Status internal_error(std::string_view message);
Status unavailable_error(std::string_view message);
Status data_loss_error(std::string_view message);
Status unauthenticated_error(std::string_view message);

}  // namespace meshrpc
