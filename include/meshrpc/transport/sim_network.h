// SimNetwork: in-memory links between the hosts of a SimEnv, so servers and clients written
// against transport::Network run unchanged, deterministically, in one thread.
//
// A connection is two one-way directions. A write copies bytes into the direction (up to
// its buffer, like a socket send buffer) and schedules their delivery after a one-way delay
// drawn from the simulation's seeded RNG per write; deliveries on a direction never overtake
// each other (TCP order). close() delivers an end of stream after the data; abort() delivers
// a reset that overtakes data in flight. Connecting costs a round trip; connecting to a port
// where nothing listens is refused after a round trip.
//
// Faults (drops, partitions, crashes) attach to LinkConfig and the hosts later; the seam is
// SimNetwork::link_config(from, to), consulted on every write.
//
// Threading: the SimEnv's thread only. Lifetime: outlives every stream and listener it made.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::transport {

struct LinkConfig {
  // One-way delay of each write's delivery, uniform in [delay_min, delay_max]. Defaults are
  // a LAN inside one datacenter (tens to hundreds of microseconds).
  runtime::Duration delay_min = std::chrono::microseconds(20);
  runtime::Duration delay_max = std::chrono::microseconds(200);
  // Bytes one direction holds (in flight plus unread) before writes wait: the kernel's send
  // and receive buffers together. 256 KiB is a typical Linux default pair.
  size_t buffer_bytes = 256 * 1024;
  // Most bytes one write_some takes, so callers meet partial writes as they do on TCP.
  size_t max_write_bytes = 64 * 1024;
  // Everything sent on the link vanishes (a pulled cable, a dead router): writes succeed,
  // nothing arrives, not even an end of stream or a reset. Connects across it never answer.
  bool blackhole = false;
};

class SimNetwork {
 public:
  explicit SimNetwork(runtime::SimEnv& sim, LinkConfig default_link = {});
  ~SimNetwork();

  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // The network as seen from `host`: listens on host.name(), connects out from it.
  Network& host(runtime::SimHost& host);
  Network& host(std::string_view name);

  // The configuration of traffic from host `from` to host `to` (one direction).
  void set_link(std::string_view from, std::string_view to, LinkConfig config);
  const LinkConfig& link_config(std::string_view from, std::string_view to) const;

  runtime::SimEnv& sim();

  // Implementation types, defined in src/transport/sim_network.cc.
  class HostNetwork;
  class SimListener;
  class SimStream;
  struct Connection;

 private:
  // What streams, listeners and in-flight deliveries share. Co-owned by them, because they
  // may outlive the SimNetwork object by the few turns it takes them to close.
  struct State;
  friend class HostNetwork;
  friend class SimListener;
  friend class SimStream;

  std::shared_ptr<State> state_;
  std::map<std::string, std::unique_ptr<HostNetwork>, std::less<>> hosts_;
};

}  // namespace meshrpc::transport
