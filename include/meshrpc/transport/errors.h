// Mapping transport error codes to the canonical Status codes the call path speaks.
#pragma once

#include <string_view>

#include "meshrpc/base/status.h"
#include "meshrpc/runtime/asio.h"

namespace meshrpc::transport {

// operation_aborted -> CANCELLED; timed_out -> DEADLINE_EXCEEDED; everything a peer or the
// network can do (eof, reset, refused, unreachable, broken pipe) -> UNAVAILABLE, retryable.
// A TLS certificate failure (tls.h) -> UNAUTHENTICATED; other TLS failures -> UNAVAILABLE.
// `context` prefixes the message: "connect 10.0.0.1:80: Connection refused".
Status to_status(const error_code& ec, std::string_view context);

}  // namespace meshrpc::transport
