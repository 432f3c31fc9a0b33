#include "meshrpc/cluster/static_resolver.h"

#include <boost/asio/post.hpp>
#include <cassert>
#include <utility>

namespace meshrpc::cluster {

// One watch: the watcher, the executor its calls are posted to, and a recursive mutex that
// serialises those calls and lets unwatch() wait for one in progress (a watcher unwatching
// itself re-enters on the same thread).
struct StaticResolver::WatchEntry : std::enable_shared_from_this<WatchEntry> {
  WatchEntry(Watcher fn, asio::any_io_executor ex) : watcher(std::move(fn)), executor(ex) {}

  void deliver(const ResolverUpdate& update) {
    std::lock_guard lock(mutex);
    if (!active || update.version < next_version) return;
    next_version = update.version + 1;
    watcher(update);
  }

  void post(ResolverUpdate update) {
    asio::post(executor,
               [self = shared_from_this(), update = std::move(update)] { self->deliver(update); });
  }

  void deactivate() {
    std::lock_guard lock(mutex);
    active = false;
  }

  Watcher watcher;
  asio::any_io_executor executor;
  std::recursive_mutex mutex;
  bool active = true;
  uint64_t next_version = 0;
};

StaticResolver::StaticResolver(runtime::Env& env, ServiceProviders services) : env_(env) {
  for (auto& [name, providers] : services) set(name, std::move(providers));
}

StaticResolver::~StaticResolver() { stop(); }

void StaticResolver::set(std::string_view service, std::vector<Provider> providers) {
  std::lock_guard lock(mutex_);
  ServiceEntry& entry = entry_locked(service);
  ResolverUpdate& state = entry.state;
  state.last_good_time = env_.now();
  const bool changed = state.version == 0 || !state.status.ok() || state.providers != providers;
  if (!changed) return;
  state.providers = std::move(providers);
  state.status = Status();
  publish_locked(entry);
}

void StaticResolver::set_error(std::string_view service, Status error) {
  assert(!error.ok());
  std::lock_guard lock(mutex_);
  ServiceEntry& entry = entry_locked(service);
  if (entry.state.version != 0 && entry.state.status == error) return;
  entry.state.status = std::move(error);
  publish_locked(entry);
}

std::vector<std::string> StaticResolver::services() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  names.reserve(services_.size());
  for (const auto& [name, entry] : services_) names.push_back(name);
  return names;
}

runtime::Duration StaticResolver::staleness(std::string_view service) const {
  const ResolverUpdate state = current(service);
  if (state.last_good_time == runtime::TimePoint::min()) return runtime::Duration::max();
  return env_.now() - state.last_good_time;
}

Resolver::WatchId StaticResolver::watch(std::string service, Watcher watcher) {
  auto entry = std::make_shared<WatchEntry>(std::move(watcher), env_.pick_executor());
  std::lock_guard lock(mutex_);
  const WatchId id = next_watch_id_++;
  if (stopped_) return id;
  ServiceEntry& service_entry = entry_locked(service);
  service_entry.watchers.push_back(entry);
  watches_.emplace(id, entry);
  entry->post(service_entry.state);
  return id;
}

void StaticResolver::unwatch(WatchId id) {
  std::shared_ptr<WatchEntry> entry;
  {
    std::lock_guard lock(mutex_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    entry = std::move(it->second);
    watches_.erase(it);
    for (auto& [name, service_entry] : services_) std::erase(service_entry.watchers, entry);
  }
  // Outside mutex_: a call in progress on another thread may be reading the resolver.
  entry->deactivate();
}

ResolverUpdate StaticResolver::current(std::string_view service) const {
  std::lock_guard lock(mutex_);
  auto it = services_.find(service);
  if (it != services_.end()) return it->second.state;
  ResolverUpdate unknown;
  unknown.service = std::string(service);
  return unknown;
}

void StaticResolver::stop() {
  std::map<WatchId, std::shared_ptr<WatchEntry>> watches;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    watches.swap(watches_);
    for (auto& [name, service_entry] : services_) service_entry.watchers.clear();
  }
  for (auto& [id, entry] : watches) entry->deactivate();
}

StaticResolver::ServiceEntry& StaticResolver::entry_locked(std::string_view service) {
  auto it = services_.find(service);
  if (it == services_.end()) {
    ServiceEntry entry;
    entry.state.service = std::string(service);
    it = services_.emplace(std::string(service), std::move(entry)).first;
  }
  return it->second;
}

void StaticResolver::publish_locked(ServiceEntry& entry) {
  ++entry.state.version;
  for (const auto& watcher : entry.watchers) watcher->post(entry.state);
}

}  // namespace meshrpc::cluster
