#include "meshrpc/runtime/real_env.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <set>
#include <thread>

namespace meshrpc::runtime {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

TEST(RealEnv, TimerFiresNoEarlierThanItsDeadline) {
  RealEnv env(RealEnv::Options{.threads = 2});
  const TimePoint start = env.now();
  std::promise<TimePoint> fired;
  env.async_wait_for(20ms, [&](error_code ec) {
    EXPECT_FALSE(ec);
    fired.set_value(env.now());
  });
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_GE(future.get() - start, Duration(20ms));
}

TEST(RealEnv, CancellationEndsAWaitWithOperationAborted) {
  RealEnv env(RealEnv::Options{.threads = 1});
  asio::cancellation_signal signal;
  std::promise<error_code> result;
  // The signal is emitted on the executor that owns the wait (DESIGN.md "Threading").
  asio::post(env.executor(0), [&] {
    env.async_wait_for(1h, asio::bind_cancellation_slot(
                               signal.slot(), [&](error_code ec) { result.set_value(ec); }));
    asio::post(env.executor(0), [&] { signal.emit(asio::cancellation_type::terminal); });
  });
  auto future = result.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(future.get(), asio::error::operation_aborted);
}

TEST(RealEnv, AwaitableRaceReturnsTheShortTimer) {
  RealEnv env(RealEnv::Options{.threads = 2});
  auto race = [&env]() -> awaitable<size_t> {
    auto result = co_await (env.async_wait_for(1h, use_nothrow_awaitable) ||
                            env.async_wait_for(1ms, use_nothrow_awaitable));
    co_return result.index();
  };
  auto future = asio::co_spawn(env.pick_executor(), race(), asio::use_future);
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(future.get(), 1u);
}

TEST(RealEnv, KnowsItsOwnThreads) {
  RealEnv env(RealEnv::Options{.threads = 3});
  EXPECT_EQ(env.executor_count(), 3u);
  EXPECT_FALSE(env.in_env_thread());
  std::set<std::thread::id> threads;
  for (size_t i = 0; i < env.executor_count(); ++i) {
    auto future = asio::co_spawn(
        env.executor(i),
        [&env]() -> awaitable<std::pair<bool, std::thread::id>> {
          co_return std::pair(env.in_env_thread(), std::this_thread::get_id());
        },
        asio::use_future);
    auto [inside, id] = future.get();
    EXPECT_TRUE(inside);
    threads.insert(id);
  }
  EXPECT_EQ(threads.size(), 3u);
}

TEST(RealEnv, PickExecutorSpreadsNewWorkOverThreads) {
  RealEnv env(RealEnv::Options{.threads = 2});
  std::set<std::thread::id> threads;
  for (int i = 0; i < 4; ++i) {
    auto future = asio::co_spawn(
        env.pick_executor(),
        []() -> awaitable<std::thread::id> { co_return std::this_thread::get_id(); },
        asio::use_future);
    threads.insert(future.get());
  }
  EXPECT_EQ(threads.size(), 2u);
}

TEST(RealEnv, SeededRandomIsReproducibleOutsideEnvThreads) {
  RealEnv a(RealEnv::Options{.threads = 1, .seed = 9});
  RealEnv b(RealEnv::Options{.threads = 1, .seed = 9});
  EXPECT_EQ(a.random_u64(), b.random_u64());
}

TEST(RealEnv, StopJoinsTheThreadsAndIsIdempotent) {
  RealEnv env(RealEnv::Options{.threads = 2});
  std::atomic<int> ran{0};
  auto before = asio::co_spawn(
      env.executor(0),
      [&]() -> awaitable<void> {
        ++ran;
        co_return;
      },
      asio::use_future);
  before.get();
  env.stop();
  env.stop();
  // With the threads joined, nothing posted afterwards runs.
  asio::post(env.executor(1), [&] { ++ran; });
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(env.in_env_thread());
}

}  // namespace
}  // namespace meshrpc::runtime
