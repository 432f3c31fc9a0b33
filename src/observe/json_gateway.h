// The HTTP/JSON gateway's pieces (http_service.h documents the contract): a POST of JSON to
// /<package.Service>/<Method> becomes Server::call_local with the method's wire bytes, and the
// reply (or Status) becomes JSON; /services describes every typed method.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/codec/method.h"
#include "meshrpc/core/server.h"
#include "meshrpc/observe/http_service.h"

namespace meshrpc::observe::detail {

inline constexpr std::string_view kMetadataHeaderPrefix = "meshrpc-meta-";
inline constexpr std::string_view kTimeoutHeader = "meshrpc-timeout-ms";
inline constexpr std::string_view kStatusHeader = "meshrpc-status";
// Forwarded as call metadata of the same name (what security::BearerTokenAuthenticator reads).
inline constexpr std::string_view kAuthorizationHeader = "authorization";

// An error answer: http_status_for(status), error_body(status), the meshrpc-status header, and
// WWW-Authenticate: Bearer on a 401.
HttpResponse status_response(const Status& status);
// The same with another HTTP status (415, 405, 431...).
HttpResponse status_response(unsigned http_status, const Status& status);

// The call's metadata: the Authorization header as "authorization", then every
// "meshrpc-meta-<key>" header (names already lower-cased).
core::Metadata metadata_from_headers(const std::map<std::string, std::string>& headers);
// Response metadata as "meshrpc-meta-<key>" headers; entries that cannot be a header (a key
// that is not an HTTP token, a value with a control character) are left out.
void add_metadata_headers(const core::Metadata& metadata, HttpResponse& response);
// The call's timeout: the meshrpc-timeout-ms header, else `fallback`; INVALID_ARGUMENT when
// the header is not a non-negative whole number.
Result<runtime::Duration> timeout_from_headers(const std::map<std::string, std::string>& headers,
                                               runtime::Duration fallback);

// Calls `method` (canonical name) through server.call_local with the JSON `request.body`.
// `description` is the typed method's, or null (unknown or raw-bytes method).
awaitable<HttpResponse> call_gateway(const core::ServerHandle& server, runtime::Env& env,
                                     const codec::MethodDescription* description,
                                     std::string method, const HttpRequest& request,
                                     runtime::Duration default_timeout);

// {"services":[{"name","methods":[{"name","full_name","kind","idempotency","blocking",
//   "request","response"}]}]}, services and methods in registration order.
std::string services_json(const std::vector<codec::MethodDescription>& methods);

}  // namespace meshrpc::observe::detail
