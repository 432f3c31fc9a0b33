// greeter: serves the Greeter service of greeter.proto on 127.0.0.1 (any free port), calls it
// once through the generated client and prints the reply: "greeter: Hello, out-of-tree!".
// Exits 0 on success, 1 when the server does not start or the call fails.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <future>

#include "greeter.meshrpc.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace greeter = meshrpc::examples::greeter;
using meshrpc::Result;

class GreeterService final : public greeter::Greeter::Service {
 public:
  meshrpc::awaitable<Result<greeter::GreetReply>> Greet(
      meshrpc::core::ServerContext&, const greeter::GreetRequest& request) override {
    if (request.name().empty()) co_return meshrpc::invalid_argument_error("name is empty");
    greeter::GreetReply reply;
    reply.set_greeting("Hello, " + request.name() + "!");
    co_return reply;
  }
};

// Calls Greet once; the reply, or why there is none, lands in `reply`.
meshrpc::awaitable<void> greet_once(greeter::Greeter::Client& greeter,
                                    Result<greeter::GreetReply>& reply) {
  greeter::GreetRequest request;
  request.set_name("out-of-tree");
  meshrpc::core::CallOptions options;
  options.timeout = std::chrono::seconds(10);
  reply = co_await greeter.Greet(request, options, meshrpc::asio::use_awaitable);
}

int main() {
  meshrpc::runtime::RealEnv env(meshrpc::runtime::RealEnv::Options{.threads = 1});
  meshrpc::transport::TcpNetwork network(env);
  GreeterService service;  // outlives the server
  meshrpc::codec::Server server(env, network);
  server.add_service(service);
  Result<meshrpc::transport::Address> address = server.start({"127.0.0.1", 0});
  if (!address.ok()) {
    std::fprintf(stderr, "greeter: %s\n", address.status().to_string().c_str());
    return 1;
  }
  Result<greeter::GreetReply> reply = meshrpc::internal_error("no reply");
  {
    meshrpc::core::Channel channel(env, network, *address);
    greeter::Greeter::Client greeter(channel);
    meshrpc::asio::co_spawn(env.executor(0), greet_once(greeter, reply), meshrpc::asio::use_future)
        .get();
  }  // channels and servers close on the env's threads, which must still run
  if (!reply.ok()) {
    std::fprintf(stderr, "greeter: call failed: %s\n", reply.status().to_string().c_str());
    return 1;
  }
  std::printf("greeter: %s\n", reply->greeting().c_str());
  return 0;
}
