#include "json_gateway.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "meshrpc/codec/json_nesting.h"
#include "meshrpc/core/method_name.h"

namespace meshrpc::observe::detail {

namespace http = boost::beast::http;

namespace {

// A timeout header past this is taken as "no hurry" rather than overflowing the clock: 10
// years is beyond any call, and far from TimePoint's limits.
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(24 * 365 * 10);

// RFC 9110 5.6.2 token characters: what a header name may hold.
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool ok =
        std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// A field value may not hold CR, LF or NUL (RFC 9110 5.5); other control bytes are refused too.
bool is_field_value(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

std::string display(std::string_view json) {
  constexpr size_t kShown = 64;  // enough to recognise the body in an error message
  if (json.size() <= kShown) return std::string(json);
  return std::string(json.substr(0, kShown)) + "...";
}

// The status a Beast read error answers, or 0 when the connection just ends without a word
// (the peer closed or reset it, it timed out, or we closed it).
unsigned status_for_read_error(const error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::bad_method).category()) return 0;
  switch (static_cast<http::error>(ec.value())) {
    case http::error::end_of_stream:
    case http::error::partial_message:
    case http::error::short_read:
      return 0;
    case http::error::header_limit:
    case http::error::buffer_overflow:
      return 431;
    case http::error::body_limit:
      return 413;
    default:
      return 400;
  }
}

std::string describe_read_error(unsigned status, const error_code& ec,
                                const SessionLimits& limits) {
  switch (status) {
    case 431:
      return "request header block exceeds max_header_bytes " +
             std::to_string(limits.max_header_bytes);
    case 413:
      return "request body exceeds max_body_bytes " + std::to_string(limits.max_body_bytes);
    default:
      return "malformed HTTP request: " + ec.message();
  }
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A connection's bytes held in memory, for Beast's own read loop (the one async_read runs)
// to read from: at most `read_bytes` per read_some, then end of stream.
class BytesStream {
 public:
  BytesStream(std::string_view bytes, size_t read_bytes)
      : rest_(bytes), read_bytes_(std::max<size_t>(read_bytes, 1)) {}

  template <typename MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    ec = {};
    if (rest_.empty()) {
      ec = asio::error::eof;
      return 0;
    }
    const size_t wanted = std::min(read_bytes_, rest_.size());
    const size_t copied = asio::buffer_copy(buffers, asio::buffer(rest_.data(), wanted));
    rest_.remove_prefix(copied);
    return copied;
  }

  // Beast asks for the throwing form too, though its read loop calls only the one above.
  template <typename MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    error_code ec;
    const size_t copied = read_some(buffers, ec);
    if (ec && ec != asio::error::eof) throw boost::system::system_error(ec);
    return copied;
  }

 private:
  std::string_view rest_;
  const size_t read_bytes_;
};

}  // namespace

void limit_parser(RequestParser& parser, const SessionLimits& limits) {
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(limits.max_header_bytes, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(limits.max_body_bytes);
}

std::optional<HttpResponse> read_error_response(const error_code& ec, const SessionLimits& limits) {
  const unsigned status = status_for_read_error(ec);
  if (status == 0) return std::nullopt;
  return status_response(status, invalid_argument_error(describe_read_error(status, ec, limits)));
}

Result<HttpRequest> to_request(http::request<http::string_body>&& message, transport::Address peer,
                               std::shared_ptr<const transport::PeerIdentity> peer_identity) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  auto url = boost::urls::parse_uri_reference(request.target);
  if (!url) {
    return invalid_argument_error("request target '" + request.target +
                                  "' is not a URL: " + url.error().message());
  }
  request.path = url->path();
  if (request.path.empty()) request.path = "/";
  for (const auto& param : url->params()) request.query[param.key] = param.value;
  for (const auto& field : message) {
    std::string name = lower(field.name_string());
    auto [it, inserted] = request.headers.emplace(name, std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());  // RFC 9110 5.3
  }
  request.body = std::move(message.body());
  request.peer = std::move(peer);
  request.peer_identity = std::move(peer_identity);
  return request;
}

RequestRead read_request(std::string_view bytes, const SessionLimits& limits, size_t read_bytes) {
  BytesStream stream(bytes, read_bytes);
  boost::beast::flat_buffer buffer;
  RequestParser parser;
  limit_parser(parser, limits);
  error_code ec;
  http::read(stream, buffer, parser, ec);
  RequestRead read;
  if (ec) {
    read.refusal = read_error_response(ec, limits);
    return read;
  }
  Result<HttpRequest> request = to_request(parser.release(), transport::Address{}, nullptr);
  if (request.ok()) {
    read.request = std::move(*request);
  } else {
    read.refusal = status_response(400, request.status());
  }
  return read;
}

HttpResponse status_response(unsigned http_status, const Status& status) {
  HttpResponse response;
  response.status = http_status;
  response.body = error_body(status);
  response.headers.emplace_back(std::string(kStatusHeader),
                                std::string(status_code_name(status.code())));
  // RFC 9110 15.5.2: a 401 names the scheme that would succeed (RFC 6750 3 for Bearer).
  if (http_status == 401) response.headers.emplace_back("www-authenticate", "Bearer");
  return response;
}

HttpResponse status_response(const Status& status) {
  return status_response(http_status_for(status.code()), status);
}

core::Metadata metadata_from_headers(const std::map<std::string, std::string>& headers) {
  core::Metadata metadata;
  if (auto authorization = headers.find(std::string(kAuthorizationHeader));
      authorization != headers.end()) {
    metadata.emplace_back(std::string(kAuthorizationHeader), authorization->second);
  }
  for (const auto& [name, value] : headers) {
    if (name.size() > kMetadataHeaderPrefix.size() && name.starts_with(kMetadataHeaderPrefix)) {
      metadata.emplace_back(name.substr(kMetadataHeaderPrefix.size()), value);
    }
  }
  return metadata;
}

void add_metadata_headers(const core::Metadata& metadata, HttpResponse& response) {
  for (const auto& [key, value] : metadata) {
    if (!is_token(key) || !is_field_value(value)) continue;
    response.headers.emplace_back(std::string(kMetadataHeaderPrefix) + key, value);
  }
}

Result<runtime::Duration> timeout_from_headers(const std::map<std::string, std::string>& headers,
                                               runtime::Duration fallback) {
  auto found = headers.find(std::string(kTimeoutHeader));
  if (found == headers.end()) return fallback;
  const std::string& text = found->second;
  uint64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc::result_out_of_range) return runtime::Duration(kMaxTimeout);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return invalid_argument_error("header " + std::string(kTimeoutHeader) + " '" + text +
                                  "' is not a whole number of milliseconds");
  }
  if (ms > static_cast<uint64_t>(kMaxTimeout.count())) return runtime::Duration(kMaxTimeout);
  return runtime::Duration(std::chrono::milliseconds(ms));
}

std::variant<core::LocalCall, HttpResponse> gateway_call_for(
    const codec::MethodDescription* description, bool raw_method_registered, std::string method,
    const HttpRequest& request, runtime::TimePoint now, runtime::Duration default_timeout) {
  if (description == nullptr) {
    if (raw_method_registered) {
      return status_response(
          415, invalid_argument_error("method " + method +
                                      " takes raw bytes and has no JSON form; call it over the "
                                      "meshrpc protocol"));
    }
    return status_response(unimplemented_error("method " + method + " is not registered"));
  }
  if (description->kind != codec::MethodKind::kUnary) {
    return status_response(unimplemented_error(
        "method " + method + " is " + std::string(codec::method_kind_name(description->kind)) +
        "; the JSON gateway calls unary methods only"));
  }
  if (description->request_from_json == nullptr || description->response_to_json == nullptr) {
    return status_response(
        415, invalid_argument_error("method " + method +
                                    " has no JSON form for its request or reply; call it over "
                                    "the meshrpc protocol"));
  }
  Result<runtime::Duration> timeout = timeout_from_headers(request.headers, default_timeout);
  if (!timeout.ok()) return status_response(timeout.status());
  // An empty body is the empty message, as `curl -X POST` sends it.
  const std::string_view json = request.body.empty() ? std::string_view("{}") : request.body;
  if (std::optional<size_t> at = codec::find_excess_json_nesting(json, kMaxJsonDepth)) {
    return status_response(invalid_argument_error(
        "request body for " + method + " is JSON nested too deeply: more than " +
        std::to_string(kMaxJsonDepth) + " objects and arrays inside one another (at byte " +
        std::to_string(*at) + ")"));
  }
  Result<Buffer> wire = description->request_from_json(json);
  if (!wire.ok()) {
    const std::string type =
        description->request_schema ? description->request_schema->name : "request";
    return status_response(invalid_argument_error(
        "request body for " + method + " is not a valid " + type + " in JSON (" +
        std::string(wire.status().message()) + "): " + display(json)));
  }
  core::LocalCall call;
  call.method = std::move(method);
  call.request = std::move(*wire);
  call.metadata = metadata_from_headers(request.headers);
  call.deadline = now + *timeout;
  call.peer = request.peer;
  call.peer_identity = request.peer_identity;
  return call;
}

awaitable<HttpResponse> call_gateway(const core::ServerHandle& server, runtime::Env& env,
                                     const codec::MethodDescription* description,
                                     std::string method, const HttpRequest& request,
                                     runtime::Duration default_timeout) {
  const bool raw_method_registered = description == nullptr && server.has_method(method);
  std::variant<core::LocalCall, HttpResponse> prepared = gateway_call_for(
      description, raw_method_registered, std::move(method), request, env.now(), default_timeout);
  if (auto* refusal = std::get_if<HttpResponse>(&prepared)) co_return std::move(*refusal);
  core::LocalCall call = std::get<core::LocalCall>(std::move(prepared));
  core::Metadata response_metadata;
  call.response_metadata = &response_metadata;
  Result<Buffer> reply = co_await server.call_local(std::move(call));
  HttpResponse response;
  if (!reply.ok()) {
    response = status_response(reply.status());
  } else if (Result<std::string> text = description->response_to_json(*reply); !text.ok()) {
    response = status_response(
        internal_error("reply does not convert to JSON: " + std::string(text.status().message())));
  } else {
    response.body = std::move(*text);
    response.headers.emplace_back(std::string(kStatusHeader),
                                  std::string(status_code_name(StatusCode::kOk)));
  }
  add_metadata_headers(response_metadata, response);
  co_return response;
}

std::string services_json(const std::vector<codec::MethodDescription>& methods) {
  boost::json::array services;
  std::map<std::string, size_t, std::less<>> index;  // service name -> position in `services`
  for (const codec::MethodDescription& method : methods) {
    Result<core::MethodNameParts> parts = core::split_method_name(method.name);
    if (!parts.ok()) continue;  // the server refuses such names at registration
    auto [it, added] = index.emplace(std::string(parts->service), services.size());
    if (added) {
      boost::json::object service;
      service["name"] = parts->service;
      service["methods"] = boost::json::array();
      services.push_back(std::move(service));
    }
    boost::json::object entry;
    entry["name"] = parts->method;
    entry["full_name"] = method.name;
    entry["kind"] = codec::method_kind_name(method.kind);
    entry["idempotency"] = idempotency_name(method.idempotency);
    entry["blocking"] = method.blocking;
    entry["request"] =
        method.request_schema ? method.request_schema->to_json() : boost::json::value(nullptr);
    entry["response"] =
        method.response_schema ? method.response_schema->to_json() : boost::json::value(nullptr);
    services[it->second].as_object()["methods"].as_array().push_back(std::move(entry));
  }
  boost::json::object root;
  root["services"] = std::move(services);
  return boost::json::serialize(root);
}

}  // namespace meshrpc::observe::detail
