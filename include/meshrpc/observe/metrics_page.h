// The /metrics page: a MetricRegistry in the Prometheus text format (prometheus.h).
//
//   http->add_page("/metrics", observe::metrics_page(MetricRegistry::global()));
//
//   curl http://127.0.0.1:7001/metrics
//   curl 'http://127.0.0.1:7001/metrics?grep=/demo.Echo/'   # only samples containing it
//
// Lifetime: `registry` outlives the handler.
#pragma once

#include <string_view>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/observe/http_service.h"

namespace meshrpc::observe {

// Content-Type: text/plain; version=0.0.4; charset=utf-8. The query parameter `grep` keeps
// the samples whose line contains it (filter_prometheus).
PageHandler metrics_page(const MetricRegistry& registry);

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace meshrpc::observe
