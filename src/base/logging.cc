#include "meshrpc/base/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace meshrpc {
namespace {

// The current logger. Guarded by a mutex rather than std::atomic<std::shared_ptr>: only
// enabled lines reach it, and those already take the sink's lock to write.
struct LoggerSlot {
  std::mutex mutex;
  std::shared_ptr<spdlog::logger> logger;  // null until first use
};

LoggerSlot& slot() {
  // Never destroyed, so lines logged from other static destructors still find a logger.
  static auto* slot = new LoggerSlot;
  return *slot;
}

// Not registered in spdlog's global registry, so an application's own logger named
// "meshrpc" (or spdlog::drop_all()) cannot collide with or remove it.
std::shared_ptr<spdlog::logger> make_default_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("meshrpc", std::move(sink));
  logger->set_level(static_cast<spdlog::level::level_enum>(
      internal::log_level_cache.load(std::memory_order_relaxed)));
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  LoggerSlot& s = slot();
  std::lock_guard lock(s.mutex);
  if (s.logger == nullptr) s.logger = make_default_logger();
  return s.logger;
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  if (logger == nullptr) logger = make_default_logger();
  LoggerSlot& s = slot();
  {
    std::lock_guard lock(s.mutex);
    internal::log_level_cache.store(logger->level(), std::memory_order_relaxed);
    s.logger.swap(logger);
  }
  // `logger` now holds the previous one; dropped here, outside the lock, as its last owner
  // may flush sinks on destruction.
}

void set_log_level(spdlog::level::level_enum level) {
  LoggerSlot& s = slot();
  std::lock_guard lock(s.mutex);
  internal::log_level_cache.store(level, std::memory_order_relaxed);
  if (s.logger != nullptr) s.logger->set_level(level);
}

spdlog::level::level_enum log_level() {
  return static_cast<spdlog::level::level_enum>(
      internal::log_level_cache.load(std::memory_order_relaxed));
}

}  // namespace meshrpc
