#include "meshrpc/core/keepalive.h"

namespace meshrpc::core {

KeepaliveMonitor::KeepaliveMonitor(KeepaliveOptions options, runtime::TimePoint now)
    : options_(options), last_received_(now) {}

void KeepaliveMonitor::on_frame_received(runtime::TimePoint now) {
  if (now > last_received_) last_received_ = now;
  // A frame that arrived after the ping answers it, whatever the frame is.
  if (ping_outstanding_ && last_received_ >= ping_sent_) ping_outstanding_ = false;
}

runtime::TimePoint KeepaliveMonitor::next_check() const {
  return ping_outstanding_ ? ping_sent_ + options_.timeout : last_received_ + options_.interval;
}

KeepaliveMonitor::Decision KeepaliveMonitor::on_timer(runtime::TimePoint now) {
  if (ping_outstanding_) {
    if (now >= ping_sent_ + options_.timeout) return {Action::kPeerDead, now, 0};
    return {Action::kNone, next_check(), 0};
  }
  if (now < last_received_ + options_.interval) return {Action::kNone, next_check(), 0};
  ping_outstanding_ = true;
  ping_sent_ = now;
  ++pings_sent_;
  return {Action::kSendPing, next_check(), pings_sent_};
}

}  // namespace meshrpc::core
