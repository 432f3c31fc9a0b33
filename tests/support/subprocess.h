// Subprocess: a child process for tests that need a real process to kill (SIGKILL a provider,
// stop and restart etcd). Its stdout and stderr go to a log file that tests wait on.
//
//   auto child = Subprocess::start({"/usr/bin/etcd", "--data-dir", dir}, dir + "/etcd.log");
//   ASSERT_TRUE(child.ok()) << child.status();
//   ASSERT_TRUE((*child)->wait_for_output("ready to serve", 10s)) << (*child)->output();
//   (*child)->signal(SIGKILL);
//
// Lifetime: the destructor kills (SIGKILL) a child still running and reaps it, so a failing
// test leaves no process behind. Threading: one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"

namespace meshrpc::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with `argv`; output appended to `log_path`.
  static Result<std::unique_ptr<Subprocess>> start(std::vector<std::string> argv,
                                                   std::string log_path);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signal_number);
  // The exit code (128 + signal for a killed child), or nullopt if still running after
  // `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Everything the child wrote so far.
  std::string output() const;
  // Whether `text` appears in the output within `timeout` (or before the child exits). The
  // child is another process: polling its log (every 10 ms) is the only signal there is.
  bool wait_for_output(std::string_view text, std::chrono::milliseconds timeout);

 private:
  Subprocess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// A free TCP port on 127.0.0.1 (bound, read, closed: another process may take it before it
// is used, so callers retry on a bind failure).
uint16_t free_loopback_port();

// A fresh directory under the system's temp directory; removed by the caller.
std::string make_temp_dir(std::string_view prefix);

}  // namespace meshrpc::testing
