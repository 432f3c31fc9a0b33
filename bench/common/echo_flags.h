// The command line every bench echo binary shares, so bench/run drives meshrpc, gRPC and the
// raw-TCP floor identically (contract in docs/performance.md):
//   client: --target HOST:PORT --payload BYTES --inflight N --duration SECONDS
//           [--warmup SECONDS] [--connections N] [--mode unary|stream]
//   server: --listen HOST:PORT --threads T [--max-lifetime SECONDS]
// meshrpc's pair also takes --metrics on|off (add_metrics_flag; the peers record nothing) and
// --tls-* (add_server_tls_flags / add_client_tls_flags; the peers speak plaintext only).
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

// What a client measures.
//   unary:  closed-loop echo calls; --inflight calls outstanding, each echoing --payload bytes.
//   stream: server streaming; the client opens --inflight streams, each asking the server for
//           an endless stream of --payload-byte messages, and counts the messages that arrive.
//           When the run ends the client cancels its streams (in gRPC and meshrpc terms) or
//           closes its connections (the floor). Per framework:
//             meshrpc: method /bench.Echo/Stream; the request is a --payload-byte message, the
//                      server writes that message back until the stream is cancelled.
//             gRPC:    rpc Stream(EchoMessage) returns (stream EchoMessage), the same.
//             floor:   a connection that starts with kFloorStreamPreamble and a 4-byte
//                      little-endian payload size gets an endless run of payload-size chunks
//                      (no framing: the client counts bytes / payload as messages).
enum class Mode { kUnary, kStream };

// The first bytes of a floor connection that asks for a stream. Unary floor clients send only
// 'x' payload bytes, so this never begins an echo connection.
inline constexpr char kFloorStreamPreamble[8] = {'\0', 'S', 'T', 'R', 'E', 'A', 'M', '\0'};

struct ClientFlags {
  Endpoint target;
  uint32_t payload_bytes = 64;
  uint32_t inflight = 1;
  double duration_s = 5;
  double warmup_s = 1;
  uint32_t connections = 1;
  Mode mode = Mode::kUnary;
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

// meshrpc's echo server and client only: `--metrics on|off` (default on). Off sets
// ServerOptions::metrics / ChannelOptions::metrics to null, so no call records anything; the
// metrics_overhead comparison in bench/run runs both (docs/performance.md). Kept out of
// add_*_flags so that the peers, which have no metrics to turn off, reject it.
void add_metrics_flag(CLI::App& app, bool& enabled);

// meshrpc's echo pair only: TLS 1.3 from PEM files, for the tls_overhead comparison in
// bench/run (docs/performance.md), which makes a throwaway CA and certificates for each run.
// Nothing set: plaintext.
//   server: --tls-cert FILE --tls-key FILE [--tls-ca FILE]
//           its certificate chain and key; with --tls-ca, mTLS: every client must present a
//           certificate issued by that CA. A TLS server refuses plaintext clients, so a client
//           left without --tls-ca fails instead of measuring plaintext under TLS's name.
//   client: --tls-ca FILE [--tls-cert FILE --tls-key FILE]
//           the CA the server's certificate must chain to (it must name 127.0.0.1, the host
//           connected to); the pair is the client's own certificate, for mTLS.
struct TlsFlags {
  std::string certificate_chain_file;
  std::string private_key_file;
  std::string ca_file;

  [[nodiscard]] bool enabled() const { return !certificate_chain_file.empty() || !ca_file.empty(); }
};

void add_server_tls_flags(CLI::App& app, TlsFlags& flags);
void add_client_tls_flags(CLI::App& app, TlsFlags& flags);

}  // namespace meshrpc::bench
