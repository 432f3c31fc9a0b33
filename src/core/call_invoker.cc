#include "meshrpc/core/call_invoker.h"

namespace meshrpc::core {

ClientStream CallInvoker::open_stream(std::string method, StreamOptions) {
  return ClientStream(detail::failed_stream(
      default_executor(),
      Status(StatusCode::kUnimplemented,
             "this CallInvoker does not open streams (method " + method + ")")));
}

}  // namespace meshrpc::core
