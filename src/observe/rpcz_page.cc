#include "meshrpc/observe/rpcz_page.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace meshrpc::observe {

namespace {

int64_t micros(runtime::Duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

bool matches(const core::CallSpan& span, const RpczFilter& filter) {
  if (filter.method && span.method != *filter.method) return false;
  if (filter.trace_id && span.trace_id != *filter.trace_id) return false;
  return span.duration >= filter.min_duration;
}

const char* side_name(core::CallSpan::Side side) {
  return side == core::CallSpan::Side::kServer ? "server" : "client";
}

boost::json::object span_json(const core::CallSpan& span, runtime::TimePoint now) {
  boost::json::object out;
  out["side"] = side_name(span.side);
  out["method"] = span.method;
  out["peer"] = span.peer.host.empty() ? std::string() : span.peer.to_string();
  out["start_us"] = micros(span.start.time_since_epoch());
  out["ended_ago_ms"] = micros(now - span.end()) / 1000;
  out["duration_us"] = micros(span.duration);
  out["code"] = status_code_name(span.code);
  out["code_number"] = static_cast<int>(span.code);
  out["message"] = span.message;
  out["trace_id"] = span.trace_id.valid() ? span.trace_id.to_hex() : std::string();
  out["span_id"] = span.span_id != 0 ? core::span_id_hex(span.span_id) : std::string();
  out["parent_span_id"] =
      span.parent_span_id != 0 ? core::span_id_hex(span.parent_span_id) : std::string();
  out["request_bytes"] = span.request_bytes;
  out["response_bytes"] = span.response_bytes;
  out["attempt"] = span.attempt;
  return out;
}

std::string text_table(const char* title, const std::vector<const core::CallSpan*>& spans) {
  std::string out = std::string(title) + " (" + std::to_string(spans.size()) + ")\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-6s %-32s %-22s %7s %12s %-18s %-32s %8s %8s  %s\n", "side",
                "method", "peer", "attempt", "duration_us", "code", "trace_id", "req_B", "resp_B",
                "message");
  out += line;
  for (const core::CallSpan* span : spans) {
    const std::string peer = span->peer.host.empty() ? "-" : span->peer.to_string();
    std::snprintf(line, sizeof line, "%-6s %-32s %-22s %7u %12lld %-18s %-32s %8llu %8llu  ",
                  side_name(span->side), span->method.c_str(), peer.c_str(), span->attempt,
                  static_cast<long long>(micros(span->duration)),
                  std::string(status_code_name(span->code)).c_str(),
                  span->trace_id.valid() ? span->trace_id.to_hex().c_str() : "-",
                  static_cast<unsigned long long>(span->request_bytes),
                  static_cast<unsigned long long>(span->response_bytes));
    out += line;
    out += span->message;  // unbounded: not through the fixed-size line
    out += '\n';
  }
  return out;
}

std::vector<const core::CallSpan*> filtered(const std::vector<core::CallSpan>& spans,
                                            const RpczFilter& filter) {
  std::vector<const core::CallSpan*> out;
  for (const auto& span : spans) {
    if (matches(span, filter)) out.push_back(&span);
  }
  return out;
}

// Client spans merged into the server's lists: recent by end time, slowest by method then
// duration, as CallLog orders its own.
void merge(core::CallLogSnapshot& into, core::CallLogSnapshot from) {
  into.recent.insert(into.recent.end(), std::make_move_iterator(from.recent.begin()),
                     std::make_move_iterator(from.recent.end()));
  std::stable_sort(into.recent.begin(), into.recent.end(),
                   [](const auto& a, const auto& b) { return a.end() > b.end(); });
  into.slowest.insert(into.slowest.end(), std::make_move_iterator(from.slowest.begin()),
                      std::make_move_iterator(from.slowest.end()));
  std::stable_sort(into.slowest.begin(), into.slowest.end(), [](const auto& a, const auto& b) {
    return a.method != b.method ? a.method < b.method : a.duration > b.duration;
  });
}

awaitable<HttpResponse> ready(HttpResponse response) { co_return response; }

}  // namespace

Result<RpczFilter> parse_rpcz_query(const std::map<std::string, std::string>& query) {
  RpczFilter filter;
  if (auto it = query.find("format"); it != query.end()) {
    if (it->second != "text" && it->second != "json") {
      return invalid_argument_error("format \"" + it->second + "\" is not text or json");
    }
    filter.text = it->second == "text";
  }
  if (auto it = query.find("method"); it != query.end() && !it->second.empty()) {
    filter.method = it->second;
  }
  if (auto it = query.find("trace_id"); it != query.end()) {
    filter.trace_id = core::TraceId::from_hex(it->second);
    if (!filter.trace_id) {
      return invalid_argument_error("trace_id \"" + it->second +
                                    "\" is not 32 lower-case hex digits (and not all zero)");
    }
  }
  if (auto it = query.find("min_duration_ms"); it != query.end()) {
    double ms = 0;
    const std::string& text = it->second;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(ms) || ms < 0 ||
        ms > 1e12) {
      return invalid_argument_error("min_duration_ms \"" + text +
                                    "\" is not a non-negative number of milliseconds");
    }
    filter.min_duration = std::chrono::duration_cast<runtime::Duration>(
        std::chrono::duration<double, std::milli>(ms));
  }
  return filter;
}

std::string render_rpcz(const core::CallLogSnapshot& snapshot, const RpczFilter& filter,
                        runtime::TimePoint now) {
  const auto recent = filtered(snapshot.recent, filter);
  const auto slowest = filtered(snapshot.slowest, filter);
  if (filter.text) {
    return text_table("recent calls, newest first", recent) + "\n" +
           text_table("slowest calls per method, slowest first", slowest);
  }
  boost::json::object body;
  auto to_array = [now](const std::vector<const core::CallSpan*>& spans) {
    boost::json::array out;
    for (const core::CallSpan* span : spans) out.push_back(span_json(*span, now));
    return out;
  };
  body["recent"] = to_array(recent);
  body["slowest"] = to_array(slowest);
  return boost::json::serialize(body);
}

PageHandler rpcz_page(core::Server& server, std::vector<const core::CallLog*> client_logs) {
  return [server = server.shared_handle(),
          client_logs = std::move(client_logs)](const HttpRequest& request) {
    HttpResponse response;
    Result<RpczFilter> filter = parse_rpcz_query(request.query);
    if (!filter.ok()) {
      response.status = http_status_for(filter.status().code());
      response.body = error_body(filter.status());
      return ready(std::move(response));
    }
    core::CallLogSnapshot snapshot;
    if (auto own = server.call_log_snapshot()) snapshot = std::move(*own);
    for (const core::CallLog* log : client_logs) merge(snapshot, log->snapshot());
    if (filter->text) response.content_type = "text/plain; charset=utf-8";
    response.body = render_rpcz(snapshot, *filter, server.env().now());
    return ready(std::move(response));
  };
}

}  // namespace meshrpc::observe
