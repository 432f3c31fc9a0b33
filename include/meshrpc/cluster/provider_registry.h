// ProviderRegistry: the providers of every service a process talks to, one list per service
// (seed 001's multi-provider storage). A provider is updated in place by node id or appended,
// removed selectively by node id, and a resolver's update replaces the list of the one
// service it is about, never touching the lists of other services.
//
//   ProviderRegistry registry;
//   auto id = registry.watch("kv.Store", [&](const ProviderSnapshot& snapshot) {
//     balancer.update(snapshot->providers);
//   });
//   resolver.watch("kv.Store", [&](const ResolverUpdate& update) {
//     registry.replace(update.service, update.providers, "file").ignore_error();
//   });
//
// Reads are cheap and never wait for writers for long: a reader copies a shared_ptr to an
// immutable ProviderList under a mutex held for a few instructions, and may keep that
// snapshot as long as it likes; writers build a new list and swap it in (DESIGN.md: shared
// registries are read-mostly).
//
// Invariant: within one service's list node ids are unique and non-empty; every write keeps
// the order of the providers it does not remove.
//
// Threading: every method is safe from any thread. Watchers run synchronously on the thread
// that made the change, after the registry's lock is released; calls to one watcher are
// serialised and only ever see increasing versions (a snapshot overtaken by a newer one
// before its delivery is skipped). A watcher may read the registry and unwatch (itself or
// others) but must not write to the registry, and should return quickly: it delays the
// writer. Lifetime: the registry outlives its watchers' calls; destroying it stops them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/cluster/provider.h"

namespace meshrpc::cluster {

// One service's providers at one version; immutable once published.
struct ProviderList {
  std::string service;
  std::vector<Provider> providers;
  // Increases by one with every change of this service's list; 0: never written.
  uint64_t version = 0;
  // Who wrote the list last, as the writer named itself ("file:/etc/mesh.json", "upsert").
  std::string source;
};

using ProviderSnapshot = std::shared_ptr<const ProviderList>;

class ProviderRegistry {
 public:
  using Watcher = std::function<void(const ProviderSnapshot&)>;
  using WatchId = uint64_t;

  ProviderRegistry();
  ~ProviderRegistry();

  ProviderRegistry(const ProviderRegistry&) = delete;
  ProviderRegistry& operator=(const ProviderRegistry&) = delete;

  // The current list of `service` (never null; an empty list at version 0 if never written).
  ProviderSnapshot providers(std::string_view service) const;

  // Names of every service written or watched, sorted.
  std::vector<std::string> services() const;

  // Replaces the provider with `provider.node_id` in place, or appends it. A provider equal
  // to the one stored changes nothing (no new version, no notification).
  // INVALID_ARGUMENT if the node id is empty.
  Status upsert(std::string_view service, Provider provider, std::string_view source = "upsert");

  // Removes the provider `node_id` of `service`; false if there was none.
  bool remove(std::string_view service, std::string_view node_id,
              std::string_view source = "remove");

  // Replaces the whole list of `service` (a resolver's update); other services are untouched.
  // An identical list changes nothing. INVALID_ARGUMENT, leaving the list as it was, if a
  // node id is empty or appears twice.
  Status replace(std::string_view service, std::vector<Provider> providers,
                 std::string_view source);

  // Calls `watcher` at once (on this thread) with the current snapshot of `service`, then
  // after each change of it. Returns an id for unwatch(), never 0.
  WatchId watch(std::string service, Watcher watcher);

  // When it returns, `id`'s watcher is not running (unless called from inside it) and will
  // not be called again. Unknown ids are ignored.
  void unwatch(WatchId id);

 private:
  struct WatchEntry;
  struct ServiceEntry {
    ProviderSnapshot current;
    std::vector<std::shared_ptr<WatchEntry>> watchers;
  };

  // A published change: the new snapshot and who must hear of it.
  struct Change {
    ProviderSnapshot snapshot;
    std::vector<std::shared_ptr<WatchEntry>> watchers;
  };

  // The entry of `service`, created empty if missing. Requires mutex_.
  ServiceEntry& entry_locked(std::string_view service);
  // Makes `providers` the next version of `entry`, unless equal to the current list (then
  // returns an empty Change). Requires mutex_.
  static Change commit_locked(ServiceEntry& entry, std::vector<Provider> providers,
                              std::string_view source);
  // Delivers a change to its watchers. Must not hold mutex_.
  static void notify(const Change& change);

  mutable std::mutex mutex_;
  // Entries are never erased, so a service's version never goes back even when its list
  // empties; the map grows with the number of distinct service names, which a process
  // chooses in code or configuration, not per request.
  std::map<std::string, ServiceEntry, std::less<>> services_;
  std::map<WatchId, std::shared_ptr<WatchEntry>> watches_;
  WatchId next_watch_id_ = 1;
};

}  // namespace meshrpc::cluster
