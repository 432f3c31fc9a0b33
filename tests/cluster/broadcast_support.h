// Fleets of servers for the broadcast tests: many servers on one RealEnv over TCP on
// 127.0.0.1, or on simulated hosts of one SimEnv, plus handlers that answer, fail, or hold
// their call until it is cancelled (stragglers), and one-shot signals the tests wait on
// instead of sleeping.
#pragma once

#include <atomic>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"
#include "meshrpc/transport/tcp.h"

namespace meshrpc::cluster::test_fleet {

// How long a real-threads test waits for something that should happen within milliseconds
// before it declares a hang (a watchdog, not a synchronisation: the wait ends when it
// happens).
inline constexpr std::chrono::seconds kWatchdog{30};

// A one-shot event, set from any thread, waited on by the test thread (real) or polled
// between simulation steps (sim).
class Signal {
 public:
  Signal() : future_(promise_.get_future().share()) {}
  void set() {
    std::call_once(once_, [this] { promise_.set_value(); });
  }
  bool is_set() const {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  bool wait(std::chrono::seconds limit = kWatchdog) const {
    return future_.wait_for(limit) == std::future_status::ready;
  }

 private:
  std::once_flag once_;
  std::promise<void> promise_;
  std::shared_future<void> future_;
};

// Opens once `count` arrivals have happened; handlers on any thread co_await wait() until
// then (an Asio channel that is closed on opening, so any number of waiters wake). Shared by
// the handlers that use it, so it outlives them.
class AsyncLatch {
 public:
  AsyncLatch(asio::any_io_executor executor, int count)
      : channel_(std::move(executor)), remaining_(count) {}
  void arrive() {
    if (remaining_.fetch_sub(1) == 1) channel_.close();
  }
  awaitable<void> wait() { (void)co_await channel_.async_receive(use_nothrow_awaitable); }

 private:
  asio::experimental::concurrent_channel<void(error_code)> channel_;
  std::atomic<int> remaining_;
};

// What a straggler's handler saw.
struct StragglerProbe {
  Signal entered;                             // the handler started
  Signal ended;                               // the handler returned
  std::atomic<bool> saw_cancellation{false};  // ServerContext::cancelled() when it returned
};

// Holds the call until the call is cancelled (CANCEL from the client, carried to the
// coroutine's wait), then records that the ServerContext saw it. A safety cap of one hour
// (virtual under simulation) keeps a broken test from holding its server forever.
// When given, `arrived` counts this handler's start (so that others can wait for it).
inline core::Handler hold_until_cancelled(std::shared_ptr<StragglerProbe> probe,
                                          std::shared_ptr<AsyncLatch> arrived = nullptr) {
  return [probe, arrived](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
    // A cancel that came before this coroutine first ran must not throw here: check it below.
    co_await asio::this_coro::throw_if_cancelled(false);
    probe->entered.set();
    if (arrived) arrived->arrive();
    // Emitted cancellations are not remembered: one that came before the wait began shows
    // only in ctx.cancelled() (set on the same executor, so there is no gap between them).
    if (!ctx.cancelled()) {
      co_await ctx.env().async_wait_for(std::chrono::hours(1), use_nothrow_awaitable);
    }
    probe->saw_cancellation = ctx.cancelled();
    probe->ended.set();
    co_return cancelled_error("straggler ended");
  };
}

// Answers "late <name>" once `release` opens, and records what it saw. `arrived` counts its
// start.
inline core::Handler answer_after_release(std::shared_ptr<AsyncLatch> release,
                                          std::shared_ptr<StragglerProbe> probe,
                                          std::shared_ptr<AsyncLatch> arrived, std::string name) {
  return [release, probe, arrived, name](core::ServerContext& ctx,
                                         Buffer) -> awaitable<Result<Buffer>> {
    probe->entered.set();
    arrived->arrive();
    co_await release->wait();
    probe->saw_cancellation = ctx.cancelled();
    probe->ended.set();
    co_return Buffer::copy_of("late " + name);
  };
}

// Answers "<name>" once `latch` opens.
inline core::Handler answer_after(std::shared_ptr<AsyncLatch> latch, std::string name) {
  return [latch, name](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
    co_await latch->wait();
    co_return Buffer::copy_of(name);
  };
}

// Fails with FAILED_PRECONDITION (an application error: not retried) once `latch` opens.
inline core::Handler fail_after(std::shared_ptr<AsyncLatch> latch, std::string name) {
  return [latch, name](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
    co_await latch->wait();
    co_return failed_precondition_error(name + " refuses");
  };
}

// Answers "<name>" after `delay` (virtual under simulation), noting when it answered.
inline core::Handler answer_later(runtime::Duration delay, std::string name,
                                  std::shared_ptr<runtime::TimePoint> answered_at = nullptr) {
  return [delay, name, answered_at](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
    co_await ctx.env().async_wait_for(delay, use_nothrow_awaitable);
    if (answered_at) *answered_at = ctx.env().now();
    co_return Buffer::copy_of(name);
  };
}

// Answers "<name>" or, when the request is not empty, "<name>: <request>".
inline core::Handler answer_with_name(std::string name) {
  return [name](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> {
    if (request.empty()) co_return Buffer::copy_of(name);
    co_return Buffer::copy_of(name + ": " + request.to_string());
  };
}

inline constexpr std::string_view kWhoMethod = "/test.Fleet/Who";
inline constexpr std::string_view kHoldMethod = "/test.Fleet/Hold";

// Servers on one RealEnv (2 io threads) over TCP on 127.0.0.1, ephemeral ports.
// Destroy clients that call them before the fleet.
class TcpFleet {
 public:
  TcpFleet() : env_(runtime::RealEnv::Options{.threads = 2}), network_(env_) {}

  runtime::RealEnv& env() { return env_; }
  transport::Network& network() { return network_; }

  // A server of type S (core::Server or codec::Server) with `setup` applied, started.
  template <typename S = core::Server>
  Result<transport::Address> add_server(const std::function<void(S&)>& setup) {
    // shared_ptr: it destroys an S as an S (core::Server's destructor is not virtual).
    auto server = std::make_shared<S>(env_, network_);
    setup(*server);
    Result<transport::Address> address = server->start({"127.0.0.1", 0});
    if (address.ok()) servers_.push_back(std::move(server));
    return address;
  }

  // Where nothing listens: a port the kernel handed out, bound and closed (connect refused).
  static transport::Address unused_address() {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const uint16_t port = probe.local_endpoint().port();
    probe.close();
    return {"127.0.0.1", port};
  }

  // A server that was started and destroyed again: its port refuses connections now.
  Result<transport::Address> shut_down_server() {
    core::Server server(env_, network_);
    return server.start({"127.0.0.1", 0});
  }

 private:
  runtime::RealEnv env_;
  transport::TcpNetwork network_;
  std::vector<std::shared_ptr<core::Server>> servers_;
};

// Servers on simulated hosts of one SimEnv, and a "client" host. Destroy clients that call
// them before the fleet.
class SimFleet {
 public:
  explicit SimFleet(uint64_t seed, transport::LinkConfig link = {})
      : sim_(seed), net_(sim_, link), client_host_(&sim_.add_host("client")) {}

  runtime::SimEnv& sim() { return sim_; }
  runtime::SimHost& client_host() { return *client_host_; }
  transport::Network& client_network() { return net_.host(*client_host_); }
  runtime::SimHost& add_host(std::string name) { return sim_.add_host(std::move(name)); }

  Result<transport::Address> add_server(runtime::SimHost& host,
                                        const std::function<void(core::Server&)>& setup) {
    auto server = std::make_unique<core::Server>(host, net_.host(host));
    setup(*server);
    Result<transport::Address> address = server->start({host.name(), 0});
    if (address.ok()) servers_.push_back(std::move(server));
    return address;
  }

  // Runs the simulation until `done` holds; false if a virtual hour passes first.
  bool run_until(std::function<bool()> done) {
    return sim_.run_until([done = std::move(done)] { return done(); }, std::chrono::hours(1));
  }

 private:
  runtime::SimEnv sim_;
  transport::SimNetwork net_;
  runtime::SimHost* client_host_;
  std::vector<std::unique_ptr<core::Server>> servers_;
};

}  // namespace meshrpc::cluster::test_fleet
