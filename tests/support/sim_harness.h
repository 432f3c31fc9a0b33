// TransportHarness over SimEnv: a "server" and a "client" simulated host joined by
// in-memory links with random delays. run() drives virtual time until every task is done.
#pragma once

#include <memory>

#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"
#include "tests/support/transport_harness.h"

namespace meshrpc::testing {

// Slow jittery links with tiny buffers and writes: they force partial reads and writes and
// reordering pressure on every test that runs over them.
inline transport::LinkConfig cramped_link() {
  using namespace std::chrono_literals;
  transport::LinkConfig link;
  link.delay_min = 1ms;
  link.delay_max = 40ms;
  link.buffer_bytes = 4096;
  link.max_write_bytes = 1000;
  return link;
}

class SimHarness final : public TransportHarness {
 public:
  explicit SimHarness(uint64_t seed, transport::LinkConfig link = {});

  std::string name() const override { return "sim"; }
  runtime::Env& server_env() override { return *server_; }
  transport::Network& server_network() override { return net_.host(*server_); }
  transport::Address listen_address() override { return {server_->name(), 0}; }
  runtime::Env& client_env() override { return *client_; }
  transport::Network& client_network() override { return net_.host(*client_); }
  transport::Address unused_address() override { return {server_->name(), 1}; }
  Status run(std::vector<std::pair<runtime::Env*, Task>> tasks) override;

  runtime::SimEnv& sim() { return sim_; }
  transport::SimNetwork& net() { return net_; }

 private:
  runtime::SimEnv sim_;
  transport::SimNetwork net_;
  runtime::SimHost* server_;
  runtime::SimHost* client_;
};

}  // namespace meshrpc::testing
