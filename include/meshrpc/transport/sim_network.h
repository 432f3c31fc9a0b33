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
// Faults:
//   - per link (LinkConfig): delay and jitter, segment loss (TCP retransmits after a timeout,
//     and the connection's later bytes wait behind it), a bandwidth cap, and the blackhole
//     (everything lost, for keepalive tests);
//   - partition(a, b), partition_one_way(from, to), isolate(host), heal_partition,
//     heal_all: traffic across a cut stops. Bytes already written wait, as TCP keeps
//     retransmitting them, and arrive in order once the cut heals; resets and connection
//     requests sent across it are lost;
//   - clog(from, to, d): traffic from `from` to `to` is held for d, then flows;
//   - host crashes (SimEnv::fail_node): the kernel closes the host's sockets (a FIN, or a
//     reset when unread data is left), its listeners refuse, its pending operations go.
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
  // Probability that a write's segment is lost once: TCP retransmits it after
  // retransmit_timeout (Linux's minimum RTO), and the connection's later bytes wait
  // behind it (head-of-line blocking). Nothing is lost for good.
  double loss_rate = 0;
  runtime::Duration retransmit_timeout = std::chrono::milliseconds(200);
  // Bytes per second the link carries (0: unlimited). Writes from every connection on the
  // link queue behind each other.
  uint64_t bandwidth_bytes_per_sec = 0;
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

  // --- partitions (see the top of this file) -----------------------------------------------
  void partition(std::string_view a, std::string_view b);
  void partition_one_way(std::string_view from, std::string_view to);
  // Heals both directions between a and b (a one-way cut too).
  void heal_partition(std::string_view a, std::string_view b);
  // Cuts `host` off from every other host until heal_isolation or heal_all.
  void isolate(std::string_view host);
  void heal_isolation(std::string_view host);
  // Heals every partition and isolation (clogs run out by themselves).
  void heal_all();
  // Holds traffic from `from` to `to` for `duration` from now.
  void clog(std::string_view from, std::string_view to, runtime::Duration duration);
  // True while traffic from `from` to `to` is cut (not merely clogged).
  bool is_cut(std::string_view from, std::string_view to) const;

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

  void on_host_crash(runtime::SimHost& host);
  void after_heal();

  std::shared_ptr<State> state_;
  std::map<std::string, std::unique_ptr<HostNetwork>, std::less<>> hosts_;
  uint64_t crash_observer_ = 0;
};

}  // namespace meshrpc::transport
