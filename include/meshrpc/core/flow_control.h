// Flow-control window accounting for one stream or one connection (WINDOW_UPDATE frames).
// Pure values (DESIGN.md principle 1); the connection moves bytes, these only count them.
//
//   SendWindow     how many DATA bytes we may still send before the peer grants more.
//   ReceiveWindow  how many bytes the peer may still send us; tells when to grant more.
//
// Threading: owned by one connection (one executor).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "meshrpc/base/status.h"

namespace meshrpc::core {

// The largest window either side may reach. 2^31 - 1, as HTTP/2: a window never needs more
// than the bandwidth-delay product, and the bound keeps every sum in 32-bit fields.
inline constexpr int64_t kMaxWindowBytes = (int64_t{1} << 31) - 1;

class SendWindow {
 public:
  explicit SendWindow(uint32_t initial_bytes) : available_(initial_bytes) {}

  // Bytes that may be sent now (0 when the window is exhausted).
  uint64_t available() const { return available_ > 0 ? static_cast<uint64_t>(available_) : 0; }
  // Records `bytes` sent; at most available().
  void consume(uint64_t bytes) { available_ -= static_cast<int64_t>(bytes); }
  // A WINDOW_UPDATE from the peer. A window pushed past kMaxWindowBytes is the peer's
  // protocol error (INTERNAL, naming `what`).
  [[nodiscard]] Status grant(uint32_t increment, std::string_view what);
  // The peer changed its initial window in SETTINGS: windows in use move by the difference
  // (and may go negative, until grants catch up), as in HTTP/2.
  void adjust(int64_t delta) { available_ += delta; }

 private:
  int64_t available_;
};

class ReceiveWindow {
 public:
  // `window_bytes`: what the peer may have outstanding. Grants are batched: an update is
  // sent once at least half the window has been consumed, so a steady stream costs one
  // WINDOW_UPDATE per half window instead of one per message.
  explicit ReceiveWindow(uint32_t window_bytes) : window_(window_bytes), remaining_(window_bytes) {}

  // The peer sent `bytes`. More than it was granted is its protocol error (INTERNAL, naming
  // `what` and the numbers): that is how a sender that ignores flow control is caught.
  [[nodiscard]] Status on_received(uint64_t bytes, std::string_view what);
  // The application consumed `bytes` of what was received. Returns the increment to grant
  // in a WINDOW_UPDATE when one is due.
  std::optional<uint32_t> on_consumed(uint64_t bytes);

  uint64_t remaining() const { return remaining_; }
  uint32_t window() const { return window_; }

 private:
  uint32_t window_;
  uint64_t remaining_;  // bytes the peer may still send
  uint64_t consumed_unannounced_ = 0;
};

}  // namespace meshrpc::core
