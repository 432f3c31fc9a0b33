// meshrpc echo server for bench/run, on a RealEnv of --threads io threads over TCP:
//   /bench.Echo/Echo    answers with the request bytes;
//   /bench.Echo/Stream  reads one message and writes it back until the client cancels.
// --metrics off turns off the server's call metrics (ServerOptions::metrics = null).
// --tls-cert/--tls-key (and --tls-ca for mTLS) serve TLS 1.3 only (ServerOptions::tls with
// require_tls).
#include <CLI/CLI.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <utility>

#include "../common/echo_flags.h"
#include "../common/server_lifetime.h"
#include "echo_tls.h"
#include "meshrpc/core/server.h"
#include "meshrpc/core/stream.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

int main(int argc, char** argv) {
  using namespace meshrpc;
  bench::block_termination_signals();  // before the env starts its threads
  CLI::App app("meshrpc echo server (benchmark)");
  bench::ServerFlags flags;
  bench::add_server_flags(app, flags);
  bool metrics = true;
  bench::add_metrics_flag(app, metrics);
  bench::TlsFlags tls;
  bench::add_server_tls_flags(app, tls);
  CLI11_PARSE(app, argc, argv);

  runtime::RealEnv env(runtime::RealEnv::Options{.threads = flags.threads});
  transport::TcpNetwork network(env);
  core::ServerOptions options;
  if (!metrics) options.metrics = nullptr;
  if (tls.enabled()) {
    auto credentials = bench::make_tls_credentials(tls, transport::TlsRole::kServer);
    if (!credentials.ok()) {
      std::fprintf(stderr, "meshrpc_echo_server: %s\n", credentials.status().to_string().c_str());
      return 1;
    }
    options.tls = std::move(credentials).value();
    options.require_tls = true;  // a plaintext client fails rather than pass for TLS
  }
  core::Server server(env, network, std::move(options));
  server.register_method(
      "/bench.Echo/Echo",
      [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
  server.register_stream_method(
      "/bench.Echo/Stream",
      [](core::ServerContext&, core::ServerStream& stream) -> awaitable<Status> {
        core::ReadResult first = co_await stream.async_read(asio::use_awaitable);
        if (!first.message) {
          co_return first.error ? first.error->status
                                : invalid_argument_error("Stream needs a request message");
        }
        // Copies share the message's bytes: each write queues a reference, not a copy.
        for (;;) {
          Buffer message = *first.message;
          Status sent = co_await stream.async_write(std::move(message), asio::use_awaitable);
          if (!sent.ok()) co_return sent;  // the client cancelled: the run is over
        }
      });
  auto bound = server.start({flags.listen.host, flags.listen.port});
  if (!bound.ok()) {
    std::fprintf(stderr, "meshrpc_echo_server: %s\n", bound.status().to_string().c_str());
    return 1;
  }
  bench::announce_listening({bound->host, bound->port});
  bench::wait_for_termination(flags.max_lifetime_s);
  return 0;  // ~Server closes connections and waits for them
}
