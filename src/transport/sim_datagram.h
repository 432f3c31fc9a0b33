// SimNetwork's datagram sockets (see transport/sim_network.h for the model). Private to
// transport/: HostNetwork opens them, SimNetwork drops them on crashes and at its end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/datagram.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::transport {

// A socket bound to `address` on `host`. It is in State::datagram_sockets_ from construction
// until close() or drop(), and queues arrivals no receive has taken (up to the queue limits).
//
// Threading: the SimEnv's thread. Completions go through the host's current executor
// (get_executor() follows the host into the fresh context a crash gives it, so a socket
// that outlived its host's crash completes its aborted operations there). Lifetime: may
// outlive the SimNetwork (it shares its State) but not the SimEnv's hosts.
class SimNetwork::SimDatagramSocket final : public DatagramSocket {
 public:
  SimDatagramSocket(std::shared_ptr<State> net, runtime::SimHost& host, Address address);
  ~SimDatagramSocket() override;

  SimDatagramSocket(const SimDatagramSocket&) = delete;
  SimDatagramSocket& operator=(const SimDatagramSocket&) = delete;

  executor_type get_executor() override { return host_.pick_executor(); }
  Address local_address() const override { return address_; }
  void close() override;

  runtime::SimHost& host() const { return host_; }

  // The host crashed, or the network is going away: the socket unbinds and forgets what it
  // queued, and its pending receive moves to `graveyard`, to be destroyed (never completed)
  // once the caller is done with the network's bookkeeping.
  void drop(std::vector<ReceiveHandler>& graveyard);

  // Datagram `id` reached this socket's address.
  void on_arrival(uint64_t id, Datagram datagram);

 protected:
  void initiate_send(Buffer payload, const Address& to, SendHandler handler) override;
  void initiate_receive(ReceiveHandler handler) override;

 private:
  // Puts a datagram from this socket to `to` on the link between their hosts, where it meets
  // the link's faults; its copies arrive by network events (arrive()), which hold the State
  // but not the socket.
  void transmit(const Address& to, Buffer payload);
  static void arrive(const std::shared_ptr<State>& net, uint64_t id, const Address& to,
                     Datagram datagram);

  void unbind();
  void complete_receive(error_code ec, Datagram datagram);

  std::shared_ptr<State> net_holder_;
  State& net_;
  runtime::SimHost& host_;
  Address address_;
  bool closed_ = false;
  std::deque<Datagram> queue_;
  size_t queued_bytes_ = 0;
  std::optional<ReceiveHandler> receive_handler_;
};

}  // namespace meshrpc::transport
