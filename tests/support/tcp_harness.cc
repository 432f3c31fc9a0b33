#include "tests/support/tcp_harness.h"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <exception>
#include <future>
#include <string>

namespace meshrpc::testing {
namespace {

// After cancelling hung tasks, how long they get to unwind before the env is stopped.
constexpr std::chrono::seconds kCancelGrace{5};

// One task in flight. Not movable: the co_spawn holds a slot of `cancel`.
struct RunningTask {
  std::future<Status> done;
  asio::cancellation_signal cancel;
};

Status task_outcome(std::exception_ptr error, Status status) {
  if (!error) return status;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return internal_error(std::string("task threw: ") + e.what());
  } catch (...) {
    return internal_error("task threw a non-std exception");
  }
}

// Waits for every task until `deadline`; returns the indices of those still running.
std::vector<size_t> wait_all(std::vector<std::unique_ptr<RunningTask>>& running,
                             std::chrono::steady_clock::time_point deadline) {
  std::vector<size_t> unfinished;
  for (size_t i = 0; i < running.size(); ++i) {
    if (running[i]->done.wait_until(deadline) != std::future_status::ready) {
      unfinished.push_back(i);
    }
  }
  return unfinished;
}

std::unique_ptr<RunningTask> spawn(runtime::Env& env, const TransportHarness::Task& task) {
  auto running = std::make_unique<RunningTask>();
  std::promise<Status> promise;
  running->done = promise.get_future();
  asio::co_spawn(env.pick_executor(), task(),
                 asio::bind_cancellation_slot(
                     running->cancel.slot(), [promise = std::move(promise)](
                                                 std::exception_ptr error, Status status) mutable {
                       promise.set_value(task_outcome(error, std::move(status)));
                     }));
  return running;
}

std::string describe(const std::vector<size_t>& indices) {
  std::string text;
  for (size_t index : indices) text += (text.empty() ? "" : ", ") + std::to_string(index);
  return text;
}

}  // namespace

Status run_on_real_threads(std::vector<std::pair<runtime::Env*, TransportHarness::Task>> tasks,
                           std::chrono::seconds watchdog, const std::function<void()>& stop_env) {
  // `tasks` stays alive until every coroutine has ended, in case a task is a lambda coroutine
  // (which reads its captures through the lambda object).
  std::vector<std::unique_ptr<RunningTask>> running;
  for (auto& [env, task] : tasks) running.push_back(spawn(*env, task));
  std::vector<size_t> hung = wait_all(running, std::chrono::steady_clock::now() + watchdog);
  if (!hung.empty()) {
    // co_spawn forwards each emit to the task's own executor. A posted emit may still be in
    // flight when its task ends, so the signals are leaked rather than destroyed.
    for (size_t index : hung) running[index]->cancel.emit(asio::cancellation_type::terminal);
    const std::string message = "watchdog: tasks [" + describe(hung) + "] of " +
                                std::to_string(running.size()) + " still running after " +
                                std::to_string(watchdog.count()) + " s";
    const bool ended = wait_all(running, std::chrono::steady_clock::now() + kCancelGrace).empty();
    for (auto& entry : running) (void)entry.release();
    if (ended) return deadline_exceeded_error(message);
    // A stopped env never runs the tasks again, so they cannot touch the test's objects.
    stop_env();
    return deadline_exceeded_error(message + "; they ignored cancellation, env stopped");
  }
  for (auto& entry : running) {
    Status status = entry->done.get();
    if (!status.ok()) return status;
  }
  return Status();
}

TcpHarness::TcpHarness() : env_(runtime::RealEnv::Options{.threads = 2}), network_(env_) {}

transport::Address TcpHarness::unused_address() {
  // A port the kernel just handed out and that nothing listens on: bound, read, closed.
  // Closing before listening leaves no TIME_WAIT, and another process taking the port in
  // the instant before the test connects is unlikely enough to ignore.
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const uint16_t port = probe.local_endpoint().port();
  probe.close();
  return {"127.0.0.1", port};
}

Status TcpHarness::run(std::vector<std::pair<runtime::Env*, Task>> tasks) {
  return run_on_real_threads(std::move(tasks), kRealTaskWatchdog, [this] { env_.stop(); });
}

}  // namespace meshrpc::testing
