// Streams: calls that carry many messages each way (server-streaming, client-streaming,
// bidirectional), on raw bytes. The typed layers build on these.
//
//   // client: a bidirectional stream; destroying the handle cancels the call on both sides
//   core::ClientStream chat = channel.open_stream("/demo.Chat/Talk", {.idle_timeout = 5s});
//   Status sent = co_await chat.async_write(Buffer::copy_of("hi"), asio::use_awaitable);
//   core::ReadResult got = co_await chat.async_read(asio::use_awaitable);
//   co_await chat.async_writes_done(asio::use_awaitable);  // half-close: still reading
//   Status final = co_await chat.async_finish(asio::use_awaitable);
//
//   // server: the handler reads and writes until it returns its final status
//   server.register_stream_method("/demo.Chat/Talk",
//       [](core::ServerContext& ctx, core::ServerStream& stream) -> awaitable<Status> {
//         for (;;) {
//           core::ReadResult in = co_await stream.async_read(asio::use_awaitable);
//           if (!in.message) co_return in.error ? in.error->status : Status();
//           Status sent = co_await stream.async_write(*std::move(in.message), asio::use_awaitable);
//           if (!sent.ok()) co_return sent;
//         }
//       });
//
// Reads: each read gives one message, in the order sent; or the end of the stream (the
// peer finished writing; on the client, the call's final status is then OK); or an error,
// whose kind says what to do about it (StreamError).
//
// Writes complete when the message is in the connection's send queue within the flow-control
// window: a write to a peer that does not read suspends once the stream's window is used,
// so a fast writer is paced by a slow reader instead of growing memory. One write at a time
// is the intended use; further writes queue behind it in order.
//
// Flow control: every stream has its own window (wire::Limits::initial_stream_window_bytes,
// 1 MiB) and the connection has one (16 MiB). The receiver grants a stream's window as the
// application reads, but grants the connection's as soon as bytes arrive, so a stream whose
// reader stalls buffers at most one unread message plus one window and never stalls the
// other streams of its connection.
//
// Timeouts: the call's deadline (CallOptions) bounds the whole stream; idle_timeout bounds
// each read: a read that gets no message within it ends with StreamError::kTimeout, and the
// stream stays usable (read again, or abort()).
//
// Threading: a stream's operations may be started from any thread; handlers run on their
// associated executor (else the stream's). Lifetime: a ClientStream's destructor aborts the
// call if it has not finished (CANCEL reaches the server, whose handler sees cancellation);
// operations in flight then complete with an error.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/status.h"
#include "meshrpc/core/call.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::core {

// Why a read or write did not give a message (seed 002's StreamError).
struct StreamError {
  enum class Kind : uint8_t {
    // No message within the idle timeout. The stream is still open: read again or abort.
    kTimeout,
    // The call broke below the application: the connection failed or closed (UNAVAILABLE),
    // the deadline passed (DEADLINE_EXCEEDED), it was cancelled (CANCELLED), or the peer
    // reset the stream. Whether to retry depends on what the stream had done.
    kTransport,
    // The server's handler ended the call with this non-OK status.
    kApplication,
  };
  Kind kind = Kind::kTransport;
  Status status;

  std::string to_string() const;
};

std::string_view stream_error_kind_name(StreamError::Kind kind);

// One read's outcome: a message, the end of the stream, or an error.
struct ReadResult {
  std::optional<Buffer> message;
  std::optional<StreamError> error;

  bool end_of_stream() const { return !message && !error; }
};

struct StreamOptions {
  // Deadline, metadata and wait-for-ready of the whole call (idempotency is not used:
  // streams are not retried by the core).
  CallOptions call = {};
  // Bounds each read; nullopt: reads wait until a message, the end, or the deadline.
  std::optional<runtime::Duration> idle_timeout = std::nullopt;
};

namespace detail {

class StreamCore;
// A stream that has already ended with `status` (for invokers that cannot open streams).
std::shared_ptr<StreamCore> failed_stream(asio::any_io_executor executor, Status status);

// What a StreamCore sends through: one stream of one connection. Called on the stream's
// executor only.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual Status send(Buffer message, bool end_stream) = 0;
  virtual Status send_end() = 0;
  // True when what was sent still waits for flow-control window (on_writable() follows).
  virtual bool wants_writable() = 0;
  // The application took one message.
  virtual void message_read() = 0;
};

// The state of one stream shared by its handle and its connection: received messages,
// waiting reads and writes, the final outcome. Everything runs on executor().
class StreamCore : public std::enable_shared_from_this<StreamCore> {
 public:
  using ReadHandler = asio::any_completion_handler<void(ReadResult)>;
  using StatusHandler = asio::any_completion_handler<void(Status)>;
  // Ends the call from this side (abort); set by whoever opened the stream.
  using AbortHook = std::function<void(Status)>;

  // `env` may be null only without an idle timeout.
  StreamCore(runtime::Env* env, asio::any_io_executor executor,
             std::optional<runtime::Duration> idle_timeout, bool is_client);

  asio::any_io_executor executor() const { return executor_; }

  // --- the application's side: from any thread ---------------------------------------------
  void read(ReadHandler handler);
  // `last`: this side writes nothing more after it (half-close).
  void write(Buffer message, bool last, StatusHandler handler);
  void writes_done(StatusHandler handler);
  // The call's final status, once it has ended.
  void finish(StatusHandler handler);
  void abort(Status why);

  // --- the connection's side: on executor() ----------------------------------------------
  void set_abort_hook(AbortHook hook) { abort_hook_ = std::move(hook); }
  void attach(std::unique_ptr<StreamSink> sink);
  void on_message(Buffer message);
  // The peer writes nothing more.
  void on_end_of_stream();
  // The call ended: OK, or an error of `kind` (application or transport).
  void on_finished(Status status, StreamError::Kind kind);
  void on_writable();
  // Messages received and not yet read (for tests and status pages).
  size_t unread_messages() const { return inbound_.size(); }
  bool finished() const { return finished_; }

 private:
  struct PendingWrite {
    explicit PendingWrite(StatusHandler h) : handler(std::move(h)) {}
    Buffer message;
    bool last = false;
    bool end_only = false;  // writes_done(): no message
    StatusHandler handler;
  };

  void serve_reads();
  void pump_writes();
  void arm_idle_timer();
  void stop_idle_timer();
  void on_idle_timeout(uint64_t generation);
  Status write_failure() const;

  runtime::Env* env_;
  asio::any_io_executor executor_;
  const std::optional<runtime::Duration> idle_timeout_;
  const bool is_client_;
  std::unique_ptr<StreamSink> sink_;
  AbortHook abort_hook_;

  std::deque<Buffer> inbound_;
  bool end_of_stream_ = false;
  std::optional<ReadHandler> reader_;
  std::deque<PendingWrite> writes_;
  bool write_in_flight_ = false;  // the front write waits for on_writable()
  bool writes_closed_ = false;    // a last write or writes_done() was sent
  std::deque<StatusHandler> finishers_;

  bool finished_ = false;
  Status final_status_;
  StreamError::Kind final_kind_ = StreamError::Kind::kTransport;

  asio::cancellation_signal idle_cancel_;
  bool idle_armed_ = false;
  uint64_t idle_generation_ = 0;
};

}  // namespace detail

// The operations both ends share.
class StreamOps {
 public:
  template <typename CompletionToken>
  auto async_read(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(ReadResult)>(
        [core = core_](auto handler) {
          core->read(detail::StreamCore::ReadHandler(std::move(handler)));
        },
        token);
  }
  template <typename CompletionToken>
  auto async_write(Buffer message, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Status)>(
        [core = core_](auto handler, Buffer m) {
          core->write(std::move(m), false, detail::StreamCore::StatusHandler(std::move(handler)));
        },
        token, std::move(message));
  }
  // Writes `message` and half-closes in one frame.
  template <typename CompletionToken>
  auto async_write_last(Buffer message, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Status)>(
        [core = core_](auto handler, Buffer m) {
          core->write(std::move(m), true, detail::StreamCore::StatusHandler(std::move(handler)));
        },
        token, std::move(message));
  }

  // Messages received and not yet read; approximate off the stream's executor.
  size_t unread_messages() const { return core_ ? core_->unread_messages() : 0; }
  // Where the stream's work runs (completions without an executor of their own run here).
  asio::any_io_executor executor() const { return core_->executor(); }

 protected:
  StreamOps() = default;
  explicit StreamOps(std::shared_ptr<detail::StreamCore> core) : core_(std::move(core)) {}
  std::shared_ptr<detail::StreamCore> core_;
};

// The client's handle of a stream (Channel::open_stream). Move-only; destroying it aborts an
// unfinished call.
class ClientStream : public StreamOps {
 public:
  ClientStream() = default;
  explicit ClientStream(std::shared_ptr<detail::StreamCore> core) : StreamOps(std::move(core)) {}
  ~ClientStream();
  ClientStream(ClientStream&&) noexcept = default;
  ClientStream& operator=(ClientStream&& other) noexcept;
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  // Half-close: the client writes nothing more; it may go on reading.
  template <typename CompletionToken>
  auto async_writes_done(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Status)>(
        [core = core_](auto handler) {
          core->writes_done(detail::StreamCore::StatusHandler(std::move(handler)));
        },
        token);
  }
  // The call's final status (the server's trailers, or why the call broke), once it ended.
  template <typename CompletionToken>
  auto async_finish(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Status)>(
        [core = core_](auto handler) {
          core->finish(detail::StreamCore::StatusHandler(std::move(handler)));
        },
        token);
  }
  // Cancels the call on both sides; reads and writes in flight end with kTransport
  // CANCELLED. Idempotent.
  void abort();

  bool valid() const { return core_ != nullptr; }
};

// The server handler's end of a stream. Lives as long as the handler's coroutine.
class ServerStream : public StreamOps {
 public:
  explicit ServerStream(std::shared_ptr<detail::StreamCore> core) : StreamOps(std::move(core)) {}
};

}  // namespace meshrpc::core
