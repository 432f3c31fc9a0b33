// TransportHarness: what the transport conformance suite needs from one transport
// implementation. One harness per implementation (TCP on RealEnv, in-memory links on
// SimEnv); the same suite runs over each (tests/support/transport_conformance.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::testing {

class TransportHarness {
 public:
  virtual ~TransportHarness() = default;

  virtual std::string name() const = 0;
  // The server side: its env and network, and an address to listen on (port 0 allowed).
  virtual runtime::Env& server_env() = 0;
  virtual transport::Network& server_network() = 0;
  virtual transport::Address listen_address() = 0;
  // The client side, possibly another (simulated) host.
  virtual runtime::Env& client_env() = 0;
  virtual transport::Network& client_network() = 0;
  // An address where nothing listens (connect must be refused).
  virtual transport::Address unused_address() = 0;

  // Runs each coroutine to completion, concurrently, each on the executor of its env,
  // and returns the first non-OK status (or OK). Real: waits on the threads with a generous
  // watchdog that fails the test instead of hanging. Sim: drives the simulation until all
  // are done (virtual time; a step limit guards against livelock).
  using Task = std::function<awaitable<Status>()>;
  virtual Status run(std::vector<std::pair<runtime::Env*, Task>> tasks) = 0;
  Status run_client(Task task) { return run({{&client_env(), std::move(task)}}); }
};

}  // namespace meshrpc::testing
