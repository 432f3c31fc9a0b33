// meshctl: call, inspect and load a meshrpc server from the shell, through the HTTP/1.1 that
// the server speaks on its own port (observe/http_service.h). docs/meshctl.md is the manual.
//
//   meshctl call ADDR Service.Method 'JSON' [--timeout 2s] [--retries 3] [--metadata k=v]...
//   meshctl list ADDR
//   meshctl health ADDR
//   meshctl metrics ADDR [--grep PATTERN]
//   meshctl bench ADDR Service.Method 'JSON' [--concurrency 64] [--duration 10s]
//
// Exit codes: 0 OK; 1..16 the Status code that ended the command; 64 a usage error.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/version.h"

namespace meshrpc::meshctl {

namespace {

// Bench limits. Each connection is a socket on both sides, so --concurrency is bounded by
// file descriptors: 4096 fits a raised limit (ulimit -n) for deliberate runs. 256 threads is
// far more than a client machine can use.
constexpr int kMaxConcurrency = 4096;
constexpr int kMaxThreads = 256;

// Raw flag text, parsed into typed flags once CLI11 has run.
struct RawFlags {
  std::string address;
  std::string method;
  std::string json = "{}";
  std::string timeout = "10s";
  int retries = 0;
  std::vector<std::string> metadata;
  std::optional<std::string> grep;
  int concurrency = 64;
  std::string duration = "10s";
  int threads = 0;
  bool members_json = false;
};

Result<CallFlags> call_flags(const RawFlags& raw) {
  CallFlags flags;
  MESHRPC_ASSIGN_OR_RETURN(flags.address, parse_server_address(raw.address));
  MESHRPC_ASSIGN_OR_RETURN(flags.method_path, parse_method_path(raw.method));
  flags.json = raw.json;
  MESHRPC_ASSIGN_OR_RETURN(flags.timeout, parse_duration(raw.timeout));
  for (const std::string& entry : raw.metadata) {
    MESHRPC_ASSIGN_OR_RETURN(auto pair, parse_metadata(entry));
    flags.metadata.push_back(std::move(pair));
  }
  return flags;
}

Result<BenchFlags> bench_flags(const RawFlags& raw) {
  BenchFlags flags;
  MESHRPC_ASSIGN_OR_RETURN(flags.call, call_flags(raw));
  flags.concurrency = raw.concurrency;
  MESHRPC_ASSIGN_OR_RETURN(flags.duration, parse_duration(raw.duration));
  flags.threads = raw.threads;
  return flags;
}

Status check_regex(const std::optional<std::string>& pattern) {
  if (!pattern) return Status();
  try {
    std::regex check(*pattern);
  } catch (const std::regex_error& error) {
    return invalid_argument_error("--grep '" + *pattern +
                                  "' is not a regular expression: " + error.what());
  }
  return Status();
}

int usage_error(const Status& status) {
  std::fprintf(stderr, "meshctl: %s\nRun with --help for more information.\n",
               std::string(status.message()).c_str());
  return kExitUsage;
}

void add_address(CLI::App& command, RawFlags& raw) {
  command.add_option("ADDR", raw.address, "server address: HOST:PORT or [IPV6]:PORT")->required();
}

void add_timeout(CLI::App& command, RawFlags& raw, const std::string& what) {
  command.add_option("--timeout", raw.timeout, what + " (e.g. 500ms, 2s, 1m)")
      ->capture_default_str();
}

void add_call_arguments(CLI::App& command, RawFlags& raw) {
  add_address(command, raw);
  command
      .add_option("METHOD", raw.method,
                  "package.Service.Method, package.Service/Method or /package.Service/Method")
      ->required();
  command.add_option("JSON", raw.json, "the request as JSON")->capture_default_str();
  command.add_option("--metadata,-m", raw.metadata, "KEY=VALUE sent as call metadata; repeatable")
      ->take_all();
}

const char* kFooter =
    "Exit codes: 0 OK; otherwise the number of the Status code that ended the command\n"
    "(3 INVALID_ARGUMENT, 4 DEADLINE_EXCEEDED, 12 UNIMPLEMENTED, 14 UNAVAILABLE when the\n"
    "server cannot be reached, ...); 64 a usage error. See docs/meshctl.md.";

int run(int argc, char** argv) {
  RawFlags raw;
  CLI::App app{"meshctl: call, inspect and benchmark a meshrpc server over its HTTP port"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);

  CLI::App* call = app.add_subcommand("call", "call a method through the JSON gateway");
  add_call_arguments(*call, raw);
  add_timeout(*call, raw, "deadline of each attempt");
  call->add_option("--retries", raw.retries,
                   "retry up to N times on UNAVAILABLE or RESOURCE_EXHAUSTED, with backoff")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();

  CLI::App* list = app.add_subcommand("list", "list services, methods and their schemas");
  add_address(*list, raw);
  add_timeout(*list, raw, "deadline of the request");

  CLI::App* health = app.add_subcommand("health", "print the serving status (exit 0 if SERVING)");
  add_address(*health, raw);
  add_timeout(*health, raw, "deadline of the request");

  CLI::App* metrics = app.add_subcommand("metrics", "print the Prometheus metrics");
  add_address(*metrics, raw);
  add_timeout(*metrics, raw, "deadline of the request");
  metrics->add_option("--grep", raw.grep, "only lines matching this regular expression");

  CLI::App* members = app.add_subcommand("members", "list the gossip cluster's members");
  add_address(*members, raw);
  add_timeout(*members, raw, "deadline of the request");
  members->add_flag("--json", raw.members_json, "print the /members JSON instead of a table");

  CLI::App* bench = app.add_subcommand("bench", "load a method and report throughput, latency");
  add_call_arguments(*bench, raw);
  add_timeout(*bench, raw, "deadline of each call");
  bench->add_option("--concurrency,-c", raw.concurrency, "calls in flight, one per connection")
      ->check(CLI::Range(1, kMaxConcurrency))
      ->capture_default_str();
  bench->add_option("--duration,-d", raw.duration, "how long to run (e.g. 10s, 1m)")
      ->capture_default_str();
  bench->add_option("--threads", raw.threads, "client threads (0: one per core, at most -c)")
      ->check(CLI::Range(0, kMaxThreads))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success) ? 0 : kExitUsage;
  }

  if (call->parsed()) {
    Result<CallFlags> flags = call_flags(raw);
    return flags.ok() ? run_call(*flags, raw.retries) : usage_error(flags.status());
  }
  if (bench->parsed()) {
    Result<BenchFlags> flags = bench_flags(raw);
    return flags.ok() ? run_bench(*flags) : usage_error(flags.status());
  }
  Result<transport::Address> address = parse_server_address(raw.address);
  if (!address.ok()) return usage_error(address.status());
  Result<std::chrono::nanoseconds> timeout = parse_duration(raw.timeout);
  if (!timeout.ok()) return usage_error(timeout.status());
  if (list->parsed()) return run_list(*address, *timeout);
  if (health->parsed()) return run_health(*address, *timeout);
  if (members->parsed()) return run_members(*address, raw.members_json, *timeout);
  if (Status grep = check_regex(raw.grep); !grep.ok()) return usage_error(grep);
  return run_metrics(*address, raw.grep, *timeout);
}

}  // namespace

}  // namespace meshrpc::meshctl

int main(int argc, char** argv) { return meshrpc::meshctl::run(argc, argv); }
