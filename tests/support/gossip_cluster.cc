#include "tests/support/gossip_cluster.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "meshrpc/codec/server.h"

namespace meshrpc::testing {
namespace {

using membership::MemberEvent;
using Kind = MemberEvent::Kind;

// The port every node serves on (meshrpc over TCP, gossip over UDP): memberlist's.
constexpr uint16_t kPort = 7946;

// "n17" -> 17; nullopt for an id this harness did not make.
std::optional<size_t> node_of(const std::string& node_id) {
  if (node_id.size() < 2 || node_id[0] != 'n') return std::nullopt;
  size_t node = 0;
  const char* end = node_id.data() + node_id.size();
  const auto [ptr, ec] = std::from_chars(node_id.data() + 1, end, node);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return node;
}

}  // namespace

const char* seen_name(GossipCluster::Seen seen) {
  switch (seen) {
    case GossipCluster::Seen::kUnknown:
      return "unknown";
    case GossipCluster::Seen::kAlive:
      return "alive";
    case GossipCluster::Seen::kSuspect:
      return "suspect";
    case GossipCluster::Seen::kDead:
      return "dead";
    case GossipCluster::Seen::kLeft:
      return "left";
  }
  return "?";
}

// One node: its server and its membership, watched into the owner's view matrix.
class GossipCluster::Process final : public runtime::SimProcess {
 public:
  Process(GossipCluster& owner, size_t node, runtime::SimHost& host, std::optional<size_t> seed)
      : server_(host, owner.net_.host(host), server_options()),
        cluster_(host, owner.net_.host(host), server_, cluster_options(owner, node)) {
    cluster_.watch([&owner, node](const MemberEvent& event) { owner.record(node, event); });
    auto bound = server_.start({host.name(), kPort});
    if (!bound.ok()) throw std::runtime_error(bound.status().to_string());
    const Status started = cluster_.start(*bound);
    if (!started.ok()) throw std::runtime_error(started.to_string());
    if (seed) {
      std::vector<transport::Address> seeds{{node_id(*seed), kPort}};
      // A failed join leaves the node alone; form() then reports no convergence.
      cluster_.async_join(std::move(seeds), asio::detached);
    }
  }

  membership::Cluster& cluster() { return cluster_; }

 private:
  static core::ServerOptions server_options() {
    core::ServerOptions options;
    options.metrics = nullptr;  // thousands of nodes in one process: no global series
    options.rpcz = std::nullopt;
    return options;
  }
  static membership::ClusterOptions cluster_options(const GossipCluster& owner, size_t node) {
    membership::ClusterOptions options;
    options.node_id = node_id(node);
    options.swim = owner.options_.swim;
    if (owner.options_.keyring) options.keyring = owner.options_.keyring(node);
    options.metrics = nullptr;
    return options;
  }

  codec::Server server_;
  membership::Cluster cluster_;  // destroyed before the server, as cluster.h asks
};

GossipCluster::GossipCluster(uint64_t seed, GossipClusterOptions options)
    : options_(std::move(options)),
      sim_(seed, options_.sim),
      net_(sim_, options_.link),
      running_(options_.nodes, false),
      view_(options_.nodes * options_.nodes, Seen::kUnknown),
      seen_at_(options_.nodes * options_.nodes) {
  for (size_t node = 0; node < options_.nodes; ++node) {
    hosts_.push_back(&sim_.add_host(node_id(node)));
  }
}

GossipCluster::~GossipCluster() {
  // Wind down before the hosts go: stop every member (which cancels its push-pulls in flight)
  // and let the network deliver what it holds, then crash them all. A simulation torn down
  // with calls still parked behind a cut would hold their state in a cycle past its end.
  net_.heal_all();
  for (size_t node = 0; node < options_.nodes; ++node) {
    if (membership::Cluster* member = cluster(node)) member->stop();
  }
  for (size_t node = 0; node < options_.nodes; ++node) resume(node);
  sim_.run_for(std::chrono::seconds(10));
  for (size_t node = 0; node < options_.nodes; ++node) {
    if (hosts_[node]->state() != runtime::SimHost::State::kFailed) sim_.fail_node(*hosts_[node]);
  }
}

membership::Cluster* GossipCluster::cluster(size_t node) {
  runtime::SimProcess* process = hosts_[node]->process();
  return process == nullptr ? nullptr : &static_cast<Process*>(process)->cluster();
}

void GossipCluster::start_node(size_t node, std::optional<size_t> seed) {
  running_[node] = true;
  if (hosts_[node]->state() == runtime::SimHost::State::kFailed) {
    // A restart: the host rebuilds its process with its first factory (and so its first seed).
    sim_.recover_node(*hosts_[node]);
    return;
  }
  hosts_[node]->start([this, node, seed](runtime::SimHost& host) {
    return std::make_unique<Process>(*this, node, host, seed);
  });
}

bool GossipCluster::form(runtime::Duration stagger, runtime::Duration limit) {
  const runtime::TimePoint give_up = sim_.now() + limit;
  start_node(0, std::nullopt);
  for (size_t node = 1; node < options_.nodes; ++node) {
    sim_.run_for(stagger);
    start_node(node, static_cast<size_t>(sim_.random().uniform(node)));
  }
  const runtime::TimePoint now = sim_.now();
  return run_until([this] { return converged(); },
                   give_up > now ? give_up - now : runtime::Duration{});
}

bool GossipCluster::run_until(const std::function<bool()>& done, runtime::Duration limit,
                              runtime::Duration every) {
  const runtime::TimePoint give_up = sim_.now() + limit;
  while (!done()) {
    if (sim_.now() >= give_up) return false;
    sim_.run_for(std::min(every, give_up - sim_.now()));
  }
  return true;
}

void GossipCluster::crash(size_t node) {
  if (!running_[node]) return;
  if (membership::Cluster* c = cluster(node)) {
    const membership::ClusterStats stats = c->stats();
    bytes_of_crashed_ += stats.bytes_sent + stats.push_pull_bytes_sent;
  }
  running_[node] = false;
  sim_.fail_node(*hosts_[node]);
}

void GossipCluster::partition(size_t split) {
  for (size_t a = 0; a < split; ++a) {
    for (size_t b = split; b < options_.nodes; ++b) net_.partition(node_id(a), node_id(b));
  }
}

void GossipCluster::record(size_t observer, const MemberEvent& event) {
  const std::optional<size_t> subject = node_of(event.member.node_id);
  if (!subject || *subject >= options_.nodes) return;
  Seen seen = Seen::kAlive;
  switch (event.kind) {
    case Kind::kJoined:
    case Kind::kUpdated:
    case Kind::kAlive:
      seen = Seen::kAlive;
      break;
    case Kind::kSuspect:
      seen = Seen::kSuspect;
      // One suspicion reaches every member: count it once, when the first one hears it.
      if (running_[*subject] && count_seeing(*subject, Seen::kSuspect) == 0) ++false_suspicions_;
      break;
    case Kind::kDead:
      seen = Seen::kDead;
      if (running_[*subject] && count_seeing(*subject, Seen::kDead) == 0) ++false_deaths_;
      break;
    case Kind::kLeft:
      seen = Seen::kLeft;
      break;
  }
  const size_t at = index(observer, *subject);
  view_[at] = seen;
  seen_at_[at] = sim_.now();
  if (!event.member.tags.empty() || tags_.contains(at)) tags_[at] = event.member.tags;
  if (hook_) hook_(observer, *subject, event);
}

std::string GossipCluster::seen_tag(size_t observer, size_t subject, const std::string& key) const {
  const auto it = tags_.find(index(observer, subject));
  if (it == tags_.end()) return "";
  const auto tag = it->second.find(key);
  return tag == it->second.end() ? "" : tag->second;
}

size_t GossipCluster::count_seeing(size_t subject, Seen state) const {
  size_t count = 0;
  for (size_t observer = 0; observer < options_.nodes; ++observer) {
    if (observer != subject && running_[observer] && seen(observer, subject) == state) ++count;
  }
  return count;
}

size_t GossipCluster::running_others(size_t subject) const {
  size_t count = 0;
  for (size_t observer = 0; observer < options_.nodes; ++observer) {
    if (observer != subject && running_[observer]) ++count;
  }
  return count;
}

bool GossipCluster::converged() const {
  for (size_t observer = 0; observer < options_.nodes; ++observer) {
    if (!running_[observer]) continue;
    for (size_t subject = 0; subject < options_.nodes; ++subject) {
      if (subject == observer) continue;
      const Seen expected = running_[subject] ? Seen::kAlive : Seen::kDead;
      if (seen(observer, subject) != expected) return false;
    }
  }
  return true;
}

uint64_t GossipCluster::bytes_sent() const {
  uint64_t bytes = bytes_of_crashed_;
  for (size_t node = 0; node < options_.nodes; ++node) {
    runtime::SimProcess* process = hosts_[node]->process();
    if (process == nullptr) continue;
    const membership::ClusterStats stats = static_cast<Process*>(process)->cluster().stats();
    bytes += stats.bytes_sent + stats.push_pull_bytes_sent;
  }
  return bytes;
}

}  // namespace meshrpc::testing
