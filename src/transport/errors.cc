#include "meshrpc/transport/errors.h"

#include <boost/asio/error.hpp>
#include <string>

#include "meshrpc/transport/tls.h"

namespace meshrpc::transport {

Status to_status(const error_code& ec, std::string_view context) {
  if (!ec) return Status();
  std::string message(context);
  if (!message.empty()) message += ": ";
  message += ec.message();
  // A certificate that failed verification will fail again: not a retryable condition.
  if (is_certificate_error(ec)) return Status(StatusCode::kUnauthenticated, message);
  if (ec == asio::error::operation_aborted) return Status(StatusCode::kCancelled, message);
  if (ec == asio::error::timed_out) return Status(StatusCode::kDeadlineExceeded, message);
  if (ec == asio::error::no_buffer_space || ec == asio::error::no_descriptors) {
    return Status(StatusCode::kResourceExhausted, message);
  }
  return Status(StatusCode::kUnavailable, message);
}

}  // namespace meshrpc::transport
