// libFuzzer target for the HTTP side of a meshrpc port (issue 12).
//
// Input: bytes as a client sends them after the server's sniffer has taken the connection for
// HTTP. They are read as an HttpSession reads them (observe::detail::read_request: the same
// Beast parser, limits and refusals, with HttpService's default limits), and a request that
// reads goes through the JSON gateway's translation (gateway_call_for: path to method, body to
// the method's wire bytes, headers to metadata and timeout) for these methods:
//   /fuzz.Gateway/Target  a struct with a member of every kind (struct_decoder_target.h)
//   /fuzz.Gateway/Tree    a self-referential struct, to reach the nesting limits
//   /fuzz.Gateway/Value   google.protobuf.Value, to reach protobuf's JSON parser
//   /fuzz.Gateway/Stream  a server-streaming method (the gateway refuses those)
//   /fuzz.Gateway/Raw     a raw-bytes method (no JSON form)
//
// Properties checked (a violation traps, which libFuzzer reports with the input):
//   1. No crash, leak, unbounded allocation or recursion, no hang (ASan/LSan, -rss_limit_mb,
//      -timeout).
//   2. Reading ends in a request, a refusal of 400, 413 or 431 with a JSON error body, or
//      neither (the bytes stop mid-request); a request's body is within max_body_bytes.
//   3. The same bytes delivered one byte per read end the same way, or (for malformed input)
//      with no answer yet, never with another answer: a network may split a request anywhere
//      (same_outcome says why "no answer yet" happens).
//   4. The gateway turns a POST into a call or a refusal of 400, 404 or 415; a call carries
//      wire bytes that decode as the method's request type and print back to JSON that reads
//      again, and metadata only from the Authorization and meshrpc-meta-* headers; metadata
//      sent back as headers never holds a byte that would break the response's header block.
#include <google/protobuf/struct.pb.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "meshrpc/codec/method.h"
#include "meshrpc/codec/protobuf.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/observe/http_service.h"
#include "src/observe/json_gateway.h"
#include "tests/fuzz/struct_decoder_target.h"

namespace meshrpc::observe::fuzz {
namespace {

using codec::MethodKind;
using detail::RequestRead;

constexpr std::string_view kRawMethod = "/fuzz.Gateway/Raw";

std::vector<codec::MethodDescription> make_methods() {
  using codec::describe_method;
  using codec::fuzz::Target;
  using codec::fuzz::Tree;
  using google::protobuf::Value;
  const auto unknown = core::Idempotency::kUnknown;
  return {
      describe_method<Target, Target>("/fuzz.Gateway/Target", MethodKind::kUnary, unknown, false),
      describe_method<Tree, Tree>("/fuzz.Gateway/Tree", MethodKind::kUnary, unknown, false),
      describe_method<Value, Value>("/fuzz.Gateway/Value", MethodKind::kUnary, unknown, false),
      describe_method<Target, Target>("/fuzz.Gateway/Stream", MethodKind::kServerStreaming, unknown,
                                      false),
  };
}

const std::vector<codec::MethodDescription>& methods() {
  static const std::vector<codec::MethodDescription> all = make_methods();
  return all;
}

const codec::MethodDescription* find_method(std::string_view canonical) {
  for (const codec::MethodDescription& method : methods()) {
    if (method.name == canonical) return &method;
  }
  return nullptr;
}

detail::SessionLimits service_limits() {
  const HttpService::Options defaults;
  return {defaults.max_body_bytes, defaults.max_header_bytes, defaults.idle_timeout};
}

bool is_refusal_status(unsigned status) { return status == 400 || status == 413 || status == 431; }

// An error body from error_body(): a JSON object naming the code.
bool is_error_body(const std::string& body) {
  return body.starts_with(R"({"code":")") && body.find(R"("message":)") != std::string::npos;
}

bool same_request(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
         a.headers == b.headers && a.body == b.body;
}

// Whether `split` (the bytes in small reads) ends as `whole` (in one read) does. It may also
// end with neither a request nor a refusal where `whole` refuses malformed input: Beast (1.81)
// reads a request line whose version is cut short by the end of the header as "need more"
// when that is all it has, and then waits for another header end that never comes (the
// session closes such a connection at idle_timeout or max_header_bytes). What it must not do
// is answer differently.
bool same_outcome(const RequestRead& whole, const RequestRead& split) {
  if (whole.request) return split.request && same_request(*whole.request, *split.request);
  if (split.request) return false;
  if (!split.refusal) return !whole.refusal || whole.refusal->status == 400;
  return whole.refusal && split.refusal->status == whole.refusal->status &&
         split.refusal->body == whole.refusal->body;
}

bool is_safe_field_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Property 4's metadata half; `call` came from `request`'s headers.
const char* metadata_violation(const core::LocalCall& call, const HttpRequest& request) {
  for (const auto& [key, value] : call.metadata) {
    if (key == detail::kAuthorizationHeader) {
      auto found = request.headers.find(std::string(detail::kAuthorizationHeader));
      if (found == request.headers.end() || found->second != value)
        return "authorization metadata not from the Authorization header";
      continue;
    }
    auto found = request.headers.find(std::string(detail::kMetadataHeaderPrefix) + key);
    if (found == request.headers.end() || found->second != value)
      return "metadata not from a meshrpc-meta- header";
  }
  HttpResponse echo;
  detail::add_metadata_headers(call.metadata, echo);
  for (const auto& [name, value] : echo.headers) {
    if (!name.starts_with(detail::kMetadataHeaderPrefix) || !is_safe_field_value(name) ||
        !is_safe_field_value(value)) {
      return "response metadata header would break the header block";
    }
  }
  return nullptr;
}

// Property 4 for one request that read.
const char* gateway_violation(const HttpRequest& request) {
  if (request.method != "POST") return nullptr;
  std::string name = core::canonical_method_name(request.path);
  const codec::MethodDescription* description = find_method(name);
  const bool raw = description == nullptr && name == kRawMethod;
  std::variant<core::LocalCall, HttpResponse> prepared = detail::gateway_call_for(
      description, raw, name, request, runtime::TimePoint{}, std::chrono::seconds(30));
  if (const auto* refusal = std::get_if<HttpResponse>(&prepared)) {
    const unsigned status = refusal->status;
    if (status != 400 && status != 404 && status != 415) return "gateway refusal status";
    if (!is_error_body(refusal->body)) return "gateway refusal body is not an error body";
    return nullptr;
  }
  const core::LocalCall& call = std::get<core::LocalCall>(prepared);
  if (description == nullptr) return "a call for a method without a description";
  if (call.method != name) return "the call names another method";
  // Request and reply types are the same here, so the reply converter reads request bytes.
  Result<std::string> json = description->response_to_json(call.request);
  if (!json.ok()) return "accepted request bytes do not decode or print as JSON";
  if (!description->request_from_json(*json).ok()) return "printed JSON does not read again";
  return metadata_violation(call, request);
}

const char* violation(std::string_view bytes) {
  const detail::SessionLimits limits = service_limits();
  const RequestRead read = detail::read_request(bytes, limits);
  if (read.request && read.refusal) return "both a request and a refusal";
  if (read.refusal) {
    if (!is_refusal_status(read.refusal->status)) return "refusal status";
    if (!is_error_body(read.refusal->body)) return "refusal body is not an error body";
  }
  if (read.request && read.request->body.size() > limits.max_body_bytes)
    return "body over max_body_bytes";
  if (!same_outcome(read, detail::read_request(bytes, limits, 1)))
    return "one byte per read answers differently";
  if (read.request) return gateway_violation(*read.request);
  return nullptr;
}

}  // namespace
}  // namespace meshrpc::observe::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (const char* violation = meshrpc::observe::fuzz::violation(bytes)) {
    std::fprintf(stderr, "property violated: %s\n", violation);
    __builtin_trap();
  }
  return 0;
}
