// FileResolver: provider lists from a JSON file, re-read on change. For deployments that
// outgrow a compiled-in list but do not run a coordination service: a configuration tool
// rewrites the file, every client picks the change up within one poll interval.
//
//   {"services": {
//     "kv.Store": [
//       {"node_id": "n1", "address": "10.0.0.1:7000", "weight": 2, "tags": {"zone": "a"}},
//       {"node_id": "n2", "address": "[fd00::2]:7000", "health": "draining"}
//     ]}}
//
// Fields of a provider: node_id (required, unique in its list), address (required,
// "host:port" or "[v6]:port", port not 0), weight (0 to 4294967295, default 1), tags (string
// to string), health ("healthy", "draining", "unhealthy"; default healthy). Unknown fields
// are errors, so a misspelt "wieght" is reported instead of silently ignored.
//
// Failure: a missing, unreadable, oversized or malformed file keeps every service's last good
// list; the error (INVALID_ARGUMENT naming the JSON path for bad content, e.g.
// `services.kv.Store[1].address: "x" is not host:port`; NOT_FOUND for a missing file) goes to
// every service's watchers and last_error(), is logged once as a warning per distinct error,
// and staleness() grows until a read succeeds again. A service that disappears from a good
// file gets an empty list: the file is the truth about who serves. Writers should replace the
// file atomically (write a temporary file, rename it over the path): a half-written file read
// mid-write is reported as malformed until the next poll.
//
// Polling: the file is read once in the constructor, then every poll_interval on the env's
// blocking executor (timers from env, so SimEnv tests run it in virtual time). A re-read of
// unchanged content is not re-parsed; it only confirms the lists (refreshing staleness).
//
// Threading: every method is safe from any thread; watchers run as Resolver says.
// Lifetime: `env` outlives the resolver; stop() or destruction ends polling at once (a
// cancelled timer), and no watcher is called after either returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/cluster/resolver.h"
#include "meshrpc/cluster/static_resolver.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::cluster {

struct FileResolverOptions {
  // 1 s: a configuration change reaches clients about as fast as an operator can check it,
  // and a stat-plus-read of a small file once a second costs nothing measurable.
  runtime::Duration poll_interval = std::chrono::seconds(1);
  // 4 MiB: tens of thousands of providers; a larger file is more likely a mistake (a log
  // written to the wrong path) than a mesh, and reading it every second would not be free.
  size_t max_file_bytes = 4 << 20;
  // Reads the whole file at `path`. Empty: the real file system (NOT_FOUND if the file is
  // missing, PERMISSION_DENIED, UNAVAILABLE for other I/O errors). Tests under SimEnv supply
  // content here without a disk.
  std::function<Result<std::string>(const std::string& path)> read_file;
};

// Parses the JSON format above. INVALID_ARGUMENT naming the JSON path on any violation.
Result<ServiceProviders> parse_provider_file(std::string_view json);

class FileResolver final : public Resolver {
 public:
  // Reads the file once before returning (so current() is meaningful at once) and starts
  // polling. A failed first read is not fatal: it is reported like any later failure.
  FileResolver(runtime::Env& env, std::string path, FileResolverOptions options = {});
  ~FileResolver() override;

  FileResolver(const FileResolver&) = delete;
  FileResolver& operator=(const FileResolver&) = delete;

  const std::string& path() const;

  // The error of the latest read, OK if it succeeded.
  Status last_error() const;
  // Time since the file was last read successfully; Duration::max() if never.
  runtime::Duration staleness() const;

  WatchId watch(std::string service, Watcher watcher) override;
  void unwatch(WatchId id) override;
  ResolverUpdate current(std::string_view service) const override;
  void stop() override;

 private:
  class Poller;
  std::shared_ptr<Poller> poller_;
};

}  // namespace meshrpc::cluster
