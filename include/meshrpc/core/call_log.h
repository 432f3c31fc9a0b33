// CallLog: the last finished calls and the slowest ones per method, kept in memory for
// /rpcz (observe/rpcz_page.h) and for tests. A Server keeps one (ServerOptions::rpcz), so
// does a Channel (its client spans, ChannelOptions::rpcz).
//
// Hot path: record() takes one uncontended lock (the log is sharded per env executor, so a
// call finishing on an io thread only meets the snapshot reader) and copies the call's
// fields into a ring slot that already exists: once the ring has filled, the slot's strings
// reuse their capacity, so a call allocates nothing. The slowest set costs one hash lookup
// and, only for a call slower than the method's slowest-so-far minimum, a slot copy.
//
// Bounds: recent_capacity spans per shard (a snapshot returns the newest recent_capacity of
// all shards); slowest_per_method spans for each of at most max_methods methods (calls to
// further methods appear in "recent" only), in each of two windows.
//
// Threading: every member is thread-safe. Lifetime: outlives every call recording into it
// (its server or channel owns it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/core/trace.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::core {

struct CallLogOptions {
  // Recent calls kept. 256: a few screens of /rpcz, about 100 KB per executor.
  size_t recent_capacity = 256;
  // Slowest calls kept per method and window. 16: enough to see a tail's shape.
  size_t slowest_per_method = 16;
  // The slowest calls are those of the current window and the one before it (so a snapshot
  // covers between one and two windows). 60 s: the span an operator looks at after an alert.
  runtime::Duration slowest_window = std::chrono::seconds(60);
  // Methods tracked for "slowest"; a client may send any name, and each costs a set.
  // 1,000: as ChannelMetrics::kMaxMethods.
  size_t max_methods = 1000;
};

// One finished call (a span): the server's side of it, or one attempt made by a channel.
struct CallSpan {
  enum class Side : uint8_t { kServer, kClient };

  Side side = Side::kServer;
  std::string method;
  transport::Address peer;     // server side: the client; client side: the endpoint called
  runtime::TimePoint start{};  // Env::now() (monotonic; virtual under SimEnv)
  runtime::Duration duration{};
  StatusCode code = StatusCode::kOk;
  std::string message;
  TraceId trace_id;
  uint64_t span_id = 0;
  uint64_t parent_span_id = 0;  // 0: the call started its trace
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  // Which attempt of its call this is: 1 for the first, 2 and up for retries and hedges (the
  // client sends kAttemptMetadataKey with every attempt after the first).
  uint32_t attempt = 1;

  runtime::TimePoint end() const { return start + duration; }
};

// What record() copies from: the call's fields, borrowed.
struct CallSpanView {
  CallSpan::Side side = CallSpan::Side::kServer;
  std::string_view method;
  const transport::Address* peer = nullptr;  // null: unknown
  runtime::TimePoint start{};
  runtime::TimePoint end{};
  StatusCode code = StatusCode::kOk;
  std::string_view message;
  TraceId trace_id;
  uint64_t span_id = 0;
  uint64_t parent_span_id = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  uint32_t attempt = 1;
};

struct CallLogSnapshot {
  std::vector<CallSpan> recent;   // newest first
  std::vector<CallSpan> slowest;  // by method (name order), slowest first within one
};

class CallLog {
 public:
  explicit CallLog(runtime::Env& env, CallLogOptions options = {});
  ~CallLog();
  CallLog(const CallLog&) = delete;
  CallLog& operator=(const CallLog&) = delete;

  void record(const CallSpanView& span);
  CallLogSnapshot snapshot() const;
  const CallLogOptions& options() const { return options_; }

 private:
  struct Shard;
  runtime::Env& env_;
  CallLogOptions options_;
  // One per env executor, and a last one for threads that are not the env's.
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace meshrpc::core
