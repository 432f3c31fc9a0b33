// Listener: accepts incoming ByteStreams on an address.
//
// A listener has one or more shards, each tied to one executor; a stream accepted on a
// shard lives on that shard's executor. TCP has one shard per io thread (each its own
// SO_REUSEPORT socket: the kernel spreads connections, and no accepted socket changes
// threads); a simulated host has one. A server runs one accept loop per shard.
//
// Threading: async_accept(shard) only on shard_executor(shard); close() from any executor
// of the listener's env is posted where needed. Lifetime: outstanding accepts complete
// with operation_aborted on close() or destruction.
#pragma once

#include <cstddef>
#include <memory>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/byte_stream.h"

namespace meshrpc::transport {

class Listener {
 public:
  using AcceptHandler = asio::any_completion_handler<void(error_code, std::unique_ptr<ByteStream>)>;

  virtual ~Listener() = default;

  // The bound address; with the real port when listening on port 0.
  virtual Address local_address() const = 0;
  virtual size_t shard_count() const = 0;
  virtual asio::any_io_executor shard_executor(size_t shard) = 0;

  // handler(error_code, stream): the next connection accepted on `shard`.
  template <typename CompletionToken>
  auto async_accept(size_t shard, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, std::unique_ptr<ByteStream>)>(
        [this, shard](auto handler) { initiate_accept(shard, AcceptHandler(std::move(handler))); },
        token);
  }

  // Stops listening: new connections are refused, pending accepts end with
  // operation_aborted. Idempotent.
  virtual void close() = 0;

 protected:
  virtual void initiate_accept(size_t shard, AcceptHandler handler) = 0;
};

struct ListenOptions {
  // Pending connections the kernel (or simulated host) queues before refusing: 1024 rides out
  // reconnect storms of a few hundred clients without refusals.
  int backlog = 1024;
};

}  // namespace meshrpc::transport
