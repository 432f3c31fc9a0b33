#include "http_session.h"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "json_gateway.h"

namespace meshrpc::observe::detail {

namespace http = boost::beast::http;

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
  // read_request() (json_gateway.h) reads with the same parser, limits and refusals, without
  // a socket, for the fuzz target: keep the two alike.
  RequestParser parser;
  limit_parser(parser, limits_);
  arm_watchdog();
  auto [ec, read] = co_await http::async_read(*stream_, buffer_, parser, use_nothrow_awaitable);
  disarm_watchdog();
  if (ec) {
    std::optional<HttpResponse> refusal = read_error_response(ec, limits_);
    if (refusal && !closed_) co_await write(std::move(*refusal), 11, false);
    co_return false;
  }
  busy_ = true;
  const unsigned version = parser.get().version();
  const bool wants_keep_alive = parser.get().keep_alive();
  Result<HttpRequest> request =
      to_request(parser.release(), stream_->remote_address(), stream_->peer_identity());
  HttpResponse response;
  if (!request.ok()) {
    response = status_response(400, request.status());
  } else {
    try {
      response = co_await owner_->answer(*request);
    } catch (const std::exception& e) {
      response = status_response(500, internal_error(std::string("page threw: ") + e.what()));
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
