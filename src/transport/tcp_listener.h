// TcpListener: the sharded SO_REUSEPORT listener of TcpNetwork (see transport/tcp.h for the
// design). Private to transport/.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/listener.h"

namespace meshrpc::transport {

// Binds one acceptor per io thread of `env` to `endpoint` and listens on each. `requested`
// is the address the caller asked for; errors name it.
Result<std::unique_ptr<Listener>> listen_tcp(runtime::RealEnv& env,
                                             const asio::ip::tcp::endpoint& endpoint,
                                             const Address& requested,
                                             const ListenOptions& options);

// Threading: shard i's acceptor is touched only on env.executor(i): accepts are started
// there (Listener contract) and close() reaches it by dispatching there, which is what makes
// close() and destruction safe from any thread. Lifetime: each shard is shared with the
// closes dispatched to it, so it outlives a listener destroyed from another thread until its
// own thread has closed it.
class TcpListener final : public Listener {
 public:
  struct Shard;

  TcpListener(std::vector<std::shared_ptr<Shard>> shards, Address local_address);
  ~TcpListener() override;

  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  Address local_address() const override { return local_address_; }
  size_t shard_count() const override { return shards_.size(); }
  asio::any_io_executor shard_executor(size_t shard) override;
  void close() override;

 protected:
  void initiate_accept(size_t shard, AcceptHandler handler) override;

 private:
  std::vector<std::shared_ptr<Shard>> shards_;
  Address local_address_;
  std::atomic<bool> close_requested_{false};
};

}  // namespace meshrpc::transport
