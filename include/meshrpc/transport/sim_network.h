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
// Datagrams (open_datagram; UDP's port space, separate from listeners') travel each on its
// own: a send completes at once and the datagram arrives after its own delay draw, so two
// datagrams may arrive in either order. One that reaches a port with no socket bound, or a
// socket whose receive queue is full (kDatagramQueueLimit, kDatagramQueueBytes), is dropped.
//
// Faults:
//   - per link (LinkConfig): delay and jitter, loss (a stream's segment is retransmitted
//     after a timeout, and the connection's later bytes wait behind it; a datagram is lost
//     for good), datagram duplication and reordering, a bandwidth cap, and the blackhole
//     (everything lost, for keepalive tests);
//   - partition(a, b), partition_one_way(from, to), isolate(host), heal_partition,
//     heal_all: traffic across a cut stops. Bytes already written wait, as TCP keeps
//     retransmitting them, and arrive in order once the cut heals; resets, connection
//     requests and datagrams sent across it are lost (a datagram also when the cut stands
//     at the time it would arrive);
//   - clog(from, to, d): traffic from `from` to `to` is held for d, then flows (datagrams
//     in flight too: they arrive when the clog ends);
//   - host crashes (SimEnv::fail_node): the kernel closes the host's sockets (a FIN, or a
//     reset when unread data is left), its listeners refuse, its datagram sockets unbind and
//     drop what they queued (datagrams it sent still arrive), its pending operations go
//     (destroyed, never completed);
//   - paused hosts (SimEnv::pause_node): the network keeps delivering to them; datagrams
//     queue at their sockets up to the queue limits, as in a kernel's receive buffer.
//
// Threading: the SimEnv's thread only. Lifetime: outlives every stream, listener and datagram
// socket it made (they may outlive it, inert, until the SimEnv's hosts go).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::transport {

struct LinkConfig {
  // One-way delay of each write's (or datagram's) delivery, uniform in [delay_min, delay_max].
  // Defaults are a LAN inside one datacenter (tens to hundreds of microseconds).
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
  // behind it (head-of-line blocking); nothing on a stream is lost for good. A datagram is
  // lost with this probability, for good (nothing retransmits UDP).
  double loss_rate = 0;
  runtime::Duration retransmit_timeout = std::chrono::milliseconds(200);
  // Datagrams only (TCP removes duplicates and restores order). Probability that a datagram
  // arrives twice, each copy after its own delay.
  double duplicate_rate = 0;
  // Probability that a datagram takes a detour: a second delay draw is added to its own, so
  // datagrams sent after it overtake it even on a link without jitter.
  double reorder_rate = 0;
  // Bytes per second the link carries (0: unlimited). Writes from every connection on the
  // link, and datagrams, queue behind each other.
  uint64_t bandwidth_bytes_per_sec = 0;
};

class SimNetwork {
 public:
  // Datagrams a socket holds that no receive has taken yet (a paused process's, a slow
  // reader's); more are dropped, as by a full kernel receive buffer. The byte bound is
  // Linux's default socket receive buffer (net.core.rmem_default); the count bound stands
  // for the per-datagram overhead that, in a kernel, fills it with small datagrams first.
  static constexpr size_t kDatagramQueueLimit = 256;
  static constexpr size_t kDatagramQueueBytes = 212992;

  // What became of the datagrams sent on this network (every host, every link). Once none
  // is in flight: sent + duplicated == lost + delivered + no_socket + overflowed.
  struct DatagramStats {
    uint64_t sent = 0;        // sends that left a socket
    uint64_t lost = 0;        // lost on a link: loss_rate, a blackhole, a cut
    uint64_t duplicated = 0;  // extra copies made by duplicate_rate
    uint64_t delivered = 0;   // reached a bound socket (its queue or a pending receive)
    uint64_t no_socket = 0;   // reached a host with no socket bound to the port
    uint64_t overflowed = 0;  // dropped by a full receive queue
  };

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

  const DatagramStats& datagram_stats() const;

  // Implementation types, defined in src/transport/ (sim_network.cc, sim_datagram.cc).
  class HostNetwork;
  class SimListener;
  class SimStream;
  class SimDatagramSocket;
  struct Connection;

 private:
  // What streams, listeners and in-flight deliveries share. Co-owned by them, because they
  // may outlive the SimNetwork object by the few turns it takes them to close.
  struct State;
  friend class HostNetwork;
  friend class SimListener;
  friend class SimStream;
  friend class SimDatagramSocket;

  void on_host_crash(runtime::SimHost& host);
  void drop_datagram_sockets(const runtime::SimHost* host,
                             std::vector<DatagramSocket::ReceiveHandler>& graveyard);
  void after_heal();

  std::shared_ptr<State> state_;
  std::map<std::string, std::unique_ptr<HostNetwork>, std::less<>> hosts_;
  uint64_t crash_observer_ = 0;
};

}  // namespace meshrpc::transport
