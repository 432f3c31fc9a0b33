// FailureOrigin: where a failed call attempt's status came from.
//
// In base, like Idempotency, because the core's CallResult reports it and the resilience
// layer's retry classification reads it, and resilience does not depend on core (DESIGN.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace meshrpc {

// The caller knows where a failure came from; the code alone does not say (RESOURCE_EXHAUSTED
// may be this client's message-size limit or a server's quota).
enum class FailureOrigin : uint8_t {
  kLocal,      // this client made it up before or while sending: a local limit, an encode
               // failure, a cancel, no connection (which is also not processed)
  kTransport,  // the connection failed, was reset, or the attempt's timer fired
  kServer,     // the server's status, from its trailers
};

// "LOCAL", "TRANSPORT", "SERVER".
std::string_view failure_origin_name(FailureOrigin origin);

}  // namespace meshrpc
