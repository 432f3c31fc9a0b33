// The command line every bench echo binary shares, so bench/run drives meshrpc, gRPC and the
// raw-TCP floor identically (contract in docs/performance.md):
//   client: --target HOST:PORT --payload BYTES --inflight N --duration SECONDS
//           [--warmup SECONDS] [--connections N]
//   server: --listen HOST:PORT --threads T [--max-lifetime SECONDS]
// Only 127.0.0.1 is accepted as HOST: these binaries load a machine to its limit and must
// never be pointed at anything but the loopback interface.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace meshrpc::bench {

struct Endpoint {
  std::string host;
  uint16_t port = 0;

  [[nodiscard]] std::string to_string() const { return host + ":" + std::to_string(port); }
};

struct ClientFlags {
  Endpoint target;
  uint32_t payload_bytes = 64;
  uint32_t inflight = 1;
  double duration_s = 5;
  double warmup_s = 1;
  uint32_t connections = 1;
};

struct ServerFlags {
  Endpoint listen{"127.0.0.1", 0};
  uint32_t threads = 1;
  // A server orphaned by a crashed runner still exits by itself; longer than any full run.
  double max_lifetime_s = 1800;
};

// Payload limit: 1 MiB is well above every row (the largest is 4 KiB) and keeps each
// client's and server's buffers bounded.
inline constexpr uint32_t kMaxPayloadBytes = 1 << 20;
// In-flight limit: above the largest row (64) with room for later fan-out rows.
inline constexpr uint32_t kMaxInflight = 4096;
inline constexpr uint32_t kMaxConnections = 64;
// Runs are bounded: 10 minutes per measurement is longer than any bench/run mode uses.
inline constexpr double kMaxDurationSeconds = 600;

void add_client_flags(CLI::App& app, ClientFlags& flags);
void add_server_flags(CLI::App& app, ServerFlags& flags);

}  // namespace meshrpc::bench
