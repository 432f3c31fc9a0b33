#include "meshrpc/base/metric_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/metric_capture.h"

namespace meshrpc {
namespace {

using ::meshrpc::testing::CapturingWriter;

std::map<std::string, double> collect(const MetricRegistry& registry) {
  return ::meshrpc::testing::collect(registry).values;
}

TEST(MetricRegistry, CollectsRegisteredCollectorsInOrder) {
  MetricRegistry registry;
  std::vector<int> order;
  auto first = registry.add([&](MetricWriter& out) {
    order.push_back(1);
    out.counter("a_total", "A.", {}, 3);
  });
  auto second = registry.add([&](MetricWriter& out) {
    order.push_back(2);
    out.gauge("b", "B.", {{"k", "v"}}, 1.5);
  });
  EXPECT_EQ(collect(registry), (std::map<std::string, double>{{"a_total{}", 3}, {"b{k=v}", 1.5}}));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(MetricRegistry, DestroyingARegistrationRemovesItsCollector) {
  MetricRegistry registry;
  const size_t own = registry.collector_count();  // the registry's application metrics
  {
    auto registration =
        registry.add([](MetricWriter& out) { out.counter("x_total", "X.", {}, 1); });
    EXPECT_TRUE(registration.active());
    EXPECT_EQ(registry.collector_count(), own + 1);
    EXPECT_EQ(collect(registry).count("x_total{}"), 1u);
  }
  EXPECT_EQ(registry.collector_count(), own);
  EXPECT_TRUE(collect(registry).empty());
}

TEST(MetricRegistry, MovedRegistrationRemovesOnceAndResetIsIdempotent) {
  MetricRegistry registry;
  const size_t own = registry.collector_count();
  MetricRegistry::Registration outer;
  EXPECT_FALSE(outer.active());
  {
    auto inner = registry.add([](MetricWriter&) {});
    outer = std::move(inner);
    EXPECT_FALSE(inner.active());  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
  EXPECT_EQ(registry.collector_count(), own + 1);
  outer.reset();
  outer.reset();
  EXPECT_EQ(registry.collector_count(), own);
}

TEST(MetricRegistry, ApplicationMetricsAreStableAndExposed) {
  MetricRegistry registry;
  Counter& hits = registry.counter("app_hits_total", "Hits.", {{"cache", "l1"}});
  EXPECT_EQ(&hits, &registry.counter("app_hits_total", "Hits.", {{"cache", "l1"}}));
  EXPECT_NE(&hits, &registry.counter("app_hits_total", "Hits.", {{"cache", "l2"}}));
  hits.add(4);
  registry.gauge("app_depth", "Depth.").set(-2);
  registry.histogram("app_wait_seconds", "Wait.", {}, 1e-9).record(7);
  CapturingWriter writer;
  registry.collect(writer);
  EXPECT_EQ(writer.at("app_hits_total{cache=l1}"), 4);
  EXPECT_EQ(writer.at("app_hits_total{cache=l2}"), 0);
  EXPECT_EQ(writer.at("app_depth{}"), -2);
  EXPECT_EQ(writer.at("app_wait_seconds_count{}"), 1);
  EXPECT_EQ(writer.scales["app_wait_seconds"], 1e-9);
}

TEST(MetricRegistry, RejectsBadNamesAndTypeClashes) {
  MetricRegistry registry;
  EXPECT_THROW(registry.counter("9lives", "."), std::invalid_argument);
  EXPECT_THROW(registry.counter("has-dash", "."), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", ".", {{"__reserved", "v"}}), std::invalid_argument);
  registry.counter("same", ".");
  EXPECT_THROW(registry.gauge("same", "."), std::invalid_argument);
}

TEST(MetricRegistry, ValidatesNamesAsPrometheusDoes) {
  EXPECT_TRUE(is_valid_metric_name("a:b_c9"));
  EXPECT_TRUE(is_valid_metric_name(":leading_colon"));
  EXPECT_FALSE(is_valid_metric_name(""));
  EXPECT_FALSE(is_valid_metric_name("a.b"));
  EXPECT_TRUE(is_valid_metric_label_name("_x1"));
  EXPECT_FALSE(is_valid_metric_label_name("a:b"));
  EXPECT_FALSE(is_valid_metric_label_name("__name__"));
  EXPECT_FALSE(is_valid_metric_label_name("1a"));
}

TEST(MetricRegistry, GlobalIsOneRegistry) {
  EXPECT_EQ(&MetricRegistry::global(), &MetricRegistry::global());
}

// Collectors are added, collected and removed from many threads at once. Each collector
// reads an object that is freed right after its Registration goes: a removal that did not
// wait for a running collect() would be a use-after-free (ASan) or a race (TSan).
TEST(MetricRegistry, ConcurrentCollectAndUnregisterIsSafe) {
  MetricRegistry registry;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> collections{0};
  std::vector<std::thread> collectors;
  for (int t = 0; t < 2; ++t) {
    collectors.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        CapturingWriter writer;
        registry.collect(writer);
        collections.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::vector<std::thread> owners;
  for (int t = 0; t < 2; ++t) {
    owners.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        auto value = std::make_unique<Counter>();
        value->add(static_cast<uint64_t>(i));
        auto registration = registry.add([counter = value.get(), t](MetricWriter& out) {
          out.counter("churn_total", "Churn.", {{"owner", std::to_string(t)}}, counter->value());
        });
        value->increment();
        registration.reset();
        value.reset();  // freed: no collector may read it any more
      }
    });
  }
  for (auto& owner : owners) owner.join();
  // Let the collectors run at least once more with everything unregistered.
  const uint64_t seen = collections.load();
  while (collections.load() < seen + 2) std::this_thread::yield();
  stop = true;
  for (auto& collector : collectors) collector.join();
  EXPECT_EQ(registry.collector_count(), 1u);
  EXPECT_TRUE(collect(registry).empty());
}

}  // namespace
}  // namespace meshrpc
