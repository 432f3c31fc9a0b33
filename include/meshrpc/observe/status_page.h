// The /status page: one self-contained HTML page (inline CSS and JS, no external assets, so it
// works offline) that shows a process at a glance and refreshes itself live, and
// /status.json, the data it polls. HttpService::attach() adds both when it has a registry:
//
//   auto http = observe::HttpService::attach(server);   // /status and /status.json included
//   open http://127.0.0.1:7001/status
//
// The page shows the process (host, pid, uptime), each service's methods with their rate,
// errors, in-flight calls and p50/p90/p99 latency, outgoing calls (meshrpc_client_* per
// method and endpoint), connections, circuit breakers and ejected endpoints, cluster members,
// and any other series the registry holds, plus a latency chart of the selected method: p50
// and p99 of each refresh interval over the last two minutes, and its latency distribution.
// The browser polls /status.json every second and redraws in place. Rates and interval
// percentiles are computed by the page from successive samples, so the server keeps no
// per-viewer state.
//
// /status.json (all durations in seconds):
//   {"process": {"host", "pid", "uptime_seconds", "executors", "version" (meshrpc's),
//                "protocol_version"},
//    "services": [{"name": "pkg.Svc", "methods": [MethodStats...]}],   // registered order
//    "clients": [MethodStats + "endpoint"...],                          // meshrpc_client_*
//    "series": [{"name", "type": "counter"|"gauge"|"histogram", "labels": {...}, "value",
//                ("latency" for histograms)}]}                          // everything else
//   MethodStats: {"method": "/pkg.Svc/M", "name": "M", "started", "finished", "errors"
//                 (finished with a code other than OK), "in_flight", "codes": {"OK": n, ...},
//                 "latency": {"count", "sum", "p50", "p90", "p99", "p999", "max",
//                             "buckets": [[upper_bound, count], ...]},   // non-empty only
//                 "extra": {family name without its prefix: value}}  // other per-method series
// Families are read generically from the registry: a per-method family added later (retries,
// say) appears under "extra", a new family without a method label under "series".
//
// Lifetime: `registry` outlives the pages (the HttpService's contract); the server need not.
// Threading: the handlers may run on any io thread at once; they only read.
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::observe {

// Adds GET /status (text/html) and GET /status.json to `http`. Uptime counts from this call
// (made by attach(), before the server starts), on the server's Env clock.
void add_status_pages(HttpService& http, const MetricRegistry& registry);

// The JSON of /status.json, as described above.
std::string status_json(const ServedServer& server, const MetricRegistry& registry,
                        runtime::Duration uptime);

// The page itself (status_html.cc).
std::string_view status_html();

}  // namespace meshrpc::observe
