// HttpService: HTTP/1.1 on a meshrpc server's own port (core::Server sniffs each connection's
// first bytes and hands HTTP ones here). One line turns it on:
//
//   codec::Server server(env, network);
//   server.add_service(echo);
//   auto http = observe::HttpService::attach(server);
//   server.start({"0.0.0.0", 7001});
//
//   curl -d '{"text":"hi"}' http://127.0.0.1:7001/meshrpc.examples.Echo/Say
//   curl http://127.0.0.1:7001/health
//
// Built-in routes (GET unless noted):
//   POST /<package.Service>/<Method>   JSON gateway: the body is the request in JSON (protobuf's
//                                      JSON mapping, or the struct codec's JSON form), the reply
//                                      is JSON. A non-OK Status answers with the HTTP code of
//                                      http_status_for() and the JSON body of error_body().
//                                      Metadata: request headers named "meshrpc-meta-<key>",
//                                      and the Authorization header as metadata
//                                      "authorization" (security/authenticator.h); the client
//                                      certificate as the call's peer identity. So server
//                                      interceptors authenticate and authorize gateway calls
//                                      as they do calls over the meshrpc protocol: UNAUTHENTICATED
//                                      answers 401 with WWW-Authenticate: Bearer, PERMISSION_DENIED
//                                      403. Deadline: header "meshrpc-timeout-ms".
//   /health                            {"status":"SERVING"|"NOT_SERVING","live":true,
//                                      "ready":bool}; 503 while the server shuts down
//   /services                          every typed method with its kind, idempotency and
//                                      request/response schema (what meshctl list prints)
//   other paths                        404 with a JSON error body
//   /metrics                           Prometheus text of Options::metrics (?grep=PATTERN keeps
//                                      the matching samples)
// Upper layers add their own pages (add_page): /rpcz, /status, /members.
//
// Access: Options::page_access, when set, is asked before every request except gateway calls
// (the server's interceptors guard those) and /health (load balancers and orchestrators probe
// it without credentials, and it tells only whether the server serves); a non-OK answer is the
// response (401 with WWW-Authenticate: Bearer for UNAUTHENTICATED, 403 for PERMISSION_DENIED).
// security::page_guard() makes one from a token verifier and an access policy.
//
// Bad input never hurts the server: a request that does not parse as HTTP gets 400 and the
// connection is closed; a body over Options::max_body_bytes gets 413; bad JSON gets 400 with
// INVALID_ARGUMENT; an unknown method 404 with UNIMPLEMENTED.
//
// Threading: pages run on the connection's executor, as coroutines; add_page() before the
// server starts. Lifetime: the server holds the service from attach() on. Connections may
// outlive both the server and the service: they read the server only through a
// core::ServerHandle (ServedServer), so a request in flight while the server is destroyed on
// another thread gets UNAVAILABLE, never a dangling server. shutdown() (the server calls it
// when it shuts down or is destroyed) closes idle connections and lets a request in flight
// finish (its connection closes after the reply); a connection handed over after it gets
// one answer (503 for /health and the gateway) and is closed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/peer_identity.h"

namespace meshrpc::observe {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // as sent: path and query
  std::string path;                            // decoded path, without the query
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  transport::Address peer;
  // The client's verified TLS certificate (HTTPS with a client certificate), or null.
  std::shared_ptr<const transport::PeerIdentity> peer_identity;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A page: answers one path. Runs on the connection's executor; may suspend.
using PageHandler = std::function<awaitable<HttpResponse>(const HttpRequest&)>;

// The HTTP status a Status maps to (the same table as grpc-gateway): OK 200,
// INVALID_ARGUMENT/FAILED_PRECONDITION/OUT_OF_RANGE 400, UNAUTHENTICATED 401,
// PERMISSION_DENIED 403, NOT_FOUND/UNIMPLEMENTED 404, ALREADY_EXISTS/ABORTED 409,
// RESOURCE_EXHAUSTED 429, CANCELLED 499, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 500.
unsigned http_status_for(StatusCode code);
// {"code":"UNAVAILABLE","code_number":14,"message":"..."}
std::string error_body(const Status& status);

// What an HttpService's connections and pages read of the server they serve. Shared, so it
// outlives the Server and the service (connections may).
struct ServedServer {
  explicit ServedServer(core::ServerHandle handle) : server(std::move(handle)) {}
  core::ServerHandle server;
  // The server's typed methods, copied when it starts (registration is over then), before
  // its first connection; read-only afterwards.
  std::vector<codec::MethodDescription> methods;
  // Null if `canonical` names no typed method.
  const codec::MethodDescription* find_method(std::string_view canonical) const;
  // Sections upper layers add to /status.json (HttpService::add_status_section); fixed once
  // the server starts.
  std::map<std::string, std::function<std::string()>> status_sections;
};

class HttpService final : public core::HttpConnectionHandler,
                          public std::enable_shared_from_this<HttpService> {
 public:
  struct Options {
    // Largest request body accepted (413 beyond).
    size_t max_body_bytes = 4 << 20;
    // Largest request header block (431 beyond).
    size_t max_header_bytes = 16 << 10;
    // A keep-alive connection with no request for this long is closed. It also bounds reading
    // one whole request and writing one response, so a slow client holds a socket no longer.
    // Timed by the server's Env (virtual time under SimEnv).
    runtime::Duration idle_timeout = std::chrono::seconds(60);
    // Deadline of a gateway call without a meshrpc-timeout-ms header.
    runtime::Duration default_call_timeout = std::chrono::seconds(30);
    // Served at /metrics in Prometheus text (docs/metrics.md); the registry the server
    // records into (ServerOptions::metrics). Null: no /metrics page. Outlives the service.
    MetricRegistry* metrics = &MetricRegistry::global();
    // Asked before every page (see "Access" above); a non-OK status is the answer. Null: every
    // page is open, as suits a port only operators reach. Called concurrently on connections'
    // executors: keep it thread-safe and quick (it must not block).
    std::function<Status(const HttpRequest&)> page_access;
  };

  // Creates the service and installs it on `server` (core::Server::set_http_handler): the
  // gateway serves `server`'s typed methods. Before server.start().
  static std::shared_ptr<HttpService> attach(codec::Server& server, Options options);
  static std::shared_ptr<HttpService> attach(codec::Server& server) {
    return attach(server, Options{});
  }

  // Serves `path` (exact match) with `handler`, replacing a built-in page of that path.
  void add_page(std::string path, PageHandler handler);
  // Adds `key` to /status.json: `json` returns a JSON text, called on every refresh on an io
  // thread (so it must be thread-safe, cheap, and must not outlive what it reads: capture
  // weakly). The page renders key "members" as the cluster table. Before the server starts.
  void add_status_section(std::string key, std::function<std::string()> json);
  // The server this service serves, for pages to read (methods are filled when it starts).
  std::shared_ptr<const ServedServer> served() const;

  // core::HttpConnectionHandler
  void serve(std::shared_ptr<transport::ByteStream> stream, Buffer first_bytes) override;
  void shutdown() override;
  void on_server_start() override;

  HttpService(codec::Server& server, Options options);  // use attach()
  ~HttpService() override;

 private:
  struct State;
  // Read once, by on_server_start(): the server is alive then.
  codec::Server* codec_server_;
  std::shared_ptr<State> state_;
};

}  // namespace meshrpc::observe
