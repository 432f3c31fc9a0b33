// What the parts of SimNetwork share: the network's State (links, faults, bound addresses)
// and completion helpers. Private to transport/: sim_network.cc (streams, listeners, hosts)
// and sim_datagram.cc (datagram sockets) include it.
#pragma once

#include <algorithm>
#include <boost/asio/append.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::transport {
namespace sim_detail {

// Completes `handler` through `executor` (never inline), with the results given; Asio then
// hands it to the handler's own associated executor if that differs.
template <typename Handler, typename... Results>
void post_completion(const asio::any_io_executor& executor, Handler handler, Results&&... results) {
  asio::post(executor, asio::append(std::move(handler), std::forward<Results>(results)...));
}

inline bool is_cancel(asio::cancellation_type type) {
  return (type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                  asio::cancellation_type::total)) != asio::cancellation_type::none;
}

}  // namespace sim_detail

// Shared bookkeeping of the simulated network.
struct SimNetwork::State {
  State(runtime::SimEnv& sim, LinkConfig default_link) : sim_(sim), default_link_(default_link) {}

  const LinkConfig& link_config(std::string_view from, std::string_view to) const {
    if (links_.empty()) return default_link_;
    auto it = links_.find(std::pair<std::string, std::string>(from, to));
    return it == links_.end() ? default_link_ : it->second;
  }

  using Link = std::pair<std::string, std::string>;  // (from, to)

  bool is_cut(std::string_view from, std::string_view to) const {
    if (from == to) return false;
    if (isolated_.count(from) != 0 || isolated_.count(to) != 0) return true;
    return !cuts_.empty() && cuts_.count(Link(from, to)) != 0;
  }
  runtime::TimePoint clogged_until(std::string_view from, std::string_view to) const {
    if (clogs_.empty()) return runtime::TimePoint{};
    auto it = clogs_.find(Link(from, to));
    return it == clogs_.end() ? runtime::TimePoint{} : it->second;
  }

  // When the last of `bytes` sent now from `from` to `to` has left: at once on a link without
  // a bandwidth cap, else after everything queued on the link before them (streams and
  // datagrams alike), at the link's rate.
  runtime::TimePoint transmitted(std::string_view from, std::string_view to,
                                 const LinkConfig& config, size_t bytes) {
    const runtime::TimePoint now = sim_.now();
    if (config.bandwidth_bytes_per_sec == 0) return now;
    runtime::TimePoint& busy = busy_until_[Link(from, to)];
    const auto transmit = std::chrono::nanoseconds(static_cast<int64_t>(
        static_cast<double>(bytes) * 1e9 / static_cast<double>(config.bandwidth_bytes_per_sec)));
    busy = std::max(busy, now) + std::chrono::duration_cast<runtime::Duration>(transmit);
    return busy;
  }

  runtime::SimEnv& sim_;
  LinkConfig default_link_;
  std::map<Link, LinkConfig, std::less<>> links_;
  std::set<Link, std::less<>> cuts_;
  std::set<std::string, std::less<>> isolated_;
  std::map<Link, runtime::TimePoint, std::less<>> clogs_;
  // When each link with a bandwidth cap has sent everything queued on it.
  std::map<Link, runtime::TimePoint, std::less<>> busy_until_;
  // Directions whose next segment waits for a cut to heal: (connection, writing side).
  std::vector<std::pair<std::shared_ptr<Connection>, int>> stalled_;
  // Listening sockets by address.
  std::map<Address, SimListener*> listeners_;
  // Every stream alive, so the network's end can drop their pending operations: a pending
  // handler often owns (through its coroutine) the very object that owns the stream, a
  // cycle that only the end of the network breaks.
  std::set<SimStream*> streams_;
  uint64_t next_connection_id_ = 1;
  // Bound datagram sockets by address (a port space of its own, as UDP's is). Every socket
  // with a pending receive is here, so crashes and the network's end can drop it.
  std::map<Address, SimDatagramSocket*> datagram_sockets_;
  DatagramStats datagram_stats_;
  uint64_t next_datagram_id_ = 1;
  // The SimNetwork object is gone (and the simulated hosts may follow): streams destroyed
  // from now on, by the hosts' teardown, send nothing and touch no host.
  bool torn_down_ = false;
};

}  // namespace meshrpc::transport
