#include "meshrpc/cluster/provider_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::cluster {

// One watch. Its own recursive mutex serialises the calls to the watcher and lets unwatch()
// wait for a call in progress on another thread, while a watcher that unwatches itself (same
// thread) does not deadlock.
struct ProviderRegistry::WatchEntry {
  explicit WatchEntry(Watcher fn) : watcher(std::move(fn)) {}

  void deliver(const ProviderSnapshot& snapshot) {
    std::lock_guard lock(mutex);
    if (!active || snapshot->version < next_version) return;
    next_version = snapshot->version + 1;
    watcher(snapshot);
  }

  void deactivate() {
    std::lock_guard lock(mutex);
    active = false;
  }

  std::recursive_mutex mutex;
  bool active = true;
  // The lowest version this watcher may still see: versions only go forward.
  uint64_t next_version = 0;
  Watcher watcher;
};

namespace {

// INVALID_ARGUMENT naming the first empty or repeated node id of `providers`.
Status check_node_ids(std::string_view service, const std::vector<Provider>& providers) {
  std::set<std::string_view> seen;
  for (size_t i = 0; i < providers.size(); ++i) {
    const std::string& id = providers[i].node_id;
    if (id.empty()) {
      return invalid_argument_error(std::string(service) + "[" + std::to_string(i) +
                                    "]: empty node_id");
    }
    if (!seen.insert(id).second) {
      return invalid_argument_error(std::string(service) + "[" + std::to_string(i) +
                                    "]: duplicate node_id \"" + id + "\"");
    }
  }
  return Status();
}

}  // namespace

ProviderRegistry::ProviderRegistry() = default;

ProviderRegistry::~ProviderRegistry() {
  // Not under mutex_: a watcher running on another thread may be reading the registry.
  for (auto& [id, entry] : watches_) entry->deactivate();
}

ProviderSnapshot ProviderRegistry::providers(std::string_view service) const {
  std::lock_guard lock(mutex_);
  auto it = services_.find(service);
  if (it != services_.end()) return it->second.current;
  auto empty = std::make_shared<ProviderList>();
  empty->service = std::string(service);
  return empty;
}

std::vector<std::string> ProviderRegistry::services() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  names.reserve(services_.size());
  for (const auto& [name, entry] : services_) names.push_back(name);
  return names;
}

Status ProviderRegistry::upsert(std::string_view service, Provider provider,
                                std::string_view source) {
  if (provider.node_id.empty()) {
    return invalid_argument_error("upsert into " + std::string(service) + ": empty node_id");
  }
  Change change;
  {
    std::lock_guard lock(mutex_);
    ServiceEntry& entry = entry_locked(service);
    std::vector<Provider> next = entry.current->providers;
    auto it = std::find_if(next.begin(), next.end(),
                           [&](const Provider& p) { return p.node_id == provider.node_id; });
    if (it != next.end()) {
      *it = std::move(provider);
    } else {
      next.push_back(std::move(provider));
    }
    change = commit_locked(entry, std::move(next), source);
  }
  notify(change);
  return Status();
}

bool ProviderRegistry::remove(std::string_view service, std::string_view node_id,
                              std::string_view source) {
  Change change;
  {
    std::lock_guard lock(mutex_);
    auto it = services_.find(service);
    if (it == services_.end()) return false;
    std::vector<Provider> next = it->second.current->providers;
    auto removed = std::remove_if(next.begin(), next.end(),
                                  [&](const Provider& p) { return p.node_id == node_id; });
    if (removed == next.end()) return false;
    next.erase(removed, next.end());
    change = commit_locked(it->second, std::move(next), source);
  }
  notify(change);
  return true;
}

Status ProviderRegistry::replace(std::string_view service, std::vector<Provider> providers,
                                 std::string_view source) {
  MESHRPC_RETURN_IF_ERROR(check_node_ids(service, providers));
  Change change;
  {
    std::lock_guard lock(mutex_);
    change = commit_locked(entry_locked(service), std::move(providers), source);
  }
  notify(change);
  return Status();
}

ProviderRegistry::WatchId ProviderRegistry::watch(std::string service, Watcher watcher) {
  auto entry = std::make_shared<WatchEntry>(std::move(watcher));
  ProviderSnapshot snapshot;
  WatchId id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_watch_id_++;
    ServiceEntry& service_entry = entry_locked(service);
    service_entry.watchers.push_back(entry);
    watches_.emplace(id, entry);
    snapshot = service_entry.current;
  }
  entry->deliver(snapshot);
  return id;
}

void ProviderRegistry::unwatch(WatchId id) {
  std::shared_ptr<WatchEntry> entry;
  {
    std::lock_guard lock(mutex_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    entry = std::move(it->second);
    watches_.erase(it);
    for (auto& [name, service_entry] : services_) {
      std::erase(service_entry.watchers, entry);
    }
  }
  // Outside mutex_: a call in progress on another thread may be reading the registry.
  entry->deactivate();
}

ProviderRegistry::ServiceEntry& ProviderRegistry::entry_locked(std::string_view service) {
  auto it = services_.find(service);
  if (it == services_.end()) {
    auto empty = std::make_shared<ProviderList>();
    empty->service = std::string(service);
    it = services_.emplace(std::string(service), ServiceEntry{std::move(empty), {}}).first;
  }
  return it->second;
}

ProviderRegistry::Change ProviderRegistry::commit_locked(ServiceEntry& entry,
                                                         std::vector<Provider> providers,
                                                         std::string_view source) {
  if (providers == entry.current->providers) return Change{};
  auto next = std::make_shared<ProviderList>();
  next->service = entry.current->service;
  next->providers = std::move(providers);
  next->version = entry.current->version + 1;
  next->source = std::string(source);
  entry.current = next;
  return Change{std::move(next), entry.watchers};
}

void ProviderRegistry::notify(const Change& change) {
  if (!change.snapshot) return;
  for (const auto& watcher : change.watchers) watcher->deliver(change.snapshot);
}

}  // namespace meshrpc::cluster
