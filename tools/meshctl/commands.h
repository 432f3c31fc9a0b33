// meshctl's subcommands, each given its already-parsed flags (meshctl.cc parses them with
// CLI11). Each returns the process exit code: 0 for OK, else the number of the Status code
// that ended it (14 UNAVAILABLE when the server cannot be reached, 4 DEADLINE_EXCEEDED on
// timeout, ...). Replies go to stdout; errors go to stderr as "CODE: message".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http_client.h"
#include "meshrpc/base/status.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::meshctl {

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Flags of a gateway call, shared by `call` and `bench`.
struct CallFlags {
  transport::Address address;
  std::string method_path;  // "/pkg.Svc/Method"
  std::string json;         // the request body
  std::chrono::nanoseconds timeout{};
  Metadata metadata;
};

// POST method_path with the JSON body; prints the reply pretty-printed. Retries up to
// `retries` times on UNAVAILABLE and RESOURCE_EXHAUSTED (exponential backoff with full
// jitter), never on another code: those may have run on the server.
int run_call(const CallFlags& flags, int retries);

// GET /services: every service and method with kind, idempotency and schemas.
int run_list(const transport::Address& address, std::chrono::nanoseconds timeout);

// GET /health: prints the serving status; 0 if SERVING, else 14 (UNAVAILABLE).
int run_health(const transport::Address& address, std::chrono::nanoseconds timeout);

// GET /metrics (asking the server for ?grep= too): the Prometheus text, only the lines that
// match `grep` when given.
int run_metrics(const transport::Address& address, const std::optional<std::string>& grep,
                std::chrono::nanoseconds timeout);

// GET /members: the gossip cluster as the server sees it, as a table (or the JSON). 0 when
// the server answered; NOT_FOUND (5) when it runs no cluster.
int run_members(const transport::Address& address, bool raw_json, std::chrono::nanoseconds timeout);

struct BenchFlags {
  CallFlags call;
  int concurrency = 64;
  std::chrono::nanoseconds duration{};
  int threads = 0;  // io threads; 0: one per core. At most one per connection is used.
};

// Keeps `concurrency` calls in flight (one per keep-alive connection) for `duration`, prints
// a progress line to stderr each second and a report to stdout. 0 if every call succeeded,
// else the most frequent error code.
int run_bench(const BenchFlags& flags);

// GET `path` on one fresh connection, blocking.
Result<HttpReply> get_page(const transport::Address& address, const std::string& path,
                           std::chrono::nanoseconds timeout);

// Prints "CODE: message" to stderr; returns the code's number.
int report_error(const Status& status);

// The gateway request of a call: POST method_path with the JSON, the deadline header
// (meshrpc-timeout-ms) and a meshrpc-meta-<key> header per metadata entry.
HttpRequestSpec gateway_request(const CallFlags& flags);

// GET /services on a fresh connection (list.cc prints it).
Result<HttpReply> get_services(const transport::Address& address, std::chrono::nanoseconds timeout);

// The env of a command that makes one request at a time: one io thread, one worker.
runtime::RealEnv::Options one_thread_env();

}  // namespace meshrpc::meshctl
