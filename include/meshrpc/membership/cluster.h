// Cluster: a node's membership in a gossip cluster. It drives the SWIM core (swim.h) over
// the node's own meshrpc server: probes, acks and gossip travel as UDP datagrams on the
// server's port number (a separate socket, so a probe never waits behind a large RPC on a
// TCP connection); joins and the periodic full-state exchange (push-pull) are meshrpc calls
// to /meshrpc.membership.Gossip/PushPull on the server itself. docs/membership.md explains
// the choice and the timing.
//
//   codec::Server server(env, network);
//   membership::Cluster cluster(env, network, server, {.tags = {{"role", "worker"}}});
//   auto bound = server.start({"127.0.0.1", 7001});
//   cluster.start(*bound);
//   Status joined = co_await cluster.async_join({seed}, asio::use_awaitable);
//   cluster.update_tags({{"role", "worker"}, {"zone", "a"}});  // one gossip update
//   for (const NodeStatus& m : cluster.members()) ...
//   co_await cluster.async_leave(asio::use_awaitable);
//
// Threading: every public method is safe from any thread. Watchers run on the cluster's
// executor, one at a time, in event order. Lifetime: `env`, `network` and `server` outlive
// the cluster; destroy the cluster before the server (on real threads the destructor waits
// for the cluster's tasks, so the env's threads must still run).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/base/status.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/membership/config.h"
#include "meshrpc/membership/keyring.h"
#include "meshrpc/membership/member.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::membership {

// The method a node serves for push-pull (and joins).
inline constexpr std::string_view kPushPullMethod = "/meshrpc.membership.Gossip/PushPull";

struct ClusterOptions {
  // Unique in the cluster. Empty: the advertised address ("10.0.0.7:7001").
  std::string node_id;
  // Where the others reach this node (its server's TCP port; UDP on the same number). Empty
  // host: the address start() is given, which then must not be a wildcard (0.0.0.0, ::).
  transport::Address advertise;
  Tags tags;
  SwimConfig swim = SwimConfig::lan();
  // Seals every datagram and push-pull (AES-GCM, keyring.h); what no key opens is dropped
  // and counted, so a node without the key can neither join nor gossip. Null: gossip in the
  // clear. Shared so an operator can rotate keys while the cluster runs.
  std::shared_ptr<Keyring> keyring;
  // A push-pull (join or anti-entropy) that takes longer fails: 5 s covers a full state of
  // thousands of members on a slow link and still lets a join move on to the next seed.
  runtime::Duration push_pull_timeout = std::chrono::seconds(5);
  // async_leave() waits up to this for the "left" update to be sent its full retransmit
  // count, so the others learn of it from us rather than by suspecting us.
  runtime::Duration leave_timeout = std::chrono::seconds(5);
  // meshrpc_membership_* series (docs/metrics.md); null: none.
  MetricRegistry* metrics = &MetricRegistry::global();
};

// Counters for metrics and tests.
struct ClusterStats {
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  // Datagrams no key of the keyring opened (a plain one, while we have a keyring, counts
  // here too), and datagrams that did not decode (a sealed one, while we have no keyring,
  // counts there: it cannot be told from garbage).
  uint64_t packets_rejected_by_keyring = 0;
  uint64_t packets_malformed = 0;
  uint64_t push_pulls = 0;
  uint64_t push_pulls_failed = 0;
  // Push-pull requests refused and replies dropped because the keyring did not open them
  // (or one side seals and the other does not).
  uint64_t push_pulls_rejected_by_keyring = 0;
  // Encoded bytes of push-pull messages (both the ones this node started and the ones it
  // answered), without the meshrpc frame and TCP/IP headers.
  uint64_t push_pull_bytes_sent = 0;
  uint64_t push_pull_bytes_received = 0;
};

class Cluster {
 public:
  using Watcher = std::function<void(const MemberEvent&)>;
  using WatchId = uint64_t;

  // Registers the push-pull method on `server`: before server.start().
  Cluster(runtime::Env& env, transport::Network& network, codec::Server& server,
          ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // After server.start(): opens the gossip socket on `bound` (the server's address, UDP) and
  // starts probing. ALREADY_EXISTS if the UDP port is taken, INVALID_ARGUMENT for a
  // wildcard address without ClusterOptions::advertise.
  Status start(const transport::Address& bound);

  // Seed 002's names: both replace the node's tags with one gossip update (one incarnation
  // bump), so observers see the whole new set at once, never a mix.
  void register_self(Tags tags) { update_tags(std::move(tags)); }
  void update_tags(Tags tags);

  // Push-pulls with each seed (their meshrpc addresses): OK once at least one answered,
  // else the last error (UNAVAILABLE when nothing listens there, DEADLINE_EXCEEDED when the
  // seed does not answer within push_pull_timeout, UNAUTHENTICATED when its keyring is not
  // ours). Completion: void(Status).
  template <typename CompletionToken>
  auto async_join(std::vector<transport::Address> seeds, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Status)>(
        [this](auto handler, std::vector<transport::Address> seeds) {
          initiate_join(std::move(seeds),
                        asio::any_completion_handler<void(Status)>(std::move(handler)));
        },
        token, std::move(seeds));
  }

  // Gossips that we leave, waits for it to go out (leave_timeout at most), then stops.
  // Completion: void(Status).
  template <typename CompletionToken>
  auto async_leave(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Status)>(
        [this](auto handler) {
          initiate_leave(asio::any_completion_handler<void(Status)>(std::move(handler)));
        },
        token);
  }

  // Everyone known, this node included, tombstones too; sorted by node id.
  std::vector<NodeStatus> members() const;
  // members(), for readers that may outlive the cluster (HTTP pages): empty once it is gone.
  std::function<std::vector<NodeStatus>()> members_view() const;
  // This node's id and health score, likewise (the id stays after the cluster is gone).
  std::function<std::pair<std::string, uint32_t>()> self_view() const;
  runtime::Env& env() const;
  NodeStatus self() const;
  // Lifeguard's local health score (0: healthy).
  uint32_t health_score() const;
  ClusterStats stats() const;

  // Calls `watcher` with every event from now on. unwatch(): when it returns the watcher is
  // not running (unless called from inside it) and will not be called again.
  WatchId watch(Watcher watcher);
  void unwatch(WatchId id);

  // Stops probing and gossiping without telling anyone (the others will find us dead).
  // Idempotent; the destructor calls it.
  void stop();

  struct State;

 private:
  void initiate_join(std::vector<transport::Address> seeds,
                     asio::any_completion_handler<void(Status)> handler);
  void initiate_leave(asio::any_completion_handler<void(Status)> handler);

  std::shared_ptr<State> state_;
};

}  // namespace meshrpc::membership
