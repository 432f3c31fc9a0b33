#include "meshrpc/base/status.h"

#include <array>
#include <cstdio>
#include <cstdlib>

#include "meshrpc/base/result.h"

namespace meshrpc {
namespace {

constexpr std::array<std::string_view, kStatusCodeCount> kCodeNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",  // status code 12
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

}  // namespace

std::string_view status_code_name(StatusCode code) {
  auto index = static_cast<size_t>(code);
  return index < kCodeNames.size() ? kCodeNames[index] : "UNKNOWN_CODE";
}

bool parse_status_code(std::string_view name, StatusCode* code) {
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (kCodeNames[i] == name) {
      *code = static_cast<StatusCode>(i);
      return true;
    }
  }
  return false;
}

Status::Status(StatusCode code, std::string_view message) : Status(code, message, "") {}

Status::Status(StatusCode code, std::string_view message, std::string_view details) {
  // An OK status never carries a message: OK is the absence of an error.
  if (code != StatusCode::kOk) {
    rep_ = std::make_unique<Rep>(Rep{code, std::string(message), std::string(details)});
  }
}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) {
    rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  }
  return *this;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return Status();
  std::string message(context);
  message += ": ";
  message += rep_->message;
  return Status(rep_->code, message, rep_->details);
}

std::string Status::to_string() const {
  if (ok()) return "OK";
  std::string out(status_code_name(rep_->code));
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  return out;
}

bool operator==(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message() && a.details() == b.details();
}

std::ostream& operator<<(std::ostream& os, const Status& status) {
  return os << status.to_string();
}

std::ostream& operator<<(std::ostream& os, StatusCode code) { return os << status_code_name(code); }

#define MESHRPC_STATUS_CONSTRUCTOR(fn, code) \
  Status fn(std::string_view message) { return Status(StatusCode::code, message); }
MESHRPC_STATUS_CONSTRUCTOR(cancelled_error, kCancelled)
MESHRPC_STATUS_CONSTRUCTOR(unknown_error, kUnknown)
MESHRPC_STATUS_CONSTRUCTOR(invalid_argument_error, kInvalidArgument)
MESHRPC_STATUS_CONSTRUCTOR(deadline_exceeded_error, kDeadlineExceeded)
MESHRPC_STATUS_CONSTRUCTOR(not_found_error, kNotFound)
MESHRPC_STATUS_CONSTRUCTOR(already_exists_error, kAlreadyExists)
MESHRPC_STATUS_CONSTRUCTOR(permission_denied_error, kPermissionDenied)
MESHRPC_STATUS_CONSTRUCTOR(resource_exhausted_error, kResourceExhausted)
MESHRPC_STATUS_CONSTRUCTOR(failed_precondition_error, kFailedPrecondition)
MESHRPC_STATUS_CONSTRUCTOR(aborted_error, kAborted)
MESHRPC_STATUS_CONSTRUCTOR(out_of_range_error, kOutOfRange)
MESHRPC_STATUS_CONSTRUCTOR(unimplemented_error, kUnimplemented)
MESHRPC_STATUS_CONSTRUCTOR(internal_error, kInternal)
MESHRPC_STATUS_CONSTRUCTOR(unavailable_error, kUnavailable)
MESHRPC_STATUS_CONSTRUCTOR(data_loss_error, kDataLoss)
MESHRPC_STATUS_CONSTRUCTOR(unauthenticated_error, kUnauthenticated)
#undef MESHRPC_STATUS_CONSTRUCTOR

namespace internal {
void die_on_bad_result_access(const Status& status) {
  std::fprintf(stderr, "meshrpc: Result::value() called on an error: %s\n",
               status.to_string().c_str());
  std::abort();
}
}  // namespace internal

}  // namespace meshrpc
