// meshctl call, health and metrics: one HTTP request each (call: one per attempt).
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <regex>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "http_client.h"
#include "meshrpc/resilience/backoff.h"
#include "meshrpc/runtime/random.h"
#include "pretty_json.h"

namespace meshrpc::meshctl {

namespace json = boost::json;

namespace {

// The codes that say the call did not run and may succeed if sent again (status.h).
bool is_retryable(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kResourceExhausted;
}

// The first retry waits up to 100 ms, each next one up to twice as long, capped at 2 s: the
// resilience layer's default policy, which spreads clients that failed together.
resilience::BackoffPolicy call_backoff_policy() {
  return resilience::BackoffPolicy{.kind = resilience::BackoffKind::kExponentialFullJitter,
                                   .initial = std::chrono::milliseconds(100),
                                   .max = std::chrono::seconds(2),
                                   .multiplier = 2.0};
}

void print_reply_body(const std::string& body) {
  error_code ec;
  json::value value = json::parse(body, ec);
  std::string text = ec ? body : to_pretty_json(value);
  if (text.empty() || text.back() != '\n') text += '\n';
  std::fputs(text.c_str(), stdout);
}

awaitable<int> call_with_retries(runtime::Env& env, const CallFlags& flags, int retries) {
  Result<Target> target = co_await resolve_target(flags.address);
  if (!target.ok()) co_return report_error(target.status());
  const HttpRequestSpec request = gateway_request(flags);
  resilience::Backoff backoff(call_backoff_policy());
  runtime::Random random(env.random_u64());
  for (int attempt = 1;; ++attempt) {
    // A fresh connection per attempt: the last one may be what failed.
    HttpConnection connection(co_await asio::this_coro::executor, *target);
    Result<HttpReply> reply = co_await connection.send(request, flags.timeout);
    const Status status = reply.ok() ? reply_status(*reply) : reply.status();
    if (status.ok()) {
      print_reply_body(reply->body);
      co_return 0;
    }
    if (attempt > retries || !is_retryable(status.code())) co_return report_error(status);
    const std::chrono::nanoseconds delay = backoff.next(random);
    std::fprintf(stderr, "attempt %d of %d: %s: %s; retrying in %s\n", attempt, retries + 1,
                 std::string(status_code_name(status.code())).c_str(),
                 std::string(status.message()).c_str(), format_latency(delay).c_str());
    co_await env.async_wait_for(delay, use_nothrow_awaitable);
  }
}

}  // namespace

Result<HttpReply> get_page(const transport::Address& address, const std::string& path,
                           std::chrono::nanoseconds timeout) {
  runtime::RealEnv env(one_thread_env());
  return run_blocking<Result<HttpReply>>(env, [&]() -> awaitable<Result<HttpReply>> {
    co_return co_await fetch(address, HttpRequestSpec::get(path), timeout);
  });
}

int report_error(const Status& status) {
  std::fprintf(stderr, "%s: %s\n", std::string(status_code_name(status.code())).c_str(),
               std::string(status.message()).c_str());
  return static_cast<int>(status.code());
}

HttpRequestSpec gateway_request(const CallFlags& flags) {
  HttpRequestSpec request = HttpRequestSpec::post(flags.method_path, flags.json);
  // Rounded up: a deadline of 0 ms would fail every call.
  const auto timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(flags.timeout).count();
  request.headers.emplace_back("meshrpc-timeout-ms", std::to_string(timeout_ms));
  for (const auto& [key, value] : flags.metadata) {
    request.headers.emplace_back("meshrpc-meta-" + key, value);
  }
  return request;
}

runtime::RealEnv::Options one_thread_env() {
  return runtime::RealEnv::Options{.threads = 1, .blocking_threads = 1};
}

int run_call(const CallFlags& flags, int retries) {
  error_code json_error;
  json::parse(flags.json, json_error);
  if (json_error) {
    return report_error(invalid_argument_error("request '" + flags.json +
                                               "' is not JSON: " + json_error.message()));
  }
  runtime::RealEnv env(one_thread_env());
  return run_blocking<int>(
      env, [&]() -> awaitable<int> { co_return co_await call_with_retries(env, flags, retries); });
}

int run_health(const transport::Address& address, std::chrono::nanoseconds timeout) {
  constexpr int kNotServing = static_cast<int>(StatusCode::kUnavailable);
  Result<HttpReply> reply = get_page(address, "/health", timeout);
  if (!reply.ok()) {
    report_error(reply.status());
    return kNotServing;
  }
  error_code ec;
  json::value body = json::parse(reply->body, ec);
  const json::value* serving =
      (!ec && body.is_object()) ? body.as_object().if_contains("status") : nullptr;
  if (serving == nullptr || !serving->is_string()) {
    Status status = reply_status(*reply);
    if (status.ok()) status = unknown_error("/health replied without a \"status\" string");
    report_error(status);
    return kNotServing;
  }
  std::string line = std::string(serving->as_string());
  for (const char* flag : {"live", "ready"}) {
    const json::value* value = body.as_object().if_contains(flag);
    if (value != nullptr && value->is_bool()) {
      line += std::string("  ") + flag + "=" + (value->as_bool() ? "true" : "false");
    }
  }
  std::printf("%s\n", line.c_str());
  return serving->as_string() == "SERVING" && reply->status == 200 ? 0 : kNotServing;
}

int run_metrics(const transport::Address& address, const std::optional<std::string>& grep,
                std::chrono::nanoseconds timeout) {
  // The whole page, filtered here: --grep is a regular expression, the server's ?grep= a
  // plain substring.
  Result<HttpReply> reply = get_page(address, "/metrics", timeout);
  if (!reply.ok()) return report_error(reply.status());
  if (Status status = reply_status(*reply); !status.ok()) return report_error(status);
  std::optional<std::regex> pattern;
  if (grep) pattern.emplace(*grep);
  std::istringstream lines(reply->body);
  for (std::string line; std::getline(lines, line);) {
    if (pattern && !std::regex_search(line, *pattern)) continue;
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

// GET /services, for list.cc.
Result<HttpReply> get_services(const transport::Address& address,
                               std::chrono::nanoseconds timeout) {
  return get_page(address, "/services", timeout);
}

}  // namespace meshrpc::meshctl
