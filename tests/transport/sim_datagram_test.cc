// Datagrams under SimNetwork's faults: loss (for good), duplication, reordering, partitions,
// clogs, bandwidth caps, full receive queues, host crashes and pauses, and determinism. Each
// test injects the fault and checks that it bites; those that end check that traffic flows
// again. What every transport shares is in datagram_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::transport {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using runtime::SimEnv;
using runtime::SimHost;
using runtime::TimePoint;

// What a receive loop saw, in arrival order.
struct Inbox {
  struct Arrival {
    std::string text;
    Address from;
    TimePoint at;
  };
  std::vector<Arrival> arrivals;
  std::optional<error_code> ended;

  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& arrival : arrivals) out.push_back(arrival.text);
    return out;
  }
};

awaitable<void> receive_into(DatagramSocket& socket, std::shared_ptr<Inbox> inbox, SimEnv& sim) {
  for (;;) {
    auto [ec, datagram] = co_await socket.async_receive_from(use_nothrow_awaitable);
    if (ec) {
      inbox->ended = ec;
      co_return;
    }
    inbox->arrivals.push_back({datagram.payload.to_string(), datagram.from, sim.now()});
  }
}

struct Counts {
  int received = 0;
  int ended = 0;  // receive loops that saw an error (a crash must not complete them)
  int destroyed = 0;
};

// Hosts "a" and "b", each with a datagram socket on port 1 and a receive loop on it.
class SimDatagramTest : public ::testing::Test {
 protected:
  explicit SimDatagramTest(uint64_t seed = 42, LinkConfig link = {})
      : sim_(seed, trace_options()), net_(sim_, link) {}

  static SimEnv::Options trace_options() {
    SimEnv::Options options;
    options.keep_trace = true;
    return options;
  }

  void SetUp() override {
    socket_a_ = open(a_, 1);
    socket_b_ = open(b_, 1);
    ASSERT_TRUE(socket_a_ && socket_b_);
    start_receiving(*socket_a_, at_a_);
    start_receiving(*socket_b_, at_b_);
  }

  std::unique_ptr<DatagramSocket> open(SimHost& host, uint16_t port) {
    auto socket = net_.host(host).open_datagram({host.name(), port});
    EXPECT_THAT(socket, IsOk());
    return socket.ok() ? std::move(socket).value() : nullptr;
  }

  void start_receiving(DatagramSocket& socket, const std::shared_ptr<Inbox>& inbox) {
    asio::co_spawn(socket.get_executor(), receive_into(socket, inbox, sim_), asio::detached);
  }

  // Sends `text` from `socket` to `to`; the send itself must succeed (what happens on the
  // link is the test's business).
  static void send(DatagramSocket& socket, const std::string& text, const Address& to) {
    socket.async_send_to(asio::buffer(text), to, [](error_code ec, size_t) { EXPECT_FALSE(ec); });
  }
  void send_burst(int count, const std::string& prefix = "") {
    for (int i = 0; i < count; ++i) send(*socket_a_, prefix + std::to_string(i), to_b_);
  }

  // Before sim_: the hosts' processes, destroyed with it, count into it.
  Counts counts_;
  SimEnv sim_;
  SimNetwork net_;
  SimHost& a_ = sim_.add_host("a");
  SimHost& b_ = sim_.add_host("b");
  const Address to_a_{"a", 1};
  const Address to_b_{"b", 1};
  std::unique_ptr<DatagramSocket> socket_a_;
  std::unique_ptr<DatagramSocket> socket_b_;
  std::shared_ptr<Inbox> at_a_ = std::make_shared<Inbox>();
  std::shared_ptr<Inbox> at_b_ = std::make_shared<Inbox>();
};

bool in_order(const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i] != std::to_string(i)) return false;
  }
  return true;
}

TEST_F(SimDatagramTest, DatagramsArriveAfterTheLinkDelayNamingTheirSender) {
  const TimePoint start = sim_.now();
  send(*socket_a_, "hello", to_b_);
  sim_.run_for(1s);
  ASSERT_EQ(at_b_->arrivals.size(), 1u);
  EXPECT_EQ(at_b_->arrivals[0].text, "hello");
  EXPECT_EQ(at_b_->arrivals[0].from, to_a_);
  const LinkConfig link;
  EXPECT_GE(at_b_->arrivals[0].at - start, link.delay_min);
  EXPECT_LE(at_b_->arrivals[0].at - start, link.delay_max);
  EXPECT_EQ(net_.datagram_stats().sent, 1u);
  EXPECT_EQ(net_.datagram_stats().delivered, 1u);
}

TEST_F(SimDatagramTest, LossRateOneLosesEveryDatagramForGoodInItsDirectionOnly) {
  LinkConfig lossy;
  lossy.loss_rate = 1;
  net_.set_link("a", "b", lossy);
  send_burst(50);
  send(*socket_b_, "back", to_a_);
  sim_.run_for(10s);  // far beyond any retransmission a stream would get
  EXPECT_TRUE(at_b_->arrivals.empty());
  EXPECT_EQ(at_a_->texts(), std::vector<std::string>{"back"});
  EXPECT_EQ(net_.datagram_stats().lost, 50u);
}

TEST_F(SimDatagramTest, LossRateLosesAboutThatFraction) {
  LinkConfig lossy;
  lossy.loss_rate = 0.3;
  net_.set_link("a", "b", lossy);
  constexpr int kCount = 2000;
  send_burst(kCount);
  sim_.run_for(1s);
  // Binomial(2000, 0.7): mean 1400, standard deviation 20.5; +-100 is about 5 deviations.
  EXPECT_NEAR(static_cast<double>(at_b_->arrivals.size()), 1400.0, 100.0);
  const auto& stats = net_.datagram_stats();
  EXPECT_EQ(stats.lost + stats.delivered, static_cast<uint64_t>(kCount));
}

TEST_F(SimDatagramTest, DuplicateRateOneDeliversEveryDatagramTwice) {
  LinkConfig doubling;
  doubling.duplicate_rate = 1;
  net_.set_link("a", "b", doubling);
  send_burst(20);
  sim_.run_for(1s);
  std::vector<std::string> texts = at_b_->texts();
  ASSERT_EQ(texts.size(), 40u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(std::count(texts.begin(), texts.end(), std::to_string(i)), 2) << i;
  }
  EXPECT_EQ(net_.datagram_stats().duplicated, 20u);
}

TEST_F(SimDatagramTest, WithoutJitterOrReorderingABurstArrivesInOrder) {
  LinkConfig fixed;
  fixed.delay_min = fixed.delay_max = 1ms;
  net_.set_link("a", "b", fixed);
  for (int i = 0; i < 100; ++i) {
    send(*socket_a_, std::to_string(i), to_b_);
    if (i % 10 == 9) sim_.run_for(100us);
  }
  sim_.run_for(1s);
  ASSERT_EQ(at_b_->arrivals.size(), 100u);
  EXPECT_TRUE(in_order(at_b_->texts()));
}

// A burst of 50 over a link with jitter, on a fresh network seeded `seed`: in order or not.
bool burst_arrives_in_order(uint64_t seed, const LinkConfig& link) {
  SimEnv sim(seed);
  SimNetwork net(sim, link);
  auto a = net.host("a").open_datagram({"a", 1});
  auto b = net.host("b").open_datagram({"b", 1});
  EXPECT_TRUE(a.ok() && b.ok());
  auto inbox = std::make_shared<Inbox>();
  asio::co_spawn((*b)->get_executor(), receive_into(**b, inbox, sim), asio::detached);
  const Address to_b{"b", 1};
  for (int i = 0; i < 50; ++i) {
    (*a)->async_send_to(asio::buffer(std::to_string(i)), to_b, [](error_code, size_t) {});
  }
  sim.run_for(1s);
  EXPECT_EQ(inbox->arrivals.size(), 50u);
  return in_order(inbox->texts());
}

TEST(SimDatagramOrder, JitterReordersABurstButFixedDelaysDoNot) {
  LinkConfig jitter;
  jitter.delay_min = 1us;
  jitter.delay_max = 10ms;
  LinkConfig fixed;
  fixed.delay_min = fixed.delay_max = 1ms;
  int reordered = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    if (!burst_arrives_in_order(seed, jitter)) ++reordered;
    EXPECT_TRUE(burst_arrives_in_order(seed, fixed)) << "seed " << seed;
  }
  // Datagrams have no FIFO: with independent delays a burst of 50 is almost surely shuffled.
  EXPECT_GE(reordered, 1);
}

TEST(SimDatagramOrder, ReorderRateLetsLaterDatagramsOvertakeOnAFixedDelayLink) {
  LinkConfig detours;
  detours.delay_min = detours.delay_max = 1ms;
  detours.reorder_rate = 0.3;
  int reordered = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    if (!burst_arrives_in_order(seed, detours)) ++reordered;
  }
  EXPECT_GE(reordered, 1);
}

TEST_F(SimDatagramTest, OneWayPartitionLosesOnlyItsDirectionAndNothingReappearsAfterHeal) {
  net_.partition_one_way("a", "b");
  send(*socket_a_, "lost", to_b_);
  send(*socket_b_, "through", to_a_);
  sim_.run_for(1s);
  EXPECT_TRUE(at_b_->arrivals.empty());
  EXPECT_EQ(at_a_->texts(), std::vector<std::string>{"through"});

  net_.heal_partition("a", "b");
  sim_.run_for(1s);
  EXPECT_TRUE(at_b_->arrivals.empty()) << "a datagram lost to a cut is not held like stream bytes";
  send(*socket_a_, "after", to_b_);
  sim_.run_for(1s);
  EXPECT_EQ(at_b_->texts(), std::vector<std::string>{"after"});
}

TEST_F(SimDatagramTest, DatagramArrivingWhileACutStandsIsLost) {
  LinkConfig slow;
  slow.delay_min = slow.delay_max = 10ms;
  net_.set_link("a", "b", slow);
  send(*socket_a_, "in flight", to_b_);
  sim_.run_for(1ms);
  net_.isolate("b");  // came up after the send, stands when the datagram would arrive
  sim_.run_for(20ms);
  net_.heal_isolation("b");
  sim_.run_for(1s);
  EXPECT_TRUE(at_b_->arrivals.empty());
  EXPECT_EQ(net_.datagram_stats().lost, 1u);
}

TEST_F(SimDatagramTest, BlackholeSwallowsDatagramsWhileSendsSucceed) {
  LinkConfig hole;
  hole.blackhole = true;
  net_.set_link("a", "b", hole);
  send_burst(5);
  sim_.run_for(1s);
  EXPECT_TRUE(at_b_->arrivals.empty());
  EXPECT_EQ(net_.datagram_stats().lost, 5u);
}

TEST_F(SimDatagramTest, ClogHoldsDatagramsUntilItEnds) {
  const TimePoint start = sim_.now();
  net_.clog("a", "b", 2s);
  send(*socket_a_, "held", to_b_);
  send(*socket_b_, "free", to_a_);
  sim_.run_for(1s);
  EXPECT_TRUE(at_b_->arrivals.empty());
  EXPECT_EQ(at_a_->texts(), std::vector<std::string>{"free"});
  sim_.run_for(2s);
  ASSERT_EQ(at_b_->texts(), std::vector<std::string>{"held"});
  EXPECT_GE(at_b_->arrivals[0].at, start + 2s);
}

TEST_F(SimDatagramTest, BandwidthCapPacesDatagrams) {
  LinkConfig slow;
  slow.bandwidth_bytes_per_sec = 100'000;
  net_.set_link("a", "b", slow);
  const TimePoint start = sim_.now();
  const std::string chunk(10'000, 'z');
  for (int i = 0; i < 20; ++i) send(*socket_a_, chunk, to_b_);  // 200 KB: 2 s on the wire
  sim_.run_for(1s);
  EXPECT_LT(at_b_->arrivals.size(), 15u);
  sim_.run_for(5s);
  ASSERT_EQ(at_b_->arrivals.size(), 20u);
  EXPECT_GE(at_b_->arrivals.back().at - start, 1900ms);
  EXPECT_LE(at_b_->arrivals.back().at - start, 2100ms);
}

TEST_F(SimDatagramTest, DatagramToAPortWithNothingBoundIsDroppedAndToAnUnknownHostFails) {
  send(*socket_a_, "nobody", Address{"b", 2});
  sim_.run_for(1s);
  EXPECT_EQ(net_.datagram_stats().no_socket, 1u);
  EXPECT_TRUE(at_b_->arrivals.empty());

  std::optional<error_code> result;
  socket_a_->async_send_to(asio::buffer("x", 1), Address{"nowhere", 1},
                           [&](error_code ec, size_t) { result = ec; });
  sim_.run_for(1ms);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, asio::error::host_unreachable);
}

TEST_F(SimDatagramTest, BindingChecksTheHostAndThePort) {
  EXPECT_THAT(net_.host(a_).open_datagram({"b", 5}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(net_.host(a_).open_datagram({"a", 1}), StatusIs(StatusCode::kAlreadyExists));
  // Datagram ports are a space of their own: a listener may take the same number.
  EXPECT_THAT(net_.host(a_).listen({"a", 1}), IsOk());
  auto any = net_.host(a_).open_datagram({"0.0.0.0", 0});
  ASSERT_THAT(any, IsOk());
  EXPECT_EQ((*any)->local_address().host, "a");
}

TEST_F(SimDatagramTest, PausedHostQueuesDatagramsUpToTheLimitAndDropsTheRest) {
  sim_.run_for(1ms);  // b's receive loop is waiting
  sim_.pause_node(b_);
  constexpr size_t kSent = SimNetwork::kDatagramQueueLimit + 44;
  send_burst(static_cast<int>(kSent));
  sim_.run_for(1s);
  EXPECT_TRUE(at_b_->arrivals.empty()) << "a paused process runs nothing";
  sim_.resume_node(b_);
  sim_.run_for(1s);
  // The first datagram went to the receive already waiting; the queue held the limit.
  EXPECT_EQ(at_b_->arrivals.size(), 1 + SimNetwork::kDatagramQueueLimit);
  EXPECT_EQ(net_.datagram_stats().overflowed, kSent - 1 - SimNetwork::kDatagramQueueLimit);
}

TEST_F(SimDatagramTest, ReceiveQueueIsAlsoBoundedInBytes) {
  sim_.pause_node(b_);  // before b's loop first runs: no receive waits
  const std::string big(60'000, 'q');
  for (int i = 0; i < 10; ++i) send(*socket_a_, big, to_b_);
  sim_.run_for(1s);
  sim_.resume_node(b_);
  sim_.run_for(1s);
  EXPECT_EQ(at_b_->arrivals.size(), SimNetwork::kDatagramQueueBytes / big.size());
}

// What a crashed host's process held: an object whose destruction is observable.
struct Witness {
  explicit Witness(int* destroyed) : destroyed(destroyed) {}
  ~Witness() { ++*destroyed; }
  int* destroyed;
};

awaitable<void> count_receipts(DatagramSocket& socket, Counts* counts,
                               [[maybe_unused]] std::unique_ptr<Witness> witness) {
  for (;;) {
    auto [ec, datagram] = co_await socket.async_receive_from(use_nothrow_awaitable);
    if (ec) {
      ++counts->ended;
      co_return;
    }
    ++counts->received;
  }
}

// Owns its socket in the loop's frame (not in the process object).
awaitable<void> own_and_count(std::unique_ptr<DatagramSocket> socket, Counts* counts,
                              std::unique_ptr<Witness> witness) {
  co_await count_receipts(*socket, counts, std::move(witness));
}

// Binds port 7 (owned by the process) and port 8 (owned by a coroutine), counting receipts.
class ReceivingProcess final : public runtime::SimProcess {
 public:
  ReceivingProcess(SimHost& host, SimNetwork& net, Counts* counts) {
    auto owned = net.host(host).open_datagram({host.name(), 7});
    auto loose = net.host(host).open_datagram({host.name(), 8});
    EXPECT_THAT(owned, IsOk());
    EXPECT_THAT(loose, IsOk());
    if (!owned.ok() || !loose.ok()) return;
    socket_ = std::move(*owned);
    asio::co_spawn(host.pick_executor(),
                   count_receipts(*socket_, counts, std::make_unique<Witness>(&counts->destroyed)),
                   asio::detached);
    asio::co_spawn(
        host.pick_executor(),
        own_and_count(std::move(*loose), counts, std::make_unique<Witness>(&counts->destroyed)),
        asio::detached);
  }

 private:
  std::unique_ptr<DatagramSocket> socket_;
};

TEST_F(SimDatagramTest, CrashDropsTheHostsSocketsAndARecoveredProcessBindsTheirPortsAgain) {
  Counts& counts = counts_;
  SimHost& c = sim_.add_host("c");
  c.start([&](SimHost& host) { return std::make_unique<ReceivingProcess>(host, net_, &counts); });
  sim_.run_for(1ms);
  send(*socket_a_, "before", Address{"c", 7});
  send(*socket_a_, "before", Address{"c", 8});
  sim_.run_for(1s);
  ASSERT_EQ(counts.received, 2);

  sim_.fail_node(c);
  EXPECT_EQ(counts.destroyed, 2) << "the crash must destroy both pending receive loops";
  sim_.run_for(1s);
  EXPECT_EQ(counts.ended, 0) << "a crashed process's receives are dropped, never completed";
  send(*socket_a_, "while down", Address{"c", 7});
  send(*socket_a_, "while down", Address{"c", 8});
  sim_.run_for(1s);
  EXPECT_EQ(net_.datagram_stats().no_socket, 2u);

  sim_.recover_node(c);  // the new process binds 7 and 8 again (it EXPECTs success)
  sim_.run_for(1ms);
  send(*socket_a_, "after", Address{"c", 7});
  send(*socket_a_, "after", Address{"c", 8});
  sim_.run_for(1s);
  EXPECT_EQ(counts.received, 4);
}

TEST(SimDatagramLifetime, NetworkEndDropsPendingReceivesAndLeavesSocketsInert) {
  SimEnv sim(3);
  auto net = std::make_unique<SimNetwork>(sim);
  auto socket = net->host("a").open_datagram({"a", 1});
  ASSERT_THAT(socket, IsOk());
  int destroyed = 0;
  bool completed = false;
  (*socket)->async_receive_from([&completed, witness = std::make_shared<Witness>(&destroyed)](
                                    error_code, Datagram) { completed = true; });
  net.reset();
  EXPECT_EQ(destroyed, 1) << "the network's end destroys pending receives";
  std::optional<error_code> later;
  (*socket)->async_receive_from([&](error_code ec, Datagram) { later = ec; });
  sim.run();
  EXPECT_FALSE(completed);
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(*later, asio::error::operation_aborted);
  socket->reset();
}

// A gossip-like exchange under every datagram fault: each host pings the other and answers
// every ping. The trace records each send, loss and delivery.
struct ExchangeResult {
  uint64_t hash;
  std::vector<std::string> trace;
  size_t delivered;
};

ExchangeResult run_exchange(uint64_t seed) {
  SimEnv::Options options;
  options.keep_trace = true;
  SimEnv sim(seed, options);
  LinkConfig faulty;
  faulty.delay_min = 10us;
  faulty.delay_max = 5ms;
  faulty.loss_rate = 0.2;
  faulty.duplicate_rate = 0.1;
  faulty.reorder_rate = 0.3;
  SimNetwork net(sim, faulty);
  std::vector<std::unique_ptr<DatagramSocket>> sockets;
  for (const char* name : {"n1", "n2", "n3"}) {
    auto socket = net.host(name).open_datagram({name, 9});
    EXPECT_THAT(socket, IsOk());
    sockets.push_back(std::move(*socket));
  }
  auto answer = [](DatagramSocket& socket) -> awaitable<void> {
    for (;;) {
      auto [ec, datagram] = co_await socket.async_receive_from(use_nothrow_awaitable);
      if (ec) co_return;
      if (datagram.payload.to_string().starts_with("ping")) {
        const std::string ack = "ack";
        co_await socket.async_send_to(asio::buffer(ack), datagram.from, use_nothrow_awaitable);
      }
    }
  };
  for (auto& socket : sockets)
    asio::co_spawn(socket->get_executor(), answer(*socket), asio::detached);
  for (int round = 0; round < 50; ++round) {
    for (size_t i = 0; i < sockets.size(); ++i) {
      const Address peer{"n" + std::to_string((i + 1) % sockets.size() + 1), 9};
      sockets[i]->async_send_to(asio::buffer("ping " + std::to_string(round)), peer,
                                [](error_code, size_t) {});
    }
    sim.run_for(1ms);
  }
  sim.run_for(1s);
  const size_t delivered = net.datagram_stats().delivered;
  sockets.clear();
  sim.run();
  return {sim.trace_hash(), sim.trace_lines(), delivered};
}

TEST(SimDatagramDeterminism, SameSeedGivesTheSameTraceAndAnotherSeedAnother) {
  const ExchangeResult a = run_exchange(2024);
  const ExchangeResult b = run_exchange(2024);
  const ExchangeResult c = run_exchange(2025);
  EXPECT_GT(a.delivered, 100u);
  EXPECT_EQ(a.trace, b.trace);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_NE(a.hash, c.hash);
}

}  // namespace
}  // namespace meshrpc::transport
