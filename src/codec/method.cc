#include "meshrpc/codec/method.h"

namespace meshrpc::codec {

std::string_view method_kind_name(MethodKind kind) {
  switch (kind) {
    case MethodKind::kUnary:
      return "unary";
    case MethodKind::kServerStreaming:
      return "server_streaming";
    case MethodKind::kClientStreaming:
      return "client_streaming";
    case MethodKind::kBidiStreaming:
      return "bidi_streaming";
  }
  return "unary";
}

}  // namespace meshrpc::codec
