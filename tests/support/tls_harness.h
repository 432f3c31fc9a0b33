// TlsHarness: the TransportHarness for TLS (transport/tls.h) over another harness's transport
// (TCP on real threads, the simulated network), so the conformance suite checks TlsStream
// against the ByteStream contract.
//
// The client network is a transport::TlsNetwork over the inner client network, trusting a
// TestPki CA. The server network wraps the inner server network: its listeners run
// transport::async_tls_accept on each accepted stream before handing it out, with a server
// certificate from the same CA that names the inner harness's listen host (127.0.0.1 for TCP,
// "server" for the simulation) and localhost. Envs, addresses and run() are the inner
// harness's.
//
// Threading and lifetime as the inner harness.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/transport/tls.h"
#include "tests/support/test_pki.h"
#include "tests/support/transport_harness.h"

namespace meshrpc::testing {

class TlsHarness final : public TransportHarness {
 public:
  // Throws std::runtime_error if the credentials cannot be made (a TestPki failure).
  explicit TlsHarness(std::unique_ptr<TransportHarness> inner);
  ~TlsHarness() override;

  std::string name() const override { return "tls_" + inner_->name(); }
  runtime::Env& server_env() override { return inner_->server_env(); }
  transport::Network& server_network() override { return *server_network_; }
  transport::Address listen_address() override { return inner_->listen_address(); }
  runtime::Env& client_env() override { return inner_->client_env(); }
  transport::Network& client_network() override { return *client_network_; }
  transport::Address unused_address() override { return inner_->unused_address(); }
  Status run(std::vector<std::pair<runtime::Env*, Task>> tasks) override {
    return inner_->run(std::move(tasks));
  }

 private:
  std::unique_ptr<TransportHarness> inner_;
  TestPki pki_;
  std::shared_ptr<transport::TlsCredentials> server_credentials_;
  std::shared_ptr<transport::TlsCredentials> client_credentials_;
  std::unique_ptr<transport::Network> server_network_;
  std::unique_ptr<transport::TlsNetwork> client_network_;
};

}  // namespace meshrpc::testing
