// cluster_node: one member of a gossip cluster (membership::Cluster), serving the built-in
// pages on its port: /status shows the members, /members is what `meshctl members` prints.
//
//   cluster_node --listen 127.0.0.1:7001 --tags role=seed
//   cluster_node --listen 127.0.0.1:7002 --join 127.0.0.1:7001 --tags role=worker,zone=a
//   meshctl members 127.0.0.1:7001
//
// Prints "cluster_node <id> listening on HOST:PORT" once it serves, then one line per
// membership event ("cluster_node <id>: <member> dead ..."). On SIGINT or SIGTERM it leaves
// the cluster gracefully (the others see "left", not "dead") and exits.
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/membership/cluster.h"
#include "meshrpc/membership/keyring.h"
#include "meshrpc/membership/members_page.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace cluster_node {

using namespace meshrpc;

struct Flags {
  std::string listen;
  std::vector<std::string> join;
  std::vector<std::string> tags;
  std::string node_id;
  std::string preset = "local";
  std::vector<std::string> keys;
  int threads = 1;
};

std::mutex print_mutex;
void print_line(const std::string& line) {
  std::lock_guard lock(print_mutex);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

Result<membership::Tags> parse_tags(const std::vector<std::string>& items) {
  membership::Tags tags;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return invalid_argument_error("tag '" + item + "' is not KEY=VALUE");
    }
    tags[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return tags;
}

Result<membership::SwimConfig> preset(const std::string& name) {
  if (name == "lan") return membership::SwimConfig::lan();
  if (name == "wan") return membership::SwimConfig::wan();
  if (name == "local") return membership::SwimConfig::local();
  return invalid_argument_error("--preset '" + name + "': want lan, wan or local");
}

Result<std::shared_ptr<membership::Keyring>> keyring(const std::vector<std::string>& keys) {
  if (keys.empty()) return std::shared_ptr<membership::Keyring>();
  std::vector<std::string> raw;
  for (const std::string& key : keys) {
    Result<std::string> decoded = membership::Keyring::decode_key(key);
    if (!decoded.ok()) return decoded.status();
    raw.push_back(std::move(*decoded));
  }
  Result<membership::Keyring> ring = membership::Keyring::create(std::move(raw));
  if (!ring.ok()) return ring.status();
  return std::make_shared<membership::Keyring>(std::move(*ring));
}

int wait_for_signal(asio::signal_set& signals) {
  std::promise<int> caught;
  signals.async_wait(
      [&caught](const error_code& ec, int signal) { caught.set_value(ec ? 0 : signal); });
  return caught.get_future().get();
}

int fail(const std::string& what, const Status& status) {
  std::fprintf(stderr, "cluster_node: %s: %s\n", what.c_str(), status.to_string().c_str());
  return 1;
}

int run(const Flags& flags) {
  Result<transport::Address> listen = transport::Address::parse(flags.listen);
  if (!listen.ok()) return fail("--listen", listen.status());
  std::vector<transport::Address> seeds;
  for (const std::string& text : flags.join) {
    Result<transport::Address> seed = transport::Address::parse(text);
    if (!seed.ok()) return fail("--join", seed.status());
    seeds.push_back(*seed);
  }
  Result<membership::Tags> tags = parse_tags(flags.tags);
  if (!tags.ok()) return fail("--tags", tags.status());
  Result<membership::SwimConfig> swim = preset(flags.preset);
  if (!swim.ok()) return fail("--preset", swim.status());
  Result<std::shared_ptr<membership::Keyring>> ring = keyring(flags.keys);
  if (!ring.ok()) return fail("--key", ring.status());

  runtime::RealEnv env(runtime::RealEnv::Options{.threads = static_cast<size_t>(flags.threads)});
  transport::TcpNetwork network(env);
  asio::signal_set signals(env.executor(0), SIGINT, SIGTERM);
  auto server = std::make_unique<codec::Server>(env, network);
  auto http = observe::HttpService::attach(*server);
  membership::ClusterOptions options;
  options.node_id = flags.node_id;
  options.tags = *tags;
  options.swim = *swim;
  options.keyring = *ring;
  auto cluster = std::make_unique<membership::Cluster>(env, network, *server, options);
  membership::add_members_pages(*http, *cluster);
  Result<transport::Address> bound = server->start(*listen);
  if (!bound.ok()) return fail("listen", bound.status());
  if (Status started = cluster->start(*bound); !started.ok()) return fail("gossip", started);
  const std::string id = cluster->self().node_id;
  cluster->watch([id](const membership::MemberEvent& event) {
    print_line("cluster_node " + id + ": " + event.member.node_id + " " +
               std::string(membership::member_event_name(event.kind)) + " at " +
               event.member.address.to_string() + " incarnation " +
               std::to_string(event.member.incarnation));
  });
  print_line("cluster_node " + id + " listening on " + bound->to_string());

  if (!seeds.empty()) {
    std::promise<Status> joined;
    cluster->async_join(seeds, [&joined](Status status) { joined.set_value(std::move(status)); });
    Status status = joined.get_future().get();
    if (!status.ok()) return fail("join", status);
    print_line("cluster_node " + id + " joined through " + flags.join.front());
  }

  const int signal = wait_for_signal(signals);
  print_line("cluster_node " + id + " caught signal " + std::to_string(signal) + ", leaving");
  std::promise<Status> left;
  cluster->async_leave([&left](Status status) { left.set_value(std::move(status)); });
  left.get_future().wait();
  cluster.reset();
  std::promise<void> drained;
  server->shutdown(std::chrono::seconds(5), [&drained] { drained.set_value(); });
  drained.get_future().wait();
  server.reset();
  print_line("cluster_node " + id + " left");
  return 0;
}

}  // namespace cluster_node

int main(int argc, char** argv) {
  cluster_node::Flags flags;
  CLI::App app{
      "meshrpc gossip cluster member: joins, serves /members and /status, leaves on "
      "SIGTERM"};
  app.add_option("--listen", flags.listen, "HOST:PORT (TCP for meshrpc and HTTP, UDP gossip)")
      ->required();
  app.add_option("--join", flags.join, "seeds to join through, HOST:PORT,...")->delimiter(',');
  app.add_option("--tags", flags.tags, "this node's tags, KEY=VALUE,...")->delimiter(',');
  app.add_option("--node-id", flags.node_id, "unique id (default: the listen address)");
  app.add_option("--preset", flags.preset, "gossip timing: lan, wan or local")
      ->capture_default_str();
  app.add_option("--key", flags.keys,
                 "gossip encryption key, base64 (16, 24 or 32 bytes); the first is primary")
      ->delimiter(',');
  app.add_option("--threads", flags.threads, "io threads")->check(CLI::Range(1, 64));
  std::string log_spec;
  app.add_option("--log", log_spec, "log levels, e.g. 'info' or 'warn,membership=debug'");
  CLI11_PARSE(app, argc, argv);
  if (!log_spec.empty()) {
    if (meshrpc::Status status = meshrpc::set_log_levels(log_spec); !status.ok()) {
      std::fprintf(stderr, "cluster_node: --log: %s\n", std::string(status.message()).c_str());
      return 2;
    }
  }
  return cluster_node::run(flags);
}
