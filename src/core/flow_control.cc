#include "meshrpc/core/flow_control.h"

#include <string>

namespace meshrpc::core {

Status SendWindow::grant(uint32_t increment, std::string_view what) {
  if (available_ + static_cast<int64_t>(increment) > kMaxWindowBytes) {
    return internal_error(std::string(what) + " window update of " + std::to_string(increment) +
                          " would grow the window past " + std::to_string(kMaxWindowBytes) +
                          " bytes");
  }
  available_ += increment;
  return Status();
}

Status ReceiveWindow::on_received(uint64_t bytes, std::string_view what) {
  if (bytes > remaining_) {
    return internal_error(std::string(what) + " received " + std::to_string(bytes) +
                          " bytes with only " + std::to_string(remaining_) +
                          " left in its flow-control window");
  }
  remaining_ -= bytes;
  return Status();
}

std::optional<uint32_t> ReceiveWindow::on_consumed(uint64_t bytes) {
  consumed_unannounced_ += bytes;
  if (consumed_unannounced_ < window_ / 2 || consumed_unannounced_ == 0) return std::nullopt;
  const auto increment = static_cast<uint32_t>(consumed_unannounced_);
  remaining_ += consumed_unannounced_;
  consumed_unannounced_ = 0;
  return increment;
}

}  // namespace meshrpc::core
