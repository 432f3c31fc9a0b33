// LogCapture: meshrpc's log lines go to a string for the life of the object, so a test can
// assert that a decision was logged (and how often). Restores the previous logger and level.
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
      : previous_logger_(logger()), previous_level_(log_level()) {
    set_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
    if (level) set_log_level(*level);
  }
  ~LogCapture() {
    set_logger(previous_logger_);
    set_log_level(previous_level_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return out_.str(); }
  // How many times `needle` occurs in the captured text.
  int count(std::string_view needle) const {
    const std::string text = out_.str();
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_logger_;
  spdlog::level::level_enum previous_level_;
  std::ostringstream out_;
};

}  // namespace meshrpc::testing
