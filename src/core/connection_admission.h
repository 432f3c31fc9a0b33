// ConnectionAdmission: the server's count of open connections, in total and per peer IP
// address, and what happens to a connection past either limit (ServerOptions::max_connections,
// max_connections_per_peer).
//
// Every accepted socket counts until it is closed, whatever it turns out to speak: a Ticket
// is held by the server's connection object, and by the stream handed to the HTTP handler
// (TicketedStream), and gives its place back when destroyed. A connection past a limit is
// refused: a meshrpc client is told why in a GOAWAY (after the server's SETTINGS, as the
// protocol expects), so its calls fail with that reason instead of a bare reset.
//
// Threading: admit() and Ticket destruction from any thread (one mutex, taken once per
// connection, never per call).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "meshrpc/base/status.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/byte_stream.h"

namespace meshrpc::core::detail {

class ConnectionAdmission : public std::enable_shared_from_this<ConnectionAdmission> {
 public:
  // A place among the open connections; destroying it gives the place back.
  class Ticket {
   public:
    Ticket(std::shared_ptr<ConnectionAdmission> owner, std::string host)
        : owner_(std::move(owner)), host_(std::move(host)) {}
    ~Ticket() { owner_->release(host_); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    std::shared_ptr<ConnectionAdmission> owner_;
    std::string host_;
  };
  enum class Refusal { kNone, kMaxConnections, kMaxConnectionsPerPeer };
  struct Decision {
    std::unique_ptr<Ticket> ticket;  // null when refused
    Refusal refusal = Refusal::kNone;
    Status status;  // why, when refused: RESOURCE_EXHAUSTED naming the limit
  };

  ConnectionAdmission(size_t max_connections, size_t max_connections_per_peer)
      : max_connections_(max_connections), max_connections_per_peer_(max_connections_per_peer) {}

  Decision admit(const std::string& host);
  size_t open_connections() const;

  // Tells a refused connection why (when `explain`: SETTINGS then GOAWAY with `status`) and
  // closes it once the peer has read that, or after a second. At most kMaxLingering refused
  // connections linger like this at once; past that they are closed at once, so a connect
  // flood cannot hold more sockets than the limits allow plus these few.
  void refuse(runtime::Env& env, std::unique_ptr<transport::ByteStream> stream, Status status,
              bool explain);
  static constexpr size_t kMaxLingering = 64;

 private:
  void release(const std::string& host);

  const size_t max_connections_;
  const size_t max_connections_per_peer_;
  mutable std::mutex mutex_;
  size_t open_ = 0;
  std::unordered_map<std::string, size_t> per_host_;
  std::atomic<size_t> lingering_{0};
};

// A stream that holds its connection's Ticket for as long as it lives: the stream a server
// hands to its HTTP handler, which may keep it long after the server's own object is gone.
std::unique_ptr<transport::ByteStream> hold_ticket(
    std::unique_ptr<transport::ByteStream> stream,
    std::unique_ptr<ConnectionAdmission::Ticket> ticket);

}  // namespace meshrpc::core::detail
