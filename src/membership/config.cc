#include "meshrpc/membership/config.h"

#include <algorithm>
#include <cmath>

namespace meshrpc::membership {

using std::chrono::milliseconds;
using std::chrono::seconds;

SwimConfig SwimConfig::wan() {
  SwimConfig config;
  // Cross-site round trips of 100+ ms and more loss: probe less often, wait longer, and let
  // a suspect refute over more rounds (memberlist's DefaultWANConfig).
  config.probe_interval = seconds(5);
  config.probe_timeout = seconds(3);
  config.suspicion_mult = 6;
  config.gossip_interval = milliseconds(500);
  config.gossip_nodes = 4;
  config.push_pull_interval = seconds(60);
  // A cross-site push-pull is dearer: try reconnecting at the WAN push-pull rate.
  config.reconnect_interval = seconds(60);
  return config;
}

SwimConfig SwimConfig::local() {
  SwimConfig config;
  // Loopback: round trips in microseconds, so detect failures in about a second
  // (memberlist's DefaultLocalConfig).
  config.probe_interval = seconds(1);
  config.probe_timeout = milliseconds(200);
  config.indirect_checks = 1;
  config.suspicion_mult = 3;
  config.gossip_interval = milliseconds(100);
  config.retransmit_mult = 2;
  config.push_pull_interval = seconds(15);
  config.tombstone_ttl = seconds(10);
  config.gossip_to_the_dead = seconds(15);
  // Processes on one host restart in seconds: find them again quickly.
  config.reconnect_interval = seconds(10);
  return config;
}

runtime::Duration push_pull_interval_for(const SwimConfig& config, size_t n) {
  // memberlist's pushPullScaleThreshold: below it a push-pull is small anyway.
  constexpr size_t kScaleThreshold = 32;
  if (n <= kScaleThreshold) return config.push_pull_interval;
  const double multiplier =
      std::ceil(std::log2(static_cast<double>(n)) - std::log2(double{kScaleThreshold})) + 1.0;
  return config.push_pull_interval * static_cast<int64_t>(multiplier);
}

uint32_t retransmit_limit(const SwimConfig& config, size_t n) {
  const double scale = std::ceil(std::log10(static_cast<double>(n) + 1.0));
  return config.retransmit_mult * static_cast<uint32_t>(scale);
}

runtime::Duration suspicion_timeout_min(const SwimConfig& config, size_t n,
                                        runtime::Duration interval) {
  const double scale = std::max(1.0, std::log10(static_cast<double>(std::max<size_t>(n, 1))));
  const double ns = config.suspicion_mult * scale *
                    static_cast<double>(std::chrono::nanoseconds(interval).count());
  return std::chrono::duration_cast<runtime::Duration>(
      std::chrono::nanoseconds(static_cast<int64_t>(ns)));
}

uint32_t expected_confirmations(const SwimConfig& config, size_t n) {
  const uint32_t k = config.suspicion_mult > 2 ? config.suspicion_mult - 2 : 0;
  // Too few members for k independent confirmations: do not wait for them.
  if (n < 2 || n - 2 < k) return 0;
  return k;
}

runtime::Duration suspicion_timeout(const SwimConfig& config, size_t n, uint32_t confirmations,
                                    runtime::Duration interval) {
  const runtime::Duration min = suspicion_timeout_min(config, n, interval);
  const runtime::Duration max = min * config.suspicion_max_timeout_mult;
  const uint32_t k = expected_confirmations(config, n);
  if (k == 0) return min;
  const double fraction =
      std::log(static_cast<double>(confirmations) + 1.0) / std::log(static_cast<double>(k) + 1.0);
  const auto span = std::chrono::duration_cast<std::chrono::nanoseconds>(max - min).count();
  const auto shrink = std::chrono::nanoseconds(static_cast<int64_t>(span * fraction));
  const runtime::Duration timeout = max - std::chrono::duration_cast<runtime::Duration>(shrink);
  return std::max(min, timeout);
}

}  // namespace meshrpc::membership
