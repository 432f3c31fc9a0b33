#include "http_session.h"

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <exception>
#include <limits>
#include <string>
#include <utility>

namespace meshrpc::observe::detail {

namespace http = boost::beast::http;

namespace {

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

// The request as pages see it; INVALID_ARGUMENT when the target is not a URL.
Result<HttpRequest> to_request(http::request<http::string_body>&& message,
                               const transport::ByteStream& stream) {
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
  request.peer = stream.remote_address();
  request.peer_identity = stream.peer_identity();
  return request;
}

HttpResponse error_response(unsigned status, const Status& error) {
  HttpResponse response;
  response.status = status;
  response.body = error_body(error);
  response.headers.emplace_back("meshrpc-status", std::string(status_code_name(error.code())));
  return response;
}

}  // namespace

HttpSession::HttpSession(uint64_t id, runtime::Env& env,
                         std::shared_ptr<transport::ByteStream> stream, Buffer first_bytes,
                         SessionLimits limits, std::shared_ptr<SessionOwner> owner)
    : id_(id),
      env_(env),
      stream_(std::move(stream)),
      executor_(stream_->get_executor()),
      limits_(limits),
      owner_(std::move(owner)) {
  // The sniffer's bytes are the start of the first request: Beast parses them first.
  const size_t size = first_bytes.size();
  auto space = buffer_.prepare(size);
  first_bytes.copy_front(static_cast<char*>(space.data()), size);
  buffer_.commit(size);
}

void HttpSession::start() { asio::co_spawn(executor_, run(), asio::detached); }

void HttpSession::request_close() {
  asio::post(executor_, [self = shared_from_this()] {
    self->close_requested_ = true;
    if (!self->busy_ && !self->closed_) {
      self->closed_ = true;
      self->stream_->close();
    }
  });
}

awaitable<void> HttpSession::run() {
  auto self = shared_from_this();
  try {
    while (!close_requested_ && !closed_ && co_await serve_one()) {
    }
  } catch (const std::exception&) {
    // Only a bug reaches here (pages' exceptions are caught in serve_one): end this
    // connection, never the server.
  }
  disarm_watchdog();
  if (!closed_) {
    closed_ = true;
    stream_->close();
  }
  owner_->session_ended(id_);
}

awaitable<bool> HttpSession::serve_one() {
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(limits_.max_header_bytes, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(limits_.max_body_bytes);
  arm_watchdog();
  auto [ec, read] = co_await http::async_read(*stream_, buffer_, parser, use_nothrow_awaitable);
  disarm_watchdog();
  if (ec) {
    const unsigned status = status_for_read_error(ec);
    if (status != 0 && !closed_) {
      co_await write(
          error_response(status, invalid_argument_error(describe_read_error(status, ec, limits_))),
          11, false);
    }
    co_return false;
  }
  busy_ = true;
  const unsigned version = parser.get().version();
  const bool wants_keep_alive = parser.get().keep_alive();
  Result<HttpRequest> request = to_request(parser.release(), *stream_);
  HttpResponse response;
  if (!request.ok()) {
    response = error_response(400, request.status());
  } else {
    try {
      response = co_await owner_->answer(*request);
    } catch (const std::exception& e) {
      response = error_response(500, internal_error(std::string("page threw: ") + e.what()));
    }
  }
  const bool keep_alive =
      request.ok() && wants_keep_alive && !close_requested_ && !owner_->closing();
  co_await write(std::move(response), version, keep_alive);
  busy_ = false;
  co_return keep_alive && !closed_;
}

awaitable<void> HttpSession::write(HttpResponse response, unsigned version, bool keep_alive) {
  http::response<http::string_body> message;
  message.version(version);
  message.result(response.status);
  if (response.status == 499) message.reason("Client Closed Request");  // nginx's; not IANA's
  message.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) message.insert(name, value);
  message.body() = std::move(response.body);
  message.keep_alive(keep_alive);
  message.prepare_payload();
  arm_watchdog();
  co_await http::async_write(*stream_, message, use_nothrow_awaitable);
  disarm_watchdog();
}

void HttpSession::arm_watchdog() {
  const uint64_t generation = ++watchdog_generation_;
  env_.async_wait_for(
      limits_.idle_timeout,
      asio::bind_cancellation_slot(
          watchdog_cancel_.slot(),
          asio::bind_executor(executor_, [self = shared_from_this(), generation](error_code ec) {
            if (ec || generation != self->watchdog_generation_ || self->closed_) return;
            // Nothing arrived (or left) in time: the pending read or write ends aborted.
            self->closed_ = true;
            self->stream_->close();
          })));
}

void HttpSession::disarm_watchdog() {
  ++watchdog_generation_;
  watchdog_cancel_.emit(asio::cancellation_type::terminal);
}

}  // namespace meshrpc::observe::detail
