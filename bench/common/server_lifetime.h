// How every bench echo server starts and stops, identically across frameworks: it announces
// "listening HOST:PORT" once it accepts connections (bench/run waits for that line and reads
// the real port from it), then runs until SIGTERM or SIGINT, or until its maximum lifetime,
// or until the process that started it dies, and then shuts down cleanly.
#pragma once

#include "echo_flags.h"

namespace meshrpc::bench {

// Blocks SIGTERM and SIGINT in the calling thread and in every thread started after it (so
// that wait_for_termination() receives them synchronously, not in a handler on some library
// thread), and asks the kernel to send SIGTERM if the parent process dies. Call first in main.
void block_termination_signals();

// Prints "listening 127.0.0.1:PORT" on stdout and flushes it.
void announce_listening(const Endpoint& bound);

// Returns on SIGTERM or SIGINT, or once max_lifetime_s has passed.
void wait_for_termination(double max_lifetime_s);

}  // namespace meshrpc::bench
