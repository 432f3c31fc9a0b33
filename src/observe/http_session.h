// HttpSession: one HTTP/1.1 connection handed over by core::Server's sniffer. It reads requests
// with Boost.Beast straight off the transport::ByteStream, asks its owner for each response and
// writes it, keeping the connection alive between requests.
//
// Every read and write is watched by a timer from the Env (so it runs in virtual time under
// SimEnv): a connection that sends no complete request, or takes no response, within
// idle_timeout is closed. Input Beast rejects gets 400 (431 past the header limit, 413 past the
// body limit) with a JSON error body, and the connection is closed.
//
// Threading: everything runs on the stream's executor; request_close() may be called from any
// thread (it posts there). Lifetime: owned by its own coroutine (start() until the connection
// ends); the owner is kept alive by the session.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstdint>
#include <memory>

#include "meshrpc/base/buffer.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/byte_stream.h"

namespace meshrpc::observe::detail {

// What a session needs from the service that owns it.
class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  // The response to `request`; runs on the session's executor and may suspend.
  virtual awaitable<HttpResponse> answer(const HttpRequest& request) = 0;
  // True once the service shuts down: every response then closes its connection.
  virtual bool closing() const = 0;
  // The session `id` has ended (its connection is closed).
  virtual void session_ended(uint64_t id) = 0;
};

struct SessionLimits {
  size_t max_body_bytes = 0;
  size_t max_header_bytes = 0;
  runtime::Duration idle_timeout{};
};

class HttpSession final : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(uint64_t id, runtime::Env& env, std::shared_ptr<transport::ByteStream> stream,
              Buffer first_bytes, SessionLimits limits, std::shared_ptr<SessionOwner> owner);

  // Starts serving on the stream's executor.
  void start();
  // Closes the connection when no request is being answered; a request in flight is answered
  // first, then the connection closes. Any thread.
  void request_close();

  uint64_t id() const { return id_; }

 private:
  awaitable<void> run();
  // Reads, answers and writes one request; false when the connection must end.
  awaitable<bool> serve_one();
  awaitable<void> write(HttpResponse response, unsigned version, bool keep_alive);
  // Closes the stream if the current read or write has not finished within idle_timeout.
  void arm_watchdog();
  void disarm_watchdog();

  const uint64_t id_;
  runtime::Env& env_;
  const std::shared_ptr<transport::ByteStream> stream_;
  const asio::any_io_executor executor_;
  const SessionLimits limits_;
  const std::shared_ptr<SessionOwner> owner_;
  boost::beast::flat_buffer buffer_;
  asio::cancellation_signal watchdog_cancel_;
  // Bumped per arm: a timer that fired just before it was disarmed finds a newer generation
  // and does nothing.
  uint64_t watchdog_generation_ = 0;
  bool busy_ = false;  // a request is being answered
  bool close_requested_ = false;
  bool closed_ = false;
};

}  // namespace meshrpc::observe::detail
