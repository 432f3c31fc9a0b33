// chunks_demo: the IDL-free road. Seed 000's chunk store (a master and three chunk servers)
// on plain structs (chunk_messages.h), over TCP on 127.0.0.1, in one process:
//
//   1. the client asks Master.GetChunkHandle for (path, chunk index); for a new chunk the
//      master calls ChunkServer.CreateChunk on every chunk server and needs a majority;
//   2. the client sends the data to the first replica with ChunkServer.ForwardData, which
//      stores it and forwards it down the chain (chain replication), answering once every
//      replica has it;
//   3. the client reads the chunk back from every replica;
//   4. bad requests meet their Status: INVALID_ARGUMENT (a handler's check, and bytes that do
//      not decode, naming the field) and NOT_FOUND.
//
// Prints each step and "chunks_demo: ok" and exits 0 when every check held, 1 otherwise.
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "chunk_messages.h"
#include "meshrpc/codec/client.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace chunks {

using namespace meshrpc;

// Master: maps (path, chunk index) to a chunk handle and the chunk servers holding it.
// Thread-safe: handlers run on any io thread.
class Master {
 public:
  Master(codec::Client& client, std::vector<transport::Address> chunk_servers)
      : client_(client), chunk_servers_(std::move(chunk_servers)) {}

  void register_on(codec::Server& server) {
    server.handle(kGetChunkHandle,
                  [this](core::ServerContext& ctx, const GetChunkHandleArgs& args) {
                    return get_chunk_handle(ctx, args);
                  });
  }

 private:
  using ChunkKey = std::pair<std::string, int64_t>;

  awaitable<Result<GetChunkHandleReply>> get_chunk_handle(core::ServerContext& ctx,
                                                          GetChunkHandleArgs args) {
    if (args.path.empty() || args.path.front() != '/' || args.chunk_index < 0) {
      co_return invalid_argument_error("want an absolute path and a chunk index >= 0, got '" +
                                       args.path + "' #" + std::to_string(args.chunk_index));
    }
    ChunkKey key{args.path, args.chunk_index};
    ChunkHandle handle = 0;
    {
      std::lock_guard lock(mutex_);
      if (auto it = chunks_.find(key); it != chunks_.end()) co_return it->second;
      handle = next_handle_++;
    }
    GetChunkHandleReply reply{handle, {}};
    for (const transport::Address& server : chunk_servers_) {
      core::CallOptions options = ctx.child_call_options();
      CreateChunkArgs create{handle};
      Result<CreateChunkReply> created = co_await client_.call(
          server, kCreateChunk, create, std::move(options), asio::use_awaitable);
      if (created.ok()) reply.replicas.push_back(server.to_string());
    }
    // A majority of copies, as seed 000's replication required (2 of 3).
    if (reply.replicas.size() * 2 <= chunk_servers_.size()) {
      co_return unavailable_error("chunk created on only " + std::to_string(reply.replicas.size()) +
                                  " of " + std::to_string(chunk_servers_.size()) +
                                  " chunk servers");
    }
    std::lock_guard lock(mutex_);
    co_return chunks_.try_emplace(std::move(key), std::move(reply)).first->second;
  }

  codec::Client& client_;
  const std::vector<transport::Address> chunk_servers_;
  std::mutex mutex_;  // guards chunks_ and next_handle_
  std::map<ChunkKey, GetChunkHandleReply> chunks_;
  ChunkHandle next_handle_ = 1000;
};

// ChunkServer: holds chunk contents in memory and forwards writes down a replica chain.
class ChunkServer {
 public:
  explicit ChunkServer(codec::Client& client) : client_(client) {}

  void register_on(codec::Server& server) {
    server.handle(
        kCreateChunk,
        [this](core::ServerContext&, const CreateChunkArgs& args) -> Result<CreateChunkReply> {
          std::lock_guard lock(mutex_);
          return CreateChunkReply{chunks_.try_emplace(args.handle).second};
        });
    server.handle(kForwardData, [this](core::ServerContext& ctx, const ForwardDataArgs& args) {
      return forward_data(ctx, args);
    });
    server.handle(
        kReadChunk,
        [this](core::ServerContext&, const ReadChunkArgs& args) -> Result<ReadChunkReply> {
          std::lock_guard lock(mutex_);
          auto it = chunks_.find(args.handle);
          if (it == chunks_.end()) return not_found_error(unknown_chunk(args.handle));
          return ReadChunkReply{it->second};
        });
  }

 private:
  static std::string unknown_chunk(ChunkHandle handle) {
    return "no chunk " + std::to_string(handle) + " on this server";
  }

  awaitable<Result<ForwardDataReply>> forward_data(core::ServerContext& ctx, ForwardDataArgs args) {
    {
      std::lock_guard lock(mutex_);
      auto it = chunks_.find(args.handle);
      if (it == chunks_.end()) co_return not_found_error(unknown_chunk(args.handle));
      it->second = args.data;
    }
    if (args.replicas.empty()) co_return ForwardDataReply{1};
    Result<transport::Address> next = transport::Address::parse(args.replicas.front());
    if (!next.ok()) co_return next.status().with_context("replica chain");
    args.replicas.erase(args.replicas.begin());
    core::CallOptions options = ctx.child_call_options();
    Result<ForwardDataReply> downstream =
        co_await client_.call(*next, kForwardData, args, std::move(options), asio::use_awaitable);
    if (!downstream.ok()) {
      co_return downstream.status().with_context("forwarding to " + next->to_string());
    }
    co_return ForwardDataReply{downstream->stored_copies + 1};
  }

  codec::Client& client_;
  std::mutex mutex_;  // guards chunks_
  std::map<ChunkHandle, std::vector<std::byte>> chunks_;
};

// The client's side of the story, with blocking calls from the main thread.
class Story {
 public:
  Story(codec::Client& client, transport::Address master) : client_(client), master_(master) {}

  int run() {
    core::CallOptions options;
    options.timeout = std::chrono::seconds(5);
    Result<GetChunkHandleReply> chunk =
        client_.call(master_, kGetChunkHandle, GetChunkHandleArgs{"/logs/2026-11-25", 0}, options);
    if (!check(chunk.status(), "GetChunkHandle")) return 1;
    std::printf("chunk handle %llu on %zu replicas:",
                static_cast<unsigned long long>(chunk->handle), chunk->replicas.size());
    for (const std::string& replica : chunk->replicas) std::printf(" %s", replica.c_str());
    std::printf("\n");

    Result<GetChunkHandleReply> again =
        client_.call(master_, kGetChunkHandle, GetChunkHandleArgs{"/logs/2026-11-25", 0}, options);
    if (!check(again.status(), "GetChunkHandle again")) return 1;
    expect(again->handle == chunk->handle, "asking again gives the same handle");

    const std::string text = "meshrpc chunk payload";
    ForwardDataArgs write{
        chunk->handle, to_bytes(text), {chunk->replicas.begin() + 1, chunk->replicas.end()}};
    Result<transport::Address> primary = transport::Address::parse(chunk->replicas.front());
    if (!check(primary.status(), "primary address")) return 1;
    Result<ForwardDataReply> written = client_.call(*primary, kForwardData, write, options);
    if (!check(written.status(), "ForwardData")) return 1;
    std::printf("ForwardData stored %d copies along the chain\n", written->stored_copies);
    expect(written->stored_copies == static_cast<int32_t>(chunk->replicas.size()),
           "every replica in the chain stored the data");

    for (const std::string& replica : chunk->replicas) read_back(replica, chunk->handle, text);
    bad_requests(options);
    std::printf(failures_ == 0 ? "chunks_demo: ok\n" : "chunks_demo: %d checks FAILED\n",
                failures_);
    return failures_ == 0 ? 0 : 1;
  }

 private:
  static std::vector<std::byte> to_bytes(std::string_view text) {
    const auto* data = reinterpret_cast<const std::byte*>(text.data());
    return {data, data + text.size()};
  }

  void read_back(const std::string& replica, ChunkHandle handle, const std::string& expected) {
    Result<ReadChunkReply> read =
        client_.call(*transport::Address::parse(replica), kReadChunk, ReadChunkArgs{handle});
    if (!check(read.status(), "ReadChunk from " + replica)) return;
    const std::string text(reinterpret_cast<const char*>(read->data.data()), read->data.size());
    std::printf("ReadChunk from %s: \"%s\"\n", replica.c_str(), text.c_str());
    expect(text == expected, "replica " + replica + " holds the data");
  }

  // Bad input gets a clear Status, and the servers stay up.
  void bad_requests(const core::CallOptions& options) {
    Result<GetChunkHandleReply> relative =
        client_.call(master_, kGetChunkHandle, GetChunkHandleArgs{"logs", -1}, options);
    show("GetChunkHandle{\"logs\", -1}", relative.status(), StatusCode::kInvalidArgument);
    // Raw bytes stay available: field 2 (chunk_index) sent as a string does not decode.
    Result<Buffer> garbage = client_.call<Buffer>(master_, std::string(kGetChunkHandle.name),
                                                  Buffer::copy_of("\x12\x03two"), options);
    show("GetChunkHandle with undecodable bytes", garbage.status(), StatusCode::kInvalidArgument);
    Result<ReadChunkReply> missing = client_.call(master_, kReadChunk, ReadChunkArgs{7}, options);
    show("ReadChunk sent to the master", missing.status(), StatusCode::kUnimplemented);
  }

  void show(const std::string& what, const Status& status, StatusCode expected) {
    std::printf("%s -> %s\n", what.c_str(), status.to_string().c_str());
    expect(status.code() == expected,
           what + " fails with " + std::string(status_code_name(expected)));
  }

  bool check(const Status& status, const std::string& what) {
    if (status.ok()) return true;
    std::printf("%s failed: %s\n", what.c_str(), status.to_string().c_str());
    ++failures_;
    return false;
  }

  void expect(bool holds, const std::string& what) {
    if (holds) return;
    std::printf("check failed: %s\n", what.c_str());
    ++failures_;
  }

  codec::Client& client_;
  transport::Address master_;
  int failures_ = 0;
};

int run() {
  runtime::RealEnv env(runtime::RealEnv::Options{.threads = 2});
  transport::TcpNetwork network(env);
  codec::Client client(env, network);  // shared by the servers' handlers and the story

  // The services outlive the servers that call into them (declared first, destroyed last).
  std::vector<std::unique_ptr<ChunkServer>> chunk_servers;
  std::unique_ptr<Master> master;
  std::vector<std::unique_ptr<codec::Server>> servers;
  std::vector<transport::Address> chunk_addresses;
  for (int i = 0; i < 3; ++i) {
    chunk_servers.push_back(std::make_unique<ChunkServer>(client));
    servers.push_back(std::make_unique<codec::Server>(env, network));
    chunk_servers.back()->register_on(*servers.back());
    Result<transport::Address> address = servers.back()->start({"127.0.0.1", 0});
    if (!address.ok()) {
      std::fprintf(stderr, "chunks_demo: %s\n", address.status().to_string().c_str());
      return 1;
    }
    std::printf("chunk server %d listening on %s\n", i, address->to_string().c_str());
    chunk_addresses.push_back(*address);
  }
  master = std::make_unique<Master>(client, chunk_addresses);
  servers.push_back(std::make_unique<codec::Server>(env, network));
  master->register_on(*servers.back());
  Result<transport::Address> master_address = servers.back()->start({"127.0.0.1", 0});
  if (!master_address.ok()) {
    std::fprintf(stderr, "chunks_demo: %s\n", master_address.status().to_string().c_str());
    return 1;
  }
  std::printf("master listening on %s\n", master_address->to_string().c_str());
  return Story(client, *master_address).run();
  // Servers, then the client's channels, close here, while the env's threads still run.
}

}  // namespace chunks

int main() { return chunks::run(); }
