// StaticResolver: provider lists given by the resolver's owner rather than discovered:
// fixed configuration, tests, or an operator tool. set() changes a list at run time and
// set_error() reports a failed resolution, so it also serves as the test resolver that
// simulation tests drive, and as the store behind resolvers that discover lists elsewhere
// (FileResolver feeds one).
//
//   cluster::StaticResolver resolver(env, {{"kv.Store", {p1, p2}}});
//   resolver.set("kv.Store", {p1, p2, p3});   // watchers of kv.Store hear of p3
//
// Works the same under SimEnv and RealEnv: it needs only the env's executors (to post
// watcher calls) and clock (for last_good_time).
//
// Threading: every method is safe from any thread; watchers run as Resolver says (posted to
// an env executor, serialised per watcher, increasing versions). Lifetime: `env` outlives
// the resolver; destroying it stops all watches.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/cluster/provider.h"
#include "meshrpc/cluster/resolver.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::cluster {

using ServiceProviders = std::map<std::string, std::vector<Provider>, std::less<>>;

class StaticResolver final : public Resolver {
 public:
  explicit StaticResolver(runtime::Env& env, ServiceProviders services = {});
  ~StaticResolver() override;

  StaticResolver(const StaticResolver&) = delete;
  StaticResolver& operator=(const StaticResolver&) = delete;

  // Makes `providers` the good list of `service`, confirmed now: status OK, last_good_time
  // now. Watchers are told only if the list or the status changed, so confirming an
  // unchanged list (a periodic re-read) only refreshes last_good_time.
  void set(std::string_view service, std::vector<Provider> providers);

  // Records that resolving `service` failed with `error` (not OK): the list stays, the status
  // becomes `error`. Watchers are told if the status changed.
  void set_error(std::string_view service, Status error);

  // Every service set, failed or watched, sorted.
  std::vector<std::string> services() const;

  // env.now() - last_good_time of `service`; Duration::max() if it was never resolved.
  runtime::Duration staleness(std::string_view service) const;

  WatchId watch(std::string service, Watcher watcher) override;
  void unwatch(WatchId id) override;
  ResolverUpdate current(std::string_view service) const override;
  void stop() override;

 private:
  struct WatchEntry;
  struct ServiceEntry {
    ResolverUpdate state;
    std::vector<std::shared_ptr<WatchEntry>> watchers;
  };

  ServiceEntry& entry_locked(std::string_view service);
  // Bumps the version and posts the new state to the service's watchers. Requires mutex_:
  // posting under it keeps each watcher's queue in version order.
  static void publish_locked(ServiceEntry& entry);

  runtime::Env& env_;
  mutable std::mutex mutex_;
  std::map<std::string, ServiceEntry, std::less<>> services_;
  std::map<WatchId, std::shared_ptr<WatchEntry>> watches_;
  WatchId next_watch_id_ = 1;
  bool stopped_ = false;
};

}  // namespace meshrpc::cluster
