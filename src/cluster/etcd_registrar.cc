#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "etcd_gateway.h"
#include "meshrpc/base/logging.h"
#include "meshrpc/cluster/etcd.h"
#include "meshrpc/resilience/backoff.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::cluster {
namespace {

EtcdRegistrarOptions checked(EtcdRegistrarOptions options, const std::string& service,
                             const Provider& provider) {
  if (service.empty() || service.find('/') != std::string::npos) {
    throw std::invalid_argument("EtcdRegistrar: service \"" + service +
                                "\" must be non-empty and without '/'");
  }
  if (provider.node_id.empty() || provider.node_id.find('/') != std::string::npos) {
    throw std::invalid_argument("EtcdRegistrar: node id \"" + provider.node_id +
                                "\" must be non-empty and without '/'");
  }
  if (provider.address.port == 0) {
    throw std::invalid_argument("EtcdRegistrar: provider " + provider.node_id + " has address " +
                                provider.address.to_string() + " (port 0)");
  }
  if (options.lease_ttl < std::chrono::seconds(1)) {
    throw std::invalid_argument("EtcdRegistrar: lease_ttl is below etcd's 1 s granularity");
  }
  if (options.keepalive_interval <= runtime::Duration::zero()) {
    options.keepalive_interval = options.lease_ttl / 3;
  }
  return options;
}

std::string millis(runtime::Duration duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count()) +
         " ms";
}

}  // namespace

// The registration task and the state it reports. Shared with the task, so a task outliving
// the registrar (stop() on an env thread: the revoke finishes in the background) finds a
// live object.
//
// Locking: mutex_ guards state_, pending_, provider_ and stopped_; gateway_, pause_ and
// closing_ are touched only on strand_.
class EtcdRegistrar::Loop : public std::enable_shared_from_this<Loop> {
 public:
  Loop(runtime::Env& env, EtcdRegistrarOptions options, std::string service, Provider provider)
      : env_(env),
        options_(checked(std::move(options), service, provider)),
        gateway_options_(etcd::checked_gateway_options(env, options_.etcd, "EtcdRegistrar")),
        service_(std::move(service)),
        key_(options_.etcd.key_prefix + service_ + "/" + provider.node_id),
        strand_(asio::make_strand(env.pick_executor())),
        provider_(std::move(provider)) {}

  void start() {
    tasks_.add();
    asio::co_spawn(strand_, run(), [self = shared_from_this()](std::exception_ptr e) {
      if (e) MESHRPC_LOG_ERROR("etcd registrar: {}: task ended by an exception", self->key_);
      {
        std::lock_guard lock(self->mutex_);
        self->state_.registered = false;
      }
      self->changed_.notify_all();
      self->tasks_.done();
    });
  }

  const std::string& key() const { return key_; }

  Status update(Provider provider) {
    {
      std::lock_guard lock(mutex_);
      if (provider.node_id != provider_.node_id) {
        return invalid_argument_error("EtcdRegistrar::update: node id " + provider.node_id +
                                      " is not the registered " + provider_.node_id);
      }
      provider_ = std::move(provider);
      pending_ = true;
    }
    asio::post(strand_, [self = shared_from_this()] { self->pause_.interrupt(); });
    return Status();
  }

  EtcdRegistrationState state() const {
    std::lock_guard lock(mutex_);
    return state_;
  }

  Status wait_registered(runtime::Duration timeout) const {
    if (env_.in_env_thread()) {
      return failed_precondition_error(
          "EtcdRegistrar::wait_registered called on an env thread, where it would block the "
          "registration it waits for");
    }
    std::unique_lock lock(mutex_);
    if (changed_.wait_for(lock, timeout, [&] { return state_.registered || stopped_; }) &&
        state_.registered) {
      return Status();
    }
    return deadline_exceeded_error(
        "not registered at etcd as " + key_ + " after " + millis(timeout) +
        (state_.last_error.ok() ? std::string()
                                : "; last error: " + state_.last_error.to_string()));
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    changed_.notify_all();
    asio::post(strand_, [self = shared_from_this()] {
      self->closing_ = true;
      if (self->gateway_) self->gateway_->close();
      self->pause_.interrupt();
    });
    if (!env_.in_env_thread()) tasks_.wait();
  }

 private:
  asio::awaitable<void> run() {
    gateway_.emplace(strand_, gateway_options_);
    resilience::Backoff backoff(options_.etcd.retry_backoff);
    runtime::Random random(env_.random_u64());
    int64_t lease = 0;
    while (!closing_) {
      Result<int64_t> granted = co_await gateway_->grant_lease(options_.lease_ttl);
      if (granted.ok()) lease = *granted;
      if (closing_) break;
      if (!granted.ok()) {
        note_error(granted.status());
        co_await pause_.sleep(env_, backoff.next(random));
        continue;
      }
      Status put = co_await gateway_->put(key_, etcd::encode_provider(take_provider()), lease);
      if (closing_) break;
      if (!put.ok()) {
        note_error(put);
        mark_pending();
        co_await pause_.sleep(env_, backoff.next(random));
        continue;
      }
      backoff.reset();
      on_registered(lease);
      co_await keep_alive(lease, backoff, random);
    }
    if (lease != 0) co_await revoke(lease);
  }

  // Keeps `lease` alive (and writes updates under it) until it is lost or the registrar
  // stops.
  asio::awaitable<void> keep_alive(int64_t lease, resilience::Backoff& backoff,
                                   runtime::Random& random) {
    runtime::TimePoint last_alive = env_.now();
    runtime::Duration pause = options_.keepalive_interval;
    while (!closing_) {
      co_await pause_.sleep(env_, pause);
      if (closing_) co_return;
      pause = options_.keepalive_interval;
      if (has_pending()) {
        Status put = co_await gateway_->put(key_, etcd::encode_provider(take_provider()), lease);
        if (closing_) co_return;
        if (put.code() == StatusCode::kNotFound) {  // "requested lease not found"
          on_lost(lease, put.to_string());
          co_return;
        }
        if (!put.ok()) {
          note_error(put);
          mark_pending();
        }
      }
      Result<int64_t> ttl = co_await gateway_->keep_alive(lease);
      if (closing_) co_return;
      if (ttl.ok() && *ttl > 0) {
        last_alive = env_.now();
        backoff.reset();
        clear_error();
        continue;
      }
      if (ttl.ok()) {
        on_lost(lease, "etcd says the lease has expired");
        co_return;
      }
      note_error(ttl.status());
      if (env_.now() - last_alive >= options_.lease_ttl) {
        on_lost(lease,
                "no keep-alive succeeded for a whole TTL (" + millis(options_.lease_ttl) + ")");
        co_return;
      }
      // Failed: try again sooner than a full interval, the lease is running out.
      pause = std::min(options_.keepalive_interval, backoff.next(random));
    }
  }

  asio::awaitable<void> revoke(int64_t lease) {
    // A fresh connection: stop() closed the task's own to abort whatever it was doing.
    etcd::Gateway revoker(strand_, gateway_options_);
    Status revoked = co_await revoker.revoke_lease(lease);
    if (revoked.ok() || revoked.code() == StatusCode::kNotFound) {
      MESHRPC_LOG_INFO("etcd registrar: {}: deregistered (lease {} revoked)", key_, lease);
    } else {
      MESHRPC_LOG_WARN(
          "etcd registrar: {}: could not revoke lease {} ({}); the key goes when "
          "the lease expires",
          key_, lease, revoked.to_string());
    }
  }

  Provider take_provider() {
    std::lock_guard lock(mutex_);
    pending_ = false;
    return provider_;
  }
  bool has_pending() const {
    std::lock_guard lock(mutex_);
    return pending_;
  }
  void mark_pending() {
    std::lock_guard lock(mutex_);
    pending_ = true;
  }

  void on_registered(int64_t lease) {
    {
      std::lock_guard lock(mutex_);
      state_.registered = true;
      state_.lease_id = lease;
      ++state_.registrations;
      state_.last_error = Status();
    }
    changed_.notify_all();
    MESHRPC_LOG_INFO("etcd registrar: registered {} (lease {}, ttl {})", key_, lease,
                     millis(options_.lease_ttl));
  }

  void on_lost(int64_t lease, const std::string& why) {
    {
      std::lock_guard lock(mutex_);
      state_.registered = false;
      ++state_.leases_lost;
    }
    mark_pending();
    MESHRPC_LOG_WARN("etcd registrar: {}: lease {} lost: {}; registering again", key_, lease, why);
  }

  void note_error(Status error) {
    std::lock_guard lock(mutex_);
    if (error.to_string() != state_.last_error.to_string()) {
      MESHRPC_LOG_WARN("etcd registrar: {}: {}", key_, error.to_string());
    }
    state_.last_error = std::move(error);
  }

  void clear_error() {
    std::lock_guard lock(mutex_);
    if (!state_.last_error.ok()) {
      MESHRPC_LOG_INFO("etcd registrar: {}: recovered from: {}", key_,
                       state_.last_error.to_string());
      state_.last_error = Status();
    }
  }

  runtime::Env& env_;
  const EtcdRegistrarOptions options_;
  const etcd::GatewayOptions gateway_options_;
  const std::string service_;
  const std::string key_;
  asio::strand<asio::any_io_executor> strand_;
  etcd::TaskLatch tasks_;

  // On strand_ only.
  std::optional<etcd::Gateway> gateway_;
  etcd::InterruptibleSleep pause_;
  bool closing_ = false;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  Provider provider_;
  bool pending_ = false;
  bool stopped_ = false;
  EtcdRegistrationState state_;
};

EtcdRegistrar::EtcdRegistrar(runtime::Env& env, EtcdRegistrarOptions options, std::string service,
                             Provider provider)
    : loop_(std::make_shared<Loop>(env, std::move(options), std::move(service),
                                   std::move(provider))) {
  loop_->start();
}

EtcdRegistrar::~EtcdRegistrar() { stop(); }

const std::string& EtcdRegistrar::key() const { return loop_->key(); }

Status EtcdRegistrar::update(Provider provider) { return loop_->update(std::move(provider)); }

EtcdRegistrationState EtcdRegistrar::state() const { return loop_->state(); }

Status EtcdRegistrar::wait_registered(runtime::Duration timeout) const {
  return loop_->wait_registered(timeout);
}

void EtcdRegistrar::stop() { loop_->stop(); }

}  // namespace meshrpc::cluster
