// Network faults of SimNetwork: partitions (two-way, one-way, isolation), clogs, segment
// loss and bandwidth caps, and what a host crash does to connections. Each test injects the
// fault and checks both that it bites and that traffic recovers when it ends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <memory>
#include <optional>
#include <string>

#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::transport {
namespace {

using namespace std::chrono_literals;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;

// A connected pair between hosts "a" (client) and "b" (server), and a reader on each end
// that records what arrives and when.
class SimFaultsTest : public ::testing::Test {
 protected:
  struct Inbox {
    std::string bytes;
    TimePoint last_arrival{};
    std::optional<error_code> ended;  // eof, reset, ...
  };

  void SetUp() override {
    auto listener = net_.host(b_).listen({"b", 1});
    ASSERT_TRUE(listener.ok());
    listener_ = std::move(*listener);
    connect_pair();
  }

  void connect_pair() {
    client_.reset();
    server_.reset();
    asio::co_spawn(a_.pick_executor(), connect(), asio::detached);
    ASSERT_TRUE(sim_.run_until([this] { return client_ && server_; }, 1s));
    start_reader(*client_, at_a_);
    start_reader(*server_, at_b_);
  }

  awaitable<void> connect() {
    auto ex = co_await asio::this_coro::executor;
    const Address target{"b", 1};  // named: GCC 12 mishandles temporaries in co_await
    auto [ec, stream] = co_await net_.host(a_).async_connect(target, ex, use_nothrow_awaitable);
    if (ec) co_return;
    client_ = std::move(stream);
    auto [aec, accepted] = co_await listener_->async_accept(0, use_nothrow_awaitable);
    if (!aec) server_ = std::move(accepted);
  }

  void start_reader(ByteStream& stream, const std::shared_ptr<Inbox>& inbox) {
    asio::co_spawn(stream.get_executor(), read_into(stream, inbox, sim_), asio::detached);
  }

  static awaitable<void> read_into(ByteStream& stream, std::shared_ptr<Inbox> inbox, SimEnv& sim) {
    char data[4096];
    for (;;) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(data), use_nothrow_awaitable);
      if (ec) {
        inbox->ended = ec;
        co_return;
      }
      inbox->bytes.append(data, n);
      inbox->last_arrival = sim.now();
    }
  }

  // Writes `text` from `stream` (completes at once: it fits the link buffer).
  void send(ByteStream& stream, std::string text) {
    auto message = std::make_shared<std::string>(std::move(text));
    stream.async_write_some(asio::buffer(*message), [message](error_code ec, size_t n) {
      EXPECT_FALSE(ec);
      EXPECT_EQ(n, message->size());
    });
  }

  SimEnv sim_{42};
  SimNetwork net_{sim_};
  SimHost& a_ = sim_.add_host("a");
  SimHost& b_ = sim_.add_host("b");
  std::unique_ptr<Listener> listener_;
  std::shared_ptr<ByteStream> client_;
  std::shared_ptr<ByteStream> server_;
  std::shared_ptr<Inbox> at_a_ = std::make_shared<Inbox>();
  std::shared_ptr<Inbox> at_b_ = std::make_shared<Inbox>();
};

TEST_F(SimFaultsTest, OneWayPartitionStopsOnlyItsDirectionAndHeldBytesArriveInOrderAfterHeal) {
  net_.partition_one_way("a", "b");
  EXPECT_TRUE(net_.is_cut("a", "b"));
  EXPECT_FALSE(net_.is_cut("b", "a"));
  send(*client_, "one ");
  send(*server_, "reply");
  sim_.run_for(10s);
  EXPECT_EQ(at_b_->bytes, "") << "bytes crossed a one-way cut";
  EXPECT_EQ(at_a_->bytes, "reply") << "the other direction must flow";

  send(*client_, "two");
  net_.heal_partition("a", "b");
  const TimePoint healed = sim_.now();
  sim_.run_for(1s);
  EXPECT_EQ(at_b_->bytes, "one two");
  EXPECT_GE(at_b_->last_arrival, healed);
  EXPECT_FALSE(at_b_->ended.has_value()) << "a cut that heals does not break the connection";
}

TEST_F(SimFaultsTest, TwoWayPartitionStopsBothDirectionsAndLosesConnects) {
  net_.partition("a", "b");
  send(*client_, "x");
  send(*server_, "y");
  sim_.run_for(5s);
  EXPECT_EQ(at_a_->bytes, "");
  EXPECT_EQ(at_b_->bytes, "");

  // A connection request across the cut is never answered.
  bool answered = false;
  net_.host(a_).async_connect({"b", 1}, a_.pick_executor(),
                              [&](error_code, std::unique_ptr<ByteStream>) { answered = true; });
  sim_.run_for(5s);
  EXPECT_FALSE(answered);

  net_.heal_all();
  sim_.run_for(1s);
  EXPECT_EQ(at_a_->bytes, "y");
  EXPECT_EQ(at_b_->bytes, "x");
}

TEST_F(SimFaultsTest, ConnectLostAcrossACutEndsWhenTheCallerCancels) {
  // A lost request leaves the connect to the caller's timeout; cancelling must complete it
  // (a regression: the lost connect's handler was dropped, so a channel waited forever).
  net_.partition("a", "b");
  asio::cancellation_signal cancel;
  std::optional<error_code> result;
  net_.host(a_).async_connect(
      {"b", 1}, a_.pick_executor(),
      asio::bind_cancellation_slot(
          cancel.slot(), [&](error_code ec, std::unique_ptr<ByteStream>) { result = ec; }));
  sim_.run_for(5s);
  EXPECT_FALSE(result.has_value());
  cancel.emit(asio::cancellation_type::terminal);
  sim_.run_for(1ms);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

TEST_F(SimFaultsTest, IsolatedHostReachesNoOneUntilHealed) {
  SimHost& c = sim_.add_host("c");
  net_.isolate("b");
  EXPECT_TRUE(net_.is_cut("a", "b"));
  EXPECT_TRUE(net_.is_cut("b", "c"));
  EXPECT_FALSE(net_.is_cut("a", "c"));
  EXPECT_FALSE(net_.is_cut("b", "b"));
  send(*client_, "hello");
  sim_.run_for(3s);
  EXPECT_EQ(at_b_->bytes, "");
  net_.heal_isolation("b");
  sim_.run_for(1s);
  EXPECT_EQ(at_b_->bytes, "hello");
  (void)c;
}

TEST_F(SimFaultsTest, ClogHoldsTrafficForItsDurationThenDelivers) {
  const TimePoint start = sim_.now();
  net_.clog("a", "b", 2s);
  send(*client_, "held");
  send(*server_, "free");
  sim_.run_for(1s);
  EXPECT_EQ(at_b_->bytes, "");
  EXPECT_EQ(at_a_->bytes, "free");
  sim_.run_for(2s);
  EXPECT_EQ(at_b_->bytes, "held");
  EXPECT_GE(at_b_->last_arrival, start + 2s);
}

TEST_F(SimFaultsTest, LostSegmentsAreRetransmittedLateAndInOrder) {
  LinkConfig lossy;
  lossy.loss_rate = 0.5;
  net_.set_link("a", "b", lossy);
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    const std::string piece = std::to_string(i) + ",";
    send(*client_, piece);
    expected += piece;
  }
  const TimePoint start = sim_.now();
  sim_.run_for(10s);
  EXPECT_EQ(at_b_->bytes, expected);
  // At least one of 50 segments was lost (probability 1 - 2^-50) and waited one timeout.
  EXPECT_GE(at_b_->last_arrival - start, lossy.retransmit_timeout);
}

TEST_F(SimFaultsTest, BandwidthCapPacesDelivery) {
  LinkConfig slow;
  slow.bandwidth_bytes_per_sec = 100'000;  // 100 KB/s
  net_.set_link("a", "b", slow);
  const TimePoint start = sim_.now();
  // 200 KB in writes the link buffer takes: about 2 s on the wire.
  auto writer = [](ByteStream& stream) -> awaitable<void> {
    const std::string chunk(10'000, 'z');
    for (int i = 0; i < 20; ++i) {
      auto [ec, n] = co_await stream.async_write_some(asio::buffer(chunk), use_nothrow_awaitable);
      if (ec || n != chunk.size()) co_return;
    }
  };
  asio::co_spawn(client_->get_executor(), writer(*client_), asio::detached);
  sim_.run_for(1s);
  EXPECT_LT(at_b_->bytes.size(), 150'000u);
  sim_.run_for(5s);
  EXPECT_EQ(at_b_->bytes.size(), 200'000u);
  EXPECT_GE(at_b_->last_arrival - start, 1900ms);
  EXPECT_LE(at_b_->last_arrival - start, 2500ms);
}

// What a crashed host's process held: an object whose destruction is observable.
struct Witness {
  explicit Witness(int* destroyed) : destroyed(destroyed) {}
  ~Witness() { ++*destroyed; }
  int* destroyed;
};

// Owns its stream and a witness, and reads until the stream fails.
awaitable<void> hold_and_read(std::unique_ptr<ByteStream> stream,
                              [[maybe_unused]] std::unique_ptr<Witness> witness) {
  char data[16];
  for (;;) {
    auto [ec, n] = co_await stream->async_read_some(asio::buffer(data), use_nothrow_awaitable);
    if (ec) co_return;
  }
}

TEST_F(SimFaultsTest, HostCrashClosesItsConnectionsAndDestroysItsPendingCoroutines) {
  // A second connection whose server end only a coroutine on b owns.
  std::shared_ptr<ByteStream> client2;
  std::unique_ptr<ByteStream> server2;
  net_.host(a_).async_connect({"b", 1}, a_.pick_executor(),
                              [&](error_code ec, std::unique_ptr<ByteStream> s) {
                                ASSERT_FALSE(ec);
                                client2 = std::move(s);
                              });
  listener_->async_accept(0, [&](error_code ec, std::unique_ptr<ByteStream> s) {
    ASSERT_FALSE(ec);
    server2 = std::move(s);
  });
  ASSERT_TRUE(sim_.run_until([&] { return client2 && server2; }, 1s));
  int destroyed = 0;
  asio::co_spawn(b_.pick_executor(),
                 hold_and_read(std::move(server2), std::make_unique<Witness>(&destroyed)),
                 asio::detached);
  auto at_a2 = std::make_shared<Inbox>();
  start_reader(*client2, at_a2);
  sim_.run_for(100ms);
  ASSERT_EQ(destroyed, 0);

  sim_.fail_node(b_);
  EXPECT_EQ(destroyed, 1) << "the crash must destroy the pending coroutine and what it owns";
  sim_.run_for(1s);
  ASSERT_TRUE(at_a2->ended.has_value()) << "the peer of a crashed process must see the close";
  ASSERT_TRUE(at_a_->ended.has_value());

  // The crashed host listens nowhere: a connect is refused, not left hanging.
  std::optional<error_code> refused;
  net_.host(a_).async_connect({"b", 1}, a_.pick_executor(),
                              [&](error_code ec, std::unique_ptr<ByteStream>) { refused = ec; });
  sim_.run_for(1s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, asio::error::connection_refused);
}

// A process that listens on port 2 and counts the connections it accepts.
class AcceptingProcess final : public runtime::SimProcess {
 public:
  AcceptingProcess(SimHost& host, SimNetwork& net, int* accepted) {
    auto listener = net.host(host).listen({host.name(), 2});
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (!listener.ok()) return;
    listener_ = std::move(*listener);
    asio::co_spawn(host.pick_executor(), accept_loop(*listener_, accepted), asio::detached);
  }

 private:
  static awaitable<void> accept_loop(Listener& listener, int* accepted) {
    for (;;) {
      auto [ec, stream] = co_await listener.async_accept(0, use_nothrow_awaitable);
      if (ec) co_return;
      ++*accepted;
    }
  }
  std::unique_ptr<Listener> listener_;
};

TEST_F(SimFaultsTest, HostThatCrashedAndRecoveredInsideAPartitionAcceptsAfterTheHeal) {
  int accepted = 0;
  SimHost& d = sim_.add_host("d");
  d.start([&](SimHost& host) { return std::make_unique<AcceptingProcess>(host, net_, &accepted); });
  net_.partition("a", "d");
  sim_.run_for(1s);
  sim_.fail_node(d);
  sim_.run_for(1s);
  sim_.recover_node(d);
  sim_.run_for(1s);
  net_.heal_all();
  std::optional<error_code> result;
  net_.host(a_).async_connect({"d", 2}, a_.pick_executor(),
                              [&](error_code ec, std::unique_ptr<ByteStream>) { result = ec; });
  sim_.run_for(1s);
  ASSERT_TRUE(result.has_value()) << "the connect was never answered";
  EXPECT_FALSE(*result) << result->message();
  EXPECT_EQ(accepted, 1);
}

}  // namespace
}  // namespace meshrpc::transport
