// meshrpc_demo: the foundation layers working together, before the RPC core exists.
//
// A framed echo service written once against Env and transport::Network: clients send the
// connection preface and pipelined calls (HEADERS + DATA frames), the server decodes them
// with the incremental FrameDecoder and answers each with DATA + TRAILERS. The same code
// runs on SimEnv (virtual time, in-memory links with random delays: the same seed replays
// exactly) and on RealEnv over TCP on 127.0.0.1. Finally a malformed frame meets its Status.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/transport/sim_network.h"
#include "meshrpc/transport/tcp.h"
#include "meshrpc/wire/frame_decoder.h"
#include "meshrpc/wire/frame_encoder.h"
#include "meshrpc/wire/preface.h"

namespace demo {

using namespace meshrpc;
using namespace std::chrono_literals;

constexpr int kClients = 4;
constexpr int kCallsPerClient = 50;

awaitable<Status> write_buffer(transport::ByteStream& stream, const Buffer& bytes) {
  std::vector<asio::const_buffer> list;
  for (const Slice& slice : bytes.slices()) list.emplace_back(slice.data(), slice.size());
  auto [ec, n] = co_await asio::async_write(stream, list, use_nothrow_awaitable);
  co_return transport::to_status(ec, "write");
}

// Reads until the decoder yields a frame; nullopt at a clean end of stream.
awaitable<Result<std::optional<wire::Frame>>> read_frame(transport::ByteStream& stream,
                                                         wire::FrameDecoder& decoder) {
  while (true) {
    MESHRPC_CO_ASSIGN_OR_RETURN(std::optional<wire::Frame> frame, decoder.next());
    if (frame) co_return frame;
    Buffer input;
    std::span<char> space = input.prepare(Block::kDefaultBytes);
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(space.data(), space.size()),
                                                   use_nothrow_awaitable);
    if (ec == asio::error::eof) co_return std::optional<wire::Frame>();
    if (ec) co_return transport::to_status(ec, "read");
    input.commit(n);
    decoder.feed(std::move(input));
  }
}

// Server side of one connection: echo every call's message, then OK trailers.
awaitable<void> serve_connection(std::unique_ptr<transport::ByteStream> stream) {
  char preface[wire::kPreface.size()];
  auto [ec, n] = co_await asio::async_read(*stream, asio::buffer(preface), use_nothrow_awaitable);
  if (ec || std::string_view(preface, n) != wire::preface_view()) co_return;
  wire::Limits limits;
  wire::FrameDecoder decoder(wire::Role::kServer, limits);
  wire::FrameEncoder encoder(limits);
  while (true) {
    auto frame = co_await read_frame(*stream, decoder);
    if (!frame.ok() || !*frame) co_return;
    const wire::Frame& f = **frame;
    if (f.header.type != wire::FrameType::kData) continue;
    Buffer out;
    wire::Trailers trailers;
    if (!encoder.encode_data(f.header.stream_id, 0, f.payload, out).ok() ||
        !encoder.encode_trailers(f.header.stream_id, trailers, out).ok()) {
      co_return;
    }
    if (!(co_await write_buffer(*stream, out)).ok()) co_return;
  }
}

awaitable<void> accept_loop(transport::Listener& listener, size_t shard) {
  while (true) {
    auto [ec, stream] = co_await listener.async_accept(shard, use_nothrow_awaitable);
    if (ec) co_return;
    auto executor = stream->get_executor();
    asio::co_spawn(executor, serve_connection(std::move(stream)), asio::detached);
  }
}

// One client: all calls pipelined in one write, then every reply checked.
awaitable<Status> run_client(transport::Network& net, transport::Address server, int id) {
  auto executor = co_await asio::this_coro::executor;
  auto [ec, stream] = co_await net.async_connect(server, executor, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "connect " + server.to_string());
  wire::Limits limits;
  wire::FrameEncoder encoder(limits);
  Buffer out;
  out.append_copy(wire::preface_view());
  for (int call = 1; call <= kCallsPerClient; ++call) {
    wire::Headers headers{50ms, "/demo.Echo/Say", {{"client", std::to_string(id)}}};
    MESHRPC_CO_RETURN_IF_ERROR(encoder.encode_headers(call, 0, headers, out));
    const std::string message = "client " + std::to_string(id) + " call " + std::to_string(call);
    MESHRPC_CO_RETURN_IF_ERROR(
        encoder.encode_data(call, wire::kFlagEndStream, Buffer::copy_of(message), out));
  }
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_buffer(*stream, out));
  wire::FrameDecoder decoder(wire::Role::kClient, limits);
  int completed = 0;
  while (completed < kCallsPerClient) {
    MESHRPC_CO_ASSIGN_OR_RETURN(auto frame, co_await read_frame(*stream, decoder));
    if (!frame) co_return unavailable_error("server closed the connection early");
    if (frame->header.type == wire::FrameType::kTrailers) ++completed;
  }
  stream->close();
  co_return Status();
}

struct SimRun {
  int ok_clients = 0;
  runtime::Duration virtual_time{};
  uint64_t trace_hash = 0;
};

SimRun run_simulated(uint64_t seed) {
  runtime::SimEnv sim(seed);
  transport::SimNetwork net(sim);
  runtime::SimHost& server = sim.add_host("server");
  auto listener = net.host(server).listen({"server", 7000});
  asio::co_spawn(server.pick_executor(), accept_loop(**listener, 0), asio::detached);
  SimRun run;
  for (int id = 0; id < kClients; ++id) {
    runtime::SimHost& host = sim.add_host("client" + std::to_string(id));
    asio::co_spawn(host.pick_executor(), run_client(net.host(host), {"server", 7000}, id),
                   [&run](std::exception_ptr, Status status) { run.ok_clients += status.ok(); });
  }
  sim.run_until([&run] { return run.ok_clients == kClients; }, 1h);
  run.virtual_time = sim.now().time_since_epoch();
  run.trace_hash = sim.trace_hash();
  (*listener)->close();
  sim.run();
  return run;
}

void print_sim(const char* label, uint64_t seed, const SimRun& run) {
  std::printf("[sim seed=%llu] %s%d/%d clients x %d calls ok, %.3f ms virtual, trace %016llx\n",
              static_cast<unsigned long long>(seed), label, run.ok_clients, kClients,
              kCallsPerClient, run.virtual_time.count() / 1e6,
              static_cast<unsigned long long>(run.trace_hash));
}

int run_tcp() {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 2});
  transport::TcpNetwork net(env);
  auto listener = net.listen({"127.0.0.1", 0});
  if (!listener.ok()) {
    std::printf("[tcp] listen failed: %s\n", listener.status().to_string().c_str());
    return 1;
  }
  for (size_t shard = 0; shard < (*listener)->shard_count(); ++shard) {
    asio::co_spawn((*listener)->shard_executor(shard), accept_loop(**listener, shard),
                   asio::detached);
  }
  const transport::Address address = (*listener)->local_address();
  const runtime::TimePoint start = env.now();
  std::vector<std::future<Status>> clients;
  for (int id = 0; id < kClients; ++id) {
    clients.push_back(
        asio::co_spawn(env.pick_executor(), run_client(net, address, id), asio::use_future));
  }
  int ok = 0;
  for (auto& client : clients) {
    const Status status = client.get();
    if (!status.ok()) std::printf("[tcp] client failed: %s\n", status.to_string().c_str());
    ok += status.ok();
  }
  std::printf("[tcp %s] %d/%d clients x %d calls ok in %.3f ms real, %zu acceptor shards\n",
              address.to_string().c_str(), ok, kClients, kCallsPerClient,
              (env.now() - start).count() / 1e6, (*listener)->shard_count());
  (*listener)->close();
  return ok == kClients ? 0 : 1;
}

void show_malformed_frame() {
  // A header announcing a 9,000,000-byte frame: rejected as soon as its 16 bytes arrive.
  const unsigned char header[16] = {0x40, 0x54, 0x89, 0x00, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  wire::FrameDecoder decoder(wire::Role::kServer, wire::Limits{});
  decoder.feed(Buffer::copy_of(std::string_view(reinterpret_cast<const char*>(header), 16)));
  std::printf("[wire] a DATA frame claiming 9000000 bytes: %s\n",
              decoder.next().status().to_string().c_str());
}

int main() {
  std::printf("meshrpc demo: Env, transport and wire, simulated and real\n");
  const SimRun first = run_simulated(7);
  print_sim("", 7, first);
  const SimRun again = run_simulated(7);
  print_sim("replay: ", 7, again);
  const SimRun other = run_simulated(8);
  print_sim("", 8, other);
  std::printf("[sim] same seed, same trace: %s; another seed, another trace: %s\n",
              first.trace_hash == again.trace_hash ? "yes" : "NO",
              first.trace_hash != other.trace_hash ? "yes" : "NO");

  runtime::SimEnv sim(7);
  sim.async_wait_for(1h, [](error_code) {});
  sim.run();
  std::printf("[sim] a one-hour timer fired at virtual t=%.3f s, without waiting\n",
              sim.now().time_since_epoch().count() / 1e9);

  const int tcp = run_tcp();
  show_malformed_frame();
  const bool ok = first.ok_clients == kClients && first.trace_hash == again.trace_hash &&
                  first.trace_hash != other.trace_hash && tcp == 0;
  std::printf("demo %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace demo

int main() { return demo::main(); }
