// TcpHarness: the TransportHarness for TcpNetwork on a RealEnv of two io threads, listening
// on 127.0.0.1 with an ephemeral port. Server and client share the env and the network (one
// process talking to itself over loopback).
//
// Threading: the harness's methods are called from the test thread; run() blocks it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"
#include "tests/support/transport_harness.h"

namespace meshrpc::testing {

// How long run_on_real_threads() lets tasks run before it declares a hang: far above any
// test's real need (a few hundred ms under TSan), so only a real hang trips it.
inline constexpr std::chrono::seconds kRealTaskWatchdog{30};

// Runs each task on its env's pick_executor() and waits for all. On a hang it cancels the
// tasks still running (terminal cancellation, posted to their executors) and returns
// DEADLINE_EXCEEDED "watchdog ..."; if they do not end within a grace period either, it
// calls `stop_env` so that nothing touches the test's objects after run returns.
Status run_on_real_threads(std::vector<std::pair<runtime::Env*, TransportHarness::Task>> tasks,
                           std::chrono::seconds watchdog, const std::function<void()>& stop_env);

class TcpHarness final : public TransportHarness {
 public:
  TcpHarness();
  ~TcpHarness() override = default;

  std::string name() const override { return "tcp"; }
  runtime::Env& server_env() override { return env_; }
  transport::Network& server_network() override { return network_; }
  transport::Address listen_address() override { return {"127.0.0.1", 0}; }
  runtime::Env& client_env() override { return env_; }
  transport::Network& client_network() override { return network_; }
  transport::Address unused_address() override;
  Status run(std::vector<std::pair<runtime::Env*, Task>> tasks) override;

  runtime::RealEnv& env() { return env_; }
  transport::TcpNetwork& network() { return network_; }

 private:
  runtime::RealEnv env_;
  transport::TcpNetwork network_;
};

}  // namespace meshrpc::testing
