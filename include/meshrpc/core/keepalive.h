// KeepaliveMonitor: decides when a connection sends a keepalive PING and when it declares
// the peer dead. A pure state machine (DESIGN.md principle 1): the connection feeds it "a
// frame arrived at t" and "the timer fired at t", and does what it answers.
//
// Guarantee: if the peer stops delivering anything from time t0 on (crashed host, blackholed
// link), on_timer() answers kPeerDead no later than t0 + interval + timeout, provided the
// connection calls on_timer() at every next_check it was told.
//
// Threading: a value owned by one connection (one executor).
#pragma once

#include <chrono>
#include <cstdint>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::core {

struct KeepaliveOptions {
  // Quiet time after which a PING probes the peer. 10 s: short enough that a dead peer of an
  // idle connection is found in seconds, long enough that an idle fleet's pings cost nothing
  // (gRPC's default of 2 h leaves dead connections unnoticed for hours).
  runtime::Duration interval = std::chrono::seconds(10);
  // How long the probe waits for any frame before the peer is declared dead. 5 s covers a
  // loaded peer's scheduling delay and a retransmission or two on a lossy link.
  runtime::Duration timeout = std::chrono::seconds(5);
};

class KeepaliveMonitor {
 public:
  enum class Action {
    kNone,      // nothing to do until next_check
    kSendPing,  // send PING with ping_payload, then call again at next_check
    kPeerDead,  // close the connection: the peer is unreachable
  };
  struct Decision {
    Action action = Action::kNone;
    runtime::TimePoint next_check;
    uint64_t ping_payload = 0;
  };

  KeepaliveMonitor(KeepaliveOptions options, runtime::TimePoint now);

  // Any frame from the peer (data, PING ack, anything) proves it alive.
  void on_frame_received(runtime::TimePoint now);
  // The timer set for next_check fired (or any later time).
  Decision on_timer(runtime::TimePoint now);

  runtime::TimePoint next_check() const;
  bool ping_outstanding() const { return ping_outstanding_; }
  const KeepaliveOptions& options() const { return options_; }

 private:
  KeepaliveOptions options_;
  runtime::TimePoint last_received_;
  runtime::TimePoint ping_sent_{};
  bool ping_outstanding_ = false;
  uint64_t pings_sent_ = 0;
};

}  // namespace meshrpc::core
