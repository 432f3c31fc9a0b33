#include "meshrpc/base/failure_origin.h"

namespace meshrpc {

std::string_view failure_origin_name(FailureOrigin origin) {
  switch (origin) {
    case FailureOrigin::kLocal:
      return "LOCAL";
    case FailureOrigin::kTransport:
      return "TRANSPORT";
    case FailureOrigin::kServer:
      return "SERVER";
  }
  return "UNKNOWN_ORIGIN";
}

}  // namespace meshrpc
