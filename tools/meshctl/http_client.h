// HttpConnection: one keep-alive HTTP/1.1 connection from meshctl to a meshrpc server's port
// (Boost.Beast over Asio TCP), and the mapping of its replies to a Status.
//
// Time, threads, timers and DNS come from a runtime::RealEnv like everywhere in meshrpc; the
// HTTP connection itself is Boost.Beast's tcp_stream (a real TCP socket with Beast's own
// timeout), since meshctl is a standalone tool that only ever talks to real servers.
//
// Threading: an HttpConnection belongs to the executor it was made with; one request at a
// time. Lifetime: it must outlive the coroutine of send().
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::meshctl {

// Where requests go: the server's address (for messages and the Host header) and its
// resolved endpoints.
struct Target {
  transport::Address address;
  std::vector<asio::ip::tcp::endpoint> endpoints;
};

// Resolves `address` (transport::async_resolve on the calling coroutine's executor).
// UNAVAILABLE if the host does not resolve.
awaitable<Result<Target>> resolve_target(const transport::Address& address);

struct HttpRequestSpec {
  static HttpRequestSpec get(std::string target) {
    HttpRequestSpec spec;
    spec.target = std::move(target);
    return spec;
  }
  // A JSON body.
  static HttpRequestSpec post(std::string target, std::string body) {
    HttpRequestSpec spec;
    spec.method = "POST";
    spec.target = std::move(target);
    spec.body = std::move(body);
    return spec;
  }

  std::string method = "GET";  // "GET" or "POST"
  std::string target;          // path and query
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpReply {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string meshrpc_status;  // the "meshrpc-status" header, empty when absent
};

class HttpConnection {
 public:
  HttpConnection(asio::any_io_executor executor, const Target& target);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends `request` (connecting first if needed) and reads the reply, all within `timeout`.
  // A transport failure is a Status: UNAVAILABLE when the server cannot be reached or drops
  // the connection, DEADLINE_EXCEEDED when `timeout` passes, INTERNAL for a reply that is not
  // HTTP. After a failure, or a reply without keep-alive, the next send() reconnects.
  awaitable<Result<HttpReply>> send(const HttpRequestSpec& request,
                                    std::chrono::nanoseconds timeout);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Runs `body` on one of env's executors and blocks the calling thread (which must not be one
// of env's) until it finishes; an exception thrown in `body` is rethrown here.
template <typename T>
T run_blocking(runtime::Env& env, std::function<awaitable<T>()> body) {
  std::promise<T> done;
  asio::co_spawn(
      env.executor(0), [&]() -> awaitable<void> { done.set_value(co_await body()); },
      [&done](std::exception_ptr error) {
        if (error) done.set_exception(error);
      });
  return done.get_future().get();
}

// Resolves `address` and runs one request on a fresh connection, on env.
awaitable<Result<HttpReply>> fetch(const transport::Address& address,
                                   const HttpRequestSpec& request,
                                   std::chrono::nanoseconds timeout);

// The Status a reply stands for. 2xx with no non-OK "meshrpc-status" header is OK. Otherwise,
// in order: the JSON error body's "code_number" or "code" ({"code":"UNAVAILABLE",
// "code_number":14,"message":"..."}, observe/http_service.h), the "meshrpc-status" header
// (a name or a number), and last the HTTP code mapped as gRPC maps HTTP codes of non-gRPC
// replies (doc/http-grpc-status-mapping.md: 400 INTERNAL, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, others UNKNOWN).
Status reply_status(const HttpReply& reply);

}  // namespace meshrpc::meshctl
