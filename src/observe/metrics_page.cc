#include "meshrpc/observe/metrics_page.h"

#include <string>
#include <utility>

#include "meshrpc/observe/prometheus.h"

namespace meshrpc::observe {

namespace {

// The page never suspends: the response is ready when the coroutine starts.
awaitable<HttpResponse> ready(HttpResponse response) { co_return response; }

}  // namespace

PageHandler metrics_page(const MetricRegistry& registry) {
  return [&registry](const HttpRequest& request) {
    HttpResponse response;
    response.content_type = std::string(kPrometheusContentType);
    response.body = render_prometheus(registry);
    if (auto grep = request.query.find("grep"); grep != request.query.end()) {
      response.body = filter_prometheus(response.body, grep->second);
    }
    return ready(std::move(response));
  };
}

}  // namespace meshrpc::observe
