// The /rpcz page: a server's recent and slowest calls (core::CallLog), with their timing,
// status, trace id, bytes and the peer that made (or, for client spans, served) them.
//
//   http->add_page("/rpcz", observe::rpcz_page(server));   // HttpService::attach does this
//
//   curl http://127.0.0.1:7001/rpcz                             # JSON
//   curl 'http://127.0.0.1:7001/rpcz?format=text'               # a table
//   curl 'http://127.0.0.1:7001/rpcz?method=/demo.Echo/Say&min_duration_ms=100'
//   curl 'http://127.0.0.1:7001/rpcz?trace_id=4bf92f3577b34da6a3ce929d0e0e4736'
//
// JSON: {"recent":[span...],"slowest":[span...]}, newest first and slowest first (per
// method); a span is {"side","method","peer","start_us","ended_ago_ms","duration_us","code",
// "code_number","message","trace_id","span_id","parent_span_id","request_bytes",
// "response_bytes"}. start_us is on the server's Env clock (monotonic, not wall time).
// A bad filter (unknown format, a trace id that is not 32 lower-case hex digits, a
// min_duration_ms that is not a non-negative number) is a 400 with an error body.
//
// Lifetime: `server` (and every log in `client_logs`) outlives the handler.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/core/call_log.h"
#include "meshrpc/core/server.h"
#include "meshrpc/observe/http_service.h"

namespace meshrpc::observe {

// What a request's query asks to see.
struct RpczFilter {
  std::optional<std::string> method;  // exact (canonical "/pkg.Service/Method") name
  std::optional<core::TraceId> trace_id;
  runtime::Duration min_duration{};
  bool text = false;  // ?format=text
};

// The filter in `query`, or INVALID_ARGUMENT naming the parameter and value.
Result<RpczFilter> parse_rpcz_query(const std::map<std::string, std::string>& query);
// The page body for `snapshot`, filtered; `now` on the same clock as the spans.
std::string render_rpcz(const core::CallLogSnapshot& snapshot, const RpczFilter& filter,
                        runtime::TimePoint now);

// The server's calls, and the client spans of `client_logs` (e.g. the channels its handlers
// call through) merged into the same lists.
PageHandler rpcz_page(core::Server& server, std::vector<const core::CallLog*> client_logs = {});

}  // namespace meshrpc::observe
