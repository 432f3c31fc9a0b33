#include "meshrpc/base/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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
// The lowest level of any component: what the logger itself must let through.
spdlog::level::level_enum lowest_level() {
  int lowest = spdlog::level::off;
  for (const auto& level : internal::log_level_cache) {
    lowest = std::min(lowest, level.load(std::memory_order_relaxed));
  }
  return static_cast<spdlog::level::level_enum>(lowest);
}

void store_all(spdlog::level::level_enum level) {
  for (auto& cached : internal::log_level_cache) cached.store(level, std::memory_order_relaxed);
}

// logfmt: ts (UTC, ms), level, src; the message part (msg=..., component=...) is ours.
std::shared_ptr<spdlog::logger> make_default_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("meshrpc", std::move(sink));
  logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l src=%s:%# %v", spdlog::pattern_time_type::utc));
  logger->set_level(lowest_level());
  return logger;
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace},       {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},         {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn},      {"error", spdlog::level::err},
      {"critical", spdlog::level::critical}, {"off", spdlog::level::off}};
  for (const auto& [text, level] : kLevels) {
    if (text == name) return level;
  }
  return std::nullopt;
}

std::optional<size_t> component_index(std::string_view name) {
  for (size_t i = 0; i < internal::kLogComponentCount; ++i) {
    if (internal::kLogComponentNames[i] == name) return i;
  }
  return std::nullopt;
}

// Appends `text` as a logfmt value: quoted, with quotes, backslashes and line breaks escaped.
void append_quoted(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  out += '"';
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
    store_all(logger->level());
    s.logger.swap(logger);
  }
  // `logger` now holds the previous one; dropped here, outside the lock, as its last owner
  // may flush sinks on destruction.
}

void set_log_level(spdlog::level::level_enum level) {
  LoggerSlot& s = slot();
  std::lock_guard lock(s.mutex);
  store_all(level);
  if (s.logger != nullptr) s.logger->set_level(level);
}

spdlog::level::level_enum log_level() { return lowest_level(); }

Status set_log_level(std::string_view component, spdlog::level::level_enum level) {
  const std::optional<size_t> index = component_index(component);
  if (!index) return invalid_argument_error("no log component \"" + std::string(component) + "\"");
  LoggerSlot& s = slot();
  std::lock_guard lock(s.mutex);
  internal::log_level_cache[*index].store(level, std::memory_order_relaxed);
  if (s.logger != nullptr) s.logger->set_level(lowest_level());
  return Status();
}

spdlog::level::level_enum log_level(std::string_view component) {
  const std::optional<size_t> index = component_index(component);
  if (!index) return spdlog::level::off;
  return static_cast<spdlog::level::level_enum>(
      internal::log_level_cache[*index].load(std::memory_order_relaxed));
}

Status set_log_levels(std::string_view spec) {
  // Parsed whole first: a bad item changes nothing.
  std::vector<std::pair<std::optional<size_t>, spdlog::level::level_enum>> items;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    const size_t equals = item.find('=');
    const std::string_view level_name =
        equals == std::string_view::npos ? item : item.substr(equals + 1);
    const std::optional<spdlog::level::level_enum> level = parse_level(level_name);
    if (!level) {
      return invalid_argument_error("log spec item \"" + std::string(item) +
                                    "\": unknown level \"" + std::string(level_name) + "\"");
    }
    if (equals == std::string_view::npos) {
      items.emplace_back(std::nullopt, *level);
      continue;
    }
    const std::optional<size_t> index = component_index(item.substr(0, equals));
    if (!index) {
      return invalid_argument_error("log spec item \"" + std::string(item) +
                                    "\": unknown component");
    }
    items.emplace_back(index, *level);
  }
  LoggerSlot& s = slot();
  std::lock_guard lock(s.mutex);
  for (const auto& [index, level] : items) {
    if (index) {
      internal::log_level_cache[*index].store(level, std::memory_order_relaxed);
    } else {
      store_all(level);
    }
  }
  if (s.logger != nullptr) s.logger->set_level(lowest_level());
  return Status();
}

namespace internal {

bool LogSite::admit(uint64_t now_ms, uint64_t& suppressed) {
  const uint64_t window_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(kLogWindow).count());
  uint64_t start = window_start_ms_.load(std::memory_order_relaxed);
  if (now_ms >= start + window_ms &&
      window_start_ms_.compare_exchange_strong(start, now_ms, std::memory_order_relaxed)) {
    in_window_.store(0, std::memory_order_relaxed);
  }
  if (in_window_.fetch_add(1, std::memory_order_relaxed) >= static_cast<uint64_t>(kLogBurst)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

// Log lines carry the machine's time whatever the Env (spdlog stamps them so too); the rate
// limit only decides which lines are written, never what the program does.
uint64_t log_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   spdlog::log_clock::now().time_since_epoch())
                                   .count());
}

void write_line(spdlog::source_loc where, LogComponent component, spdlog::level::level_enum level,
                std::string_view text, uint64_t suppressed) {
  std::string line = "msg=";
  line.reserve(text.size() + 40);
  append_quoted(line, text);
  line += " component=";
  line += kLogComponentNames[static_cast<size_t>(component)];
  if (suppressed > 0) {
    line += " suppressed=";
    line += std::to_string(suppressed);
  }
  logger()->log(where, level, "{}", line);
}

}  // namespace internal

}  // namespace meshrpc
