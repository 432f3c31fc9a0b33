#include "meshrpc/base/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Keeps every line it is given, formatted as "<level>: <message>".
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string level(spdlog::level::to_string_view(msg.level).data(),
                      spdlog::level::to_string_view(msg.level).size());
    lines_.push_back(level + ": " + std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  // Guarded by base_sink's mutex_, which it holds around sink_it_.
  std::vector<std::string> lines_;
};

// Redirects meshrpc's logging into a CaptureSink for one test, then puts back what was there.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = logger();
    sink_ = std::make_shared<CaptureSink>();
    auto capture = std::make_shared<spdlog::logger>("test", sink_);
    capture->set_level(spdlog::level::info);
    set_logger(capture);
  }
  void TearDown() override { set_logger(previous_); }

  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<CaptureSink> sink_;
};

TEST_F(LoggingTest, FormatsWithFmt) {
  MESHRPC_LOG_INFO("listening on {}:{}", "127.0.0.1", 7000);
  MESHRPC_LOG_WARN("no arguments");
  MESHRPC_LOG_ERROR("{:>5}|{:.2f}", "ab", 1.5);
  EXPECT_THAT(sink_->lines(),
              ElementsAre("info: msg=\"listening on 127.0.0.1:7000\" component=base",
                          "warning: msg=\"no arguments\" component=base",
                          "error: msg=\"   ab|1.50\" component=base"));
}

TEST_F(LoggingTest, DropsLinesBelowLevel) {
  MESHRPC_LOG_TRACE("t");
  MESHRPC_LOG_DEBUG("d");
  EXPECT_THAT(sink_->lines(), IsEmpty());

  set_log_level(spdlog::level::trace);
  EXPECT_EQ(log_level(), spdlog::level::trace);
  EXPECT_EQ(logger()->level(), spdlog::level::trace);
  MESHRPC_LOG_TRACE("t");
  MESHRPC_LOG_DEBUG("d");

  set_log_level(spdlog::level::err);
  MESHRPC_LOG_WARN("w");
  MESHRPC_LOG_ERROR("e");
  EXPECT_THAT(sink_->lines(),
              ElementsAre("trace: msg=\"t\" component=base", "debug: msg=\"d\" component=base",
                          "error: msg=\"e\" component=base"));
}

int count_call(int& calls) { return ++calls; }

TEST_F(LoggingTest, DisabledLevelDoesNotEvaluateArguments) {
  int calls = 0;
  MESHRPC_LOG_DEBUG("value {}", count_call(calls));
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(sink_->lines(), IsEmpty());

  MESHRPC_LOG_INFO("value {}", count_call(calls));
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(sink_->lines(), ElementsAre("info: msg=\"value 1\" component=base"));
}

TEST_F(LoggingTest, SetLoggerAdoptsItsLevel) {
  auto verbose = std::make_shared<spdlog::logger>("verbose", sink_);
  verbose->set_level(spdlog::level::debug);
  set_logger(verbose);
  EXPECT_EQ(log_level(), spdlog::level::debug);
  EXPECT_EQ(logger(), verbose);
  MESHRPC_LOG_DEBUG("now visible");
  EXPECT_THAT(sink_->lines(), ElementsAre("debug: msg=\"now visible\" component=base"));
}

TEST_F(LoggingTest, NullLoggerRestoresDefaultStderrLogger) {
  set_logger(nullptr);
  std::shared_ptr<spdlog::logger> restored = logger();
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(restored->name(), "meshrpc");
  MESHRPC_LOG_DEBUG("not captured");
  EXPECT_THAT(sink_->lines(), IsEmpty());
}

TEST_F(LoggingTest, LoggingWhileLoggerIsReplacedLosesNoLines) {
  constexpr int kThreads = 3;
  constexpr int kLinesPerThread = 2000;
  auto second_sink = std::make_shared<CaptureSink>();
  auto second = std::make_shared<spdlog::logger>("second", second_sink);
  auto first = logger();
  std::atomic<int> ready{0};  // writers and the swapping thread start together
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&ready, t] {
      ready.fetch_add(1, std::memory_order_acq_rel);
      while (ready.load(std::memory_order_acquire) <= kThreads) std::this_thread::yield();
      for (int i = 0; i < kLinesPerThread; ++i) MESHRPC_LOG_INFO("{} {}", t, i);
    });
  }
  ready.fetch_add(1, std::memory_order_acq_rel);
  while (ready.load(std::memory_order_acquire) <= kThreads) std::this_thread::yield();
  for (int i = 0; i < 100; ++i) set_logger(i % 2 == 0 ? second : first);
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(sink_->lines().size() + second_sink->lines().size(),
            size_t{kThreads} * kLinesPerThread);
}

TEST_F(LoggingTest, MessagesAreQuotedLogfmtValues) {
  MESHRPC_LOG_INFO("say \"{}\" then {}", "hi", "a\\b\nnext");
  EXPECT_THAT(sink_->lines(),
              ElementsAre("info: msg=\"say \\\"hi\\\" then a\\\\b\\nnext\" component=base"));
}

TEST(LogComponentTest, IsTheDirectoryOfTheSourceFile) {
  using internal::log_component_of;
  using internal::LogComponent;
  EXPECT_EQ(log_component_of("/x/src/cluster/client.cc"), LogComponent::kCluster);
  EXPECT_EQ(log_component_of("../src/core/server.cc"), LogComponent::kCore);
  EXPECT_EQ(log_component_of("/x/include/meshrpc/transport/tcp.h"), LogComponent::kTransport);
  // Only the directory holding the file counts, not one further up.
  EXPECT_EQ(log_component_of("/home/core/tools/meshctl/call.cc"), LogComponent::kOther);
  EXPECT_EQ(log_component_of("client.cc"), LogComponent::kOther);
  static_assert(log_component_of("src/observe/page.cc") == LogComponent::kObserve);
}

TEST_F(LoggingTest, EachComponentHasItsOwnLevel) {
  ASSERT_THAT(set_log_level("base", spdlog::level::debug), IsOk());
  EXPECT_EQ(log_level("base"), spdlog::level::debug);
  EXPECT_EQ(log_level("cluster"), spdlog::level::info);
  EXPECT_EQ(log_level(), spdlog::level::debug) << "the lowest of all components";
  EXPECT_EQ(logger()->level(), spdlog::level::debug) << "the logger lets the lowest through";
  MESHRPC_LOG_DEBUG("visible in base");
  EXPECT_THAT(sink_->lines(), ElementsAre("debug: msg=\"visible in base\" component=base"));
  ASSERT_THAT(set_log_level("base", spdlog::level::warn), IsOk());
  MESHRPC_LOG_INFO("hidden");
  EXPECT_EQ(sink_->lines().size(), 1u);
  EXPECT_THAT(set_log_level("nosuch", spdlog::level::debug),
              StatusIs(StatusCode::kInvalidArgument));
  set_log_level(spdlog::level::info);
}

TEST_F(LoggingTest, SpecSetsLevelsInOrderAndABadSpecChangesNothing) {
  ASSERT_THAT(set_log_levels("warn,cluster=debug,core=error"), IsOk());
  EXPECT_EQ(log_level("base"), spdlog::level::warn);
  EXPECT_EQ(log_level("cluster"), spdlog::level::debug);
  EXPECT_EQ(log_level("core"), spdlog::level::err);
  EXPECT_THAT(set_log_levels("info,cluster=loud"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(set_log_levels("info,galaxy=debug"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(log_level("base"), spdlog::level::warn) << "a bad spec applies no item";
  EXPECT_EQ(log_level("cluster"), spdlog::level::debug);
  ASSERT_THAT(set_log_levels("info"), IsOk());
  EXPECT_EQ(log_level("cluster"), spdlog::level::info);
}

void warn_from_one_site(int i) { MESHRPC_LOG_WARN("failure {}", i); }

TEST_F(LoggingTest, RepeatedWarningsFromOneSiteAreRateLimited) {
  for (int i = 0; i < 100; ++i) warn_from_one_site(i);
  MESHRPC_LOG_WARN("another site");
  MESHRPC_LOG_INFO("info is never dropped");
  const auto lines = sink_->lines();
  // kLogBurst from the repeating site (the window of 10 s cannot end within this test's
  // run unless it straddles it: then one more burst), then the others.
  ASSERT_GE(lines.size(), static_cast<size_t>(kLogBurst) + 2);
  ASSERT_LE(lines.size(), static_cast<size_t>(2 * kLogBurst) + 2);
  EXPECT_EQ(lines[0], "warning: msg=\"failure 0\" component=base");
  EXPECT_EQ(lines[kLogBurst - 1], "warning: msg=\"failure 9\" component=base");
  EXPECT_EQ(lines[lines.size() - 2], "warning: msg=\"another site\" component=base");
  EXPECT_EQ(lines.back(), "info: msg=\"info is never dropped\" component=base");
}

TEST(LogSiteTest, CountsWhatItDroppedAndSaysSoOnTheNextLine) {
  internal::LogSite site;
  uint64_t suppressed = 99;
  for (int i = 0; i < kLogBurst; ++i) {
    ASSERT_TRUE(site.admit(1'000'000, suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(site.admit(1'000'500, suppressed));
  const uint64_t window_ms = 10'000;
  ASSERT_TRUE(site.admit(1'000'000 + window_ms, suppressed));
  EXPECT_EQ(suppressed, 5u);
  ASSERT_TRUE(site.admit(1'000'000 + window_ms + 1, suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace meshrpc
