// DnsResolver: providers from DNS. A service maps to one "host:port" target; the host's A and
// AAAA records (through transport::async_resolve, i.e. getaddrinfo) are its providers, one per
// distinct IP, all on the target's port. For deployments whose service discovery is DNS
// (Kubernetes headless services, Consul DNS, round-robin records).
//
//   cluster::DnsResolver resolver(env, {.targets = {{"kv.Store", {"kv.internal", 7000}}}});
//   resolver.watch("kv.Store", on_update);        // providers 10.0.0.7:7000, 10.0.0.9:7000
//   resolver.watch("cache.internal:6379", ...);   // a name not in `targets` is the target
//
// Which target: `targets[service]` if present, else the service name itself parsed as
// "host:port" (like gRPC's dns:///host:port). A name that is neither gets INVALID_ARGUMENT
// in its update's status and is never looked up.
//
// Providers: node_id = address = "ip:port" (IPv6 bracketed in node_id), weight 1, healthy, no
// tags, sorted by address with duplicates removed, so the same records in another order are
// not a change.
//
// Refresh: a service is looked up on its first watch(), then again refresh_interval after
// each lookup ends (lookups of one service never overlap), until stop() or the service's last
// unwatch() (a later watch() looks it up afresh). An unchanged answer
// is not an update: watchers are not called, only last_good_time (and so staleness())
// advances. TTLs are not read: getaddrinfo does not expose them.
//
// Failure: a failed lookup keeps the last good list; the status becomes UNAVAILABLE
// "dns lookup of kv.internal:7000 failed: <reason>" (watchers are told when the status
// changes), last_good_time stays at the last success, and the error is logged as a warning
// once per distinct error per service (recovery is logged once at info). A service that never
// resolved gets the error with an empty list.
//
// RealEnv only: the constructor throws std::invalid_argument under SimEnv (a setup error:
// simulated hosts have no DNS; use a StaticResolver there).
//
// Threading: every method is safe from any thread; watchers run as Resolver says (posted to an
// env executor, serialised per watcher, increasing versions). Lookups and timers run on one
// strand of the env. Lifetime: `env` outlives the resolver; stop() or destruction cancels
// the timers and any lookup in flight (per-operation cancellation), and no watcher is called
// after either returns.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "meshrpc/cluster/resolver.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/dns.h"

namespace meshrpc::cluster {

struct DnsResolverOptions {
  // Service name -> the host and port to look up. Services not listed are parsed as
  // "host:port".
  std::map<std::string, transport::Address, std::less<>> targets = {};
  // 30 s: DNS TTLs inside datacenters are commonly 30-60 s, so re-resolving more often mostly
  // re-reads cached answers, and less often leaves a moved provider unused for longer than its
  // record lives. getaddrinfo does not expose TTLs, so the interval cannot follow them.
  runtime::Duration refresh_interval = std::chrono::seconds(30);
  // Looks up one target, called on the resolver's strand (`executor`): completes `handler`
  // with the target's addresses or an error, never inline (e.g. asio::post(executor,
  // asio::append(std::move(handler), ec, addresses))), and honours cancellation through the
  // handler's slot by completing with operation_aborted.
  // Empty: transport::initiate_resolve, the system resolver. Tests supply answers here.
  std::function<void(asio::any_io_executor executor, const transport::Address& target,
                     transport::ResolveHandler handler)>
      lookup = {};
};

class DnsResolver final : public Resolver {
 public:
  // Throws std::invalid_argument if `env` is simulated.
  DnsResolver(runtime::Env& env, DnsResolverOptions options = {});
  ~DnsResolver() override;

  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // env.now() - last_good_time of `service`; Duration::max() if it never resolved.
  runtime::Duration staleness(std::string_view service) const;

  WatchId watch(std::string service, Watcher watcher) override;
  void unwatch(WatchId id) override;
  ResolverUpdate current(std::string_view service) const override;
  void stop() override;

 private:
  class Poller;
  std::shared_ptr<Poller> poller_;
};

}  // namespace meshrpc::cluster
