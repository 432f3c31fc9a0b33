// Plain-socket setup shared by the raw-TCP floor server and client. Failures print what failed
// and why (errno text) to stderr and return -1: these are the floor's only error paths.
#pragma once

#include "../common/echo_flags.h"

namespace meshrpc::bench {

// A non-blocking listening socket on `endpoint` (port 0 picks a free port); the bound port is
// written back to `endpoint`.
[[nodiscard]] int listen_tcp(Endpoint& endpoint);

// A connected, non-blocking socket with TCP_NODELAY set.
[[nodiscard]] int connect_tcp(const Endpoint& endpoint);

// Sets O_NONBLOCK and TCP_NODELAY (every echo is one small write that must leave at once).
[[nodiscard]] bool make_nonblocking_nodelay(int fd);

}  // namespace meshrpc::bench
