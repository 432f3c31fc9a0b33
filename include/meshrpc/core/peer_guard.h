// PeerGuard: decides when a peer is abusing a connection rather than using it. A pure state
// machine (DESIGN.md principle 1), like KeepaliveMonitor: the connection tells it what the
// peer sent and when, and closes the connection with GOAWAY when it answers a violation.
//
// What it watches, each with a limit in PeerLimits:
//   - control-frame floods: PINGs and SETTINGS cost the receiver a reply each, and a peer
//     that sends them without end makes it do nothing else;
//   - rapid reset: streams opened and cancelled at once (the 2023 HTTP/2 attack), which make
//     a server start work the client never waits for;
//   - slow senders (slowloris): a peer that holds a frame half-sent and trickles its bytes,
//     keeping a connection and its buffers for the price of a byte a second;
//   - idle connections: no stream open for idle_timeout; the connection costs a socket and
//     keepalive traffic for nothing, and a client reconnects when it has work again.
// Memory held per connection (max_pending_bytes) is counted by the connection itself.
//
// Threading: a value owned by one connection (one executor).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::core {

// A token bucket: `burst` events at once, then `per_second` on average. Zero per_second and
// zero burst: unlimited.
struct RateLimit {
  double per_second = 0;
  double burst = 0;
};

struct PeerLimits {
  // PINGs a peer may send (acks are free). Keepalive sends one per 10 s of quiet, and a
  // latency probe a few a second: 10/s sustained with a burst of 100 is far above either.
  RateLimit pings{.per_second = 10, .burst = 100};
  // SETTINGS frames: a peer sends one at the start and rarely another; each costs an ack and
  // a walk over every stream's window.
  RateLimit settings{.per_second = 2, .burst = 20};
  // Streams the peer cancels. Hedged and abandoned calls cancel legitimately, at most about
  // as often as calls are made, so the bucket is large (a second of a busy client's calls);
  // an attacker opening and cancelling in a loop sends hundreds of thousands a second.
  RateLimit cancels{.per_second = 5'000, .burst = 20'000};
  // While a frame is half-received (or the peer has not finished its handshake), the peer
  // must deliver at least this many bytes per second, measured over each slow_sender_window.
  // 256 B/s is a 2 kbit/s link: any real client is faster, a slowloris is slower. 0: off.
  uint32_t min_receive_bytes_per_second = 256;
  // Long enough that a retransmission storm or a paused client does not count as slow; a
  // peer silent for longer is declared dead by keepalive (15 s) anyway.
  runtime::Duration slow_sender_window = std::chrono::seconds(20);
  // A connection with no stream open this long is closed with GOAWAY (the peer reconnects
  // when it has calls to make). 0: never. Off by default for connections; servers set it.
  runtime::Duration idle_timeout{0};
  // Request bytes one server connection may hold: messages still arriving plus requests of
  // calls not yet finished (unary requests are held until their handler returns). Past it,
  // the stream whose bytes arrive is refused with RESOURCE_EXHAUSTED. On either side, a peer
  // that stops reading our output while this much is queued is disconnected. 64 MiB: sixteen
  // maximum-size (4 MiB) requests in flight at once; a server's memory under a flood is
  // bounded by max_connections times this.
  size_t max_pending_bytes = 64 * 1024 * 1024;
};

class PeerGuard {
 public:
  enum class Violation {
    kNone,
    kPingFlood,
    kSettingsFlood,
    kCancelFlood,
    kSlowSender,
    kIdle,
    kPendingBytes,  // a stream refused (counted; the connection stays up)
    kUnreadOutput,  // the peer does not read what we send
  };
  static constexpr size_t kViolationCount = 8;
  // The label of each violation in metrics (index: the enum's value); "" for kNone.
  static std::string_view label(Violation violation);

  PeerGuard(const PeerLimits& limits, runtime::TimePoint now);

  // Control frames from the peer; a violation means the connection must close.
  Violation on_ping(runtime::TimePoint now) { return take(pings_, now, Violation::kPingFlood); }
  Violation on_settings(runtime::TimePoint now) {
    return take(settings_, now, Violation::kSettingsFlood);
  }
  Violation on_cancel(runtime::TimePoint now) {
    return take(cancels_, now, Violation::kCancelFlood);
  }
  // Bytes read from the peer (any, frames complete or not).
  void on_bytes_received(size_t bytes) { window_bytes_ += bytes; }
  // The timer set for next_check() fired (or any later time). `frame_incomplete`: the peer
  // has a frame (or its handshake) half-sent. `open_streams`: streams in progress now;
  // `streams_opened`: streams ever opened (a count, so that short calls between two timers
  // count as use without a clock read per call).
  Violation on_timer(runtime::TimePoint now, bool frame_incomplete, size_t open_streams,
                     uint64_t streams_opened);
  runtime::TimePoint next_check() const;

  // What happened, for the GOAWAY reason and the Status: names the limit and its value.
  std::string describe(Violation violation) const;

 private:
  struct Bucket {
    RateLimit limit;
    double tokens = 0;
    runtime::TimePoint refilled{};
    uint64_t taken = 0;  // events counted, for describe()
  };
  static Violation take(Bucket& bucket, runtime::TimePoint now, Violation violation);

  PeerLimits limits_;
  Bucket pings_;
  Bucket settings_;
  Bucket cancels_;
  runtime::TimePoint window_start_;
  uint64_t window_bytes_ = 0;
  uint64_t last_window_bytes_ = 0;  // of the window that tripped kSlowSender
  runtime::TimePoint last_activity_;
  uint64_t streams_opened_ = 0;  // at the last timer
};

}  // namespace meshrpc::core
