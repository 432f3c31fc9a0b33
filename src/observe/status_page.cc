// /status.json: the registry's series, grouped by method, endpoint and everything else
// (status_page.h); /status serves the page of status_html.cc.
#include "meshrpc/observe/status_page.h"

#include <unistd.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "meshrpc/base/version.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/wire/settings.h"

namespace meshrpc::observe {

namespace {

enum class SeriesKind { kCounter, kGauge, kHistogram };

struct Series {
  SeriesKind kind = SeriesKind::kCounter;
  double value = 0;  // counters and gauges
  HistogramSnapshot histogram;
  double scale = 1;
};

using SeriesKey = std::pair<std::string, MetricLabels>;

// One collection, with the same series from several collectors added together (counters,
// gauges) or merged bucket by bucket (histograms), as the Prometheus exposition does. A
// sample whose kind disagrees with the series' first is dropped (/metrics reports it).
class SeriesCollector final : public MetricWriter {
 public:
  void counter(std::string_view name, std::string_view, const MetricLabels& labels,
               uint64_t value) override {
    if (Series* series = find(name, labels, SeriesKind::kCounter)) {
      series->value += static_cast<double>(value);
    }
  }
  void gauge(std::string_view name, std::string_view, const MetricLabels& labels,
             double value) override {
    if (Series* series = find(name, labels, SeriesKind::kGauge)) series->value += value;
  }
  void histogram(std::string_view name, std::string_view, const MetricLabels& labels,
                 const HistogramSnapshot& snapshot, double scale) override {
    Series* series = find(name, labels, SeriesKind::kHistogram);
    if (series == nullptr) return;
    HistogramSnapshot& merged = series->histogram;
    if (merged.count == 0) {
      merged = snapshot;
      series->scale = scale;
      return;
    }
    if (snapshot.count == 0) return;
    merged.min = std::min(merged.min, snapshot.min);
    merged.max = std::max(merged.max, snapshot.max);
    merged.count += snapshot.count;
    merged.sum += snapshot.sum;
    merged.bucket_counts.resize(
        std::max(merged.bucket_counts.size(), snapshot.bucket_counts.size()));
    for (size_t i = 0; i < snapshot.bucket_counts.size(); ++i) {
      merged.bucket_counts[i] += snapshot.bucket_counts[i];
    }
  }

  const std::map<SeriesKey, Series>& series() const { return series_; }

 private:
  Series* find(std::string_view name, const MetricLabels& labels, SeriesKind kind) {
    auto [it, inserted] = series_.try_emplace(SeriesKey{std::string(name), labels});
    if (inserted) it->second.kind = kind;
    return it->second.kind == kind ? &it->second : nullptr;
  }

  std::map<SeriesKey, Series> series_;
};

const std::string* find_label(const MetricLabels& labels, std::string_view name) {
  for (const auto& [label, value] : labels) {
    if (label == name) return &value;
  }
  return nullptr;
}

// JSON has no NaN or infinity: those become null. Whole numbers (every count) print as
// integers; 2^53 is where a double stops holding every integer.
boost::json::value number(double value) {
  if (!std::isfinite(value)) return nullptr;
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return static_cast<int64_t>(value);
  }
  return value;
}

boost::json::object latency_json(const Series& series) {
  const HistogramSnapshot& h = series.histogram;
  const double scale = series.scale;
  auto scaled = [scale](uint64_t v) { return number(static_cast<double>(v) * scale); };
  boost::json::object latency;
  latency["count"] = h.count;
  latency["sum"] = scaled(h.sum);
  latency["p50"] = scaled(h.percentile(0.5));
  latency["p90"] = scaled(h.percentile(0.9));
  latency["p99"] = scaled(h.percentile(0.99));
  latency["p999"] = scaled(h.percentile(0.999));
  latency["max"] = scaled(h.max);
  boost::json::array buckets;
  for (size_t i = 0; i < h.bucket_counts.size(); ++i) {
    if (h.bucket_counts[i] == 0) continue;
    // The overflow bucket has no finite bound: its values are at most max.
    const uint64_t upper =
        i >= kHistogramOverflowBucket ? h.max : std::min(histogram_bucket_upper_bound(i), h.max);
    buckets.push_back(boost::json::array{scaled(upper), h.bucket_counts[i]});
  }
  latency["buckets"] = std::move(buckets);
  return latency;
}

// One row of a method table: what the page shows per method (and per endpoint).
struct MethodRow {
  double started = 0;
  double finished = 0;
  double errors = 0;
  double in_flight = 0;
  std::map<std::string, double> codes;
  const Series* latency = nullptr;
  std::map<std::string, double> extra;

  // Takes the series `family` (the name without its meshrpc_server_/meshrpc_client_ prefix).
  void add(std::string_view family, const MetricLabels& labels, const Series& series) {
    if (series.kind == SeriesKind::kHistogram) {
      if (family == "call_duration_seconds") latency = &series;
      return;
    }
    if (family == "calls_started_total") {
      started += series.value;
    } else if (family == "calls_finished_total") {
      const std::string* code = find_label(labels, "code");
      const std::string name = code != nullptr ? *code : "UNKNOWN";
      codes[name] += series.value;
      finished += series.value;
      if (name != "OK") errors += series.value;
    } else if (family == "calls_in_flight") {
      in_flight += series.value;
    } else {
      extra[std::string(family)] += series.value;
    }
  }

  boost::json::object json(const std::string& method) const {
    boost::json::object row;
    row["method"] = method;
    Result<core::MethodNameParts> parts = core::split_method_name(method);
    row["name"] = parts.ok() ? std::string(parts->method) : method;
    row["started"] = number(started);
    row["finished"] = number(finished);
    row["errors"] = number(errors);
    row["in_flight"] = number(in_flight);
    boost::json::object code_counts;
    for (const auto& [code, count] : codes) code_counts[code] = number(count);
    row["codes"] = std::move(code_counts);
    if (latency != nullptr) row["latency"] = latency_json(*latency);
    boost::json::object extras;
    for (const auto& [family, value] : extra) extras[family] = number(value);
    row["extra"] = std::move(extras);
    return row;
  }
};

std::string_view service_of(const std::string& method) {
  Result<core::MethodNameParts> parts = core::split_method_name(method);
  return parts.ok() ? parts->service : std::string_view("(unregistered)");
}

constexpr std::string_view kServerPrefix = "meshrpc_server_";
constexpr std::string_view kClientPrefix = "meshrpc_client_";

boost::json::object process_json(const ServedServer& server, runtime::Duration uptime) {
  boost::json::object process;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  process["host"] = host;
  process["pid"] = static_cast<int64_t>(getpid());
  process["uptime_seconds"] = std::chrono::duration<double>(uptime).count();
  process["executors"] = server.server.env().executor_count();
  process["protocol_version"] = wire::kProtocolVersion;
  process["version"] = kVersion;
  return process;
}

boost::json::object series_json(const SeriesKey& key, const Series& series) {
  boost::json::object out;
  out["name"] = key.first;
  boost::json::object labels;
  for (const auto& [name, value] : key.second) labels[name] = value;
  out["labels"] = std::move(labels);
  switch (series.kind) {
    case SeriesKind::kCounter:
      out["type"] = "counter";
      out["value"] = number(series.value);
      break;
    case SeriesKind::kGauge:
      out["type"] = "gauge";
      out["value"] = number(series.value);
      break;
    case SeriesKind::kHistogram:
      out["type"] = "histogram";
      out["value"] = series.histogram.count;
      out["latency"] = latency_json(series);
      break;
  }
  return out;
}

awaitable<HttpResponse> ready(HttpResponse response) { co_return response; }

}  // namespace

std::string status_json(const ServedServer& server, const MetricRegistry& registry,
                        runtime::Duration uptime) {
  SeriesCollector collector;
  registry.collect(collector);

  // Every registered method has a row, called or not; a method seen only in the metrics
  // (calls counted under "other", or another server's) gets one too.
  std::vector<std::string> order;
  std::map<std::string, MethodRow> server_rows;
  for (const codec::MethodDescription& method : server.methods) {
    if (server_rows.try_emplace(method.name).second) order.push_back(method.name);
  }
  std::map<std::pair<std::string, std::string>, MethodRow> client_rows;  // (method, endpoint)
  boost::json::array other_series;
  for (const auto& [key, series] : collector.series()) {
    const auto& [name, labels] = key;
    const std::string* method = find_label(labels, "method");
    const std::string* endpoint = find_label(labels, "endpoint");
    if (method != nullptr && name.starts_with(kServerPrefix)) {
      auto [row, inserted] = server_rows.try_emplace(*method);
      if (inserted) order.push_back(*method);
      row->second.add(std::string_view(name).substr(kServerPrefix.size()), labels, series);
    } else if (method != nullptr && endpoint != nullptr && name.starts_with(kClientPrefix)) {
      client_rows[{*method, *endpoint}].add(std::string_view(name).substr(kClientPrefix.size()),
                                            labels, series);
    } else {
      other_series.push_back(series_json(key, series));
    }
  }

  boost::json::array services;
  std::map<std::string, size_t, std::less<>> service_index;
  for (const std::string& method : order) {
    // "other" (calls to unknown methods) is shown once there are some.
    const MethodRow& row = server_rows.at(method);
    if (server.find_method(method) == nullptr && row.started == 0) continue;
    const std::string_view service = service_of(method);
    auto [it, inserted] = service_index.try_emplace(std::string(service), services.size());
    if (inserted) {
      boost::json::object entry;
      entry["name"] = service;
      entry["methods"] = boost::json::array();
      services.push_back(std::move(entry));
    }
    services[it->second].as_object()["methods"].as_array().push_back(row.json(method));
  }
  boost::json::array clients;
  for (const auto& [key, row] : client_rows) {
    boost::json::object entry = row.json(key.first);
    entry["endpoint"] = key.second;
    clients.push_back(std::move(entry));
  }

  boost::json::object body;
  body["process"] = process_json(server, uptime);
  body["services"] = std::move(services);
  body["clients"] = std::move(clients);
  body["series"] = std::move(other_series);
  for (const auto& [key, section] : server.status_sections) {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(section(), ec);
    body[key] = ec ? boost::json::value(nullptr) : std::move(value);
  }
  return boost::json::serialize(body);
}

void add_status_pages(HttpService& http, const MetricRegistry& registry) {
  std::shared_ptr<const ServedServer> server = http.served();
  const runtime::TimePoint started = server->server.env().now();
  http.add_page("/status", [](const HttpRequest&) {
    HttpResponse response;
    response.content_type = "text/html; charset=utf-8";
    response.body = std::string(status_html());
    return ready(std::move(response));
  });
  http.add_page("/status.json", [server, &registry, started](const HttpRequest&) {
    HttpResponse response;
    response.body = status_json(*server, registry, server->server.env().now() - started);
    // Live data: a cached copy would freeze the page.
    response.headers.emplace_back("cache-control", "no-store");
    return ready(std::move(response));
  });
}

}  // namespace meshrpc::observe
