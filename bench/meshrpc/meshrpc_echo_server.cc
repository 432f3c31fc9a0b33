// meshrpc echo server for bench/run: answers /bench.Echo/Echo with the request bytes, on a
// RealEnv of --threads io threads over TCP.
#include <CLI/CLI.hpp>

#include "../common/echo_flags.h"
#include "../common/server_lifetime.h"
#include "meshrpc/core/server.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

int main(int argc, char** argv) {
  using namespace meshrpc;
  bench::block_termination_signals();  // before the env starts its threads
  CLI::App app("meshrpc echo server (benchmark)");
  bench::ServerFlags flags;
  bench::add_server_flags(app, flags);
  CLI11_PARSE(app, argc, argv);

  runtime::RealEnv env(runtime::RealEnv::Options{.threads = flags.threads});
  transport::TcpNetwork network(env);
  core::Server server(env, network);
  server.register_method(
      "/bench.Echo/Echo",
      [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
  auto bound = server.start({flags.listen.host, flags.listen.port});
  if (!bound.ok()) {
    std::fprintf(stderr, "meshrpc_echo_server: %s\n", bound.status().to_string().c_str());
    return 1;
  }
  bench::announce_listening({bound->host, bound->port});
  bench::wait_for_termination(flags.max_lifetime_s);
  return 0;  // ~Server closes connections and waits for them
}
