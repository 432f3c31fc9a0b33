#include "http_client.h"

#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <optional>

#include "args.h"
#include "meshrpc/transport/dns.h"

namespace meshrpc::meshctl {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using asio::ip::tcp;

namespace {

// Largest reply body read: /metrics of a big server is a few MiB; 64 MiB bounds a broken or
// hostile server without getting in the way of a real one.
constexpr uint64_t kMaxReplyBytes = 64 << 20;
// How much of a non-JSON error body a message quotes.
constexpr size_t kQuotedBodyChars = 200;

Status transport_error(const error_code& ec, const std::string& what,
                       std::chrono::nanoseconds timeout) {
  if (ec == beast::error::timeout) {
    return deadline_exceeded_error(what + ": no answer within " + format_latency(timeout));
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::end_of_stream) {
    return internal_error(what + ": the reply is not valid HTTP: " + ec.message());
  }
  return unavailable_error(what + ": " + ec.message());
}

// The "meshrpc-status" header as a code: a name ("UNAVAILABLE") or a number ("14").
std::optional<StatusCode> header_code(std::string_view text) {
  if (text.empty()) return std::nullopt;
  StatusCode code = StatusCode::kOk;
  if (parse_status_code(text, &code)) return code;
  int number = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end != text.data() + text.size() || number < 0 ||
      number >= kStatusCodeCount) {
    return std::nullopt;
  }
  return static_cast<StatusCode>(number);
}

// The Status in an error body {"code":"...","code_number":N,"message":"..."}, if there is one.
std::optional<Status> body_status(std::string_view body) {
  error_code ec;
  json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const json::object& object = value.as_object();
  std::string message;
  if (const json::value* text = object.if_contains("message"); text && text->is_string()) {
    message = std::string(text->as_string());
  }
  if (const json::value* number = object.if_contains("code_number");
      number && number->is_int64() && number->as_int64() > 0 &&
      number->as_int64() < kStatusCodeCount) {
    return Status(static_cast<StatusCode>(number->as_int64()), message);
  }
  StatusCode code = StatusCode::kOk;
  if (const json::value* name = object.if_contains("code");
      name && name->is_string() && parse_status_code(name->as_string(), &code) &&
      code != StatusCode::kOk) {
    return Status(code, message);
  }
  return std::nullopt;
}

// gRPC's mapping of the HTTP code of a reply that carries no status of its own.
StatusCode code_for_http_status(unsigned status) {
  switch (status) {
    case 400:
      return StatusCode::kInternal;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kUnknown;
  }
}

}  // namespace

awaitable<Result<Target>> resolve_target(const transport::Address& address) {
  auto executor = co_await asio::this_coro::executor;
  std::string host = address.host;
  auto [ec, addresses] = co_await transport::async_resolve(executor, std::move(host), address.port,
                                                           use_nothrow_awaitable);
  if (ec || addresses.empty()) {
    co_return unavailable_error("cannot resolve host '" + address.host +
                                "': " + (ec ? ec.message() : std::string("no addresses")));
  }
  Target target{address, {}};
  for (const transport::Address& resolved : addresses) {
    error_code bad_ip;
    asio::ip::address ip = asio::ip::make_address(resolved.host, bad_ip);
    if (!bad_ip) target.endpoints.emplace_back(ip, resolved.port);
  }
  if (target.endpoints.empty()) {
    co_return unavailable_error("host '" + address.host + "' resolved to no IP address");
  }
  co_return target;
}

struct HttpConnection::State {
  State(asio::any_io_executor executor, const Target& target_in)
      : stream(std::move(executor)), target(target_in), where(target_in.address.to_string()) {}

  void close() {
    error_code ignored;
    stream.socket().close(ignored);
    buffer.consume(buffer.size());
    connected = false;
  }

  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  const Target target;
  const std::string where;  // "host:port", for messages and the Host header
  bool connected = false;
};

HttpConnection::HttpConnection(asio::any_io_executor executor, const Target& target)
    : state_(std::make_unique<State>(std::move(executor), target)) {}

HttpConnection::~HttpConnection() = default;

awaitable<Result<HttpReply>> HttpConnection::send(const HttpRequestSpec& spec,
                                                  std::chrono::nanoseconds timeout) {
  State& state = *state_;
  state.stream.expires_after(timeout);
  if (!state.connected) {
    auto [ec, endpoint] =
        co_await state.stream.async_connect(state.target.endpoints, use_nothrow_awaitable);
    if (ec) {
      state.close();
      co_return transport_error(ec, "cannot connect to " + state.where, timeout);
    }
    state.connected = true;
    error_code ignored;
    state.stream.socket().set_option(tcp::no_delay(true), ignored);
  }

  http::request<http::string_body> request{http::string_to_verb(spec.method), spec.target, 11};
  request.set(http::field::host, state.where);
  request.set(http::field::user_agent, "meshctl");
  for (const auto& [name, value] : spec.headers) request.set(name, value);
  if (spec.method == "POST") {
    request.set(http::field::content_type, "application/json");
    request.body() = spec.body;
  }
  request.keep_alive(true);
  request.prepare_payload();
  auto [write_ec, written] =
      co_await http::async_write(state.stream, request, use_nothrow_awaitable);
  if (write_ec) {
    state.close();
    co_return transport_error(write_ec, "sending to " + state.where, timeout);
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  auto [read_ec, read] =
      co_await http::async_read(state.stream, state.buffer, parser, use_nothrow_awaitable);
  if (read_ec) {
    state.close();
    co_return transport_error(read_ec, "reading the reply from " + state.where, timeout);
  }
  http::response<http::string_body>& response = parser.get();
  HttpReply reply;
  reply.status = response.result_int();
  reply.content_type = std::string(response[http::field::content_type]);
  reply.meshrpc_status = std::string(response["meshrpc-status"]);
  reply.body = std::move(response.body());
  if (!response.keep_alive()) state.close();
  co_return reply;
}

awaitable<Result<HttpReply>> fetch(const transport::Address& address,
                                   const HttpRequestSpec& request,
                                   std::chrono::nanoseconds timeout) {
  Result<Target> target = co_await resolve_target(address);
  if (!target.ok()) co_return target.status();
  HttpConnection connection(co_await asio::this_coro::executor, *target);
  co_return co_await connection.send(request, timeout);
}

Status reply_status(const HttpReply& reply) {
  const std::optional<StatusCode> from_header = header_code(reply.meshrpc_status);
  if (reply.status / 100 == 2 && (!from_header || *from_header == StatusCode::kOk)) {
    return Status();
  }
  if (std::optional<Status> from_body = body_status(reply.body)) return *from_body;
  std::string message = "HTTP " + std::to_string(reply.status);
  if (!reply.body.empty()) {
    message += ": " + reply.body.substr(0, kQuotedBodyChars);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  if (from_header && *from_header != StatusCode::kOk) return Status(*from_header, message);
  return Status(code_for_http_status(reply.status), message);
}

}  // namespace meshrpc::meshctl
