// Discovery through a real etcd (Debian's etcd-server, started per test on free 127.0.0.1
// ports): registrars register with leases, resolvers list and watch, provider processes are
// SIGKILLed, etcd itself is killed and restarted.
#include "meshrpc/cluster/etcd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/cluster/client.h"
#include "meshrpc/cluster/load_balancer.h"
#include "meshrpc/cluster/provider_registry.h"
#include "meshrpc/cluster/service_client.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/tcp.h"
#include "src/cluster/etcd_gateway.h"
#include "tests/support/etcd_server.h"
#include "tests/support/subprocess.h"

namespace meshrpc::cluster {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::EtcdServer;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::meshrpc::testing::Subprocess;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::string_view kService = "test.Svc";

std::vector<std::string> node_ids(const std::vector<Provider>& providers) {
  std::vector<std::string> ids;
  for (const Provider& provider : providers) ids.push_back(provider.node_id);
  return ids;
}

Provider make_provider(std::string node_id, uint16_t port) {
  Provider provider;
  provider.node_id = std::move(node_id);
  provider.address = {"127.0.0.1", port};
  return provider;
}

// A resolver's updates for one service, for the test thread to wait on.
class Updates {
 public:
  Resolver::Watcher watcher() {
    return [this](const ResolverUpdate& update) {
      std::lock_guard lock(mutex_);
      latest_ = update;
      ++count_;
      changed_.notify_all();
    };
  }

  // The latest update once it satisfies `done`, or nullopt after `timeout`.
  std::optional<ResolverUpdate> wait_for(const std::function<bool(const ResolverUpdate&)>& done,
                                         std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return count_ > 0 && done(latest_); })) {
      return std::nullopt;
    }
    return latest_;
  }
  std::optional<ResolverUpdate> wait_for_ids(std::vector<std::string> ids,
                                             std::chrono::milliseconds timeout = 10s) {
    return wait_for([&](const ResolverUpdate& u) { return node_ids(u.providers) == ids; }, timeout);
  }
  ResolverUpdate latest() {
    std::lock_guard lock(mutex_);
    return latest_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  ResolverUpdate latest_;
  int count_ = 0;
};

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = EtcdServer::start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(etcd).value();
  }

  EtcdOptions etcd_options() const { return {.endpoints = {etcd_->client_address()}}; }

  // Runs `task` on the env and waits for it.
  template <typename T>
  T run(std::function<awaitable<T>(etcd::Gateway&)> task) {
    return asio::co_spawn(
               env_.executor(0),
               [this, task]() -> awaitable<T> {
                 auto executor = co_await asio::this_coro::executor;
                 etcd::Gateway gateway(executor, {.endpoints = {etcd_->client_address()}});
                 T result = co_await task(gateway);
                 co_return result;
               },
               asio::use_future)
        .get();
  }

  Status put(std::string key, std::string value) {
    return run<Status>([key, value](etcd::Gateway& gateway) -> awaitable<Status> {
      Status done = co_await gateway.put(key, value, 0);
      co_return done;
    });
  }

  runtime::RealEnv env_{runtime::RealEnv::Options{.threads = 2}};
  std::unique_ptr<EtcdServer> etcd_;
};

// ---- the pure parts ---------------------------------------------------------------------

TEST(EtcdGatewayTest, PrefixRangeEndIsTheNextKeyAfterThePrefix) {
  EXPECT_EQ(etcd::prefix_range_end("/svc/"), "/svc0");
  EXPECT_EQ(etcd::prefix_range_end("a\xff"), "b");
  EXPECT_EQ(etcd::prefix_range_end("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdGatewayTest, ProviderValueRoundTrips) {
  Provider provider = make_provider("kv-1", 7000);
  provider.tags = {{"zone", "a"}, {"version", "2"}};
  provider.weight = 3;
  provider.health = ProviderHealth::kDraining;
  Result<Provider> decoded = etcd::decode_provider("kv-1", etcd::encode_provider(provider));
  ASSERT_THAT(decoded.status(), IsOk());
  EXPECT_EQ(*decoded, provider);
}

TEST(EtcdGatewayTest, ProviderValueNeedsOnlyAnAddressAndTakesTheNodeIdFromTheKey) {
  Result<Provider> decoded =
      etcd::decode_provider("from-key", R"({"node_id": "other", "address": "10.0.0.9:81"})");
  ASSERT_THAT(decoded.status(), IsOk());
  EXPECT_EQ(decoded->node_id, "from-key");
  EXPECT_EQ(decoded->address, (transport::Address{"10.0.0.9", 81}));
  EXPECT_EQ(decoded->weight, 1u);
  EXPECT_EQ(decoded->health, ProviderHealth::kHealthy);
}

TEST(EtcdGatewayTest, ProviderValueWithoutAUsableAddressIsRejected) {
  EXPECT_THAT(etcd::decode_provider("n", "not json").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(etcd::decode_provider("n", R"({"weight": 2})").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no \"address\"")));
  EXPECT_THAT(etcd::decode_provider("n", R"({"address": "10.0.0.1"})").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not host:port")));
}

TEST(EtcdEndpointsTest, ParsesHostPortListsWithOptionalScheme) {
  Result<std::vector<transport::Address>> endpoints =
      parse_etcd_endpoints("127.0.0.1:2379,http://etcd-2:2380/");
  ASSERT_THAT(endpoints.status(), IsOk());
  EXPECT_THAT(*endpoints, ElementsAre(transport::Address{"127.0.0.1", 2379},
                                      transport::Address{"etcd-2", 2380}));
  EXPECT_THAT(parse_etcd_endpoints("").status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parse_etcd_endpoints("127.0.0.1").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"127.0.0.1\"")));
}

TEST(EtcdSetupTest, ResolverAndRegistrarRefuseSimEnvAndMissingEndpoints) {
  runtime::SimEnv sim(1);
  runtime::SimHost& host = sim.add_host("client");
  EXPECT_THROW(EtcdResolver(host, {.etcd = {.endpoints = {{"127.0.0.1", 2379}}}}),
               std::invalid_argument);
  EXPECT_THROW(EtcdRegistrar(host, {.etcd = {.endpoints = {{"127.0.0.1", 2379}}}}, "s",
                             make_provider("n", 1)),
               std::invalid_argument);
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  EXPECT_THROW(EtcdResolver(env, {}), std::invalid_argument);
  EXPECT_THROW(EtcdRegistrar(env, {.etcd = {.endpoints = {{"127.0.0.1", 2379}}}}, "s",
                             make_provider("n", 0)),
               std::invalid_argument);
}

// ---- against a real etcd ----------------------------------------------------------------

TEST_F(EtcdTest, ResolverSeesRegisteredProvidersWithTheirFields) {
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = etcd_options()});
  resolver.watch(std::string(kService), updates.watcher());

  Provider first = make_provider("p1", 7001);
  first.tags = {{"zone", "a"}};
  first.weight = 5;
  EtcdRegistrar one(env_, {.etcd = etcd_options()}, std::string(kService), first);
  EtcdRegistrar two(env_, {.etcd = etcd_options()}, std::string(kService),
                    make_provider("p2", 7002));

  std::optional<ResolverUpdate> both = updates.wait_for_ids({"p1", "p2"});
  ASSERT_TRUE(both) << "last: " << node_ids(updates.latest().providers).size() << " providers";
  EXPECT_EQ(both->providers[0], first);
  EXPECT_THAT(both->status, IsOk());
  EXPECT_EQ(one.key(), "/meshrpc/services/test.Svc/p1");
  // The watch event may overtake the registrar's own reply to its put.
  ASSERT_THAT(one.wait_registered(10s), IsOk());
  EXPECT_EQ(one.state().registrations, 1u);
  EXPECT_LT(resolver.staleness(kService), 5s);
}

TEST_F(EtcdTest, StoppedRegistrarDisappearsAtOnceNotAfterItsTtl) {
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = etcd_options()});
  resolver.watch(std::string(kService), updates.watcher());
  EtcdRegistrar stays(env_, {.etcd = etcd_options(), .lease_ttl = 30s}, std::string(kService),
                      make_provider("stays", 7001));
  EtcdRegistrar leaves(env_, {.etcd = etcd_options(), .lease_ttl = 30s}, std::string(kService),
                       make_provider("leaves", 7002));
  ASSERT_TRUE(updates.wait_for_ids({"leaves", "stays"}));
  leaves.stop();  // revokes: the key goes now, not in 30 s
  EXPECT_TRUE(updates.wait_for_ids({"stays"}, 5s));
}

TEST_F(EtcdTest, UpdateRewritesTheRegisteredProviderInPlace) {
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = etcd_options()});
  resolver.watch(std::string(kService), updates.watcher());
  Provider provider = make_provider("p1", 7001);
  EtcdRegistrar registrar(env_, {.etcd = etcd_options()}, std::string(kService), provider);
  ASSERT_THAT(registrar.wait_registered(10s), IsOk());

  provider.health = ProviderHealth::kDraining;
  provider.tags = {{"version", "2"}};
  ASSERT_THAT(registrar.update(provider), IsOk());
  std::optional<ResolverUpdate> drained = updates.wait_for([](const ResolverUpdate& u) {
    return u.providers.size() == 1 && u.providers[0].health == ProviderHealth::kDraining;
  });
  ASSERT_TRUE(drained);
  EXPECT_EQ(drained->providers[0], provider);
  EXPECT_EQ(registrar.state().registrations, 1u);  // same lease, same key
  EXPECT_THAT(registrar.update(make_provider("p2", 7001)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not the registered p1")));
}

TEST_F(EtcdTest, RegistrarRegistersAgainAfterItsLeaseIsLost) {
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = etcd_options()});
  resolver.watch(std::string(kService), updates.watcher());
  EtcdRegistrar registrar(env_, {.etcd = etcd_options(), .lease_ttl = 2s}, std::string(kService),
                          make_provider("p1", 7001));
  ASSERT_THAT(registrar.wait_registered(10s), IsOk());
  ASSERT_TRUE(updates.wait_for_ids({"p1"}));
  const int64_t lease = registrar.state().lease_id;

  // An operator (or an expiry during a long pause) takes the lease away: the key goes too.
  ASSERT_THAT(run<Status>([lease](etcd::Gateway& gateway) -> awaitable<Status> {
                Status revoked = co_await gateway.revoke_lease(lease);
                co_return revoked;
              }),
              IsOk());
  ASSERT_TRUE(updates.wait_for_ids({}));
  // The next keep-alive (within a third of the TTL) finds the lease gone and registers anew.
  std::optional<ResolverUpdate> back = updates.wait_for_ids({"p1"}, 5s);
  ASSERT_TRUE(back);
  // The watch event may overtake the registrar's own reply to its put.
  ASSERT_THAT(registrar.wait_registered(5s), IsOk());
  const EtcdRegistrationState state = registrar.state();
  EXPECT_TRUE(state.registered);
  EXPECT_EQ(state.registrations, 2u);
  EXPECT_EQ(state.leases_lost, 1u);
  EXPECT_NE(state.lease_id, lease);
}

TEST_F(EtcdTest, ResolverKeepsTheLastGoodListThroughAnEtcdOutage) {
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = {.endpoints = {etcd_->client_address()},
                                        .request_timeout = 1s,
                                        .retry_backoff = {.initial = 50ms, .max = 200ms}}});
  resolver.watch(std::string(kService), updates.watcher());
  {
    EtcdRegistrar registrar(env_, {.etcd = etcd_options(), .lease_ttl = 60s}, std::string(kService),
                            make_provider("p1", 7001));
    ASSERT_TRUE(updates.wait_for_ids({"p1"}));
    // Killed, the registrar cannot revoke: its lease outlives the outage.
    etcd_->kill();
  }

  std::optional<ResolverUpdate> outage =
      updates.wait_for([](const ResolverUpdate& u) { return !u.status.ok(); });
  ASSERT_TRUE(outage);
  EXPECT_THAT(outage->status,
              StatusIs(StatusCode::kUnavailable, HasSubstr(etcd_->client_address().to_string())));
  EXPECT_EQ(node_ids(outage->providers), std::vector<std::string>{"p1"});
  const runtime::TimePoint last_good = outage->last_good_time;

  ASSERT_THAT(etcd_->restart(), IsOk()) << etcd_->log();
  std::optional<ResolverUpdate> recovered =
      updates.wait_for([](const ResolverUpdate& u) { return u.status.ok(); });
  ASSERT_TRUE(recovered);
  EXPECT_EQ(node_ids(recovered->providers), std::vector<std::string>{"p1"});
  EXPECT_GT(recovered->last_good_time, last_good);
}

TEST_F(EtcdTest, ResolverReportsUnavailableWhenNoEndpointAnswersAndFailsOverToOneThatDoes) {
  const transport::Address dead{"127.0.0.1", ::meshrpc::testing::free_loopback_port()};
  {
    Updates updates;
    EtcdResolver resolver(env_, {.etcd = {.endpoints = {dead}}});
    resolver.watch(std::string(kService), updates.watcher());
    std::optional<ResolverUpdate> failed =
        updates.wait_for([](const ResolverUpdate& u) { return u.version > 0; });
    ASSERT_TRUE(failed);
    EXPECT_THAT(failed->status, StatusIs(StatusCode::kUnavailable, HasSubstr(dead.to_string())));
    EXPECT_TRUE(failed->providers.empty());
    EXPECT_EQ(resolver.staleness(kService), runtime::Duration::max());
  }
  EtcdRegistrar registrar(env_, {.etcd = etcd_options()}, std::string(kService),
                          make_provider("p1", 7001));
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = {.endpoints = {dead, etcd_->client_address()}}});
  resolver.watch(std::string(kService), updates.watcher());
  EXPECT_TRUE(updates.wait_for_ids({"p1"}));
}

TEST_F(EtcdTest, ResolverLeavesOutValuesThatAreNotProviders) {
  ASSERT_THAT(put("/meshrpc/services/test.Svc/broken", "{not json"), IsOk());
  ASSERT_THAT(put("/meshrpc/services/test.Svc/no-address", R"({"weight": 2})"), IsOk());
  ASSERT_THAT(put("/meshrpc/services/test.Svc/nested/key", R"({"address": "127.0.0.1:1"})"),
              IsOk());
  ASSERT_THAT(put("/meshrpc/services/test.Svc/by-hand", R"({"address": "127.0.0.1:7009"})"),
              IsOk());
  ASSERT_THAT(put("/meshrpc/services/test.Svcx/other-service", R"({"address": "127.0.0.1:1"})"),
              IsOk());
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = etcd_options()});
  resolver.watch(std::string(kService), updates.watcher());
  std::optional<ResolverUpdate> listed = updates.wait_for_ids({"by-hand"});
  ASSERT_TRUE(listed);
  EXPECT_THAT(listed->status, IsOk());
  // A good provider overwritten with garbage leaves the list; fixed, it comes back.
  ASSERT_THAT(put("/meshrpc/services/test.Svc/by-hand", "garbage"), IsOk());
  EXPECT_TRUE(updates.wait_for_ids({}));
  ASSERT_THAT(put("/meshrpc/services/test.Svc/by-hand", R"({"address": "127.0.0.1:7010"})"),
              IsOk());
  EXPECT_TRUE(updates.wait_for([](const ResolverUpdate& u) {
    return u.providers.size() == 1 && u.providers[0].address.port == 7010;
  }));
}

TEST_F(EtcdTest, QuietResolverConfirmsItsListEveryResyncInterval) {
  EtcdRegistrar registrar(env_, {.etcd = etcd_options()}, std::string(kService),
                          make_provider("p1", 7001));
  ASSERT_THAT(registrar.wait_registered(10s), IsOk());
  Updates updates;
  EtcdResolver resolver(env_, {.etcd = etcd_options(), .resync_interval = 200ms});
  resolver.watch(std::string(kService), updates.watcher());
  std::optional<ResolverUpdate> first = updates.wait_for_ids({"p1"});
  ASSERT_TRUE(first);
  // Nothing changes in etcd, so watchers hear nothing; the resync still moves
  // last_good_time (polled: an unchanged list is, by contract, no update).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (resolver.current(kService).last_good_time <= first->last_good_time &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  const ResolverUpdate now = resolver.current(kService);
  EXPECT_GT(now.last_good_time, first->last_good_time);
  EXPECT_EQ(now.version, first->version);
}

TEST_F(EtcdTest, LastUnwatchEndsTheServicesWatchAndALaterWatchStartsAfresh) {
  EtcdRegistrar one(env_, {.etcd = etcd_options()}, std::string(kService),
                    make_provider("p1", 7001));
  Updates first;
  Updates later;  // both outlive the resolver, whose watchers they are
  EtcdResolver resolver(env_, {.etcd = etcd_options(), .resync_interval = 50ms});
  {
    Updates& updates = first;
    const Resolver::WatchId id = resolver.watch(std::string(kService), updates.watcher());
    ASSERT_TRUE(updates.wait_for_ids({"p1"}));
    resolver.unwatch(id);
  }
  // Unwatched, the service is no longer resynced (50 ms would have moved it several times;
  // nothing signals an absence, so this waits).
  const runtime::TimePoint confirmed = resolver.current(kService).last_good_time;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(resolver.current(kService).last_good_time, confirmed);

  EtcdRegistrar two(env_, {.etcd = etcd_options()}, std::string(kService),
                    make_provider("p2", 7002));
  ASSERT_THAT(two.wait_registered(10s), IsOk());
  resolver.watch(std::string(kService), later.watcher());
  EXPECT_TRUE(later.wait_for_ids({"p1", "p2"}));
}

// ---- the issue's acceptance test: provider processes come and go ----------------------

// Records every attempt a ServiceClient sends, with its time, around the default balancer.
class RecordingBalancer final : public LoadBalancer {
 public:
  struct Attempt {
    runtime::TimePoint at;
    std::string node_id;
  };
  RecordingBalancer(runtime::Env& env, std::mutex& mutex, std::vector<Attempt>& attempts)
      : inner_(make_load_balancer("p2c").value()), env_(env), mutex_(mutex), attempts_(attempts) {}

  void update(std::vector<Provider> providers) override { inner_->update(std::move(providers)); }
  std::optional<size_t> pick(const PickRequest& request) override { return inner_->pick(request); }
  void on_call_started(std::string_view node_id) override {
    {
      std::lock_guard lock(mutex_);
      attempts_.push_back({env_.now(), std::string(node_id)});
    }
    inner_->on_call_started(node_id);
  }
  void on_call_finished(std::string_view node_id, runtime::TimePoint now, runtime::Duration latency,
                        bool ok) override {
    inner_->on_call_finished(node_id, now, latency, ok);
  }
  std::string_view name() const override { return "recording-p2c"; }

 private:
  std::unique_ptr<LoadBalancer> inner_;
  runtime::Env& env_;
  std::mutex& mutex_;
  std::vector<Attempt>& attempts_;
};

// Calls the service from a few coroutines until stopped; counts who answered and failures.
class Load {
 public:
  Load(runtime::Env& env, ServiceClient& service) {
    for (int i = 0; i < 4; ++i) {
      loops_.push_back(asio::co_spawn(env.pick_executor(), loop(service), asio::use_future));
    }
  }
  ~Load() { stop(); }

  void stop() {
    stopping_ = true;
    for (auto& loop : loops_) loop.get();
    loops_.clear();
  }

  // Whether `node_id` answers `calls` more calls (from now on) within `timeout`.
  bool wait_for_answers(const std::string& node_id, int calls,
                        std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    const int target = served_[node_id] + calls;
    return changed_.wait_for(lock, timeout, [&] { return served_[node_id] >= target; });
  }

  int failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  std::string first_failure() {
    std::lock_guard lock(mutex_);
    return first_failure_;
  }
  int calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  awaitable<void> loop(ServiceClient& service) {
    while (!stopping_) {
      CallOptions options;
      options.idempotency = core::Idempotency::kIdempotent;
      options.timeout = 5s;
      core::CallResult result =
          co_await service.async_call("test.Svc.Call", Buffer(), options, asio::use_awaitable);
      std::lock_guard lock(mutex_);
      ++calls_;
      if (result.ok()) {
        ++served_[result.response.to_string()];
        changed_.notify_all();
      } else if (failures_++ == 0) {
        first_failure_ = result.status.to_string();
      }
    }
  }

  std::atomic<bool> stopping_{false};
  std::vector<std::future<void>> loops_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, int> served_;
  int calls_ = 0;
  int failures_ = 0;
  std::string first_failure_;
};

class EtcdDiscoveryTest : public EtcdTest {
 protected:
  static constexpr auto kTtl = 2s;

  std::unique_ptr<Subprocess> start_provider(const std::string& node_id) {
    std::vector<std::string> argv = {MESHRPC_ETCD_TEST_PROVIDER,
                                     "--etcd",
                                     etcd_->client_address().to_string(),
                                     "--service",
                                     std::string(kService),
                                     "--node-id",
                                     node_id,
                                     "--lease-ttl-ms",
                                     std::to_string(std::chrono::milliseconds(kTtl).count())};
    auto process = Subprocess::start(argv, etcd_->dir() + "/" + node_id + ".log");
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return nullptr;
    EXPECT_TRUE((*process)->wait_for_output("provider " + node_id + " registered", 20s))
        << (*process)->output();
    return std::move(process).value();
  }
};

TEST_F(EtcdDiscoveryTest, KilledProviderStopsGettingTrafficWithinTtlAndNoCallFails) {
  ProviderRegistry registry;
  std::mutex mutex;  // guards lists
  std::condition_variable listed;
  std::vector<std::pair<runtime::TimePoint, std::vector<std::string>>> lists;
  EtcdResolver resolver(env_, {.etcd = etcd_options()});
  resolver.watch(std::string(kService), [&](const ResolverUpdate& update) {
    registry.replace(update.service, update.providers, "etcd").ignore_error();
    std::lock_guard lock(mutex);
    lists.emplace_back(env_.now(), node_ids(update.providers));
    listed.notify_all();
  });
  auto wait_for_list = [&](std::vector<std::string> ids) -> std::optional<runtime::TimePoint> {
    std::unique_lock lock(mutex);
    if (!listed.wait_for(lock, 20s, [&] { return !lists.empty() && lists.back().second == ids; })) {
      return std::nullopt;
    }
    return lists.back().first;
  };

  std::unique_ptr<Subprocess> p1 = start_provider("p1");
  std::unique_ptr<Subprocess> p2 = start_provider("p2");
  ASSERT_TRUE(p1 && p2);
  ASSERT_TRUE(wait_for_list({"p1", "p2"})) << "the client never saw both providers";

  transport::TcpNetwork network(env_);
  Client client(env_, network);
  std::mutex attempts_mutex;
  std::vector<RecordingBalancer::Attempt> attempts;
  ServiceClient service(client, registry, std::string(kService), {.make_balancer = [&] {
                          return std::make_unique<RecordingBalancer>(env_, attempts_mutex,
                                                                     attempts);
                        }});
  Load load(env_, service);
  ASSERT_TRUE(load.wait_for_answers("p1", 20));
  ASSERT_TRUE(load.wait_for_answers("p2", 20));

  // SIGKILL: no deregistration; only the lease's expiry tells etcd.
  const runtime::TimePoint killed_at = env_.now();
  p1->signal(SIGKILL);
  ASSERT_TRUE(p1->wait(5s));
  std::optional<runtime::TimePoint> dropped_at = wait_for_list({"p2"});
  ASSERT_TRUE(dropped_at) << "p1 was never dropped";
  EXPECT_LE(*dropped_at - killed_at, kTtl + 1s);
  ASSERT_TRUE(load.wait_for_answers("p2", 200));

  // A third provider registers and gets traffic without any client restart.
  std::unique_ptr<Subprocess> p3 = start_provider("p3");
  ASSERT_TRUE(p3);
  ASSERT_TRUE(wait_for_list({"p2", "p3"}));
  EXPECT_TRUE(load.wait_for_answers("p3", 20));
  load.stop();

  EXPECT_EQ(load.failures(), 0) << "of " << load.calls()
                                << " calls; first: " << load.first_failure();
  std::lock_guard lock(attempts_mutex);
  int to_p1_after_drop = 0;
  for (const auto& attempt : attempts) {
    if (attempt.node_id == "p1" && attempt.at >= *dropped_at) ++to_p1_after_drop;
  }
  EXPECT_EQ(to_p1_after_drop, 0) << "attempts sent to the killed provider after it was dropped";
  // The numbers for the record (docs/discovery.md quotes them).
  std::printf(
      "p1 dropped %lld ms after SIGKILL (lease TTL %lld ms); %d calls, %d failed\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(*dropped_at - killed_at).count()),
      static_cast<long long>(std::chrono::milliseconds(kTtl).count()), load.calls(),
      load.failures());
}

}  // namespace
}  // namespace meshrpc::cluster
