// StaticResolver and FileResolver: delivery of lists and changes to watchers, the failure
// contract (last good list kept, error and staleness exposed), and the file resolver's hot
// reload, in virtual time under SimEnv and once on a real file under RealEnv.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <unistd.h>

#include <boost/asio/use_future.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/cluster/file_resolver.h"
#include "meshrpc/cluster/static_resolver.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "tests/support/log_capture.h"

namespace meshrpc::cluster {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Provider make_provider(std::string node_id, uint16_t port) {
  Provider provider;
  provider.node_id = std::move(node_id);
  provider.address = transport::Address{"10.0.0.1", port};
  return provider;
}

std::vector<std::string> node_ids(const ResolverUpdate& update) {
  std::vector<std::string> ids;
  for (const auto& provider : update.providers) ids.push_back(provider.node_id);
  return ids;
}

// What a watcher saw, and when (virtual or real time from the env).
struct Seen {
  ResolverUpdate update;
  runtime::TimePoint at;
};

// --- StaticResolver ------------------------------------------------------------------------

TEST(StaticResolver, DeliversTheCurrentListPostedAfterWatch) {
  runtime::SimEnv sim(1);
  auto& host = sim.add_host("client");
  StaticResolver resolver(host, {{"kv.Store", {make_provider("n1", 1), make_provider("n2", 2)}}});
  std::vector<ResolverUpdate> seen;
  resolver.watch("kv.Store", [&](const ResolverUpdate& update) { seen.push_back(update); });
  EXPECT_TRUE(seen.empty()) << "watchers are posted, never called inside watch()";
  sim.poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].service, "kv.Store");
  EXPECT_THAT(node_ids(seen[0]), ElementsAre("n1", "n2"));
  EXPECT_THAT(seen[0].status, IsOk());
  EXPECT_EQ(seen[0].version, 1u);
  EXPECT_EQ(seen[0].last_good_time, host.now());
}

TEST(StaticResolver, UnknownServiceIsDeliveredEmptyAtVersionZero) {
  runtime::SimEnv sim(1);
  StaticResolver resolver(sim);
  std::vector<ResolverUpdate> seen;
  resolver.watch("kv.Store", [&](const ResolverUpdate& update) { seen.push_back(update); });
  sim.poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].providers.empty());
  EXPECT_EQ(seen[0].version, 0u);
  EXPECT_EQ(resolver.staleness("kv.Store"), runtime::Duration::max());
}

TEST(StaticResolver, SetNotifiesOnlyWatchersOfThatService) {
  runtime::SimEnv sim(1);
  StaticResolver resolver(sim, {{"a", {make_provider("a1", 1)}}, {"b", {make_provider("b1", 1)}}});
  std::vector<ResolverUpdate> seen_a;
  std::vector<ResolverUpdate> seen_b;
  resolver.watch("a", [&](const ResolverUpdate& update) { seen_a.push_back(update); });
  resolver.watch("b", [&](const ResolverUpdate& update) { seen_b.push_back(update); });
  sim.poll();
  resolver.set("a", {make_provider("a1", 1), make_provider("a2", 2)});
  sim.poll();
  ASSERT_EQ(seen_a.size(), 2u);
  EXPECT_THAT(node_ids(seen_a[1]), ElementsAre("a1", "a2"));
  EXPECT_EQ(seen_a[1].version, 2u);
  ASSERT_EQ(seen_b.size(), 1u);
  EXPECT_THAT(node_ids(resolver.current("b")), ElementsAre("b1"));
}

TEST(StaticResolver, SetOfAnUnchangedListOnlyRefreshesLastGoodTime) {
  runtime::SimEnv sim(1);
  StaticResolver resolver(sim, {{"a", {make_provider("a1", 1)}}});
  int calls = 0;
  resolver.watch("a", [&](const ResolverUpdate&) { ++calls; });
  sim.run_for(seconds(5));
  EXPECT_EQ(resolver.staleness("a"), seconds(5));
  resolver.set("a", {make_provider("a1", 1)});
  sim.poll();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(resolver.staleness("a"), runtime::Duration::zero());
  EXPECT_EQ(resolver.current("a").version, 1u);
}

TEST(StaticResolver, SetErrorKeepsTheLastGoodListAndStalenessGrows) {
  runtime::SimEnv sim(1);
  StaticResolver resolver(sim, {{"a", {make_provider("a1", 1)}}});
  std::vector<ResolverUpdate> seen;
  resolver.watch("a", [&](const ResolverUpdate& update) { seen.push_back(update); });
  sim.run_for(seconds(1));
  resolver.set_error("a", unavailable_error("dns timeout"));
  resolver.set_error("a", unavailable_error("dns timeout"));  // same error: no new update
  sim.run_for(seconds(2));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[1].status, StatusIs(StatusCode::kUnavailable, HasSubstr("dns timeout")));
  EXPECT_THAT(node_ids(seen[1]), ElementsAre("a1"));
  EXPECT_EQ(resolver.staleness("a"), seconds(3));

  resolver.set("a", {make_provider("a1", 1)});  // same list, but the status recovers
  sim.poll();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_THAT(seen[2].status, IsOk());
  EXPECT_EQ(seen[2].version, 3u);
}

TEST(StaticResolver, UnwatchDropsAnUpdateAlreadyPosted) {
  runtime::SimEnv sim(1);
  StaticResolver resolver(sim, {{"a", {make_provider("a1", 1)}}});
  int calls = 0;
  auto id = resolver.watch("a", [&](const ResolverUpdate&) { ++calls; });
  resolver.set("a", {make_provider("a2", 1)});
  resolver.unwatch(id);
  sim.run();
  EXPECT_EQ(calls, 0);
}

TEST(StaticResolver, StopEndsEveryWatch) {
  runtime::SimEnv sim(1);
  StaticResolver resolver(sim, {{"a", {make_provider("a1", 1)}}});
  int calls = 0;
  resolver.watch("a", [&](const ResolverUpdate&) { ++calls; });
  resolver.watch("b", [&](const ResolverUpdate&) { ++calls; });
  sim.poll();
  EXPECT_EQ(calls, 2);
  resolver.stop();
  resolver.set("a", {make_provider("a2", 1)});
  resolver.set("b", {make_provider("b2", 1)});
  resolver.watch("a", [&](const ResolverUpdate&) { ++calls; });
  sim.run();
  EXPECT_EQ(calls, 2);
}

// Collects updates from watchers running on RealEnv threads; waits on a condition variable,
// never on a sleep.
class UpdateLog {
 public:
  Resolver::Watcher watcher() {
    return [this](const ResolverUpdate& update) {
      std::lock_guard lock(mutex_);
      updates_.push_back(update);
      changed_.notify_all();
    };
  }

  // Waits (up to a generous 10 s, against a loaded CI machine) for an update satisfying
  // `predicate`, and returns it.
  std::optional<ResolverUpdate> wait_for(std::function<bool(const ResolverUpdate&)> predicate) {
    std::unique_lock lock(mutex_);
    std::optional<ResolverUpdate> found;
    changed_.wait_for(lock, seconds(10), [&] {
      for (const auto& update : updates_) {
        if (predicate(update)) {
          found = update;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ResolverUpdate> updates_;
};

TEST(StaticResolver, DeliversUpdatesUnderRealEnv) {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 2});
  StaticResolver resolver(env, {{"a", {make_provider("a1", 1)}}});
  UpdateLog log;
  resolver.watch("a", log.watcher());
  ASSERT_TRUE(log.wait_for([](const ResolverUpdate& u) { return u.providers.size() == 1; }));
  resolver.set("a", {make_provider("a1", 1), make_provider("a2", 2)});
  auto update = log.wait_for([](const ResolverUpdate& u) { return u.providers.size() == 2; });
  ASSERT_TRUE(update);
  EXPECT_EQ(update->version, 2u);
  resolver.stop();
}

// --- parse_provider_file -------------------------------------------------------------------

TEST(ParseProviderFile, ReadsEveryField) {
  auto parsed = parse_provider_file(R"({"services": {
      "kv.Store": [
        {"node_id": "n1", "address": "10.0.0.1:7000", "weight": 2, "tags": {"zone": "a"}},
        {"node_id": "n2", "address": "[fd00::2]:7001", "health": "draining"}],
      "empty": []}})");
  ASSERT_THAT(parsed, IsOk());
  ASSERT_EQ(parsed->size(), 2u);
  const auto& store = parsed->at("kv.Store");
  ASSERT_EQ(store.size(), 2u);
  EXPECT_EQ(store[0].node_id, "n1");
  EXPECT_EQ(store[0].address, (transport::Address{"10.0.0.1", 7000}));
  EXPECT_EQ(store[0].weight, 2u);
  EXPECT_EQ(store[0].tags.at("zone"), "a");
  EXPECT_EQ(store[0].health, ProviderHealth::kHealthy);
  EXPECT_EQ(store[1].address, (transport::Address{"fd00::2", 7001}));
  EXPECT_EQ(store[1].weight, 1u);
  EXPECT_EQ(store[1].health, ProviderHealth::kDraining);
  EXPECT_TRUE(parsed->at("empty").empty());
}

TEST(ParseProviderFile, RejectsMalformedInputNamingTheJsonPath) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{\"services\": {", "not valid JSON"},
      {"[]", "(root): expected an object, got an array"},
      {"{}", "services: missing"},
      {R"({"services": {}, "extra": 1})", "extra: unknown field"},
      {R"({"services": []})", "services: expected an object, got an array"},
      {R"({"services": {"": []}})", "services: empty service name"},
      {R"({"services": {"kv.Store": {}}})", "services.kv.Store: expected an array, got an object"},
      {R"({"services": {"kv.Store": [1]}})", "services.kv.Store[0]: expected an object, got 1"},
      {R"({"services": {"kv.Store": [{"address": "h:1"}]}})",
       "services.kv.Store[0].node_id: missing"},
      {R"({"services": {"kv.Store": [{"node_id": "n1"}]}})",
       "services.kv.Store[0].address: missing"},
      {R"({"services": {"kv.Store": [{"node_id": "", "address": "h:1"}]}})",
       "services.kv.Store[0].node_id: expected a non-empty string, got \"\""},
      {R"({"services": {"kv.Store": [{"node_id": "n0", "address": "h:1"},
                                    {"node_id": "n1", "address": "x"}]}})",
       "services.kv.Store[1].address: \"x\" is not host:port"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:0"}]}})",
       "services.kv.Store[0].address: \"h:0\" has port 0"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "::1:80"}]}})",
       "services.kv.Store[0].address: \"::1:80\" is not host:port"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1", "weight": -1}]}})",
       "services.kv.Store[0].weight: -1 is not an integer in 0..4294967295"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1", "weight": 4294967296}]}})",
       "services.kv.Store[0].weight: 4294967296 is not an integer"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1", "weight": 1.5}]}})",
       "services.kv.Store[0].weight: 1.5E0 is not an integer"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1", "tags": {"z": 1}}]}})",
       "services.kv.Store[0].tags.z: expected a string, got 1"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1", "health": "ok"}]}})",
       "services.kv.Store[0].health: \"ok\" is not one of"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1", "wieght": 2}]}})",
       "services.kv.Store[0].wieght: unknown field"},
      {R"({"services": {"kv.Store": [{"node_id": "n1", "address": "h:1"},
                                    {"node_id": "n1", "address": "h:2"}]}})",
       "services.kv.Store[1].node_id: \"n1\" duplicates services.kv.Store[0]"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(parse_provider_file(c.json),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << "input: " << c.json;
  }
}

// --- FileResolver --------------------------------------------------------------------------

std::string provider_json(int count) {
  std::string json = R"({"services": {"kv.Store": [)";
  for (int i = 1; i <= count; ++i) {
    if (i > 1) json += ",";
    json += R"({"node_id": "n)" + std::to_string(i) + R"(", "address": "10.0.0.)" +
            std::to_string(i) + R"(:7000"})";
  }
  return json + "]}}";
}

constexpr char kGarbage[] = R"({"services": {"kv.Store": [
    {"node_id": "n1", "address": "10.0.0.1:7000"}, {"node_id": "n2", "address": "x"}]}})";

using ::meshrpc::testing::LogCapture;

// The issue's must-show, in exact virtual time: 2 providers, 3 within one poll interval,
// garbage keeps the 3 with the error and growing staleness, a fix recovers.
TEST(FileResolver, HotReloadKeepsLastGoodListOnGarbageAndRecovers) {
  LogCapture logs;
  runtime::SimEnv sim(7);
  auto& host = sim.add_host("client");
  std::string content = provider_json(2);
  FileResolverOptions options;
  options.read_file = [&content](const std::string&) -> Result<std::string> { return content; };
  const runtime::TimePoint start = host.now();
  FileResolver resolver(host, "/etc/mesh/providers.json", options);
  std::vector<Seen> seen;
  resolver.watch("kv.Store", [&](const ResolverUpdate& update) {
    seen.push_back({update, host.now()});
  });
  sim.poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_THAT(node_ids(seen[0].update), ElementsAre("n1", "n2"));
  EXPECT_THAT(seen[0].update.status, IsOk());

  // 3 providers: seen at the next poll, exactly one interval (1 s) after start.
  content = provider_json(3);
  sim.run_for(milliseconds(999));
  EXPECT_EQ(seen.size(), 1u);
  sim.run_for(milliseconds(1));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].at, start + seconds(1));
  EXPECT_THAT(node_ids(seen[1].update), ElementsAre("n1", "n2", "n3"));

  // Garbage at t = 1.5 s: read at t = 2 s; the 3 stay, the error names the JSON path.
  sim.run_for(milliseconds(500));
  content = kGarbage;
  sim.run_for(milliseconds(500));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].at, start + seconds(2));
  EXPECT_THAT(node_ids(seen[2].update), ElementsAre("n1", "n2", "n3"));
  const char* kPathError = "services.kv.Store[1].address: \"x\" is not host:port";
  EXPECT_THAT(seen[2].update.status, StatusIs(StatusCode::kInvalidArgument, HasSubstr(kPathError)));
  EXPECT_THAT(seen[2].update.status,
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("/etc/mesh/providers.json")));
  EXPECT_EQ(seen[2].update.last_good_time, start + seconds(1));
  EXPECT_THAT(resolver.last_error(), StatusIs(StatusCode::kInvalidArgument, HasSubstr(kPathError)));
  EXPECT_EQ(resolver.staleness(), seconds(1));
  EXPECT_THAT(node_ids(resolver.current("kv.Store")), ElementsAre("n1", "n2", "n3"));

  // The garbage persists: no new updates, staleness grows, the warning is logged once.
  sim.run_for(seconds(3));
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(resolver.staleness(), seconds(4));
  EXPECT_EQ(logs.count(kPathError), 1);

  // Fixed at t = 5 s: recovered at the t = 6 s poll.
  content = provider_json(4);
  sim.run_for(seconds(1));
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[3].at, start + seconds(6));
  EXPECT_THAT(seen[3].update.status, IsOk());
  EXPECT_THAT(node_ids(seen[3].update), ElementsAre("n1", "n2", "n3", "n4"));
  EXPECT_THAT(resolver.last_error(), IsOk());
  EXPECT_EQ(resolver.staleness(), runtime::Duration::zero());
  resolver.stop();
  sim.run();  // the cancelled poll timer must not keep the simulation busy
  EXPECT_EQ(sim.pending_events(), 0u);
}

TEST(FileResolver, MissingFileKeepsLastGoodListWithNotFound) {
  runtime::SimEnv sim(1);
  Result<std::string> content = provider_json(2);
  FileResolverOptions options;
  options.read_file = [&content](const std::string&) { return content; };
  FileResolver resolver(sim, "providers.json", options);
  std::vector<ResolverUpdate> seen;
  resolver.watch("kv.Store", [&](const ResolverUpdate& update) { seen.push_back(update); });
  content = not_found_error("no such file");
  sim.run_for(seconds(1));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[1].status, StatusIs(StatusCode::kNotFound, HasSubstr("providers.json")));
  EXPECT_THAT(node_ids(seen[1]), ElementsAre("n1", "n2"));
  content = provider_json(2);  // back with the same content: the status recovers
  sim.run_for(seconds(1));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_THAT(seen[2].status, IsOk());
}

TEST(FileResolver, FirstReadFailureReportsErrorWithNoProviders) {
  runtime::SimEnv sim(1);
  FileResolverOptions options;
  options.read_file = [](const std::string&) -> Result<std::string> { return std::string("{"); };
  FileResolver resolver(sim, "providers.json", options);
  std::vector<ResolverUpdate> seen;
  resolver.watch("kv.Store", [&](const ResolverUpdate& update) { seen.push_back(update); });
  sim.poll();
  ASSERT_FALSE(seen.empty());
  EXPECT_THAT(seen.back().status, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(seen.back().providers.empty());
  EXPECT_EQ(resolver.staleness(), runtime::Duration::max());
}

TEST(FileResolver, ServiceRemovedFromFileGetsAnEmptyList) {
  runtime::SimEnv sim(1);
  std::string content = R"({"services": {"a": [{"node_id": "a1", "address": "h:1"}],
                                         "b": [{"node_id": "b1", "address": "h:2"}]}})";
  FileResolverOptions options;
  options.read_file = [&content](const std::string&) -> Result<std::string> { return content; };
  FileResolver resolver(sim, "providers.json", options);
  content = R"({"services": {"b": [{"node_id": "b1", "address": "h:2"}]}})";
  sim.run_for(seconds(1));
  EXPECT_TRUE(resolver.current("a").providers.empty());
  EXPECT_THAT(resolver.current("a").status, IsOk());
  EXPECT_THAT(node_ids(resolver.current("b")), ElementsAre("b1"));
}

TEST(FileResolver, OversizedContentIsRejected) {
  runtime::SimEnv sim(1);
  FileResolverOptions options;
  options.max_file_bytes = 16;
  options.read_file = [](const std::string&) -> Result<std::string> { return provider_json(1); };
  FileResolver resolver(sim, "providers.json", options);
  EXPECT_THAT(resolver.last_error(),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("exceeds max_file_bytes 16")));
}

// A unique path in the temp directory, removed at the end of the test.
class TempFile {
 public:
  TempFile() {
    const auto now = std::chrono::system_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() /
            ("meshrpc_file_resolver_" + std::to_string(::getpid()) + "_" + std::to_string(now) +
             ".json");
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    std::filesystem::remove(staging(), ec);
  }
  std::string path() const { return path_.string(); }
  // Writes `content` atomically (a staging file renamed over the path), as a deployment tool
  // should, so the resolver never reads a half-written file.
  void write(const std::string& content) const {
    {
      std::ofstream out(staging(), std::ios::binary | std::ios::trunc);
      out << content;
    }
    std::filesystem::rename(staging(), path_);
  }

 private:
  std::filesystem::path staging() const { return path_.string() + ".tmp"; }
  std::filesystem::path path_;
};

TEST(FileResolver, HotReloadOfARealFileUnderRealEnv) {
  TempFile file;
  file.write(provider_json(2));
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 2});
  FileResolverOptions options;
  options.poll_interval = milliseconds(20);
  FileResolver resolver(env, file.path(), options);
  UpdateLog log;
  resolver.watch("kv.Store", log.watcher());
  auto size_is = [](size_t n) {
    return [n](const ResolverUpdate& u) { return u.status.ok() && u.providers.size() == n; };
  };
  ASSERT_TRUE(log.wait_for(size_is(2)));

  file.write(provider_json(3));
  ASSERT_TRUE(log.wait_for(size_is(3)));

  file.write(kGarbage);
  auto failed = log.wait_for([](const ResolverUpdate& u) { return !u.status.ok(); });
  ASSERT_TRUE(failed);
  EXPECT_THAT(failed->status,
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("services.kv.Store[1].address: \"x\" is not host:port")));
  EXPECT_EQ(failed->providers.size(), 3u);
  EXPECT_THAT(resolver.last_error(), StatusIs(StatusCode::kInvalidArgument));
  const runtime::Duration stale_before = resolver.staleness();
  env.async_wait_for(milliseconds(100), asio::use_future).get();
  EXPECT_GE(resolver.staleness(), stale_before + milliseconds(100));

  file.write(provider_json(4));
  ASSERT_TRUE(log.wait_for(size_is(4)));
  EXPECT_THAT(resolver.last_error(), IsOk());
  resolver.stop();
}

TEST(FileResolver, RealMissingFileIsNotFound) {
  TempFile file;  // never written
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  FileResolver resolver(env, file.path());
  EXPECT_THAT(resolver.last_error(), StatusIs(StatusCode::kNotFound, HasSubstr(file.path())));
}

}  // namespace
}  // namespace meshrpc::cluster
