#include "server_lifetime.h"

#include <sys/prctl.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>

namespace meshrpc::bench {
namespace {

sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void block_termination_signals() {
  const sigset_t set = termination_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

void announce_listening(const Endpoint& bound) {
  std::printf("listening %s\n", bound.to_string().c_str());
  std::fflush(stdout);
}

void wait_for_termination(double max_lifetime_s) {
  const sigset_t set = termination_signals();
  timespec timeout{};
  timeout.tv_sec = static_cast<time_t>(max_lifetime_s);
  timeout.tv_nsec = static_cast<long>((max_lifetime_s - static_cast<double>(timeout.tv_sec)) * 1e9);
  // sigtimedwait() only returns early with EINTR for signals outside the set (none are
  // handled here), so this loop runs at most a few times.
  while (sigtimedwait(&set, nullptr, &timeout) < 0 && errno == EINTR) {
  }
}

}  // namespace meshrpc::bench
