#include "json_gateway.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "meshrpc/core/method_name.h"

namespace meshrpc::observe::detail {

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

}  // namespace

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

awaitable<HttpResponse> call_gateway(const core::ServerHandle& server, runtime::Env& env,
                                     const codec::MethodDescription* description,
                                     std::string method, const HttpRequest& request,
                                     runtime::Duration default_timeout) {
  if (description == nullptr) {
    if (server.has_method(method)) {
      co_return status_response(
          415, invalid_argument_error("method " + method +
                                      " takes raw bytes and has no JSON form; call it over the "
                                      "meshrpc protocol"));
    }
    co_return status_response(unimplemented_error("method " + method + " is not registered"));
  }
  if (description->kind != codec::MethodKind::kUnary) {
    co_return status_response(unimplemented_error(
        "method " + method + " is " + std::string(codec::method_kind_name(description->kind)) +
        "; the JSON gateway calls unary methods only"));
  }
  if (description->request_from_json == nullptr || description->response_to_json == nullptr) {
    co_return status_response(
        415, invalid_argument_error("method " + method +
                                    " has no JSON form for its request or reply; call it over "
                                    "the meshrpc protocol"));
  }
  Result<runtime::Duration> timeout = timeout_from_headers(request.headers, default_timeout);
  if (!timeout.ok()) co_return status_response(timeout.status());
  // An empty body is the empty message, as `curl -X POST` sends it.
  const std::string_view json = request.body.empty() ? std::string_view("{}") : request.body;
  Result<Buffer> wire = description->request_from_json(json);
  if (!wire.ok()) {
    const std::string type =
        description->request_schema ? description->request_schema->name : "request";
    co_return status_response(invalid_argument_error(
        "request body for " + method + " is not a valid " + type + " in JSON (" +
        std::string(wire.status().message()) + "): " + display(json)));
  }
  core::Metadata response_metadata;
  core::LocalCall call;
  call.method = std::move(method);
  call.request = std::move(*wire);
  call.metadata = metadata_from_headers(request.headers);
  call.deadline = env.now() + *timeout;
  call.peer = request.peer;
  call.peer_identity = request.peer_identity;
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
