// GossipCluster: N simulated hosts, each a meshrpc server with a membership::Cluster on it,
// run on one SimEnv. The gossip scenarios (tests/sim/scenarios/gossip.cc), the driver's
// tests (tests/membership/) and the table program (tests/sim/gossip_table.cc) drive it: form
// the cluster, crash, pause, partition, change tags, and read what every member saw and when.
//
// Every member's view is kept from its watch() events, as an N x N matrix of states, with
// the simulated time of the last change; reading it costs nothing, so a scenario can check
// "every live member sees X dead" after every step.
//
// Threading: the SimEnv's thread. Lifetime: owns the SimEnv, the network and the hosts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "meshrpc/membership/cluster.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::testing {

struct GossipClusterOptions {
  size_t nodes = 100;
  membership::SwimConfig swim = membership::SwimConfig::lan();
  // Every link (loss applies to datagrams; push-pull calls retransmit, as TCP does).
  transport::LinkConfig link;
  // A node's keyring; null (or no function): gossip in the clear.
  std::function<std::shared_ptr<membership::Keyring>(size_t node)> keyring;
  runtime::SimEnv::Options sim;
};

class GossipCluster {
 public:
  // What a member saw, as the view matrix holds it. kUnknown: never heard of it.
  enum class Seen : uint8_t { kUnknown, kAlive, kSuspect, kDead, kLeft };

  GossipCluster(uint64_t seed, GossipClusterOptions options);
  ~GossipCluster();
  GossipCluster(const GossipCluster&) = delete;
  GossipCluster& operator=(const GossipCluster&) = delete;

  // Starts every node (node 0 first; the others one by one, `stagger` apart, each joining a
  // random node started before it) and runs until every node sees all N alive, at most
  // `limit`. Returns whether it converged.
  bool form(runtime::Duration stagger, runtime::Duration limit);
  // Starts one node and, with a seed, has it join that node; form() does this for every
  // node. A crashed node restarts with a fresh process that joins its first seed again.
  void start_node(size_t node, std::optional<size_t> seed);

  runtime::SimEnv& sim() { return sim_; }
  transport::SimNetwork& net() { return net_; }
  size_t size() const { return options_.nodes; }
  static std::string node_id(size_t node) { return "n" + std::to_string(node); }
  runtime::SimHost& host(size_t node) { return *hosts_[node]; }
  // The node's cluster; null while the node is crashed.
  membership::Cluster* cluster(size_t node);
  // Running (not crashed; a paused node counts as running).
  bool is_running(size_t node) const { return running_[node]; }

  // --- faults --------------------------------------------------------------------------------
  // A crash (SimEnv::fail_node): no leave, the others must find out.
  void crash(size_t node);
  void pause(size_t node) { sim_.pause_node(*hosts_[node]); }
  void resume(size_t node) { sim_.resume_node(*hosts_[node]); }
  // Cuts every link between nodes [0, split) and [split, N) until heal().
  void partition(size_t split);
  void heal() { net_.heal_all(); }

  // --- what the members saw ----------------------------------------------------------------
  Seen seen(size_t observer, size_t subject) const { return view_[index(observer, subject)]; }
  // When `observer`'s view of `subject` last changed (or its tags did).
  runtime::TimePoint seen_at(size_t observer, size_t subject) const {
    return seen_at_[index(observer, subject)];
  }
  // The value of tag `key` that `observer` last saw `subject` announce ("" if none).
  std::string seen_tag(size_t observer, size_t subject, const std::string& key) const;
  // Running nodes other than `subject` whose view of it is `state`, and how many running
  // nodes other than `subject` there are.
  size_t count_seeing(size_t subject, Seen state) const;
  size_t running_others(size_t subject) const;
  // Every running node sees every other running node alive and every crashed node dead.
  // O(N^2): run_until checks it every `every`, not after each step.
  bool converged() const;
  // Runs until `done()` holds, checking it every `every` of simulated time, at most
  // `limit`. Returns whether it held.
  bool run_until(const std::function<bool()>& done, runtime::Duration limit,
                 runtime::Duration every = std::chrono::milliseconds(100));
  // Times a running node was declared dead (false positives) or suspected, since start:
  // each counted once, when the first member hears it (not once per member).
  uint64_t false_deaths() const { return false_deaths_; }
  uint64_t false_suspicions() const { return false_suspicions_; }

  // Called with every event any member sees, after the view matrix took it in: for
  // measurements the matrix does not keep (when each member first saw a tag value).
  using EventHook =
      std::function<void(size_t observer, size_t subject, const membership::MemberEvent& event)>;
  void on_event(EventHook hook) { hook_ = std::move(hook); }

  // Bytes every running node sent since its start: gossip datagrams and push-pull calls
  // (the encoded messages, without TCP/IP headers).
  uint64_t bytes_sent() const;

 private:
  class Process;
  friend class Process;

  size_t index(size_t observer, size_t subject) const {
    return observer * options_.nodes + subject;
  }
  void record(size_t observer, const membership::MemberEvent& event);

  GossipClusterOptions options_;
  runtime::SimEnv sim_;
  transport::SimNetwork net_;
  std::vector<runtime::SimHost*> hosts_;
  std::vector<bool> running_;
  std::vector<Seen> view_;
  std::vector<runtime::TimePoint> seen_at_;
  // By observer x subject: the tags last seen, for members that ever announced any.
  std::unordered_map<size_t, membership::Tags> tags_;
  uint64_t false_deaths_ = 0;
  uint64_t false_suspicions_ = 0;
  // Bytes sent by nodes that have since crashed (their stats went with them).
  uint64_t bytes_of_crashed_ = 0;
  EventHook hook_;
};

const char* seen_name(GossipCluster::Seen seen);

}  // namespace meshrpc::testing
