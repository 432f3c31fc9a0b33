#include "tests/support/sim_harness.h"

#include <boost/asio/co_spawn.hpp>
#include <optional>

namespace meshrpc::testing {

SimHarness::SimHarness(uint64_t seed, transport::LinkConfig link)
    : sim_(seed),
      net_(sim_, link),
      server_(&sim_.add_host("server")),
      client_(&sim_.add_host("client")) {}

Status SimHarness::run(std::vector<std::pair<runtime::Env*, Task>> tasks) {
  std::vector<std::optional<Status>> results(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    asio::co_spawn(tasks[i].first->pick_executor(), tasks[i].second(),
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
  // One virtual hour is far beyond any conformance scenario; hitting it means a hang.
  if (!sim_.run_until(all_done, std::chrono::hours(1))) {
    return deadline_exceeded_error("simulation: tasks still pending after 1 virtual hour (seed " +
                                   std::to_string(sim_.seed()) + ")");
  }
  for (auto& result : results) {
    if (!result->ok()) return *result;
  }
  return Status();
}

}  // namespace meshrpc::testing
