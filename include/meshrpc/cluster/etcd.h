// Discovery through etcd v3, the coordination service: providers register themselves under
// a key prefix with a lease, clients list and watch the prefix. For deployments that outgrow
// static lists and files. Speaks etcd's HTTP/JSON gateway (served on etcd's client port by
// default) with Beast, so there is no gRPC dependency.
//
//   // In each server process: registered while the process lives, gone within the lease's
//   // TTL after it dies, removed at once on stop().
//   cluster::EtcdRegistrar registrar(env, {.endpoints = {{"127.0.0.1", 2379}}}, "kv.Store",
//                                    {.node_id = "kv-1", .address = {"10.0.0.7", 7000}});
//
//   // In clients: a Resolver like any other, feeding a ProviderRegistry for ServiceClient.
//   cluster::EtcdResolver resolver(env, {.endpoints = {{"127.0.0.1", 2379}}});
//   resolver.watch("kv.Store", [&](const cluster::ResolverUpdate& update) {
//     registry.replace(update.service, update.providers, "etcd");
//   });
//
// Layout in etcd: one key per provider, <key_prefix><service>/<node_id>, whose value is the
// provider as JSON (the file resolver's fields):
//   /meshrpc/services/kv.Store/kv-1 -> {"node_id": "kv-1", "address": "10.0.0.7:7000",
//                                       "tags": {"zone": "a"}, "weight": 1, "health": "healthy"}
// Only "address" is required, so processes not using meshrpc can register with etcdctl or
// any etcd client (`etcdctl put --lease=<id> /meshrpc/services/kv.Store/kv-9 '{"address": ...}'`).
//
// Both classes run on RealEnv only: their constructors throw std::invalid_argument under
// SimEnv (use a StaticResolver or a test resolver there).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/cluster/provider.h"
#include "meshrpc/cluster/resolver.h"
#include "meshrpc/resilience/backoff.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::cluster {

struct EtcdOptions {
  // etcd members' client addresses (host:port); requests go to the first that answers and
  // move on to the next when one fails. Required.
  std::vector<transport::Address> endpoints;
  // Where providers live. Registrars and resolvers of one mesh must agree on it.
  std::string key_prefix = "/meshrpc/services/";
  // 5 s bounds every request to etcd (connect, write, read). A healthy etcd answers in
  // milliseconds; 5 s rides out a leader election (1 s election timeout by default) without
  // waiting on a dead member for longer than a lease of the default TTL can spare.
  runtime::Duration request_timeout = std::chrono::seconds(5);
  // Between attempts after a failure: 100 ms doubling to 5 s with full jitter, so that a
  // fleet of clients that lost etcd together does not reconnect in lockstep.
  resilience::BackoffPolicy retry_backoff = {
      .kind = resilience::BackoffKind::kExponentialFullJitter,
      .initial = std::chrono::milliseconds(100),
      .max = std::chrono::seconds(5),
  };
};

// "host:port" items separated by commas, each optionally starting with "http://" (as etcd's
// own flags spell them): "127.0.0.1:2379,http://10.0.0.2:2379". INVALID_ARGUMENT naming the
// item otherwise, or when there is none.
Result<std::vector<transport::Address>> parse_etcd_endpoints(std::string_view text);

// EtcdResolver: a Resolver whose lists are the providers registered under
// <key_prefix><service>/ in etcd.
//
// How: on a service's first watch() it reads the prefix (a range) and then watches it from the
// revision read, so no change between the two is missed; every watch event (a registration, a
// lease expiring, a deregistration) reaches the watchers at once. Every resync_interval
// without an event it reads the prefix again (confirming the list and refreshing staleness)
// and re-opens the watch; this also finds a connection that died silently.
//
// Failure: an etcd outage (refused, timed out, ended watch) keeps the last good list; the
// update's status becomes UNAVAILABLE or DEADLINE_EXCEEDED naming the endpoint, staleness()
// grows, and the resolver retries with retry_backoff, trying each endpoint in turn. A watch
// whose start revision was compacted away re-reads the prefix (no error). A value that is not
// a provider (not JSON, no address) is left out of the list and logged once as a warning; the
// other providers are unaffected.
//
// Connections: one watch (and one request connection) per watched service; the last
// unwatch() of a service closes them, and a later watch() of it reads the prefix afresh.
//
// Threading: every method is safe from any thread; watchers run as Resolver says. Lifetime:
// `env` outlives the resolver. stop() (or destruction) closes the connections, and no watcher
// is called after it returns; called outside the env's threads it also waits for the
// resolver's tasks to end (at once: closing aborts their I/O).
struct EtcdResolverOptions {
  EtcdOptions etcd;
  // 30 s: a list confirmed at least twice a minute keeps staleness meaningful and bounds how
  // long a silently dead watch connection goes unnoticed, at the cost of one small range
  // request per service per interval.
  runtime::Duration resync_interval = std::chrono::seconds(30);
};

class EtcdResolver final : public Resolver {
 public:
  // Throws std::invalid_argument under SimEnv or without endpoints.
  EtcdResolver(runtime::Env& env, EtcdResolverOptions options);
  ~EtcdResolver() override;

  EtcdResolver(const EtcdResolver&) = delete;
  EtcdResolver& operator=(const EtcdResolver&) = delete;

  // env.now() - last_good_time of `service`; Duration::max() if it never resolved.
  runtime::Duration staleness(std::string_view service) const;

  WatchId watch(std::string service, Watcher watcher) override;
  void unwatch(WatchId id) override;
  ResolverUpdate current(std::string_view service) const override;
  void stop() override;

 private:
  class Watches;
  std::shared_ptr<Watches> watches_;
};

// EtcdRegistrar: keeps one provider registered for one service while it lives.
//
// How: grants a lease of lease_ttl, puts <key_prefix><service>/<node_id> with it, and keeps
// the lease alive every keepalive_interval. If the process dies the lease expires and etcd
// deletes the key, so watching resolvers drop the provider within lease_ttl (plus etcd's
// expiry check, 0.5 s). If the lease is lost while the process lives (etcd said it expired:
// a long pause, a partition longer than the TTL, an operator revoked it), the registrar
// registers again with a new lease; so does it when keep-alives keep failing for a whole TTL.
// update() changes what is registered (tags, health, weight) in place.
//
// stop() (and destruction) revokes the lease, which deletes the key at once, so clients stop
// picking a provider that is shutting down without waiting for the TTL. Called outside the
// env's threads it waits for the revoke, bounded by request_timeout; on an env thread it
// cannot block, and the revoke finishes in the background.
//
// Threading: every method is safe from any thread. Lifetime: `env` outlives the registrar.
struct EtcdRegistrarOptions {
  EtcdOptions etcd;
  // 10 s: a dead process disappears from clients' lists within 10 s; meanwhile retries and
  // outlier detection route around it. Shorter TTLs cost more keep-alives and risk losing the
  // registration in a long GC-like pause or an etcd leader election; etcd's minimum is about
  // 2 s (1.5 election timeouts).
  runtime::Duration lease_ttl = std::chrono::seconds(10);
  // 0: a third of lease_ttl, so two keep-alives in a row may fail before the lease expires.
  runtime::Duration keepalive_interval = runtime::Duration::zero();
};

// The registrar's state, for status pages and tests.
struct EtcdRegistrationState {
  bool registered = false;     // the key is believed present (last put or keep-alive succeeded)
  int64_t lease_id = 0;        // the current lease, 0 before the first grant
  uint64_t registrations = 0;  // successful puts with a new lease: 1 + re-registrations
  uint64_t leases_lost = 0;    // leases found expired (or given up on) while running
  Status last_error;           // the latest failed request; OK after a success
};

class EtcdRegistrar {
 public:
  // Starts registering at once (in the background). Throws std::invalid_argument under
  // SimEnv, without endpoints, for an empty service or node id, or a provider address with
  // port 0.
  EtcdRegistrar(runtime::Env& env, EtcdRegistrarOptions options, std::string service,
                Provider provider);
  ~EtcdRegistrar();

  EtcdRegistrar(const EtcdRegistrar&) = delete;
  EtcdRegistrar& operator=(const EtcdRegistrar&) = delete;

  // The key this registrar writes.
  const std::string& key() const;

  // Replaces the registered provider (same node id required: a new node id is a different
  // registration; INVALID_ARGUMENT otherwise). Written at once if registered, else with the
  // next registration.
  [[nodiscard]] Status update(Provider provider);

  EtcdRegistrationState state() const;

  // Blocks until registered or `timeout`; DEADLINE_EXCEEDED then, with the last error. Not
  // on an env thread (FAILED_PRECONDITION there: it would stall the work it waits for).
  [[nodiscard]] Status wait_registered(runtime::Duration timeout) const;

  // Revokes the lease and stops; idempotent. See the class comment for how long it blocks.
  void stop();

 private:
  class Loop;
  std::shared_ptr<Loop> loop_;
};

}  // namespace meshrpc::cluster
