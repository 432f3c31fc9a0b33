// SwimConfig: the timing of the gossip protocol, with presets for a LAN, a WAN and one host.
// The LAN defaults are memberlist's DefaultLANConfig; the reasons for each are next to it.
// Every derived quantity is a function below, written exactly as docs/membership.md gives it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::membership {

struct SwimConfig {
  // One member is probed per interval, in a shuffled round-robin order, so every member is
  // probed within N intervals (SWIM's time-bounded completeness). 1 s: failure detection in
  // a few seconds at one small packet per node per second.
  runtime::Duration probe_interval = std::chrono::seconds(1);
  // Wait this long for a direct ack before asking others to probe. 500 ms: well above a LAN
  // round trip (~0.1-1 ms) even under load, and leaves half the interval for indirect probes.
  runtime::Duration probe_timeout = std::chrono::milliseconds(500);
  // Members asked to probe indirectly when the direct probe fails: 3 routes around one bad
  // link or a lossy path with high probability, at 3 extra packets only on failure.
  size_t indirect_checks = 3;
  // Suspicion timeout, at least: suspicion_mult x max(1, log10(N)) x probe_interval. 4: a
  // suspect has about 4 of its own probe rounds (and the gossip to reach it) to refute.
  uint32_t suspicion_mult = 4;
  // The timeout starts at suspicion_max_timeout_mult x the minimum and shrinks towards the
  // minimum as independent members confirm the suspicion (Lifeguard). 6: one member's
  // mistake alone takes long to kill a healthy node.
  uint32_t suspicion_max_timeout_mult = 6;
  // Gossip (updates only) goes to gossip_nodes random members every gossip_interval, besides
  // riding on probes: 200 ms x 3 spreads an update to all of 1,000 nodes in a few seconds.
  runtime::Duration gossip_interval = std::chrono::milliseconds(200);
  size_t gossip_nodes = 3;
  // Each update is sent at most retransmit_mult x ceil(log10(N + 1)) times (λ·log N in the
  // SWIM paper): enough for epidemic spread to reach everyone with high probability.
  uint32_t retransmit_mult = 4;
  // Full-state exchange with one random alive member this often (anti-entropy): repairs
  // what gossip lost (a healed partition is found again by reconnect_interval below). 30 s:
  // the cost is the whole member list, so rarely.
  // Zero: never (joins still push-pull).
  // Above 32 members the interval grows with the cluster: see push_pull_interval_for().
  runtime::Duration push_pull_interval = std::chrono::seconds(30);
  // Partition heal (serf's reconnect): a member declared dead is remembered, address and all,
  // for reconnect_timeout (its tombstone is gone long before), and every reconnect_interval
  // one remembered member is asked for a push-pull, with probability
  // min(1, failed / live others) so that the whole cluster makes about `failed` attempts per
  // interval however large it is. Without this, the halves of a healed partition, each
  // holding the other dead, would never look for each other again: push-pull picks only
  // alive members. 30 s: serf's ReconnectInterval; a partition heals within one interval,
  // at one push-pull per failed member per interval cluster-wide. 24 h: serf's
  // ReconnectTimeout; outlives any partition an operator would not notice and fix, at about
  // 100 bytes a record. Zero reconnect_interval: never. A member that left is not
  // remembered: it meant to go.
  runtime::Duration reconnect_interval = std::chrono::seconds(30);
  runtime::Duration reconnect_timeout = std::chrono::hours(24);
  // Dead and left members are kept this long (tombstones) before they are forgotten, so a
  // stale "alive" at an old incarnation cannot bring them back; gossip to them keeps going
  // for gossip_to_the_dead so a falsely-dead node hears it and refutes.
  runtime::Duration tombstone_ttl = std::chrono::seconds(30);
  runtime::Duration gossip_to_the_dead = std::chrono::seconds(30);
  // Lifeguard local health: the node's own timeouts (probe interval and timeout) are
  // multiplied by (score + 1), score in [0, awareness_max_multiplier - 1]. 8: a struggling
  // node slows its own failure detector up to 8x instead of accusing healthy peers.
  uint32_t awareness_max_multiplier = 8;
  // An indirect prober that gets no ack within nack_fraction x probe_timeout sends a nack,
  // so the asker knows its own network works (memberlist: 80%).
  double nack_fraction = 0.8;
  // Largest packet the core builds; updates that do not fit wait for the next packet. 1,400:
  // under the 1,500-byte Ethernet MTU with room for IP/UDP headers and a keyring's 29 bytes.
  size_t max_packet_bytes = 1400;

  // memberlist's DefaultLANConfig (the values above).
  static SwimConfig lan() { return SwimConfig{}; }
  // Higher latency and loss between sites: memberlist's DefaultWANConfig.
  static SwimConfig wan();
  // One host (tests, development): memberlist's DefaultLocalConfig.
  static SwimConfig local();
};

// memberlist's pushPullScale: push_pull_interval for n <= 32 alive and suspect members (self
// included), above that push_pull_interval x (ceil(log2(n) - log2(32)) + 1), e.g. 6x at
// 1,000. A push-pull carries the whole member list, so its bytes grow with n: stretching the
// interval as n doubles keeps each node's anti-entropy bandwidth roughly flat, while gossip
// still carries every change at once. Zero stays zero (never).
runtime::Duration push_pull_interval_for(const SwimConfig& config, size_t n);
// retransmit_mult x ceil(log10(n + 1)): how many times one update is piggybacked.
uint32_t retransmit_limit(const SwimConfig& config, size_t n);
// suspicion_mult x max(1, log10(n)) x interval, where n counts the alive and suspect members
// including self.
runtime::Duration suspicion_timeout_min(const SwimConfig& config, size_t n,
                                        runtime::Duration interval);
// Lifeguard: max(min, max - (max - min) x log(c + 1) / log(k + 1)), max = min x
// suspicion_max_timeout_mult, for c independent confirmations out of k expected
// (k = suspicion_mult - 2, or 0 when n - 2 < k: too few members to confirm).
runtime::Duration suspicion_timeout(const SwimConfig& config, size_t n, uint32_t confirmations,
                                    runtime::Duration interval);
// The confirmations k above.
uint32_t expected_confirmations(const SwimConfig& config, size_t n);

}  // namespace meshrpc::membership
