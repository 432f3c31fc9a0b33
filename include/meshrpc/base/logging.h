// Logging for meshrpc, on spdlog. Every meshrpc layer logs through the macros below into one
// process-wide logger: by default a logger named "meshrpc" writing to stderr, created on first
// use; applications and tests redirect it with set_logger().
//
//   MESHRPC_LOG_INFO("listening on {}", endpoint);
//   MESHRPC_LOG_DEBUG("retrying {} after {}: attempt {}", method, status, attempt);
//
// Lines are structured (logfmt, key=value): the default logger writes
//   ts=2026-11-25T21:44:28.572Z level=warn src=client.cc:101 msg="circuit for s1:7000 -> open"
//   component=cluster
// and any logger gets the message as `msg="..." component=<layer>` (quotes and backslashes
// escaped), so the lines parse the same whatever the sink.
//
// Components: the layer a line comes from, taken from the directory of the source file
// (base, runtime, transport, wire, core, codec, resilience, cluster, observe, membership;
// "other" for the rest). Each has its own level: set_log_level("cluster", debug), or a spec such as
// "info,cluster=debug,core=warn" (set_log_levels).
//
// Repeated warnings and errors are rate-limited per call site: at most kLogBurst lines per
// kLogWindow from one site; the rest are counted and the next line that gets through says
// how many were dropped (`suppressed=N`). Info and below are never dropped.
//
// Format strings are fmt's, checked at compile time. A macro whose level is disabled costs one
// relaxed atomic load and a compare: it neither evaluates nor formats its arguments, so debug
// lines may sit on hot paths (policy decisions log at debug).
//
// Threading: every function and macro here is safe from any thread at any time, including
// set_logger() concurrently with logging: a line being logged while the logger is replaced
// goes whole to the old or to the new logger. The old logger stays alive until the last line
// using it is written (shared_ptr).
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/status.h"

namespace meshrpc {

// The logger meshrpc writes to (never null): the one last given to set_logger(), or the
// default stderr logger "meshrpc", created on the first call.
std::shared_ptr<spdlog::logger> logger();

// Sends meshrpc's log lines to `logger` from now on, and adopts its level as meshrpc's level.
// nullptr restores a default stderr logger at the current level. For applications at startup and
// for tests that capture output; a test that replaces the logger should restore the previous one.
void set_logger(std::shared_ptr<spdlog::logger> logger);

// Lines below `level` are dropped without formatting. Sets the current logger's level too.
// Change the level here, not on logger() directly: the macros check meshrpc's copy first.
// Default: info (spdlog's default), so debug and trace lines are off unless asked for.
// Sets every component's level (see set_log_level(component, level) for one).
void set_log_level(spdlog::level::level_enum level);
// The lowest level any component logs at.
spdlog::level::level_enum log_level();

// One component's level ("cluster", "core", ..., "other"); INVALID_ARGUMENT for an unknown
// component name.
Status set_log_level(std::string_view component, spdlog::level::level_enum level);
spdlog::level::level_enum log_level(std::string_view component);

// Applies a spec: comma-separated items, each a level ("debug": every component) or
// component=level ("cluster=debug"), applied in order. Levels: trace, debug, info, warn,
// error, critical, off. INVALID_ARGUMENT (naming the item) and no change for a bad spec.
Status set_log_levels(std::string_view spec);

// Per call site, at most kLogBurst warnings/errors per kLogWindow.
inline constexpr int kLogBurst = 10;
inline constexpr std::chrono::seconds kLogWindow{10};

namespace internal {

enum class LogComponent : uint8_t {
  kBase,
  kRuntime,
  kTransport,
  kWire,
  kCore,
  kCodec,
  kResilience,
  kCluster,
  kObserve,
  kMembership,
  kOther,
};
inline constexpr size_t kLogComponentCount = 11;
inline constexpr std::array<std::string_view, kLogComponentCount> kLogComponentNames = {
    "base",       "runtime", "transport", "wire",       "core", "codec",
    "resilience", "cluster", "observe",   "membership", "other"};

// The component of a source file: the name of the directory holding it.
constexpr LogComponent log_component_of(std::string_view file) {
  const size_t slash = file.find_last_of("/\\");
  if (slash == std::string_view::npos || slash == 0) return LogComponent::kOther;
  const std::string_view dir_path = file.substr(0, slash);
  const size_t parent = dir_path.find_last_of("/\\");
  const std::string_view dir =
      parent == std::string_view::npos ? dir_path : dir_path.substr(parent + 1);
  for (size_t i = 0; i + 1 < kLogComponentCount; ++i) {
    if (kLogComponentNames[i] == dir) return static_cast<LogComponent>(i);
  }
  return LogComponent::kOther;
}

// Copies of the levels, read by every macro. Kept beside the logger rather than read from it
// because reading the logger pointer safely needs a lock and the disabled path must not take
// one.
inline constinit std::array<std::atomic<int>, kLogComponentCount> log_level_cache = {
    {{spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info},
     {spdlog::level::info}}};

inline bool log_enabled(LogComponent component, spdlog::level::level_enum level) {
  return static_cast<int>(level) >=
         log_level_cache[static_cast<size_t>(component)].load(std::memory_order_relaxed);
}

// Whether warnings and errors are rate-limited (tests that count lines turn it off).
inline constinit std::atomic<bool> log_rate_limit_enabled{true};

// One call site's rate limit (warnings and errors). Lock-free: a window is claimed by CAS.
class LogSite {
 public:
  // True if a line may go out now; `suppressed` gets how many were dropped since the last
  // one that went out.
  bool admit(uint64_t now_ms, uint64_t& suppressed);

 private:
  std::atomic<uint64_t> window_start_ms_{0};
  std::atomic<uint64_t> in_window_{0};
  std::atomic<uint64_t> suppressed_{0};
};

// Writes one structured line: msg="<text>" component=<name> [suppressed=N].
void write_line(spdlog::source_loc where, LogComponent component, spdlog::level::level_enum level,
                std::string_view text, uint64_t suppressed);
uint64_t log_now_ms();

template <typename... Args>
void log_at(LogSite& site, LogComponent component, spdlog::source_loc where,
            spdlog::level::level_enum level, fmt::format_string<Args...> format, Args&&... args) {
  uint64_t suppressed = 0;
  if (level >= spdlog::level::warn && log_rate_limit_enabled.load(std::memory_order_relaxed) &&
      !site.admit(log_now_ms(), suppressed)) {
    return;
  }
  fmt::memory_buffer text;
  fmt::format_to(std::back_inserter(text), format, std::forward<Args>(args)...);
  write_line(where, component, level, std::string_view(text.data(), text.size()), suppressed);
}

}  // namespace internal
}  // namespace meshrpc

// MESHRPC_LOG_<LEVEL>(format, args...). Arguments are evaluated only if the level is enabled
// for the component of the file the line is in.
#define MESHRPC_LOG_AT_(severity, ...)                                                       \
  do {                                                                                       \
    constexpr auto meshrpc_log_component_ = ::meshrpc::internal::log_component_of(__FILE__); \
    if (::meshrpc::internal::log_enabled(meshrpc_log_component_, severity)) {                \
      static ::meshrpc::internal::LogSite meshrpc_log_site_;                                 \
      ::meshrpc::internal::log_at(meshrpc_log_site_, meshrpc_log_component_,                 \
                                  ::spdlog::source_loc{__FILE__, __LINE__, SPDLOG_FUNCTION}, \
                                  severity, __VA_ARGS__);                                    \
    }                                                                                        \
  } while (false)

#define MESHRPC_LOG_TRACE(...) MESHRPC_LOG_AT_(::spdlog::level::trace, __VA_ARGS__)
#define MESHRPC_LOG_DEBUG(...) MESHRPC_LOG_AT_(::spdlog::level::debug, __VA_ARGS__)
#define MESHRPC_LOG_INFO(...) MESHRPC_LOG_AT_(::spdlog::level::info, __VA_ARGS__)
#define MESHRPC_LOG_WARN(...) MESHRPC_LOG_AT_(::spdlog::level::warn, __VA_ARGS__)
#define MESHRPC_LOG_ERROR(...) MESHRPC_LOG_AT_(::spdlog::level::err, __VA_ARGS__)
