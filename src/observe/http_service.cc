// HttpService: routing, the built-in pages and the sessions it owns (http_service.h).
#include "meshrpc/observe/http_service.h"

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <mutex>
#include <string>
#include <utility>

#include "http_session.h"
#include "json_gateway.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/observe/metrics_page.h"
#include "meshrpc/observe/rpcz_page.h"
#include "meshrpc/observe/status_page.h"

namespace meshrpc::observe {

namespace {

// A path of two segments, "/<service>/<method>": what the gateway serves.
bool is_method_path(std::string_view path) {
  if (path.size() < 4 || path[0] != '/') return false;
  const size_t slash = path.find('/', 1);
  return slash != std::string_view::npos && slash > 1 && slash + 1 < path.size() &&
         path.find('/', slash + 1) == std::string_view::npos;
}

HttpResponse method_not_allowed(const HttpRequest& request, std::string_view allow) {
  HttpResponse response = detail::status_response(
      405, Status(StatusCode::kUnimplemented, request.method + " is not allowed on " +
                                                  request.path + "; use " + std::string(allow)));
  response.headers.emplace_back("allow", std::string(allow));
  return response;
}

}  // namespace

struct HttpService::State final : detail::SessionOwner,
                                  std::enable_shared_from_this<HttpService::State> {
  State(codec::Server& server, Options options)
      : served(std::make_shared<ServedServer>(server.shared_handle())),
        env(server.env()),
        options(options) {}

  awaitable<HttpResponse> answer(const HttpRequest& request) override;
  bool closing() const override { return closing_flag.load(std::memory_order_acquire); }
  void session_ended(uint64_t id) override {
    std::lock_guard lock(mutex);
    sessions.erase(id);
  }

  awaitable<HttpResponse> gateway(const HttpRequest& request);
  HttpResponse health() const;
  HttpResponse services() const;
  const codec::MethodDescription* find_method(std::string_view canonical) const {
    return served->find_method(canonical);
  }

  // Never the Server itself: a request may still run when it is destroyed.
  const std::shared_ptr<ServedServer> served;
  runtime::Env& env;
  const Options options;
  // Written before the server starts (add_page), read-only after.
  std::map<std::string, PageHandler, std::less<>> pages;
  std::atomic<bool> closing_flag{false};
  std::mutex mutex;
  uint64_t next_session_id = 0;                                     // guarded by mutex
  std::map<uint64_t, std::weak_ptr<detail::HttpSession>> sessions;  // guarded by mutex
};

awaitable<HttpResponse> HttpService::State::answer(const HttpRequest& request) {
  auto page = pages.find(request.path);
  const bool gateway_call =
      page == pages.end() && request.method == "POST" && is_method_path(request.path);
  if (options.page_access && !gateway_call && request.path != "/health") {
    if (Status allowed = options.page_access(request); !allowed.ok()) {
      co_return detail::status_response(allowed);
    }
  }
  if (page != pages.end()) {
    if (request.method != "GET") co_return method_not_allowed(request, "GET");
    co_return co_await page->second(request);
  }
  if (gateway_call) co_return co_await gateway(request);
  if (request.path == "/health" || request.path == "/services") {
    if (request.method != "GET") co_return method_not_allowed(request, "GET");
    co_return request.path == "/health" ? health() : services();
  }
  if (is_method_path(request.path) &&
      find_method(core::canonical_method_name(request.path)) != nullptr) {
    co_return method_not_allowed(request, "POST");
  }
  co_return detail::status_response(not_found_error("no page at " + request.path));
}

awaitable<HttpResponse> HttpService::State::gateway(const HttpRequest& request) {
  if (closing()) co_return detail::status_response(unavailable_error("server is shutting down"));
  std::string method = core::canonical_method_name(request.path);
  const codec::MethodDescription* description = find_method(method);
  co_return co_await detail::call_gateway(served->server, env, description, std::move(method),
                                          request, options.default_call_timeout);
}

HttpResponse HttpService::State::health() const {
  const bool serving = !closing();
  boost::json::object body;
  body["status"] = serving ? "SERVING" : "NOT_SERVING";
  body["live"] = true;
  body["ready"] = serving;
  HttpResponse response;
  response.status = serving ? 200 : 503;
  response.body = boost::json::serialize(body);
  return response;
}

HttpResponse HttpService::State::services() const {
  HttpResponse response;
  response.body = detail::services_json(served->methods);
  return response;
}

// --- HttpService --------------------------------------------------------------------------

std::shared_ptr<HttpService> HttpService::attach(codec::Server& server, Options options) {
  auto service = std::make_shared<HttpService>(server, options);
  if (options.metrics != nullptr) service->add_page("/metrics", metrics_page(*options.metrics));
  service->add_page("/rpcz", rpcz_page(server));
  if (options.metrics != nullptr) add_status_pages(*service, *options.metrics);
  server.set_http_handler(service);
  return service;
}

HttpService::HttpService(codec::Server& server, Options options)
    : codec_server_(&server), state_(std::make_shared<State>(server, options)) {}

const codec::MethodDescription* ServedServer::find_method(std::string_view canonical) const {
  for (const auto& method : methods) {
    if (method.name == canonical) return &method;
  }
  return nullptr;
}

HttpService::~HttpService() = default;

void HttpService::add_page(std::string path, PageHandler handler) {
  state_->pages[std::move(path)] = std::move(handler);
}

std::shared_ptr<const ServedServer> HttpService::served() const { return state_->served; }

void HttpService::add_status_section(std::string key, std::function<std::string()> json) {
  state_->served->status_sections[std::move(key)] = std::move(json);
}

// The copy happens-before every connection, so the gateway never reads the codec::Server's
// own list, which goes before the server's connections do.
void HttpService::on_server_start() { state_->served->methods = codec_server_->methods(); }

void HttpService::serve(std::shared_ptr<transport::ByteStream> stream, Buffer first_bytes) {
  State& state = *state_;
  const detail::SessionLimits limits{state.options.max_body_bytes, state.options.max_header_bytes,
                                     state.options.idle_timeout};
  std::shared_ptr<detail::HttpSession> session;
  {
    std::lock_guard lock(state.mutex);
    session =
        std::make_shared<detail::HttpSession>(state.next_session_id++, state.env, std::move(stream),
                                              std::move(first_bytes), limits, state_);
    state.sessions.emplace(session->id(), session);
  }
  session->start();
  // A connection handed over while shutting down still gets its one answer (503 for the
  // gateway and /health), then closes: keep-alive is off once closing() is true.
}

void HttpService::shutdown() {
  state_->closing_flag.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<detail::HttpSession>> sessions;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& [id, weak] : state_->sessions) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->request_close();
}

}  // namespace meshrpc::observe
