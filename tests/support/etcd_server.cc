#include "tests/support/etcd_server.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace meshrpc::testing {

using namespace std::chrono_literals;

Result<std::unique_ptr<EtcdServer>> EtcdServer::start() {
  if (::access(kBinary, X_OK) != 0) {
    return unavailable_error(std::string(kBinary) +
                             " not found: scripts/setup.sh installs Debian's etcd-server");
  }
  Status last;
  // The ports are free when picked but may be taken before etcd binds them: try again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string dir = make_temp_dir("meshrpc-etcd-");
    if (dir.empty()) return unavailable_error("cannot create a temp directory for etcd");
    std::unique_ptr<EtcdServer> server(
        new EtcdServer(dir, free_loopback_port(), free_loopback_port()));
    last = server->launch();
    if (last.ok()) return server;
  }
  return last;
}

EtcdServer::~EtcdServer() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

Status EtcdServer::launch() {
  const std::string client_url = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {
      kBinary,
      "--name",
      "test",
      "--data-dir",
      dir_ + "/data",
      "--listen-client-urls",
      client_url,
      "--advertise-client-urls",
      client_url,
      "--listen-peer-urls",
      peer_url,
      "--initial-advertise-peer-urls",
      peer_url,
      "--initial-cluster",
      "test=" + peer_url,
      // A single member elects itself after one election timeout: keep it short so that
      // start and restart take a fraction of a second.
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "250",
  };
  Result<std::unique_ptr<Subprocess>> process =
      Subprocess::start(argv, dir_ + "/etcd-" + std::to_string(++launches_) + ".log");
  if (!process.ok()) return process.status();
  process_ = std::move(process).value();
  if (!process_->wait_for_output("ready to serve client requests", 20s)) {
    const std::string output = process_->output();
    process_.reset();
    return unavailable_error("etcd did not come up on " + client_url + ":\n" + output);
  }
  return Status();
}

void EtcdServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(10s);
}

Status EtcdServer::restart() {
  kill();
  return launch();
}

std::string EtcdServer::log() const { return process_ ? process_->output() : std::string(); }

}  // namespace meshrpc::testing
