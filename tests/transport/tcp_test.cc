// TCP-only behaviour of TcpNetwork: sharded listening with SO_REUSEPORT, thread affinity,
// listen errors, name resolution and connect cancellation. The behaviour every transport
// shares is in the conformance suite (tcp_conformance_test.cc).
#include "meshrpc/transport/tcp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/errors.h"

namespace meshrpc::transport {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using StreamPtr = std::unique_ptr<ByteStream>;

// A watchdog for waits on real threads: only a hang gets near it.
constexpr std::chrono::seconds kWatchdog{30};

runtime::RealEnv::Options threads(size_t count) { return {.threads = count}; }

std::unique_ptr<Listener> listen_or_die(TcpNetwork& network, const Address& address) {
  auto listener = network.listen(address);
  EXPECT_THAT(listener, IsOk());
  return listener.ok() ? std::move(listener).value() : nullptr;
}

// Connects from the test thread; the stream lives on `executor`.
StreamPtr connect_blocking(TcpNetwork& network, const Address& address,
                           asio::any_io_executor executor) {
  std::future<StreamPtr> stream = network.async_connect(address, executor, asio::use_future);
  EXPECT_EQ(stream.wait_for(kWatchdog), std::future_status::ready) << "connect hangs";
  return stream.get();
}

TEST(TcpNetwork, ListenerHasOneShardPerIoThreadEachOnItsExecutor) {
  runtime::RealEnv env(threads(3));
  TcpNetwork network(env);
  auto listener = listen_or_die(network, {"127.0.0.1", 0});
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->shard_count(), 3u);
  for (size_t shard = 0; shard < listener->shard_count(); ++shard) {
    EXPECT_TRUE(listener->shard_executor(shard) == env.executor(shard)) << "shard " << shard;
  }
  EXPECT_EQ(listener->local_address().host, "127.0.0.1");
  EXPECT_NE(listener->local_address().port, 0);
}

// What one shard's accept loop saw.
struct ShardReport {
  size_t accepted = 0;
  size_t off_thread = 0;    // completions not on the shard's thread
  size_t off_executor = 0;  // streams not on the shard's executor
};

// Accepts on `shard` until the listener closes; the last of `expected` connections closes
// it. Streams stay open until then, so every client's connection is accepted exactly once.
awaitable<ShardReport> accept_on_shard(runtime::RealEnv& env, Listener& listener, size_t shard,
                                       size_t expected, std::atomic<size_t>& accepted) {
  ShardReport report;
  std::vector<StreamPtr> streams;
  for (;;) {
    auto [ec, stream] = co_await listener.async_accept(shard, use_nothrow_awaitable);
    if (ec) break;
    report.accepted++;
    if (!env.context(shard).get_executor().running_in_this_thread()) report.off_thread++;
    if (!(stream->get_executor() == env.executor(shard))) report.off_executor++;
    streams.push_back(std::move(stream));
    if (accepted.fetch_add(1) + 1 == expected) listener.close();
  }
  co_return report;
}

TEST(TcpNetwork, KernelSpreadsConnectionsOverShardsAndTheyStayOnTheShardThread) {
  runtime::RealEnv env(threads(2));
  TcpNetwork network(env);
  auto listener = listen_or_die(network, {"127.0.0.1", 0});
  ASSERT_NE(listener, nullptr);
  // With 64 connections hashed over 2 shards, one getting none has probability 2^-63.
  constexpr size_t kConnections = 64;
  std::atomic<size_t> accepted{0};
  std::vector<std::future<ShardReport>> reports;
  for (size_t shard = 0; shard < listener->shard_count(); ++shard) {
    reports.push_back(asio::co_spawn(env.executor(shard),
                                     accept_on_shard(env, *listener, shard, kConnections, accepted),
                                     asio::use_future));
  }
  std::vector<StreamPtr> clients;
  for (size_t i = 0; i < kConnections; ++i) {
    clients.push_back(connect_blocking(network, listener->local_address(), env.executor(i % 2)));
  }
  size_t total = 0;
  for (size_t shard = 0; shard < reports.size(); ++shard) {
    ASSERT_EQ(reports[shard].wait_for(kWatchdog), std::future_status::ready);
    const ShardReport report = reports[shard].get();
    EXPECT_GT(report.accepted, 0u) << "shard " << shard << " accepted nothing";
    EXPECT_EQ(report.off_thread, 0u) << "shard " << shard;
    EXPECT_EQ(report.off_executor, 0u) << "shard " << shard;
    total += report.accepted;
  }
  EXPECT_EQ(total, kConnections);
  // Streams are closed on their own threads.
  for (auto& client : clients) {
    auto executor = client->get_executor();
    asio::post(executor, [stream = std::move(client)] { stream->close(); });
  }
}

TEST(TcpNetwork, ConnectedStreamLivesOnTheGivenExecutor) {
  runtime::RealEnv env(threads(2));
  TcpNetwork network(env);
  auto listener = listen_or_die(network, {"127.0.0.1", 0});
  ASSERT_NE(listener, nullptr);
  StreamPtr stream = connect_blocking(network, listener->local_address(), env.executor(1));
  ASSERT_NE(stream, nullptr);
  EXPECT_TRUE(stream->get_executor() == env.executor(1));
  asio::post(env.executor(1), [stream = std::move(stream)] { stream->abort(); });
}

TEST(TcpNetwork, ListenOnPortInUseIsAlreadyExistsNamingTheAddress) {
  runtime::RealEnv env(threads(2));
  TcpNetwork network(env);
  auto first = listen_or_die(network, {"127.0.0.1", 0});
  ASSERT_NE(first, nullptr);
  const Address taken = first->local_address();
  // SO_REUSEPORT alone would let this join the first listener's group.
  EXPECT_THAT(network.listen(taken),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr(taken.to_string())));
}

struct BadListenCase {
  Address address;
  StatusCode code;
};

TEST(TcpNetwork, ListenOnUnusableAddressSaysWhy) {
  const BadListenCase cases[] = {
      // Names are not resolved for listening: which of its addresses would it be?
      {{"example.com", 0}, StatusCode::kInvalidArgument},
      {{"not an address", 0}, StatusCode::kInvalidArgument},
      // TEST-NET-3 (RFC 5737): never an address of this machine.
      {{"203.0.113.7", 0}, StatusCode::kInvalidArgument},
  };
  runtime::RealEnv env(threads(1));
  TcpNetwork network(env);
  for (const BadListenCase& test : cases) {
    EXPECT_THAT(network.listen(test.address),
                StatusIs(test.code, HasSubstr(test.address.to_string())))
        << test.address.to_string();
  }
}

// One byte from a client connected to `to` to the stream accepted on shard 0, both used on
// executor 0; sets `peer` to the client's address as the server saw it.
awaitable<Status> ping(TcpNetwork& network, Listener& listener, Address to, Address* peer) {
  auto executor = co_await asio::this_coro::executor;
  auto [connect_ec, client] = co_await network.async_connect(to, executor, use_nothrow_awaitable);
  if (connect_ec) co_return to_status(connect_ec, "connect");
  auto [accept_ec, server] = co_await listener.async_accept(0, use_nothrow_awaitable);
  if (accept_ec) co_return to_status(accept_ec, "accept");
  char byte = 'x';
  auto [write_ec, written] =
      co_await asio::async_write(*client, asio::buffer(&byte, 1), use_nothrow_awaitable);
  if (write_ec) co_return to_status(write_ec, "write");
  byte = 0;
  auto [read_ec, read] =
      co_await asio::async_read(*server, asio::buffer(&byte, 1), use_nothrow_awaitable);
  if (read_ec) co_return to_status(read_ec, "read");
  if (byte != 'x') co_return internal_error("wrong byte");
  *peer = server->remote_address();
  co_return Status();
}

// Runs ping() on a one-thread env, whose single shard gets every connection.
Result<Address> run_ping(runtime::RealEnv& env, TcpNetwork& network, Listener& listener,
                         const Address& to) {
  Address peer;
  auto done = asio::co_spawn(env.executor(0), ping(network, listener, to, &peer), asio::use_future);
  if (done.wait_for(kWatchdog) != std::future_status::ready) return deadline_exceeded_error("ping");
  MESHRPC_RETURN_IF_ERROR(done.get());
  return peer;
}

TEST(TcpNetwork, ListensAndConnectsOverIpv6Loopback) {
  runtime::RealEnv env(threads(1));  // one shard, so the ping's accept on shard 0 gets it
  TcpNetwork network(env);
  auto listener = network.listen({"::1", 0});
  if (!listener.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << listener.status();
  EXPECT_EQ((*listener)->local_address().host, "::1");
  EXPECT_THAT((*listener)->local_address().to_string(), HasSubstr("[::1]:"));
  auto peer = run_ping(env, network, **listener, (*listener)->local_address());
  ASSERT_THAT(peer, IsOk());
  EXPECT_EQ(peer->host, "::1");
}

TEST(TcpNetwork, DualStackListenerNamesIpv4PeersAsIpv4) {
  runtime::RealEnv env(threads(1));
  TcpNetwork network(env);
  auto listener = network.listen({"::", 0});
  if (!listener.ok()) GTEST_SKIP() << "no IPv6 here: " << listener.status();
  auto peer = run_ping(env, network, **listener, {"127.0.0.1", (*listener)->local_address().port});
  ASSERT_THAT(peer, IsOk());
  EXPECT_EQ(peer->host, "127.0.0.1");  // not ::ffff:127.0.0.1
}

TEST(TcpNetwork, ConnectsToLocalhostWithoutTheResolver) {
  runtime::RealEnv env(threads(1));
  TcpNetwork network(env);
  auto listener = listen_or_die(network, {"localhost", 0});
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->local_address().host, "127.0.0.1");
  auto peer = run_ping(env, network, *listener, {"localhost", listener->local_address().port});
  ASSERT_THAT(peer, IsOk());
  EXPECT_EQ(peer->host, "127.0.0.1");
}

TEST(TcpNetwork, ConnectsToAResolvedName) {
  runtime::RealEnv env(threads(1));
  TcpNetwork network(env);
  // The wildcard address: whichever of this machine's addresses the host name resolves to.
  auto listener = listen_or_die(network, {"0.0.0.0", 0});
  ASSERT_NE(listener, nullptr);
  const Address by_name{asio::ip::host_name(), listener->local_address().port};
  auto done = asio::co_spawn(
      env.executor(0),
      [&]() -> awaitable<Status> {
        auto [ec, stream] =
            co_await network.async_connect(by_name, env.executor(0), use_nothrow_awaitable);
        co_return to_status(ec, "connect " + by_name.to_string());
      },
      asio::use_future);
  ASSERT_EQ(done.wait_for(kWatchdog), std::future_status::ready);
  const Status status = done.get();
  if (status.code() == StatusCode::kUnavailable &&
      status.message().find("not found") != std::string_view::npos) {
    GTEST_SKIP() << "host name does not resolve here: " << status;
  }
  EXPECT_THAT(status, IsOk());
}

// Starts a connect on executor 0 and cancels it at once through the handler's slot, as a
// caller racing the connect against a timeout would.
error_code connect_and_cancel(runtime::RealEnv& env, TcpNetwork& network, const Address& to) {
  std::promise<error_code> result;
  asio::cancellation_signal cancel;
  asio::post(env.executor(0), [&] {
    network.async_connect(
        to, env.executor(0),
        asio::bind_cancellation_slot(cancel.slot(),
                                     [&](error_code ec, StreamPtr) { result.set_value(ec); }));
    cancel.emit(asio::cancellation_type::terminal);
  });
  auto done = result.get_future();
  EXPECT_EQ(done.wait_for(kWatchdog), std::future_status::ready) << "cancelled connect hangs";
  return done.get();
}

TEST(TcpNetwork, CancelledConnectEndsWithOperationAbortedEvenWhileResolving) {
  runtime::RealEnv env(threads(1));
  TcpNetwork network(env);
  // While the name is resolved (.invalid never resolves, RFC 6761), and while connecting
  // (TEST-NET-1, RFC 5737: nothing answers, so the connect would be pending).
  for (const Address& to : {Address{"no-such-host.invalid", 80}, Address{"192.0.2.1", 9}}) {
    EXPECT_EQ(connect_and_cancel(env, network, to), asio::error::operation_aborted)
        << to.to_string();
  }
}

// Starts an accept on every shard, each on its own thread; returns how each ended.
std::vector<std::future<error_code>> accept_on_every_shard(Listener& listener) {
  std::vector<std::future<error_code>> results;
  for (size_t shard = 0; shard < listener.shard_count(); ++shard) {
    auto result = std::make_shared<std::promise<error_code>>();
    results.push_back(result->get_future());
    asio::post(listener.shard_executor(shard), [&listener, shard, result] {
      listener.async_accept(shard, [result](error_code ec, StreamPtr) { result->set_value(ec); });
    });
  }
  return results;
}

TEST(TcpNetwork, CloseFromAForeignThreadEndsAcceptsOnEveryShard) {
  runtime::RealEnv env(threads(2));
  TcpNetwork network(env);
  auto listener = listen_or_die(network, {"127.0.0.1", 0});
  ASSERT_NE(listener, nullptr);
  auto results = accept_on_every_shard(*listener);
  listener->close();  // from the test thread, which is none of the shards'
  for (auto& result : results) {
    ASSERT_EQ(result.wait_for(kWatchdog), std::future_status::ready);
    EXPECT_EQ(result.get(), asio::error::operation_aborted);
  }
}

TEST(TcpNetwork, DestroyingListenerFromAForeignThreadEndsAccepts) {
  runtime::RealEnv env(threads(2));
  TcpNetwork network(env);
  auto listener = listen_or_die(network, {"127.0.0.1", 0});
  ASSERT_NE(listener, nullptr);
  auto results = accept_on_every_shard(*listener);
  // The posted accepts must have started before the listener goes: the Listener contract
  // lets accepts be started only while it lives. A post to each shard, after them, proves it.
  for (size_t shard = 0; shard < listener->shard_count(); ++shard) {
    std::promise<void> barrier;
    asio::post(listener->shard_executor(shard), [&barrier] { barrier.set_value(); });
    barrier.get_future().wait();
  }
  listener.reset();
  for (auto& result : results) {
    ASSERT_EQ(result.wait_for(kWatchdog), std::future_status::ready);
    EXPECT_EQ(result.get(), asio::error::operation_aborted);
  }
}

}  // namespace
}  // namespace meshrpc::transport
