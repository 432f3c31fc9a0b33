#include "meshrpc/cluster/dns_resolver.h"

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/cluster/static_resolver.h"
#include "watched_targets.h"

namespace meshrpc::cluster {
namespace {

runtime::Env& require_real_env(runtime::Env& env) {
  if (env.is_simulated()) {
    throw std::invalid_argument(
        "DnsResolver needs a RealEnv: simulated hosts have no DNS (use a StaticResolver)");
  }
  return env;
}

std::vector<Provider> to_providers(std::vector<transport::Address> addresses) {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  std::vector<Provider> providers;
  providers.reserve(addresses.size());
  for (auto& address : addresses) {
    Provider provider;
    provider.node_id = address.to_string();
    provider.address = std::move(address);
    providers.push_back(std::move(provider));
  }
  return providers;
}

}  // namespace

// The lookup loops and the lists they feed. Shared with pending timers and lookups, so a
// completion that arrives after the resolver is gone finds a live, stopped poller.
//
// Locking: mutex_ guards stopped_ and targets_; each Target's signal and logged error are
// touched only on strand_, where every lookup and timer completes and cancellation is emitted.
class DnsResolver::Poller : public std::enable_shared_from_this<Poller> {
 public:
  Poller(runtime::Env& env, DnsResolverOptions options)
      : lists(env),
        env_(require_real_env(env)),
        options_(std::move(options)),
        strand_(asio::make_strand(env.pick_executor())) {
    if (!options_.lookup) {
      options_.lookup = [](asio::any_io_executor executor, const transport::Address& target,
                           transport::ResolveHandler handler) {
        transport::initiate_resolve(std::move(executor), target.host, target.port,
                                    std::move(handler));
      };
    }
  }

  Resolver::WatchId watch(std::string service, Resolver::Watcher watcher) {
    const std::string name = service;
    const auto id = lists.watch(std::move(service), std::move(watcher));
    std::lock_guard lock(mutex_);
    if (stopped_ || !targets_.watch(id, name)) return id;
    Result<transport::Address> address = target_of(name);
    if (!address.ok()) {
      lists.set_error(name, address.status());
      return id;
    }
    auto target = std::make_shared<Target>(name, std::move(address).value());
    targets_.add_target(name, target);
    asio::post(strand_, [self = shared_from_this(), target] { self->look_up(target); });
    return id;
  }

  // The last watch of a service ends its lookups; a later watch() starts them again.
  void unwatch(Resolver::WatchId id) {
    lists.unwatch(id);
    std::shared_ptr<Target> unwatched;
    {
      std::lock_guard lock(mutex_);
      unwatched = targets_.unwatch(id);
    }
    if (!unwatched) return;
    asio::post(strand_, [unwatched] {
      unwatched->closed = true;
      unwatched->cancel.emit(asio::cancellation_type::terminal);
    });
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
      for (const auto& [name, target] : targets) {
        target->cancel.emit(asio::cancellation_type::terminal);
      }
    });
  }

  runtime::Duration staleness(std::string_view service) const { return lists.staleness(service); }

  StaticResolver lists;

 private:
  // One service being resolved: its target, and the signal that cancels its pending lookup or
  // timer (one of the two is pending at any time until stop()).
  struct Target {
    Target(std::string name, transport::Address target)
        : service(std::move(name)), address(std::move(target)) {}
    const std::string service;
    const transport::Address address;
    asio::cancellation_signal cancel;
    // Unwatched: its lookups end (a completion already queued when it was closed sees this).
    bool closed = false;
    // The error last logged, so that a persisting error is logged once, not every refresh.
    std::string logged_error;
  };

  Result<transport::Address> target_of(std::string_view service) const {
    auto it = options_.targets.find(service);
    Result<transport::Address> address = it != options_.targets.end()
                                             ? Result<transport::Address>(it->second)
                                             : transport::Address::parse(service);
    if (!address.ok() || address->host.empty() || address->port == 0) {
      return invalid_argument_error("dns resolver: service \"" + std::string(service) +
                                    "\" has no target in DnsResolverOptions::targets and is not "
                                    "host:port with a port other than 0");
    }
    return address;
  }

  bool stopped() const {
    std::lock_guard lock(mutex_);
    return stopped_;
  }

  // Runs on strand_.
  void look_up(const std::shared_ptr<Target>& target) {
    if (target->closed || stopped()) return;
    auto on_done = [self = shared_from_this(), target](error_code ec,
                                                       std::vector<transport::Address> addresses) {
      // The finished operation may leave its canceller in the slot; a later emit() from
      // stop() must not reach it.
      target->cancel.slot().clear();
      if (ec == asio::error::operation_aborted || target->closed || self->stopped()) return;
      self->on_answer(*target, ec, std::move(addresses));
      self->arm(target);
    };
    transport::ResolveHandler handler(asio::bind_cancellation_slot(
        target->cancel.slot(), asio::bind_executor(strand_, std::move(on_done))));
    options_.lookup(strand_, target->address, std::move(handler));
  }

  // Runs on strand_: waits one refresh interval, then looks up again.
  void arm(const std::shared_ptr<Target>& target) {
    auto on_timer = [self = shared_from_this(), target](error_code ec) {
      target->cancel.slot().clear();
      if (ec || target->closed) return;
      self->look_up(target);
    };
    env_.async_wait_for(
        options_.refresh_interval,
        asio::bind_cancellation_slot(target->cancel.slot(),
                                     asio::bind_executor(strand_, std::move(on_timer))));
  }

  void on_answer(Target& target, error_code ec, std::vector<transport::Address> addresses) {
    if (ec) {
      Status error = unavailable_error("dns lookup of " + target.address.to_string() +
                                       " failed: " + ec.message());
      if (error.to_string() != target.logged_error) {
        target.logged_error = error.to_string();
        MESHRPC_LOG_WARN("dns resolver: service {}: {}; keeping the last good provider list",
                         target.service, target.logged_error);
      }
      lists.set_error(target.service, std::move(error));
      return;
    }
    if (!target.logged_error.empty()) {
      MESHRPC_LOG_INFO("dns resolver: service {}: recovered from: {}", target.service,
                       target.logged_error);
      target.logged_error.clear();
    }
    lists.set(target.service, to_providers(std::move(addresses)));
  }

  runtime::Env& env_;
  DnsResolverOptions options_;
  asio::strand<asio::any_io_executor> strand_;

  mutable std::mutex mutex_;
  bool stopped_ = false;
  WatchedTargets<Target> targets_;
};

DnsResolver::DnsResolver(runtime::Env& env, DnsResolverOptions options)
    : poller_(std::make_shared<Poller>(env, std::move(options))) {}

DnsResolver::~DnsResolver() { stop(); }

runtime::Duration DnsResolver::staleness(std::string_view service) const {
  return poller_->staleness(service);
}

Resolver::WatchId DnsResolver::watch(std::string service, Watcher watcher) {
  return poller_->watch(std::move(service), std::move(watcher));
}

void DnsResolver::unwatch(WatchId id) { poller_->unwatch(id); }

ResolverUpdate DnsResolver::current(std::string_view service) const {
  return poller_->lists.current(service);
}

void DnsResolver::stop() { poller_->stop(); }

}  // namespace meshrpc::cluster
