// Metric primitives that every layer records into: Counter, Gauge, Histogram. Each is cheap
// enough for the per-call hot path; see its own header for sharding, memory and threading.
// The registry that names them and the Prometheus text output live in observe/.
#pragma once

#include "meshrpc/base/counter.h"    // IWYU pragma: export
#include "meshrpc/base/gauge.h"      // IWYU pragma: export
#include "meshrpc/base/histogram.h"  // IWYU pragma: export
