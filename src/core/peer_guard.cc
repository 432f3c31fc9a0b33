#include "meshrpc/core/peer_guard.h"

#include <algorithm>
#include <array>

namespace meshrpc::core {
namespace {

constexpr std::array<std::string_view, PeerGuard::kViolationCount> kLabels = {
    "",     "ping_flood",    "settings_flood", "cancel_flood", "slow_sender",
    "idle", "pending_bytes", "unread_output"};

bool unlimited(const RateLimit& limit) { return limit.per_second <= 0 && limit.burst <= 0; }

std::string rate_text(const RateLimit& limit) {
  return std::to_string(static_cast<long long>(limit.burst)) + " at once, then " +
         std::to_string(static_cast<long long>(limit.per_second)) + "/s";
}

int64_t whole_seconds(runtime::Duration duration) {
  return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

}  // namespace

std::string_view PeerGuard::label(Violation violation) {
  return kLabels[static_cast<size_t>(violation)];
}

PeerGuard::PeerGuard(const PeerLimits& limits, runtime::TimePoint now)
    : limits_(limits),
      pings_{limits.pings, limits.pings.burst, now, 0},
      settings_{limits.settings, limits.settings.burst, now, 0},
      cancels_{limits.cancels, limits.cancels.burst, now, 0},
      window_start_(now),
      last_activity_(now) {}

PeerGuard::Violation PeerGuard::take(Bucket& bucket, runtime::TimePoint now, Violation violation) {
  ++bucket.taken;
  if (unlimited(bucket.limit)) return Violation::kNone;
  const double elapsed_seconds = std::chrono::duration<double>(now - bucket.refilled).count();
  if (elapsed_seconds > 0) {
    bucket.tokens =
        std::min(bucket.limit.burst, bucket.tokens + elapsed_seconds * bucket.limit.per_second);
    bucket.refilled = now;
  }
  if (bucket.tokens < 1) return violation;
  bucket.tokens -= 1;
  return Violation::kNone;
}

PeerGuard::Violation PeerGuard::on_timer(runtime::TimePoint now, bool frame_incomplete,
                                         size_t open_streams, uint64_t streams_opened) {
  if (open_streams > 0 || streams_opened != streams_opened_) last_activity_ = now;
  streams_opened_ = streams_opened;
  if (limits_.idle_timeout.count() > 0 && open_streams == 0 &&
      now - last_activity_ >= limits_.idle_timeout) {
    return Violation::kIdle;
  }
  if (now - window_start_ < limits_.slow_sender_window) return Violation::kNone;
  // A window ended: judge it, then start the next.
  const double window_seconds = std::chrono::duration<double>(now - window_start_).count();
  const bool slow =
      limits_.min_receive_bytes_per_second > 0 && frame_incomplete &&
      static_cast<double>(window_bytes_) < limits_.min_receive_bytes_per_second * window_seconds;
  last_window_bytes_ = window_bytes_;
  window_bytes_ = 0;
  window_start_ = now;
  return slow ? Violation::kSlowSender : Violation::kNone;
}

runtime::TimePoint PeerGuard::next_check() const {
  runtime::TimePoint next = runtime::kInfiniteFuture;
  if (limits_.min_receive_bytes_per_second > 0 && limits_.slow_sender_window.count() > 0) {
    next = window_start_ + limits_.slow_sender_window;
  }
  if (limits_.idle_timeout.count() > 0) {
    next = std::min(next, last_activity_ + limits_.idle_timeout);
  }
  return next;
}

std::string PeerGuard::describe(Violation violation) const {
  switch (violation) {
    case Violation::kNone:
      return "";
    case Violation::kPingFlood:
      return "PING flood: " + std::to_string(pings_.taken) + " PINGs exceed the limit of " +
             rate_text(limits_.pings);
    case Violation::kSettingsFlood:
      return "SETTINGS flood: " + std::to_string(settings_.taken) +
             " SETTINGS frames exceed the limit of " + rate_text(limits_.settings);
    case Violation::kCancelFlood:
      return "stream cancel flood (rapid reset): " + std::to_string(cancels_.taken) +
             " cancelled streams exceed the limit of " + rate_text(limits_.cancels);
    case Violation::kSlowSender:
      return "peer too slow: " + std::to_string(last_window_bytes_) + " bytes in " +
             std::to_string(whole_seconds(limits_.slow_sender_window)) +
             " s with a frame half-sent, under min_receive_bytes_per_second " +
             std::to_string(limits_.min_receive_bytes_per_second);
    case Violation::kIdle:
      return "connection idle: no stream for " +
             std::to_string(whole_seconds(limits_.idle_timeout)) + " s (idle_timeout)";
    case Violation::kPendingBytes:
      return "connection holds more than max_pending_bytes " +
             std::to_string(limits_.max_pending_bytes) + " bytes of unfinished requests";
    case Violation::kUnreadOutput:
      return "peer does not read: more than max_pending_bytes " +
             std::to_string(limits_.max_pending_bytes) + " bytes queued to send";
  }
  return "";
}

}  // namespace meshrpc::core
