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

namespace meshrpc {
namespace {

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
  EXPECT_THAT(sink_->lines(), ElementsAre("info: listening on 127.0.0.1:7000",
                                          "warning: no arguments", "error:    ab|1.50"));
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
  EXPECT_THAT(sink_->lines(), ElementsAre("trace: t", "debug: d", "error: e"));
}

int count_call(int& calls) { return ++calls; }

TEST_F(LoggingTest, DisabledLevelDoesNotEvaluateArguments) {
  int calls = 0;
  MESHRPC_LOG_DEBUG("value {}", count_call(calls));
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(sink_->lines(), IsEmpty());

  MESHRPC_LOG_INFO("value {}", count_call(calls));
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(sink_->lines(), ElementsAre("info: value 1"));
}

TEST_F(LoggingTest, SetLoggerAdoptsItsLevel) {
  auto verbose = std::make_shared<spdlog::logger>("verbose", sink_);
  verbose->set_level(spdlog::level::debug);
  set_logger(verbose);
  EXPECT_EQ(log_level(), spdlog::level::debug);
  EXPECT_EQ(logger(), verbose);
  MESHRPC_LOG_DEBUG("now visible");
  EXPECT_THAT(sink_->lines(), ElementsAre("debug: now visible"));
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

}  // namespace
}  // namespace meshrpc
