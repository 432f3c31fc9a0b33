#include "connection_admission.h"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <chrono>

#include "meshrpc/base/buffer.h"
#include "meshrpc/wire/frame_encoder.h"
#include "meshrpc/wire/settings.h"

namespace meshrpc::core::detail {
namespace {

using namespace asio::experimental::awaitable_operators;

// How long a refused connection may take to read why: a round trip, with room to spare.
constexpr auto kLingerTime = std::chrono::seconds(1);

// SETTINGS (the protocol's first frame from a server) then GOAWAY refusing every stream.
std::string refusal_frames(const Status& status) {
  wire::Limits defaults;
  wire::FrameEncoder encoder(defaults);
  Buffer out;
  encoder.encode_settings(wire::settings_for(defaults), out).ignore_error();
  encoder.encode_goaway(wire::GoAway{0, status.code(), std::string(status.message())}, out)
      .ignore_error();
  return out.to_string();
}

// Writes the refusal, half-closes, then reads (and drops) whatever the client had already sent
// until it closes too or the linger time is up. Closing with unread bytes would send a reset,
// and a reset can destroy the refusal before the client reads it.
awaitable<void> linger(runtime::Env& env, std::shared_ptr<transport::ByteStream> stream,
                       std::string frames) {
  const runtime::TimePoint deadline = env.now() + kLingerTime;
  auto written =
      co_await (asio::async_write(*stream, asio::buffer(frames), use_nothrow_awaitable) ||
                env.async_wait_until(deadline, use_nothrow_awaitable));
  if (written.index() == 0 && !std::get<0>(std::get<0>(written))) {
    stream->shutdown_send();
    std::array<char, 4096> sink;
    while (true) {
      auto read = co_await (stream->async_read_some(asio::buffer(sink), use_nothrow_awaitable) ||
                            env.async_wait_until(deadline, use_nothrow_awaitable));
      if (read.index() == 1 || std::get<0>(std::get<0>(read))) break;
    }
  }
  stream->abort();
}

class TicketedStream final : public transport::ByteStream {
 public:
  TicketedStream(std::unique_ptr<ByteStream> inner,
                 std::unique_ptr<ConnectionAdmission::Ticket> ticket)
      : ticket_(std::move(ticket)), inner_(std::move(inner)) {}

  executor_type get_executor() override { return inner_->get_executor(); }
  void shutdown_send() override { inner_->shutdown_send(); }
  void close() override { inner_->close(); }
  void abort() override { inner_->abort(); }
  transport::Address local_address() const override { return inner_->local_address(); }
  transport::Address remote_address() const override { return inner_->remote_address(); }
  std::shared_ptr<const transport::PeerIdentity> peer_identity() const override {
    return inner_->peer_identity();
  }

 protected:
  void initiate_read(std::span<const asio::mutable_buffer> buffers, ReadHandler handler) override {
    inner_->async_read_some(buffers, std::move(handler));
  }
  void initiate_write(std::span<const asio::const_buffer> buffers, WriteHandler handler) override {
    inner_->async_write_some(buffers, std::move(handler));
  }
  void initiate_wait_readable(WaitHandler handler) override {
    inner_->async_wait_readable(std::move(handler));
  }

 private:
  // Destroyed after inner_ (members go in reverse): the place is given back once closed.
  std::unique_ptr<ConnectionAdmission::Ticket> ticket_;
  std::unique_ptr<ByteStream> inner_;
};

}  // namespace

ConnectionAdmission::Decision ConnectionAdmission::admit(const std::string& host) {
  Decision decision;
  std::lock_guard lock(mutex_);
  size_t& from_host = per_host_[host];
  if (open_ >= max_connections_) {
    decision.refusal = Refusal::kMaxConnections;
    decision.status = resource_exhausted_error(
        "server has max_connections " + std::to_string(max_connections_) + " connections open");
  } else if (from_host >= max_connections_per_peer_) {
    decision.refusal = Refusal::kMaxConnectionsPerPeer;
    decision.status = resource_exhausted_error("peer " + host + " has max_connections_per_peer " +
                                               std::to_string(max_connections_per_peer_) +
                                               " connections open to this server");
  } else {
    ++open_;
    ++from_host;
    decision.ticket = std::make_unique<Ticket>(shared_from_this(), host);
    return decision;
  }
  if (from_host == 0) per_host_.erase(host);
  return decision;
}

size_t ConnectionAdmission::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}

void ConnectionAdmission::release(const std::string& host) {
  std::lock_guard lock(mutex_);
  --open_;
  auto it = per_host_.find(host);
  if (it != per_host_.end() && --it->second == 0) per_host_.erase(it);
}

void ConnectionAdmission::refuse(runtime::Env& env, std::unique_ptr<transport::ByteStream> stream,
                                 Status status, bool explain) {
  if (!explain || lingering_.fetch_add(1, std::memory_order_relaxed) >= kMaxLingering) {
    if (explain) lingering_.fetch_sub(1, std::memory_order_relaxed);
    stream->abort();
    return;
  }
  std::shared_ptr<transport::ByteStream> shared = std::move(stream);
  asio::any_io_executor executor = shared->get_executor();
  asio::co_spawn(executor, linger(env, shared, refusal_frames(status)),
                 [self = shared_from_this()](std::exception_ptr) {
                   self->lingering_.fetch_sub(1, std::memory_order_relaxed);
                 });
}

std::unique_ptr<transport::ByteStream> hold_ticket(
    std::unique_ptr<transport::ByteStream> stream,
    std::unique_ptr<ConnectionAdmission::Ticket> ticket) {
  return std::make_unique<TicketedStream>(std::move(stream), std::move(ticket));
}

}  // namespace meshrpc::core::detail
