#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "etcd_gateway.h"
#include "meshrpc/base/logging.h"
#include "meshrpc/cluster/etcd.h"
#include "meshrpc/cluster/static_resolver.h"
#include "meshrpc/resilience/backoff.h"
#include "meshrpc/runtime/random.h"
#include "watched_targets.h"

namespace meshrpc::cluster {

// One task per watched service, all on one strand, feeding the lists of a StaticResolver
// (which does the watcher bookkeeping). Shared with the tasks, so a task outliving the
// resolver (stop() on an env thread) finds a live, stopped object.
//
// Locking: mutex_ guards stopped_ and targets_; a Target's connections, sleep and logged
// errors are touched only on strand_.
class EtcdResolver::Watches : public std::enable_shared_from_this<Watches> {
 public:
  Watches(runtime::Env& env, EtcdResolverOptions options)
      : lists(env),
        env_(env),
        gateway_options_(etcd::checked_gateway_options(env, options.etcd, "EtcdResolver")),
        options_(std::move(options)),
        strand_(asio::make_strand(env.pick_executor())) {}

  Resolver::WatchId watch(std::string service, Resolver::Watcher watcher) {
    const std::string name = service;
    const auto id = lists.watch(std::move(service), std::move(watcher));
    std::lock_guard lock(mutex_);
    if (stopped_ || !targets_.watch(id, name)) return id;
    auto target = std::make_shared<Target>(name, options_.etcd.key_prefix + name + "/");
    targets_.add_target(name, target);
    tasks_.add();
    asio::co_spawn(strand_, run(target), [self = shared_from_this(), target](std::exception_ptr e) {
      if (e) {
        MESHRPC_LOG_ERROR("etcd resolver: service {}: task ended by an exception", target->service);
      }
      self->tasks_.done();
    });
    return id;
  }

  // The last watch of a service ends its task and closes its connections; a later watch()
  // starts afresh.
  void unwatch(Resolver::WatchId id) {
    lists.unwatch(id);
    std::shared_ptr<Target> unwatched;
    {
      std::lock_guard lock(mutex_);
      unwatched = targets_.unwatch(id);
    }
    if (!unwatched) return;
    asio::post(strand_, [unwatched] { unwatched->close(); });
  }

  void stop() {
    WatchedTargets<Target>::Targets targets;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      targets = targets_.take_all();
    }
    lists.stop();
    asio::post(strand_, [targets = std::move(targets)] {
      for (const auto& [name, target] : targets) target->close();
    });
    if (!env_.in_env_thread()) tasks_.wait();
  }

  StaticResolver lists;

 private:
  struct Target {
    Target(std::string name, std::string key_prefix)
        : service(std::move(name)), prefix(std::move(key_prefix)) {}

    void close() {
      closed = true;
      if (gateway) gateway->close();
      if (watch) watch->close();
      pause.interrupt();
    }

    const std::string service;
    const std::string prefix;
    std::optional<etcd::Gateway> gateway;
    std::optional<etcd::WatchStream> watch;
    etcd::InterruptibleSleep pause;
    bool closed = false;
    // The error last logged, so that a persisting outage is logged once, not every retry.
    std::string logged_error;
    // Keys whose value was not a provider, with the error logged for each.
    std::map<std::string, std::string> bad_values;
  };

  // key -> provider: the service's providers as etcd has them now.
  using Providers = std::map<std::string, Provider>;

  asio::awaitable<void> run(std::shared_ptr<Target> target) {
    Target& t = *target;
    t.gateway.emplace(strand_, gateway_options_);
    resilience::Backoff backoff(options_.etcd.retry_backoff);
    runtime::Random random(env_.random_u64());
    Providers providers;
    while (!t.closed) {
      Result<etcd::Range> range = co_await t.gateway->range_prefix(t.prefix);
      if (t.closed) break;
      if (!range.ok()) {
        report_error(t, range.status());
        co_await t.pause.sleep(env_, backoff.next(random));
        continue;
      }
      backoff.reset();
      providers.clear();
      for (const etcd::KeyValue& kv : range->kvs) apply_put(t, providers, kv);
      publish(t, providers);

      // Watch from just after the revision read: nothing between the range and the watch is
      // missed.
      t.watch.emplace(strand_, gateway_options_);
      Status status = co_await t.watch->open(t.prefix, range->revision + 1);
      while (status.ok() && !t.closed) {
        Result<etcd::WatchResponse> response = co_await t.watch->next(options_.resync_interval);
        if (t.closed) break;
        if (!response.ok()) {
          // Quiet for a whole resync interval: read the prefix again (not an error).
          if (response.status().code() != StatusCode::kDeadlineExceeded) {
            status = response.status();
          }
          break;
        }
        if (response->canceled) {
          if (response->compact_revision == 0) {
            status = unavailable_error("etcd cancelled the watch of " + t.prefix + ": " +
                                       response->cancel_reason);
          }
          break;  // compacted: list again, then watch from the new revision
        }
        if (response->events.empty()) continue;
        for (const etcd::WatchEvent& event : response->events) {
          if (event.deleted) {
            providers.erase(event.kv.key);
            t.bad_values.erase(event.kv.key);
          } else {
            apply_put(t, providers, event.kv);
          }
        }
        publish(t, providers);
      }
      t.watch->close();
      if (!status.ok() && !t.closed) {
        report_error(t, status);
        co_await t.pause.sleep(env_, backoff.next(random));
      }
    }
  }

  void apply_put(Target& t, Providers& providers, const etcd::KeyValue& kv) {
    const std::string_view node_id = std::string_view(kv.key).substr(t.prefix.size());
    Result<Provider> provider = node_id.empty() || node_id.find('/') != std::string_view::npos
                                    ? Result<Provider>(invalid_argument_error(
                                          "key " + kv.key + " is not " + t.prefix + "<node_id>"))
                                    : etcd::decode_provider(node_id, kv.value);
    if (!provider.ok()) {
      providers.erase(kv.key);
      std::string& logged = t.bad_values[kv.key];
      if (logged != provider.status().to_string()) {
        logged = provider.status().to_string();
        MESHRPC_LOG_WARN("etcd resolver: service {}: ignoring key {}: {}", t.service, kv.key,
                         logged);
      }
      return;
    }
    t.bad_values.erase(kv.key);
    providers[kv.key] = std::move(provider).value();
  }

  void publish(Target& t, const Providers& providers) {
    if (!t.logged_error.empty()) {
      MESHRPC_LOG_INFO("etcd resolver: service {}: recovered from: {}", t.service, t.logged_error);
      t.logged_error.clear();
    }
    std::vector<Provider> list;
    list.reserve(providers.size());
    for (const auto& [key, provider] : providers) list.push_back(provider);
    lists.set(t.service, std::move(list));
  }

  void report_error(Target& t, Status error) {
    if (error.to_string() != t.logged_error) {
      t.logged_error = error.to_string();
      MESHRPC_LOG_WARN("etcd resolver: service {}: {}; keeping the last good provider list",
                       t.service, t.logged_error);
    }
    lists.set_error(t.service, std::move(error));
  }

  runtime::Env& env_;
  const etcd::GatewayOptions gateway_options_;
  const EtcdResolverOptions options_;
  asio::strand<asio::any_io_executor> strand_;
  etcd::TaskLatch tasks_;

  std::mutex mutex_;
  bool stopped_ = false;
  WatchedTargets<Target> targets_;
};

EtcdResolver::EtcdResolver(runtime::Env& env, EtcdResolverOptions options)
    : watches_(std::make_shared<Watches>(env, std::move(options))) {}

EtcdResolver::~EtcdResolver() { stop(); }

runtime::Duration EtcdResolver::staleness(std::string_view service) const {
  return watches_->lists.staleness(service);
}

Resolver::WatchId EtcdResolver::watch(std::string service, Watcher watcher) {
  return watches_->watch(std::move(service), std::move(watcher));
}

void EtcdResolver::unwatch(WatchId id) { watches_->unwatch(id); }

ResolverUpdate EtcdResolver::current(std::string_view service) const {
  return watches_->lists.current(service);
}

void EtcdResolver::stop() { watches_->stop(); }

}  // namespace meshrpc::cluster
