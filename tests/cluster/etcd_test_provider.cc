// etcd_test_provider: a provider process for the etcd discovery tests, which SIGKILL it. Serves
// /test.Svc/Call (the reply is its node id) on 127.0.0.1 and registers itself in etcd with an
// EtcdRegistrar until SIGTERM or SIGINT, then deregisters and exits 0.
//
//   etcd_test_provider --etcd 127.0.0.1:2379 --service test.Svc --node-id p1 --lease-ttl-ms 2000
//
// Prints "provider p1 serving on 127.0.0.1:PORT" once it accepts calls and "provider p1
// registered" once etcd has its key; exit 1 when it cannot listen or register within 20 s.
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <future>
#include <string>

#include "meshrpc/cluster/etcd.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace {

using namespace meshrpc;

struct Flags {
  std::string etcd;
  std::string service;
  std::string node_id;
  int lease_ttl_ms = 2000;
};

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int run(const Flags& flags) {
  Result<std::vector<transport::Address>> endpoints = cluster::parse_etcd_endpoints(flags.etcd);
  if (!endpoints.ok()) {
    std::fprintf(stderr, "--etcd: %s\n", endpoints.status().to_string().c_str());
    return 1;
  }
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 2});
  transport::TcpNetwork network(env);
  asio::signal_set signals(env.executor(0), SIGINT, SIGTERM);
  auto server = std::make_unique<core::Server>(env, network);
  const std::string node_id = flags.node_id;
  server->register_method("/test.Svc/Call",
                          [node_id](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                            co_return Buffer::copy_of(node_id);
                          });
  Result<transport::Address> bound = server->start({"127.0.0.1", 0});
  if (!bound.ok()) {
    std::fprintf(stderr, "listen: %s\n", bound.status().to_string().c_str());
    return 1;
  }
  print_line("provider " + node_id + " serving on " + bound->to_string());

  cluster::Provider provider;
  provider.node_id = node_id;
  provider.address = *bound;
  provider.tags = {{"pid", std::to_string(::getpid())}};
  cluster::EtcdRegistrar registrar(env,
                                   {.etcd = {.endpoints = *endpoints},
                                    .lease_ttl = std::chrono::milliseconds(flags.lease_ttl_ms)},
                                   flags.service, provider);
  if (Status registered = registrar.wait_registered(std::chrono::seconds(20)); !registered.ok()) {
    std::fprintf(stderr, "register: %s\n", registered.to_string().c_str());
    return 1;
  }
  print_line("provider " + node_id + " registered");

  std::promise<int> caught;
  signals.async_wait(
      [&caught](const error_code& ec, int signal) { caught.set_value(ec ? 0 : signal); });
  caught.get_future().wait();
  registrar.stop();
  std::promise<void> drained;
  server->shutdown(std::chrono::seconds(2), [&drained] { drained.set_value(); });
  drained.get_future().wait();
  server.reset();
  print_line("provider " + node_id + " exiting");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"meshrpc etcd test provider"};
  app.add_option("--etcd", flags.etcd, "etcd endpoints, host:port[,host:port...]")->required();
  app.add_option("--service", flags.service, "service to register under")->required();
  app.add_option("--node-id", flags.node_id, "this provider's node id")->required();
  app.add_option("--lease-ttl-ms", flags.lease_ttl_ms, "lease TTL")
      ->check(CLI::Range(1000, 600000));
  CLI11_PARSE(app, argc, argv);
  return run(flags);
}
