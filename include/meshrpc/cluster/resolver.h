// Resolver: where the providers of a service come from. A resolver turns a service name
// ("kv.Store") into a watchable list of providers (node id, address, tags, weight, health)
// and tells its watchers each time that list, or the resolver's health, changes.
//
//   cluster::StaticResolver resolver(env, {{"kv.Store", {p1, p2}}});
//   auto id = resolver.watch("kv.Store", [&](const cluster::ResolverUpdate& update) {
//     registry.replace(update.service, update.providers, "static");
//   });
//
// Implementations: StaticResolver (lists set by their owner: configuration, tests, ops),
// FileResolver (a JSON file, hot-reloaded). The interface assumes no source: a gossip
// resolver (membership/), DNS and etcd resolvers (RealEnv only) implement the same four
// calls, pushing a new ResolverUpdate whenever their source changes.
//
// Failure contract: a resolver never replaces a good list with nothing because its source
// failed. On an error (unreadable file, DNS timeout, etcd outage) the update carries the last
// good list together with the error in `status`, and `last_good_time` stays at the last
// success, so `env.now() - last_good_time` is the staleness a caller may export or act on.
//
// Threading: every method is safe from any thread. Watchers are called on an executor of the
// resolver's Env (picked at watch() time), never inline inside watch() or inside the call
// that changed the list; calls to one watcher are serialised and in version order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/cluster/provider.h"
#include "meshrpc/runtime/clock.h"

namespace meshrpc::cluster {

// The state of one service as a resolver knows it.
struct ResolverUpdate {
  std::string service;
  // The last good list, in the order the source gave it. Empty if the service has never
  // been resolved, or if the source says it has no providers.
  std::vector<Provider> providers;
  // OK, or the error of the most recent resolution attempt (then `providers` is older than
  // that attempt). What to do about an error: keep calling the listed providers; alert if
  // the staleness grows beyond what the deployment tolerates.
  Status status;
  // Increases by at least one with every change of `providers` or `status` for this service
  // in this resolver. 0: never resolved.
  uint64_t version = 0;
  // When `providers` was last confirmed by the source; the minimum TimePoint if never.
  runtime::TimePoint last_good_time = runtime::TimePoint::min();
};

class Resolver {
 public:
  using Watcher = std::function<void(const ResolverUpdate&)>;
  using WatchId = uint64_t;

  virtual ~Resolver() = default;

  // Starts watching `service`. `watcher` is first called soon (posted) with the current
  // state, even if the service is unknown yet (version 0, empty list), then with each
  // change. The returned id is never 0.
  virtual WatchId watch(std::string service, Watcher watcher) = 0;

  // Stops one watch. When unwatch() returns, the watcher is not running (unless unwatch()
  // is called from inside it) and will not be called again. Unknown ids are ignored.
  virtual void unwatch(WatchId id) = 0;

  // The current state of `service`, synchronously (version 0 if the resolver never heard of
  // it).
  virtual ResolverUpdate current(std::string_view service) const = 0;

  // Stops background work (polling, remote watches) and all watches; idempotent. When it
  // returns, no watcher runs or will run again. Destructors call it.
  virtual void stop() = 0;
};

}  // namespace meshrpc::cluster
