#include "meshrpc/core/call_log.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

namespace meshrpc::core {

namespace {

// Lets the per-method table be searched with a string_view (no key built per call).
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
};

void assign(CallSpan& slot, const CallSpanView& view) {
  slot.side = view.side;
  slot.method.assign(view.method);
  if (view.peer != nullptr) {
    slot.peer.host.assign(view.peer->host);
    slot.peer.port = view.peer->port;
  } else {
    slot.peer.host.clear();
    slot.peer.port = 0;
  }
  slot.start = view.start;
  slot.duration = view.end - view.start;
  slot.code = view.code;
  slot.message.assign(view.message);
  slot.trace_id = view.trace_id;
  slot.span_id = view.span_id;
  slot.parent_span_id = view.parent_span_id;
  slot.request_bytes = view.request_bytes;
  slot.response_bytes = view.response_bytes;
  slot.attempt = view.attempt;
}

// Slowest first; equal durations: the later one first (stable across snapshots).
bool slower(const CallSpan& a, const CallSpan& b) {
  if (a.duration != b.duration) return a.duration > b.duration;
  return a.start > b.start;
}

}  // namespace

struct CallLog::Shard {
  // The slowest calls of one method: the current window's and the previous one's.
  struct Slowest {
    std::vector<CallSpan> current;
    std::vector<CallSpan> previous;
    runtime::TimePoint window_start{};
  };

  mutable std::mutex mutex;
  std::vector<CallSpan> ring;  // grows to recent_capacity, then wraps at `next`
  std::vector<uint64_t> ring_sequence;
  size_t next = 0;
  uint64_t sequence = 0;  // calls recorded here; orders calls that end at the same time
  std::unordered_map<std::string, Slowest, NameHash, std::equal_to<>> slowest;

  void add_recent(const CallSpanView& view, size_t capacity) {
    if (capacity == 0) return;
    if (ring.size() < capacity) {
      ring.emplace_back();
      ring_sequence.push_back(0);
      next = ring.size() - 1;
    }
    assign(ring[next], view);
    ring_sequence[next] = ++sequence;
    next = (next + 1) % capacity;
  }

  void add_slowest(const CallSpanView& view, const CallLogOptions& options,
                   runtime::TimePoint now) {
    const size_t keep = options.slowest_per_method;
    if (keep == 0) return;
    auto it = slowest.find(view.method);
    if (it == slowest.end()) {
      if (slowest.size() >= options.max_methods) return;
      it = slowest.emplace(std::string(view.method), Slowest{}).first;
      it->second.window_start = now;
    }
    Slowest& set = it->second;
    if (now - set.window_start >= options.slowest_window) {
      // A window passed: the current one becomes the previous one (or, after two windows
      // without calls, nothing is left of either).
      if (now - set.window_start >= 2 * options.slowest_window) {
        set.previous.clear();
      } else {
        std::swap(set.previous, set.current);
      }
      set.current.clear();
      set.window_start = now;
    }
    const runtime::Duration duration = view.end - view.start;
    if (set.current.size() < keep) {
      assign(set.current.emplace_back(), view);
      return;
    }
    auto fastest = std::min_element(
        set.current.begin(), set.current.end(),
        [](const CallSpan& a, const CallSpan& b) { return a.duration < b.duration; });
    if (duration > fastest->duration) assign(*fastest, view);
  }
};

CallLog::CallLog(runtime::Env& env, CallLogOptions options) : env_(env), options_(options) {
  const size_t count = env.executor_count() + 1;
  shards_.reserve(count);
  for (size_t i = 0; i < count; ++i) shards_.push_back(std::make_unique<Shard>());
}

CallLog::~CallLog() = default;

void CallLog::record(const CallSpanView& span) {
  const size_t index = env_.current_executor_index();
  Shard& shard = *shards_[index < shards_.size() - 1 ? index : shards_.size() - 1];
  std::lock_guard lock(shard.mutex);
  shard.add_recent(span, options_.recent_capacity);
  shard.add_slowest(span, options_, span.end);
}

CallLogSnapshot CallLog::snapshot() const {
  CallLogSnapshot out;
  // (end, shard-local sequence) orders calls newest first; copies are made under each
  // shard's lock only.
  struct Keyed {
    runtime::TimePoint end;
    uint64_t sequence;
    CallSpan span;
  };
  std::vector<Keyed> recent;
  std::map<std::string, std::vector<CallSpan>> slowest;
  const runtime::TimePoint now = env_.now();
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    for (size_t i = 0; i < shard->ring.size(); ++i) {
      recent.push_back(Keyed{shard->ring[i].end(), shard->ring_sequence[i], shard->ring[i]});
    }
    for (const auto& [method, set] : shard->slowest) {
      // A set no call has touched for two windows is stale as a whole.
      if (now - set.window_start >= 2 * options_.slowest_window) continue;
      auto& merged = slowest[method];
      merged.insert(merged.end(), set.current.begin(), set.current.end());
      if (now - set.window_start < options_.slowest_window) {
        merged.insert(merged.end(), set.previous.begin(), set.previous.end());
      }
    }
  }
  std::sort(recent.begin(), recent.end(), [](const Keyed& a, const Keyed& b) {
    return a.end != b.end ? a.end > b.end : a.sequence > b.sequence;
  });
  if (recent.size() > options_.recent_capacity) recent.resize(options_.recent_capacity);
  out.recent.reserve(recent.size());
  for (auto& keyed : recent) out.recent.push_back(std::move(keyed.span));
  for (auto& [method, spans] : slowest) {
    std::sort(spans.begin(), spans.end(), slower);
    if (spans.size() > options_.slowest_per_method) spans.resize(options_.slowest_per_method);
    for (auto& span : spans) out.slowest.push_back(std::move(span));
  }
  return out;
}

}  // namespace meshrpc::core
