// How a Status looks over HTTP: the code mapping and the JSON error body (http_service.h).
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "meshrpc/observe/http_service.h"

namespace meshrpc::observe {

unsigned http_status_for(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
    case StatusCode::kUnimplemented:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kCancelled:
      return 499;  // nginx's "client closed request", as grpc-gateway uses it
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string error_body(const Status& status) {
  boost::json::object body;
  body["code"] = std::string(status_code_name(status.code()));
  body["code_number"] = static_cast<int>(status.code());
  body["message"] = std::string(status.message());
  return boost::json::serialize(body);
}

}  // namespace meshrpc::observe
