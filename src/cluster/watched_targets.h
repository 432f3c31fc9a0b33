// WatchedTargets: the bookkeeping of a resolver that runs work per watched service (a lookup
// loop, an etcd watch): which watches each service has, and the service's target (its
// running work) while it has any. The last unwatch of a service hands its target back to be
// ended, so unwatched services cost nothing. Not thread-safe: the owner's mutex guards it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "meshrpc/cluster/resolver.h"

namespace meshrpc::cluster {

template <typename Target>
class WatchedTargets {
 public:
  using Targets = std::map<std::string, std::shared_ptr<Target>, std::less<>>;

  // Records watch `id` of `service`. True when the service has no target yet: the caller
  // starts one and hands it to add_target().
  bool watch(Resolver::WatchId id, const std::string& service) {
    watched_.emplace(id, service);
    return !targets_.contains(service);
  }

  void add_target(const std::string& service, std::shared_ptr<Target> target) {
    targets_.emplace(service, std::move(target));
  }

  // Forgets watch `id`. When it was its service's last, returns the service's target (if it
  // has one), for the caller to end; else null.
  std::shared_ptr<Target> unwatch(Resolver::WatchId id) {
    auto it = watched_.find(id);
    if (it == watched_.end()) return nullptr;
    const std::string service = std::move(it->second);
    watched_.erase(it);
    for (const auto& [other, name] : watched_) {
      if (name == service) return nullptr;
    }
    auto target = targets_.find(service);
    if (target == targets_.end()) return nullptr;
    std::shared_ptr<Target> last = std::move(target->second);
    targets_.erase(target);
    return last;
  }

  // Every target, for stop() to end; forgets them and the watches.
  Targets take_all() {
    watched_.clear();
    return std::exchange(targets_, {});
  }

 private:
  Targets targets_;
  // Every live watch and its service. Scanned on unwatch: watches change at setup speed.
  std::map<Resolver::WatchId, std::string> watched_;
};

}  // namespace meshrpc::cluster
