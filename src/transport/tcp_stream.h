// TcpStream: a connected TCP socket as a ByteStream. Private to transport/: TcpNetwork
// creates them (connect) and TcpListener does (accept).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <span>
#include <utility>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/byte_stream.h"

namespace meshrpc::transport {

// The host (IP literal, no brackets) and port of `endpoint`.
Address to_address(const asio::ip::tcp::endpoint& endpoint);

// A completion handler for a socket operation that lets `on_complete(handler, args...)` see
// (and convert) the results before `handler` gets them. It presents `handler`'s executor,
// cancellation slot and allocator as its own, so the socket operation completes where the
// caller expects and a per-operation cancel through the caller's slot reaches the socket.
template <typename Handler, typename OnComplete>
class AdaptedCompletion {
 public:
  using executor_type = asio::any_completion_executor;
  using cancellation_slot_type = asio::cancellation_slot;
  using allocator_type = typename Handler::allocator_type;

  // `fallback`: where to complete if `handler` has no executor of its own.
  AdaptedCompletion(Handler handler, asio::any_io_executor fallback, OnComplete on_complete)
      : handler_(std::move(handler)),
        fallback_(std::move(fallback)),
        on_complete_(std::move(on_complete)) {}

  executor_type get_executor() const noexcept {
    return asio::get_associated_executor(handler_, fallback_);
  }
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return handler_.get_cancellation_slot();
  }
  allocator_type get_allocator() const noexcept { return handler_.get_allocator(); }

  template <typename... Args>
  void operator()(Args&&... args) {
    on_complete_(std::move(handler_), std::forward<Args>(args)...);
  }

 private:
  Handler handler_;
  asio::any_io_executor fallback_;
  OnComplete on_complete_;
};

// Threading and lifetime as ByteStream: the stream belongs to its socket's executor (an io
// thread of the RealEnv); operations, close(), abort() and shutdown_send() are called there.
// Destroying it closes the socket; outstanding operations complete with operation_aborted.
//
// Once a read ends with eof or an error (other than operation_aborted), later reads complete
// at once with the same error, and likewise for writes. The socket would report nothing new,
// and Asio's reactor, having found it exhausted, would wait for a readiness event that never
// comes: without this, a second read after eof hangs.
class TcpStream final : public ByteStream {
 public:
  // `socket` is connected. Sets TCP_NODELAY: RPC frames are written whole, and holding a
  // small frame back until the previous one is acknowledged (Nagle) adds up to a delayed-ACK
  // timeout (40 ms on Linux) to a call's latency.
  explicit TcpStream(asio::ip::tcp::socket socket);
  ~TcpStream() override = default;

  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  executor_type get_executor() override { return socket_.get_executor(); }

  void shutdown_send() override;
  void close() override;
  void abort() override;

  Address local_address() const override { return local_address_; }
  Address remote_address() const override { return remote_address_; }

 protected:
  void initiate_read(std::span<const asio::mutable_buffer> buffers, ReadHandler handler) override;
  void initiate_write(std::span<const asio::const_buffer> buffers, WriteHandler handler) override;
  void initiate_wait_readable(WaitHandler handler) override;

 private:
  // Sticky failures. Shared with operations in flight, which may complete after the stream is
  // gone. Each field is written by its direction's completion and read when the next operation
  // of that direction starts, which the one-outstanding-operation rule orders after it.
  struct Failures {
    error_code read;
    error_code write;
  };

  asio::ip::tcp::socket socket_;
  std::shared_ptr<Failures> failures_ = std::make_shared<Failures>();
  // Read once at construction: a closed or reset socket no longer reports its endpoints.
  Address local_address_;
  Address remote_address_;
};

}  // namespace meshrpc::transport
