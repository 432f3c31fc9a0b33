// Logging for meshrpc, on spdlog. Every meshrpc layer logs through the macros below into one
// process-wide logger: by default a logger named "meshrpc" writing to stderr, created on first
// use; applications and tests redirect it with set_logger().
//
//   MESHRPC_LOG_INFO("listening on {}", endpoint);
//   MESHRPC_LOG_DEBUG("retrying {} after {}: attempt {}", method, status, attempt);
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

#include <atomic>
#include <memory>
#include <utility>

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
void set_log_level(spdlog::level::level_enum level);
spdlog::level::level_enum log_level();

namespace internal {

// A copy of the current level, read by every macro. Kept beside the logger rather than read
// from it because reading the logger pointer safely needs a lock and the disabled path must
// not take one.
inline constinit std::atomic<int> log_level_cache{spdlog::level::info};

inline bool log_enabled(spdlog::level::level_enum level) {
  return static_cast<int>(level) >= log_level_cache.load(std::memory_order_relaxed);
}

template <typename... Args>
void log_at(spdlog::source_loc where, spdlog::level::level_enum level,
            fmt::format_string<Args...> format, Args&&... args) {
  logger()->log(where, level, format, std::forward<Args>(args)...);
}

}  // namespace internal
}  // namespace meshrpc

// MESHRPC_LOG_<LEVEL>(format, args...). Arguments are evaluated only if the level is enabled.
#define MESHRPC_LOG_AT_(severity, ...)                                                       \
  do {                                                                                       \
    if (::meshrpc::internal::log_enabled(severity)) {                                        \
      ::meshrpc::internal::log_at(::spdlog::source_loc{__FILE__, __LINE__, SPDLOG_FUNCTION}, \
                                  severity, __VA_ARGS__);                                    \
    }                                                                                        \
  } while (false)

#define MESHRPC_LOG_TRACE(...) MESHRPC_LOG_AT_(::spdlog::level::trace, __VA_ARGS__)
#define MESHRPC_LOG_DEBUG(...) MESHRPC_LOG_AT_(::spdlog::level::debug, __VA_ARGS__)
#define MESHRPC_LOG_INFO(...) MESHRPC_LOG_AT_(::spdlog::level::info, __VA_ARGS__)
#define MESHRPC_LOG_WARN(...) MESHRPC_LOG_AT_(::spdlog::level::warn, __VA_ARGS__)
#define MESHRPC_LOG_ERROR(...) MESHRPC_LOG_AT_(::spdlog::level::err, __VA_ARGS__)
