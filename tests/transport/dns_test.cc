// transport::async_resolve against the system resolver. CI has no network: only "localhost"
// (from /etc/hosts), IP literals and a name under the reserved .invalid TLD, which must fail
// (fast without a network, and within the watchdog with one).
#include "meshrpc/transport/dns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/errors.h"

namespace meshrpc::transport {
namespace {

using ::meshrpc::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Generous: a lookup that should fail fast may wait for the system resolver's own timeout
// (5 s x 2 attempts by default) on a machine with a network but no answer.
constexpr auto kWatchdog = std::chrono::seconds(60);

struct Answer {
  error_code ec;
  std::vector<Address> addresses;
};

Answer resolve(runtime::RealEnv& env, std::string host, uint16_t port) {
  auto promise = std::make_shared<std::promise<Answer>>();
  auto answer = promise->get_future();
  async_resolve(env.executor(0), std::move(host), port,
                [promise](error_code ec, std::vector<Address> addresses) {
                  promise->set_value(Answer{ec, std::move(addresses)});
                });
  if (answer.wait_for(kWatchdog) != std::future_status::ready) {
    ADD_FAILURE() << "lookup did not complete within the watchdog";
    return Answer{asio::error::timed_out, {}};
  }
  return answer.get();
}

TEST(DnsResolve, ResolvesLocalhostToLoopback) {
  runtime::RealEnv env({.threads = 1});
  const Answer answer = resolve(env, "localhost", 7000);
  ASSERT_FALSE(answer.ec) << answer.ec.message();
  EXPECT_THAT(answer.addresses, Contains(Address{"127.0.0.1", 7000}));
  for (const Address& address : answer.addresses) EXPECT_EQ(address.port, 7000);
}

TEST(DnsResolve, AnswersIpLiteralsWithoutALookup) {
  runtime::RealEnv env({.threads = 1});
  EXPECT_THAT(resolve(env, "127.0.0.1", 80).addresses, ElementsAre(Address{"127.0.0.1", 80}));
  EXPECT_THAT(resolve(env, "::1", 80).addresses, ElementsAre(Address{"::1", 80}));
}

TEST(DnsResolve, UnknownNameFailsWithUnavailable) {
  runtime::RealEnv env({.threads = 1});
  const Answer answer = resolve(env, "no-such-host.invalid", 7000);
  ASSERT_TRUE(answer.ec);
  EXPECT_NE(answer.ec, asio::error::operation_aborted);
  EXPECT_TRUE(answer.addresses.empty());
  EXPECT_THAT(to_status(answer.ec, "resolve no-such-host.invalid"),
              StatusIs(StatusCode::kUnavailable, HasSubstr("no-such-host.invalid")));
}

TEST(DnsResolve, CancellationCompletesAtOnceWithOperationAborted) {
  runtime::RealEnv env({.threads = 1});
  auto promise = std::make_shared<std::promise<Answer>>();
  auto answer = promise->get_future();
  auto signal = std::make_shared<asio::cancellation_signal>();
  // Start and cancel in one handler on the executor the completion is posted to: the answer
  // cannot complete the operation in between.
  asio::post(env.executor(0), [&env, promise, signal] {
    async_resolve(env.executor(0), "localhost", 7000,
                  asio::bind_cancellation_slot(
                      signal->slot(), [promise](error_code ec, std::vector<Address> addresses) {
                        promise->set_value(Answer{ec, std::move(addresses)});
                      }));
    signal->emit(asio::cancellation_type::terminal);
  });
  ASSERT_EQ(answer.wait_for(kWatchdog), std::future_status::ready);
  const Answer result = answer.get();
  EXPECT_EQ(result.ec, asio::error::operation_aborted);
  EXPECT_TRUE(result.addresses.empty());
}

TEST(DnsResolve, WorksAsAnAwaitable) {
  runtime::RealEnv env({.threads = 1});
  std::promise<Answer> promise;
  auto answer = promise.get_future();
  auto lookup = [&]() -> awaitable<void> {
    // Named first: GCC 12 destroys temporaries inside a co_await expression twice.
    auto op = async_resolve(env.executor(0), std::string("127.0.0.1"), 9, use_nothrow_awaitable);
    auto [ec, addresses] = co_await std::move(op);
    promise.set_value(Answer{ec, std::move(addresses)});
  };
  asio::co_spawn(env.executor(0), lookup(), asio::detached);
  ASSERT_EQ(answer.wait_for(kWatchdog), std::future_status::ready);
  EXPECT_THAT(answer.get().addresses, ElementsAre(Address{"127.0.0.1", 9}));
}

}  // namespace
}  // namespace meshrpc::transport
