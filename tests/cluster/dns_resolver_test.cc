// DnsResolver under RealEnv: real lookups of localhost and of a name that cannot resolve, and,
// through the lookup seam, scripted answers for refresh, keep-last-good and cancellation.
// Tests wait on what watchers and the seam report (condition variables with a generous
// watchdog), never on sleeps.
#include "meshrpc/cluster/dns_resolver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "tests/support/log_capture.h"

namespace meshrpc::cluster {
namespace {

using ::meshrpc::testing::StatusIs;
using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Generous: a real lookup that must fail may wait for the system resolver's timeout.
constexpr auto kWatchdog = std::chrono::seconds(60);

std::vector<std::string> node_ids(const ResolverUpdate& update) {
  std::vector<std::string> ids;
  for (const auto& provider : update.providers) ids.push_back(provider.node_id);
  return ids;
}

// What a watcher saw, waitable from the test thread.
class Seen {
 public:
  Resolver::Watcher watcher() {
    return [this](const ResolverUpdate& update) {
      std::lock_guard lock(mutex_);
      updates_.push_back(update);
      changed_.notify_all();
    };
  }

  // The first update matching `pred`, waiting up to the watchdog.
  std::optional<ResolverUpdate> wait_for(const std::function<bool(const ResolverUpdate&)>& pred) {
    std::unique_lock lock(mutex_);
    std::optional<ResolverUpdate> found;
    changed_.wait_for(lock, kWatchdog, [&] {
      for (const auto& update : updates_) {
        if (pred(update)) {
          found = update;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::vector<ResolverUpdate> all() const {
    std::lock_guard lock(mutex_);
    return updates_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ResolverUpdate> updates_;
};

bool resolved(const ResolverUpdate& update) { return update.version > 0 && update.status.ok(); }
bool failed(const ResolverUpdate& update) { return !update.status.ok(); }

// Runs everything queued on the single-threaded env before returning, so work it posted
// earlier (watcher calls, strand handlers) has finished.
void drain(runtime::RealEnv& env) {
  std::promise<void> done;
  asio::post(env.executor(0), [&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(kWatchdog), std::future_status::ready);
}

// A scripted DnsResolverOptions::lookup: answers with `addresses`, or fails with
// host_not_found while `fail` is set; counts lookups; with `hold` it keeps the lookup pending
// until cancelled.
class ScriptedLookup {
 public:
  auto function() {
    return [this](asio::any_io_executor executor, const transport::Address&,
                  transport::ResolveHandler handler) {
      on_lookup(std::move(executor), std::move(handler));
    };
  }

  void set_answer(std::vector<transport::Address> addresses, bool fail) {
    std::lock_guard lock(mutex_);
    addresses_ = std::move(addresses);
    fail_ = fail;
  }
  void hold() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }

  // Waits until `n` lookups have started; true if they did within the watchdog.
  bool wait_for_lookups(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kWatchdog, [&] { return lookups_ >= n; });
  }
  bool wait_for_cancel() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kWatchdog, [&] { return cancelled_; });
  }
  int lookups() const {
    std::lock_guard lock(mutex_);
    return lookups_;
  }

 private:
  // Runs on the resolver's strand, where cancellation is emitted too.
  void on_lookup(asio::any_io_executor executor, transport::ResolveHandler handler) {
    std::unique_lock lock(mutex_);
    ++lookups_;
    changed_.notify_all();
    if (hold_) {
      held_ = std::make_shared<transport::ResolveHandler>(std::move(handler));
      held_->get_cancellation_slot().assign(
          [this, executor, held = held_](asio::cancellation_type) {
            asio::post(executor, asio::append(std::move(*held), asio::error::operation_aborted,
                                              std::vector<transport::Address>{}));
            std::lock_guard cancel_lock(mutex_);
            cancelled_ = true;
            changed_.notify_all();
          });
      return;
    }
    const error_code ec = fail_ ? error_code(asio::error::host_not_found) : error_code();
    auto addresses = fail_ ? std::vector<transport::Address>{} : addresses_;
    lock.unlock();
    asio::post(executor, asio::append(std::move(handler), ec, std::move(addresses)));
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<transport::Address> addresses_;
  bool fail_ = false;
  bool hold_ = false;
  bool cancelled_ = false;
  int lookups_ = 0;
  std::shared_ptr<transport::ResolveHandler> held_;
};

using ::meshrpc::testing::LogCapture;

TEST(DnsResolver, RefusesASimulatedEnv) {
  runtime::SimEnv sim(1);
  EXPECT_THROW(DnsResolver resolver(sim), std::invalid_argument);
}

TEST(DnsResolver, ResolvesLocalhostToLoopbackProviders) {
  runtime::RealEnv env({.threads = 2});
  DnsResolver resolver(env, {.targets = {{"kv.Store", {"localhost", 7000}}}});
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  const auto update = seen.wait_for(resolved);
  ASSERT_TRUE(update.has_value()) << "no successful lookup of localhost";
  EXPECT_EQ(update->service, "kv.Store");
  EXPECT_THAT(node_ids(*update), Contains("127.0.0.1:7000"));
  Provider loopback;
  loopback.node_id = "127.0.0.1:7000";
  loopback.address = {"127.0.0.1", 7000};
  EXPECT_THAT(update->providers, Contains(loopback));
  EXPECT_TRUE(
      std::is_sorted(update->providers.begin(), update->providers.end(),
                     [](const Provider& a, const Provider& b) { return a.address < b.address; }));
  EXPECT_NE(update->last_good_time, runtime::TimePoint::min());
}

TEST(DnsResolver, AServiceNotInTargetsIsItsOwnTarget) {
  runtime::RealEnv env({.threads = 1});
  DnsResolver resolver(env);
  Seen seen;
  resolver.watch("127.0.0.1:7001", seen.watcher());
  const auto update = seen.wait_for(resolved);
  ASSERT_TRUE(update.has_value());
  EXPECT_THAT(node_ids(*update), ElementsAre("127.0.0.1:7001"));
}

TEST(DnsResolver, AServiceWithoutATargetIsInvalidArgument) {
  runtime::RealEnv env({.threads = 1});
  DnsResolver resolver(env);
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  const auto update = seen.wait_for(failed);
  ASSERT_TRUE(update.has_value());
  EXPECT_THAT(update->status, StatusIs(StatusCode::kInvalidArgument, HasSubstr("kv.Store")));
  EXPECT_THAT(update->providers, IsEmpty());
}

TEST(DnsResolver, AnUnresolvableNameIsUnavailableWithNoProviders) {
  runtime::RealEnv env({.threads = 1});
  DnsResolver resolver(env, {.targets = {{"kv.Store", {"no-such-host.invalid", 7000}}}});
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  const auto update = seen.wait_for(failed);
  ASSERT_TRUE(update.has_value()) << "the failing lookup did not complete within the watchdog";
  EXPECT_THAT(update->status,
              StatusIs(StatusCode::kUnavailable,
                       HasSubstr("dns lookup of no-such-host.invalid:7000 failed: ")));
  EXPECT_THAT(update->providers, IsEmpty());
  EXPECT_EQ(update->last_good_time, runtime::TimePoint::min());
  EXPECT_EQ(resolver.staleness("kv.Store"), runtime::Duration::max());
}

TEST(DnsResolver, AnUnchangedAnswerIsNotAnUpdateButRefreshesLastGoodTime) {
  runtime::RealEnv env({.threads = 1});
  ScriptedLookup lookup;
  // Out of order and with a duplicate: the providers are sorted and de-duplicated.
  lookup.set_answer({{"10.0.0.2", 7000}, {"10.0.0.1", 7000}, {"10.0.0.2", 7000}}, false);
  DnsResolver resolver(env, {.targets = {{"kv.Store", {"kv.internal", 7000}}},
                             .refresh_interval = milliseconds(20),
                             .lookup = lookup.function()});
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  const auto first = seen.wait_for(resolved);
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(node_ids(*first), ElementsAre("10.0.0.1:7000", "10.0.0.2:7000"));

  ASSERT_TRUE(lookup.wait_for_lookups(5));
  drain(env);  // watcher calls posted by the first four answers have run
  int successes = 0;
  for (const auto& update : seen.all()) successes += resolved(update) ? 1 : 0;
  EXPECT_EQ(successes, 1) << "an unchanged answer must not notify watchers";
  const ResolverUpdate now = resolver.current("kv.Store");
  EXPECT_EQ(now.version, first->version);
  EXPECT_GT(now.last_good_time, first->last_good_time);
}

TEST(DnsResolver, AFailedLookupKeepsTheLastGoodList) {
  LogCapture log;
  runtime::RealEnv env({.threads = 1});
  ScriptedLookup lookup;
  lookup.set_answer({{"10.0.0.1", 7000}}, false);
  DnsResolver resolver(env, {.targets = {{"kv.Store", {"kv.internal", 7000}}},
                             .refresh_interval = milliseconds(20),
                             .lookup = lookup.function()});
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  ASSERT_TRUE(seen.wait_for(resolved).has_value());

  lookup.set_answer({}, true);
  const auto failure = seen.wait_for(failed);
  ASSERT_TRUE(failure.has_value());
  EXPECT_THAT(failure->status, StatusIs(StatusCode::kUnavailable,
                                        HasSubstr("dns lookup of kv.internal:7000 failed: ")));
  EXPECT_THAT(node_ids(*failure), ElementsAre("10.0.0.1:7000"));

  // Failing on: no new update for the same error, last_good_time frozen.
  const int failed_at = lookup.lookups();
  ASSERT_TRUE(lookup.wait_for_lookups(failed_at + 3));
  ResolverUpdate still = resolver.current("kv.Store");
  EXPECT_EQ(still.version, failure->version);
  EXPECT_EQ(still.last_good_time, failure->last_good_time);
  EXPECT_THAT(node_ids(still), ElementsAre("10.0.0.1:7000"));

  lookup.set_answer({{"10.0.0.3", 7000}}, false);
  const auto recovered = seen.wait_for([&](const ResolverUpdate& update) {
    return update.version > failure->version && update.status.ok();
  });
  ASSERT_TRUE(recovered.has_value());
  EXPECT_THAT(node_ids(*recovered), ElementsAre("10.0.0.3:7000"));
  EXPECT_GT(recovered->last_good_time, failure->last_good_time);

  resolver.stop();
  drain(env);
  EXPECT_EQ(log.count("keeping the last good provider list"), 1)
      << "a persisting error is logged once";
  EXPECT_EQ(log.count("recovered from: UNAVAILABLE: dns lookup of kv.internal:7000"), 1);
}

TEST(DnsResolver, StopCancelsTheLookupInFlightAndSilencesWatchers) {
  runtime::RealEnv env({.threads = 1});
  ScriptedLookup lookup;
  lookup.hold();
  DnsResolver resolver(
      env, {.targets = {{"kv.Store", {"kv.internal", 7000}}}, .lookup = lookup.function()});
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  ASSERT_TRUE(lookup.wait_for_lookups(1));
  resolver.stop();
  const size_t calls_at_stop = seen.all().size();
  EXPECT_TRUE(lookup.wait_for_cancel()) << "stop() must cancel the pending lookup";
  drain(env);  // the cancelled lookup's completion has run
  drain(env);
  EXPECT_EQ(seen.all().size(), calls_at_stop);
  EXPECT_EQ(lookup.lookups(), 1);
}

TEST(DnsResolver, TheLastUnwatchEndsTheLookupsAndALaterWatchStartsThemAgain) {
  runtime::RealEnv env({.threads = 1});
  ScriptedLookup lookup;
  lookup.set_answer({{"10.0.0.1", 7000}}, false);
  DnsResolver resolver(env, {.targets = {{"kv.Store", {"kv.internal", 7000}}},
                             .refresh_interval = milliseconds(1),
                             .lookup = lookup.function()});
  Seen seen;
  const Resolver::WatchId first = resolver.watch("kv.Store", seen.watcher());
  const Resolver::WatchId second = resolver.watch("kv.Store", seen.watcher());
  ASSERT_TRUE(lookup.wait_for_lookups(3));
  resolver.unwatch(first);
  const int before = lookup.lookups();
  ASSERT_TRUE(lookup.wait_for_lookups(before + 3)) << "a watch remains: lookups go on";
  resolver.unwatch(second);
  drain(env);  // the unwatch's cancel has run; at most one lookup was already under way
  drain(env);
  const int after = lookup.lookups();
  // Nothing signals an absence: give a 1 ms refresh a hundred chances to look up again.
  std::this_thread::sleep_for(milliseconds(100));
  drain(env);
  EXPECT_LE(lookup.lookups(), after + 1);

  resolver.watch("kv.Store", seen.watcher());
  EXPECT_TRUE(lookup.wait_for_lookups(after + 3)) << "a new watch looks the service up again";
}

TEST(DnsResolver, StopCancelsTheLookupOfARealName) {
  runtime::RealEnv env({.threads = 1});
  DnsResolver resolver(env, {.targets = {{"kv.Store", {"localhost", 7000}}},
                             .refresh_interval = std::chrono::hours(1)});
  Seen seen;
  resolver.watch("kv.Store", seen.watcher());
  resolver.stop();
  const size_t calls_at_stop = seen.all().size();
  drain(env);
  drain(env);
  EXPECT_EQ(seen.all().size(), calls_at_stop);
  EXPECT_THAT(resolver.current("kv.Store").version, ::testing::Le(1u));
}

}  // namespace
}  // namespace meshrpc::cluster
