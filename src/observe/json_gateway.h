// The HTTP/JSON gateway's pieces (http_service.h documents the contract): a POST of JSON to
// /<package.Service>/<Method> becomes Server::call_local with the method's wire bytes, and the
// reply (or Status) becomes JSON; /services describes every typed method.
//
// What turns bytes into a call is pure, so the fuzz target (tests/fuzz/http_request_fuzz.cc)
// runs the same code as the server without a socket: read_request() reads one request as an
// HttpSession does, and gateway_call_for() turns it into the call, or into the refusal.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "http_session.h"
#include "meshrpc/codec/method.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/core/server.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/peer_identity.h"

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

// ---- reading a request ----

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Puts the session's limits on a parser before it reads a request.
void limit_parser(RequestParser& parser, const SessionLimits& limits);

// The answer to a request Beast could not read (`ec`): 431 past max_header_bytes, 413 past
// max_body_bytes, 400 for anything malformed, each with a JSON error body naming the cause.
// Nullopt when the connection just ended (the peer closed or reset it mid-request, it timed
// out, or we closed it): nobody is left to read an answer.
std::optional<HttpResponse> read_error_response(const error_code& ec, const SessionLimits& limits);

// The request as pages see it; INVALID_ARGUMENT when the target is not a URL.
Result<HttpRequest> to_request(
    boost::beast::http::request<boost::beast::http::string_body>&& message, transport::Address peer,
    std::shared_ptr<const transport::PeerIdentity> peer_identity);

// What reading one request gives: the request, or the answer that refuses it (the session
// writes that and closes). Neither when the bytes end before a request does.
struct RequestRead {
  std::optional<HttpRequest> request;
  std::optional<HttpResponse> refusal;
};

// Reads the first request in `bytes` as an HttpSession reads one off its connection: the same
// Beast parser, limits and refusals, the connection delivering at most `read_bytes` per read
// (networks split requests anywhere) and ending after `bytes`. No I/O.
RequestRead read_request(std::string_view bytes, const SessionLimits& limits,
                         size_t read_bytes = std::numeric_limits<size_t>::max());

// ---- the gateway ----

// The deepest a request body's JSON may nest objects and arrays inside one another; deeper
// bodies get 400 before any codec reads them (codec::find_excess_json_nesting). The struct codec
// stops at the same depth (codec::kMaxNestingDepth), so no struct it accepts is refused here. The
// bound is for protobuf: its JSON parser (3.21) does not count arrays towards its own depth limit
// and takes time quadratic in the nesting of google.protobuf.Value lists (10,000 levels in a 20 KB
// body take 11 s of CPU), only to refuse anything past about 50 levels when done.
inline constexpr size_t kMaxJsonDepth = codec::kMaxNestingDepth;

// What a gateway request for `method` (canonical name) becomes before anything runs: the call
// (deadline from `now`, response_metadata still to be set), or the response that refuses it:
// 404 for an unknown or streaming method, 415 for one without a JSON form, 400 for a bad
// timeout header, a body nested deeper than kMaxJsonDepth or one that is not the request type
// in JSON. `description` is the typed method's, or null; `raw_method_registered` tells a
// raw-bytes method from an unknown one.
std::variant<core::LocalCall, HttpResponse> gateway_call_for(
    const codec::MethodDescription* description, bool raw_method_registered, std::string method,
    const HttpRequest& request, runtime::TimePoint now, runtime::Duration default_timeout);

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
