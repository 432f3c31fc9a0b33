#include "meshrpc/base/idempotency.h"

namespace meshrpc {

std::string_view idempotency_name(Idempotency idempotency) {
  switch (idempotency) {
    case Idempotency::kUnknown:
      return "IDEMPOTENCY_UNKNOWN";
    case Idempotency::kIdempotent:
      return "IDEMPOTENT";
    case Idempotency::kNoSideEffects:
      return "NO_SIDE_EFFECTS";
  }
  return "IDEMPOTENCY_UNKNOWN";
}

}  // namespace meshrpc
