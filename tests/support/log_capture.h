// LogCapture: meshrpc's log lines go to a string for the life of the object, so a test can
// assert that a decision was logged (and how often): rate limiting is off meanwhile, so every
// line counts. Restores the previous logger, level and rate limiting.
// Read it only when nothing else logs (the work under test has finished).
#pragma once

#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "meshrpc/base/logging.h"

namespace meshrpc::testing {

class LogCapture {
 public:
  // `level`: also lower the log level for the capture's life (e.g. debug).
  explicit LogCapture(std::optional<spdlog::level::level_enum> level = std::nullopt)
      : previous_logger_(logger()),
        previous_level_(log_level()),
        previous_rate_limit_(::meshrpc::internal::log_rate_limit_enabled.exchange(false)) {
    set_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
    if (level) set_log_level(*level);
  }
  ~LogCapture() {
    set_logger(previous_logger_);
    set_log_level(previous_level_);
    ::meshrpc::internal::log_rate_limit_enabled.store(previous_rate_limit_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // The captured lines, with each message's logfmt escapes (\" \\ \n) undone, so a test
  // looks for text as it was logged.
  std::string text() const {
    const std::string raw = out_.str();
    std::string text;
    text.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) {
        const char next = raw[++i];
        text += next == 'n' ? '\n' : next == 'r' ? '\r' : next;
      } else {
        text += raw[i];
      }
    }
    return text;
  }
  // How many times `needle` occurs in the captured text.
  int count(std::string_view needle) const {
    const std::string text = this->text();
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_logger_;
  spdlog::level::level_enum previous_level_;
  bool previous_rate_limit_;
  std::ostringstream out_;
};

}  // namespace meshrpc::testing
