#include "transport/sim_datagram.h"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/error.hpp>
#include <cassert>
#include <string>
#include <utility>

#include "transport/sim_network_state.h"

namespace meshrpc::transport {

using runtime::SimHost;
using runtime::TimePoint;
using sim_detail::is_cancel;
using sim_detail::post_completion;

SimNetwork::SimDatagramSocket::SimDatagramSocket(std::shared_ptr<State> net, SimHost& host,
                                                 Address address)
    : net_holder_(std::move(net)), net_(*net_holder_), host_(host), address_(std::move(address)) {
  net_.datagram_sockets_[address_] = this;
}

SimNetwork::SimDatagramSocket::~SimDatagramSocket() { close(); }

void SimNetwork::SimDatagramSocket::close() {
  if (closed_) return;
  closed_ = true;
  unbind();
  if (receive_handler_) complete_receive(asio::error::operation_aborted, Datagram());
}

void SimNetwork::SimDatagramSocket::drop(std::vector<ReceiveHandler>& graveyard) {
  closed_ = true;
  unbind();
  if (!receive_handler_) return;
  // The slot belongs to the caller's signal, which may still emit while the handler waits in
  // the graveyard: nothing may call back into this socket then.
  auto slot = asio::get_associated_cancellation_slot(*receive_handler_);
  if (slot.is_connected()) slot.clear();
  graveyard.push_back(std::move(*receive_handler_));
  receive_handler_.reset();
}

void SimNetwork::SimDatagramSocket::unbind() {
  auto it = net_.datagram_sockets_.find(address_);
  if (it != net_.datagram_sockets_.end() && it->second == this) net_.datagram_sockets_.erase(it);
  queue_.clear();
  queued_bytes_ = 0;
}

void SimNetwork::SimDatagramSocket::initiate_send(Buffer payload, const Address& to,
                                                  SendHandler handler) {
  error_code ec;
  if (closed_) {
    ec = asio::error::operation_aborted;
  } else if (payload.size() > kMaxDatagramBytes) {
    ec = asio::error::message_size;
  } else if (net_.sim_.find_host(to.host) == nullptr) {
    ec = asio::error::host_unreachable;  // as a connect to an unknown host fails
  }
  const size_t sent = ec ? 0 : payload.size();
  if (!ec) transmit(to, std::move(payload));
  // A send never waits: the datagram is on the link (or lost) once it leaves the socket.
  post_completion(get_executor(), std::move(handler), ec, sent);
}

void SimNetwork::SimDatagramSocket::initiate_receive(ReceiveHandler handler) {
  if (closed_) {
    return post_completion(get_executor(), std::move(handler),
                           error_code(asio::error::operation_aborted), Datagram());
  }
  if (!queue_.empty()) {
    Datagram datagram = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= datagram.payload.size();
    return post_completion(get_executor(), std::move(handler), error_code(), std::move(datagram));
  }
  assert(!receive_handler_ && "at most one receive may be outstanding");
  receive_handler_.emplace(std::move(handler));
  auto slot = asio::get_associated_cancellation_slot(*receive_handler_);
  if (slot.is_connected()) {
    // Cleared whenever the handler leaves receive_handler_, so `this` is alive when it runs.
    slot.assign([this](asio::cancellation_type type) {
      if (is_cancel(type) && receive_handler_) {
        complete_receive(asio::error::operation_aborted, Datagram());
      }
    });
  }
}

void SimNetwork::SimDatagramSocket::complete_receive(error_code ec, Datagram datagram) {
  ReceiveHandler handler = std::move(*receive_handler_);
  receive_handler_.reset();
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) slot.clear();
  post_completion(get_executor(), std::move(handler), ec, std::move(datagram));
}

// The link's faults, decided when the datagram leaves: lost (blackhole, a cut, loss_rate) or
// not, duplicated or not; then each copy's own delay, after what the link's bandwidth cap
// queues before it, and, with reorder_rate, a detour as long again.
void SimNetwork::SimDatagramSocket::transmit(const Address& to, Buffer payload) {
  if (net_.torn_down_) return;
  const uint64_t id = net_.next_datagram_id_++;
  DatagramStats& stats = net_.datagram_stats_;
  ++stats.sent;
  const LinkConfig& link = net_.link_config(address_.host, to.host);
  runtime::Random& random = net_.sim_.random();
  std::string event = "dgram send " + std::to_string(id) + " to " + to.to_string() + " " +
                      std::to_string(payload.size());
  if (link.blackhole || net_.is_cut(address_.host, to.host) ||
      (link.loss_rate > 0 && random.bernoulli(link.loss_rate))) {
    ++stats.lost;
    net_.sim_.trace(host_, event + " lost");
    return;
  }
  int copies = 1;
  if (link.duplicate_rate > 0 && random.bernoulli(link.duplicate_rate)) {
    copies = 2;
    ++stats.duplicated;
    event += " twice";
  }
  net_.sim_.trace(host_, event);
  const TimePoint sent = net_.transmitted(address_.host, to.host, link, payload.size());
  for (int copy = 0; copy < copies; ++copy) {
    runtime::Duration delay = random.uniform_duration(link.delay_min, link.delay_max);
    if (link.reorder_rate > 0 && random.bernoulli(link.reorder_rate)) {
      delay += random.uniform_duration(link.delay_min, link.delay_max);
    }
    net_.sim_.schedule_at(sent + delay, [net = net_holder_, id, to,
                                         datagram = Datagram{address_, payload}]() mutable {
      arrive(net, id, to, std::move(datagram));
    });
  }
}

// A copy reaches the end of the link: lost if a cut (or blackhole) came up while it flew,
// held if the link is clogged, else handed to the socket bound to `to`, if any.
void SimNetwork::SimDatagramSocket::arrive(const std::shared_ptr<State>& net, uint64_t id,
                                           const Address& to, Datagram datagram) {
  State& state = *net;
  if (state.torn_down_) return;
  const std::string& from = datagram.from.host;
  if (state.is_cut(from, to.host) || state.link_config(from, to.host).blackhole) {
    ++state.datagram_stats_.lost;
    return;
  }
  const TimePoint clear = state.clogged_until(from, to.host);
  if (clear > state.sim_.now()) {
    state.sim_.schedule_at(clear, [net, id, to, datagram = std::move(datagram)]() mutable {
      arrive(net, id, to, std::move(datagram));
    });
    return;
  }
  auto it = state.datagram_sockets_.find(to);
  if (it == state.datagram_sockets_.end()) {
    ++state.datagram_stats_.no_socket;
    // The host exists: send checked it, and hosts are never removed.
    state.sim_.trace(*state.sim_.find_host(to.host),
                     "dgram drop " + std::to_string(id) + " no socket on " + to.to_string());
    return;
  }
  it->second->on_arrival(id, std::move(datagram));
}

void SimNetwork::SimDatagramSocket::on_arrival(uint64_t id, Datagram datagram) {
  const size_t size = datagram.payload.size();
  if (!receive_handler_ &&
      (queue_.size() >= kDatagramQueueLimit || queued_bytes_ + size > kDatagramQueueBytes)) {
    ++net_.datagram_stats_.overflowed;
    net_.sim_.trace(host_,
                    "dgram drop " + std::to_string(id) + " queue full on " + address_.to_string());
    return;
  }
  ++net_.datagram_stats_.delivered;
  net_.sim_.trace(host_, "dgram " + std::to_string(id) + " from " + datagram.from.to_string() +
                             " on " + address_.to_string() + " " + std::to_string(size));
  if (receive_handler_) return complete_receive(error_code(), std::move(datagram));
  queued_bytes_ += size;
  queue_.push_back(std::move(datagram));
}

}  // namespace meshrpc::transport
