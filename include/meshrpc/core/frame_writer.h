// FrameWriter: the single writer of a connection's ByteStream, coalescing frames.
//
// Frames are encoded straight into pending() (so the 16-byte headers of many frames share
// one block) and flush_soon() schedules one gathered write at the end of the current
// executor turn: all frames produced by the handlers of one turn leave in one writev. Frames
// queued while a write is in flight leave together in the next write, so under load the
// number of writes falls far below the number of frames.
//
// Corking for stream writers: a stream writer produces one message per executor turn (its
// write completes, its coroutine resumes, it writes again), so the rule above would cost a
// system call per message. When expect_more() says such a writer is about to write again,
// the scheduled flush steps aside (posts itself again) for a turn, and keeps doing so while
// writers keep announcing more, until kCorkBytes are pending or it has stepped aside
// kMaxFlushDeferrals times. Turns, not time: no timer, deterministic under SimEnv, and a
// writer that stops costs one turn (well under a microsecond) before its output leaves.
//
// Errors: the first failed write stops the writer for good; on_error is called once with the
// Status (UNAVAILABLE naming the transport error), and later enqueues fail with it.
// Bound: at most max_queued_bytes wait (flow control is the real back-pressure; this catches
// a caller that ignores it) before enqueue() answers RESOURCE_EXHAUSTED naming the limit.
//
// Threading: the stream's executor only. Lifetime: shared; an in-flight write keeps the
// writer (and the stream, which it shares) alive until it completes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/status.h"
#include "meshrpc/base/unique_function.h"
#include "meshrpc/transport/byte_stream.h"

namespace meshrpc::core {

class FrameWriter : public std::enable_shared_from_this<FrameWriter> {
 public:
  // A flush writes at once when this much is pending: large enough that per-write costs
  // vanish under small messages, small enough to keep the pipe to the kernel busy.
  static constexpr size_t kCorkBytes = 64 * 1024;
  // Turns a flush may step aside while output keeps growing: bounds the added latency.
  static constexpr uint32_t kMaxFlushDeferrals = 1024;

  struct Options {
    // 64 MiB: several full flow-control windows of every stream of a busy connection; more
    // means a caller is not honouring flow control.
    size_t max_queued_bytes = 64 * 1024 * 1024;
  };
  using ErrorHandler = UniqueFunction<void(const Status&)>;

  static std::shared_ptr<FrameWriter> create(std::shared_ptr<transport::ByteStream> stream,
                                             Options options, ErrorHandler on_error);

  // Replaces the handler told about the first failed write (before any write starts).
  void set_error_handler(ErrorHandler on_error) { on_error_ = std::move(on_error); }

  // The output not yet handed to the stream; encode frames into it, then flush_soon().
  Buffer& pending() { return pending_; }
  // Schedules a write of everything pending (once per executor turn, however often called).
  void flush_soon();
  // More output is likely within a turn (a stream writer is about to be resumed): the
  // scheduled flush steps aside at least once for it.
  void expect_more() { expect_more_ = true; }
  // Writes what is pending, then closes the stream gracefully (a GOAWAY reaches the peer
  // before the close). Nothing queued afterwards is written.
  void close_after_flush();
  // pending().append(frames) + flush_soon(), with the bound and sticky-error checks.
  [[nodiscard]] Status enqueue(Buffer frames);

  // OK, or why the writer stopped.
  const Status& status() const { return status_; }
  // Bytes queued and not yet confirmed written (pending plus in flight).
  size_t queued_bytes() const { return pending_.size() + in_flight_.size(); }
  bool idle() const { return !writing_ && !flush_scheduled_ && pending_.empty(); }
  uint64_t writes() const { return writes_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  FrameWriter(std::shared_ptr<transport::ByteStream> stream, Options options,
              ErrorHandler on_error);
  void post_flush();
  void on_flush_turn();
  void write_pending();
  void close_if_done();
  void on_written(const error_code& ec, size_t bytes);

  std::shared_ptr<transport::ByteStream> stream_;
  Options options_;
  ErrorHandler on_error_;
  Status status_;
  Buffer pending_;
  Buffer in_flight_;
  std::vector<asio::const_buffer> iovecs_;  // reused: no allocation per write
  bool writing_ = false;
  bool flush_scheduled_ = false;
  bool expect_more_ = false;
  uint32_t flush_deferrals_ = 0;  // times the scheduled flush has stepped aside
  bool close_after_flush_ = false;
  uint64_t writes_ = 0;
  uint64_t bytes_written_ = 0;
};

}  // namespace meshrpc::core
