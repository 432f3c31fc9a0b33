// DatagramSocket over both transports: UDP on 127.0.0.1 (TcpNetwork on a RealEnv) and the
// simulated network (SimNetwork, default links: no loss). What every implementation shares:
// round trips name the sender, port 0 binds a free port, a pending receive honours its
// cancellation slot and close(), oversize sends fail. Simulated faults are in
// sim_datagram_test.cc.
#include "meshrpc/transport/datagram.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/transport/sim_network.h"
#include "meshrpc/transport/tcp.h"

namespace meshrpc::transport {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using SocketPtr = std::unique_ptr<DatagramSocket>;
using Task = std::function<awaitable<Status>()>;

// Two endpoints' networks and a way to run coroutines on sockets' executors.
class Rig {
 public:
  virtual ~Rig() = default;
  virtual Network& server_network() = 0;
  virtual Network& client_network() = 0;
  virtual runtime::Env& server_env() = 0;
  // Where each side binds (port 0).
  virtual Address server_bind() = 0;
  virtual Address client_bind() = 0;
  // Runs each task on its executor (a socket's: operations start there) until all are done;
  // the first non-OK status, or OK.
  virtual Status run(std::vector<std::pair<asio::any_io_executor, Task>> tasks) = 0;
};

// A watchdog for waits on real threads: only a hang gets near it.
constexpr std::chrono::seconds kWatchdog{30};

class UdpRig final : public Rig {
 public:
  Network& server_network() override { return network_; }
  Network& client_network() override { return network_; }
  runtime::Env& server_env() override { return env_; }
  Address server_bind() override { return {"127.0.0.1", 0}; }
  Address client_bind() override { return {"127.0.0.1", 0}; }

  Status run(std::vector<std::pair<asio::any_io_executor, Task>> tasks) override {
    std::vector<std::future<Status>> done;
    for (auto& [executor, task] : tasks) {
      std::promise<Status> promise;
      done.push_back(promise.get_future());
      asio::co_spawn(
          executor, task(),
          [promise = std::move(promise)](std::exception_ptr error, Status status) mutable {
            promise.set_value(error ? internal_error("task threw") : std::move(status));
          });
    }
    for (auto& result : done) {
      if (result.wait_for(kWatchdog) != std::future_status::ready) {
        env_.stop();  // nothing runs the hung tasks again, so they touch nothing of the test
        return deadline_exceeded_error("watchdog: a task hangs");
      }
    }
    for (auto& result : done) {
      Status status = result.get();
      if (!status.ok()) return status;
    }
    return Status();
  }

 private:
  runtime::RealEnv env_{runtime::RealEnv::Options{.threads = 2}};
  TcpNetwork network_{env_};
};

class SimRig final : public Rig {
 public:
  Network& server_network() override { return net_.host(server_); }
  Network& client_network() override { return net_.host(client_); }
  runtime::Env& server_env() override { return server_; }
  Address server_bind() override { return {"server", 0}; }
  Address client_bind() override { return {"client", 0}; }

  Status run(std::vector<std::pair<asio::any_io_executor, Task>> tasks) override {
    std::vector<std::optional<Status>> results(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      asio::co_spawn(tasks[i].first, tasks[i].second(),
                     [&results, i](std::exception_ptr error, Status status) {
                       results[i] = error ? internal_error("task threw") : std::move(status);
                     });
    }
    auto all_done = [&results] {
      for (const auto& result : results) {
        if (!result) return false;
      }
      return true;
    };
    if (!sim_.run_until(all_done, std::chrono::hours(1))) {
      return deadline_exceeded_error("simulation: tasks pending after 1 virtual hour");
    }
    for (auto& result : results) {
      if (!result->ok()) return *result;
    }
    return Status();
  }

 private:
  runtime::SimEnv sim_{7};
  SimNetwork net_{sim_};
  runtime::SimHost& server_ = sim_.add_host("server");
  runtime::SimHost& client_ = sim_.add_host("client");
};

enum class Backend { kUdp, kSim };

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kUdp ? "Udp" : "Sim";
}

Status expect_ok(const error_code& ec, std::string_view what) {
  return ec ? to_status(ec, what) : Status();
}

Status expect_error(const error_code& ec, const error_code& expected, std::string_view what) {
  if (ec == expected) return Status();
  return internal_error(std::string(what) + ": expected '" + expected.message() + "', got '" +
                        ec.message() + "'");
}

// Lets the socket's executor run what it has queued, until `done` holds (a bounded number of
// turns: completions of local operations need a few, never many). `done` by value: a lambda
// capturing by reference is trivially destructible, so GCC 12's double destruction of
// temporaries in a co_await expression cannot hurt it.
template <typename Done>
awaitable<bool> yield_until(Done done) {
  auto executor = co_await asio::this_coro::executor;
  for (int turn = 0; turn < 1000 && !done(); ++turn) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  co_return done();
}

class DatagramTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kUdp) {
      rig_ = std::make_unique<UdpRig>();
    } else {
      rig_ = std::make_unique<SimRig>();
    }
  }

  static SocketPtr open(Network& network, const Address& address) {
    auto socket = network.open_datagram(address);
    EXPECT_THAT(socket, IsOk());
    return socket.ok() ? std::move(socket).value() : nullptr;
  }
  SocketPtr open_server() { return open(rig_->server_network(), rig_->server_bind()); }
  SocketPtr open_client() { return open(rig_->client_network(), rig_->client_bind()); }

  std::unique_ptr<Rig> rig_;
};

INSTANTIATE_TEST_SUITE_P(Transports, DatagramTest, ::testing::Values(Backend::kUdp, Backend::kSim),
                         backend_name);

TEST_P(DatagramTest, RoundTripNamesTheSenderSoTheReceiverCanReply) {
  SocketPtr server = open_server();
  SocketPtr client = open_client();
  ASSERT_TRUE(server && client);
  const Address server_address = server->local_address();
  const Address client_address = client->local_address();

  Task serve = [&]() -> awaitable<Status> {
    auto [ec, datagram] = co_await server->async_receive_from(use_nothrow_awaitable);
    if (ec) co_return to_status(ec, "server receive");
    if (datagram.payload.to_string() != "ping")
      co_return internal_error("server got the wrong bytes");
    if (datagram.from != client_address) {
      co_return internal_error("from is " + datagram.from.to_string() + ", the client is " +
                               client_address.to_string());
    }
    const std::string pong = "pong";
    auto [sec, sent] =
        co_await server->async_send_to(asio::buffer(pong), datagram.from, use_nothrow_awaitable);
    if (sent != pong.size()) co_return internal_error("short send");
    co_return expect_ok(sec, "server send");
  };
  Task ask = [&]() -> awaitable<Status> {
    // A Buffer payload, moved in: its slices travel without a copy.
    Buffer ping = Buffer::copy_of("ping");
    auto [sec, sent] =
        co_await client->async_send_to(std::move(ping), server_address, use_nothrow_awaitable);
    if (sec) co_return to_status(sec, "client send");
    if (sent != 4) co_return internal_error("short send");
    auto [ec, datagram] = co_await client->async_receive_from(use_nothrow_awaitable);
    if (ec) co_return to_status(ec, "client receive");
    if (datagram.from != server_address) co_return internal_error("reply from the wrong address");
    if (datagram.payload.to_string() != "pong") co_return internal_error("client got wrong bytes");
    co_return Status();
  };
  EXPECT_THAT(rig_->run({{server->get_executor(), serve}, {client->get_executor(), ask}}), IsOk());
}

TEST_P(DatagramTest, PortZeroBindsAFreePortAndABoundPortIsInUseUntilClosed) {
  SocketPtr first = open_server();
  SocketPtr second = open_server();
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->local_address().port, 0);
  EXPECT_NE(second->local_address().port, 0);
  EXPECT_NE(first->local_address().port, second->local_address().port);

  const Address taken = first->local_address();
  EXPECT_THAT(rig_->server_network().open_datagram(taken), StatusIs(StatusCode::kAlreadyExists));
  first.reset();  // destroying closes; UDP has no TIME_WAIT, so the port is free at once
  EXPECT_THAT(rig_->server_network().open_datagram(taken), IsOk());
}

TEST_P(DatagramTest, PendingReceiveEndsWhenCancelledThroughItsSlotAndTheSocketStaysUsable) {
  SocketPtr server = open_server();
  SocketPtr client = open_client();
  ASSERT_TRUE(server && client);
  const Address server_address = server->local_address();

  Task cancel_then_receive = [&]() -> awaitable<Status> {
    asio::cancellation_signal cancel;
    std::optional<error_code> result;
    server->async_receive_from(asio::bind_cancellation_slot(
        cancel.slot(), [&result](error_code ec, Datagram) { result = ec; }));
    if (co_await yield_until([&] { return result.has_value(); })) {
      co_return internal_error("a receive completed with nothing sent");
    }
    cancel.emit(asio::cancellation_type::terminal);
    if (!co_await yield_until([&] { return result.has_value(); })) {
      co_return internal_error("the cancelled receive did not complete");
    }
    MESHRPC_CO_RETURN_IF_ERROR(expect_error(*result, asio::error::operation_aborted, "cancelled"));
    // The cancelled receive took nothing: the next one gets the next datagram.
    const std::string hello = "after";
    auto [sec, sent] =
        co_await server->async_send_to(asio::buffer(hello), server_address, use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_ok(sec, "send to self"));
    auto [ec, datagram] = co_await server->async_receive_from(use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_ok(ec, "receive after the cancel"));
    if (datagram.payload.to_string() != hello) co_return internal_error("wrong datagram");
    co_return Status();
  };
  EXPECT_THAT(rig_->run({{server->get_executor(), cancel_then_receive}}), IsOk());
}

TEST_P(DatagramTest, ReceiveRacedAgainstATimerEndsWhenTheTimerWins) {
  using namespace asio::experimental::awaitable_operators;
  SocketPtr server = open_server();
  ASSERT_TRUE(server);
  runtime::Env& env = rig_->server_env();
  Task race = [&]() -> awaitable<Status> {
    auto winner = co_await (server->async_receive_from(use_nothrow_awaitable) ||
                            env.async_wait_for(20ms, use_nothrow_awaitable));
    if (winner.index() != 1) co_return internal_error("the receive won with nothing sent");
    co_return Status();
  };
  EXPECT_THAT(rig_->run({{server->get_executor(), race}}), IsOk());
}

TEST_P(DatagramTest, CloseEndsAPendingReceiveAndEveryLaterOperation) {
  SocketPtr server = open_server();
  ASSERT_TRUE(server);
  const Address address = server->local_address();
  Task close_while_receiving = [&]() -> awaitable<Status> {
    std::optional<error_code> result;
    server->async_receive_from([&result](error_code ec, Datagram) { result = ec; });
    server->close();
    if (!co_await yield_until([&] { return result.has_value(); })) {
      co_return internal_error("close() left the receive pending");
    }
    MESHRPC_CO_RETURN_IF_ERROR(expect_error(*result, asio::error::operation_aborted, "pending"));
    auto [rec, datagram] = co_await server->async_receive_from(use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_error(rec, asio::error::operation_aborted, "later receive"));
    const std::string bytes = "x";
    auto [sec, sent] =
        co_await server->async_send_to(asio::buffer(bytes), address, use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_error(sec, asio::error::operation_aborted, "later send"));
    server->close();  // idempotent
    co_return Status();
  };
  EXPECT_THAT(rig_->run({{server->get_executor(), close_while_receiving}}), IsOk());
  // Closed means unbound: the address is free again.
  EXPECT_THAT(rig_->server_network().open_datagram(address), IsOk());
}

TEST_P(DatagramTest, LargestDatagramArrivesWholeAndALargerSendFailsWithMessageSize) {
  SocketPtr server = open_server();
  ASSERT_TRUE(server);
  const Address address = server->local_address();
  Task send_both = [&]() -> awaitable<Status> {
    std::string largest(DatagramSocket::kMaxDatagramBytes, 'm');
    largest.front() = 'a';
    largest.back() = 'z';
    const std::string too_large(DatagramSocket::kMaxDatagramBytes + 1, 'x');
    auto [oec, none] =
        co_await server->async_send_to(asio::buffer(too_large), address, use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_error(oec, asio::error::message_size, "oversize send"));
    if (none != 0) co_return internal_error("an oversize send reported bytes sent");
    auto [sec, sent] =
        co_await server->async_send_to(asio::buffer(largest), address, use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_ok(sec, "largest send"));
    auto [ec, datagram] = co_await server->async_receive_from(use_nothrow_awaitable);
    MESHRPC_CO_RETURN_IF_ERROR(expect_ok(ec, "receive"));
    if (datagram.payload.to_string() != largest) {
      co_return internal_error("received " + std::to_string(datagram.payload.size()) +
                               " bytes, not the " + std::to_string(largest.size()) + " sent");
    }
    co_return Status();
  };
  EXPECT_THAT(rig_->run({{server->get_executor(), send_both}}), IsOk());
}

TEST_P(DatagramTest, ABurstOfDatagramsArrivesEachWhole) {
  SocketPtr server = open_server();
  SocketPtr client = open_client();
  ASSERT_TRUE(server && client);
  const Address server_address = server->local_address();
  constexpr int kCount = 50;
  Task receive = [&]() -> awaitable<Status> {
    std::vector<int> seen(kCount, 0);
    for (int i = 0; i < kCount; ++i) {
      auto [ec, datagram] = co_await server->async_receive_from(use_nothrow_awaitable);
      MESHRPC_CO_RETURN_IF_ERROR(expect_ok(ec, "receive"));
      const int index = std::stoi(datagram.payload.to_string());
      if (index < 0 || index >= kCount || seen[index]++ != 0) {
        co_return internal_error("unexpected datagram " + datagram.payload.to_string());
      }
    }
    co_return Status();
  };
  Task send = [&]() -> awaitable<Status> {
    for (int i = 0; i < kCount; ++i) {
      const std::string text = std::to_string(i);
      auto [ec, sent] =
          co_await client->async_send_to(asio::buffer(text), server_address, use_nothrow_awaitable);
      MESHRPC_CO_RETURN_IF_ERROR(expect_ok(ec, "send"));
    }
    co_return Status();
  };
  EXPECT_THAT(rig_->run({{server->get_executor(), receive}, {client->get_executor(), send}}),
              IsOk());
}

// --- UDP only ---------------------------------------------------------------------------

TEST(UdpDatagram, BindingNeedsAnIpLiteralAndSendingTooWithoutANameLookup) {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  TcpNetwork network(env);
  EXPECT_THAT(network.open_datagram({"no-such-host.invalid", 0}),
              StatusIs(StatusCode::kInvalidArgument));
  // 192.0.2.1 (TEST-NET-1) is no address of this machine.
  EXPECT_THAT(network.open_datagram({"192.0.2.1", 0}), StatusIs(StatusCode::kInvalidArgument));

  auto socket = network.open_datagram({"localhost", 0});
  ASSERT_THAT(socket, IsOk());
  EXPECT_EQ((*socket)->local_address().host, "127.0.0.1");
  std::promise<error_code> result;
  asio::post((*socket)->get_executor(), [&] {
    const Address named{"example.invalid", 9};
    (*socket)->async_send_to(asio::buffer("x", 1), named,
                             [&](error_code ec, size_t) { result.set_value(ec); });
  });
  auto done = result.get_future();
  ASSERT_EQ(done.wait_for(kWatchdog), std::future_status::ready);
  EXPECT_EQ(done.get(), asio::error::invalid_argument);
}

TEST(UdpDatagram, DualStackSocketHearsAndAnswersIpv4Peers) {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 1});
  TcpNetwork network(env);
  auto any6 = network.open_datagram({"::", 0});
  if (!any6.ok()) GTEST_SKIP() << "no IPv6 here: " << any6.status();
  auto v4 = network.open_datagram({"127.0.0.1", 0});
  ASSERT_THAT(v4, IsOk());
  DatagramSocket& server = **any6;
  DatagramSocket& client = **v4;
  const Address server_v4{"127.0.0.1", server.local_address().port};
  std::promise<Status> result;
  // Both sockets live on the env's only thread: one coroutine may drive both.
  asio::co_spawn(
      env.executor(0),
      [&]() -> awaitable<Status> {
        const std::string ping = "ping";
        auto [sec, sent] =
            co_await client.async_send_to(asio::buffer(ping), server_v4, use_nothrow_awaitable);
        MESHRPC_CO_RETURN_IF_ERROR(expect_ok(sec, "send to the v6 socket's v4 side"));
        auto [ec, datagram] = co_await server.async_receive_from(use_nothrow_awaitable);
        MESHRPC_CO_RETURN_IF_ERROR(expect_ok(ec, "receive on the v6 socket"));
        if (datagram.from != client.local_address()) {
          co_return internal_error("from " + datagram.from.to_string() + ", not IPv4 " +
                                   client.local_address().to_string());
        }
        // Answering an IPv4 Address from the IPv6 socket (sent as v4-mapped).
        auto [rsec, rsent] =
            co_await server.async_send_to(asio::buffer(ping), datagram.from, use_nothrow_awaitable);
        MESHRPC_CO_RETURN_IF_ERROR(expect_ok(rsec, "reply from the v6 socket"));
        auto [rec, reply] = co_await client.async_receive_from(use_nothrow_awaitable);
        co_return expect_ok(rec, "reply");
      },
      [&](std::exception_ptr error, Status status) {
        result.set_value(error ? internal_error("threw") : std::move(status));
      });
  auto done = result.get_future();
  ASSERT_EQ(done.wait_for(kWatchdog), std::future_status::ready);
  EXPECT_THAT(done.get(), IsOk());
}

}  // namespace
}  // namespace meshrpc::transport
