// The Prometheus text exposition format (version 0.0.4) of a MetricRegistry: what /metrics
// serves (metrics_page.h) and `promtool check metrics` accepts.
//
// Families are sorted by name, each with one # HELP and one # TYPE line and all its samples
// together (sorted by labels), however many collectors wrote it. Samples with the same name
// and labels from several collectors are one series: counters and gauges are added,
// histograms merged bucket by bucket (two servers in one process serving the same method).
// Names and label names that are not valid Prometheus are dropped, and so is a sample whose
// type or histogram scale disagrees with its family's first; each drop is reported in a
// `# meshrpc dropped: ...` comment line, never silently. Label values are escaped (\\ \" \n).
//
// Histograms are exposed with a fixed set of `le` boundaries, chosen by the name's unit:
//   *_seconds  10us, 25us, 50us, 100us, ... 10s, 25s, 30s (1-2.5-5 per decade; 18 + 30s)
//   *_bytes    64 B to 64 MiB in powers of 4
//   otherwise  1, 2.5, 5, 10, ... 1e9
// plus +Inf. The recorded histogram is log-linear (base/histogram.h): the count at a boundary
// is that of every bucket whose upper bound is <= the boundary, exact when the boundary is a
// bucket's upper bound. Otherwise the bucket that straddles the boundary is counted at the
// next boundary up: the count is rounded *down*, by at most the values within 12.5% below the
// boundary. Buckets are cumulative and monotone, +Inf equals _count, and _sum is exact.
//
// Each histogram also gets a gauge family `<name>_percentile` with the labels plus
// percentile="p50"|"p90"|"p99"|"p999": HistogramSnapshot::percentile() of 0.5 ... 0.999,
// within 6.25% of the true value (NaN while the histogram is empty). Not a Prometheus summary
// (those cannot sit beside a histogram of the same name) and not a `quantile` label (promtool
// reserves it for summaries): for dashboards that want the server's own percentiles without
// histogram_quantile().
#pragma once

#include <string>
#include <string_view>

#include "meshrpc/base/metric_registry.h"

namespace meshrpc::observe {

std::string render_prometheus(const MetricRegistry& registry);

// Keeps the sample lines of `text` (as render_prometheus returns it) that contain `pattern`,
// with the # HELP and # TYPE lines of their families; an empty pattern keeps everything.
std::string filter_prometheus(std::string_view text, std::string_view pattern);

// `value` escaped for a label value: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

}  // namespace meshrpc::observe
