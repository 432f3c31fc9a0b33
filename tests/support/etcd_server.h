// EtcdServer: a real single-member etcd (Debian's etcd-server, which scripts/setup.sh
// installs) on free 127.0.0.1 ports with a fresh data directory, for discovery tests.
//
//   auto etcd = EtcdServer::start();
//   ASSERT_TRUE(etcd.ok()) << etcd.status();
//   EtcdResolver resolver(env, {.etcd = {.endpoints = {(*etcd)->client_address()}}});
//
// kill() and restart() simulate an outage: the restarted member keeps its data and ports.
// Lifetime: the destructor kills etcd and removes the data directory.
#pragma once

#include <memory>
#include <string>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/transport/address.h"
#include "tests/support/subprocess.h"

namespace meshrpc::testing {

class EtcdServer {
 public:
  // The etcd binary tests use.
  static constexpr const char* kBinary = "/usr/bin/etcd";

  // UNAVAILABLE if etcd is not installed or does not come up within 20 s.
  static Result<std::unique_ptr<EtcdServer>> start();
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  transport::Address client_address() const { return {"127.0.0.1", client_port_}; }
  const std::string& dir() const { return dir_; }

  // SIGKILL, and waits for the process to be gone.
  void kill();
  // Starts it again on the same ports and data.
  [[nodiscard]] Status restart();
  // etcd's log so far (for failure messages).
  std::string log() const;

 private:
  EtcdServer(std::string dir, uint16_t client_port, uint16_t peer_port)
      : dir_(std::move(dir)), client_port_(client_port), peer_port_(peer_port) {}
  Status launch();

  std::string dir_;
  uint16_t client_port_;
  uint16_t peer_port_;
  int launches_ = 0;  // each launch logs to its own file
  std::unique_ptr<Subprocess> process_;
};

}  // namespace meshrpc::testing
