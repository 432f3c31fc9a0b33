#include "meshrpc/core/stream.h"

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <utility>

#include "connection_sink.h"

namespace meshrpc::core {

std::string_view stream_error_kind_name(StreamError::Kind kind) {
  switch (kind) {
    case StreamError::Kind::kTimeout:
      return "Timeout";
    case StreamError::Kind::kTransport:
      return "Transport";
    case StreamError::Kind::kApplication:
      return "Application";
  }
  return "Unknown";
}

std::string StreamError::to_string() const {
  return std::string(stream_error_kind_name(kind)) + "(" + status.to_string() + ")";
}

namespace detail {
namespace {

// Completes `handler` with `args` on its associated executor (else `via`), never inline:
// post() goes through `via` and on to the handler's own executor.
template <typename Handler, typename... Args>
void deliver(Handler handler, const asio::any_io_executor& via, Args&&... args) {
  asio::post(via, asio::append(std::move(handler), std::forward<Args>(args)...));
}

}  // namespace

Status ConnectionSink::send(Buffer message, bool end_stream) {
  auto connection = connection_.lock();
  if (!connection) return unavailable_error("connection closed");
  const size_t bytes = message.size();
  Status sent = connection->send_message(stream_id_, std::move(message), end_stream);
  if (sent.ok() && sent_bytes_) sent_bytes_->add(bytes);
  if (sent.ok() && !end_stream) connection->expect_more_output();
  return sent;
}

Status ConnectionSink::send_end() {
  auto connection = connection_.lock();
  if (!connection) return unavailable_error("connection closed");
  return connection->send_end_stream(stream_id_);
}

bool ConnectionSink::wants_writable() {
  auto connection = connection_.lock();
  return connection && connection->wants_writable(stream_id_);
}

void ConnectionSink::message_read() {
  if (auto connection = connection_.lock()) connection->message_read(stream_id_);
}

std::shared_ptr<StreamCore> failed_stream(asio::any_io_executor executor, Status status) {
  auto core = std::make_shared<StreamCore>(nullptr, std::move(executor), std::nullopt, true);
  core->on_finished(std::move(status), StreamError::Kind::kTransport);
  return core;
}

StreamCore::StreamCore(runtime::Env* env, asio::any_io_executor executor,
                       std::optional<runtime::Duration> idle_timeout, bool is_client)
    : env_(env),
      executor_(std::move(executor)),
      idle_timeout_(idle_timeout),
      is_client_(is_client) {}

// --- the application's side ---------------------------------------------------------------

// read() and write() run inline when called on the stream's executor (the usual case: a
// coroutine on it awaiting the operation), saving a scheduler turn per message; they only
// queue work and never complete the handler inline, so this cannot recurse.
void StreamCore::read(ReadHandler handler) {
  asio::dispatch(executor_, [self = shared_from_this(), h = std::move(handler)]() mutable {
    if (self->reader_) {
      ReadResult busy;
      busy.error = StreamError{StreamError::Kind::kTransport,
                               failed_precondition_error("a read of this stream is in progress")};
      return deliver(std::move(h), self->executor_, std::move(busy));
    }
    self->reader_.emplace(std::move(h));
    self->serve_reads();
  });
}

void StreamCore::write(Buffer message, bool last, StatusHandler handler) {
  asio::dispatch(executor_, [self = shared_from_this(), m = std::move(message), last,
                             h = std::move(handler)]() mutable {
    PendingWrite& write = self->writes_.emplace_back(std::move(h));
    write.message = std::move(m);
    write.last = last;
    self->pump_writes();
  });
}

void StreamCore::writes_done(StatusHandler handler) {
  asio::post(executor_, [self = shared_from_this(), h = std::move(handler)]() mutable {
    PendingWrite& write = self->writes_.emplace_back(std::move(h));
    write.end_only = true;
    self->pump_writes();
  });
}

void StreamCore::finish(StatusHandler handler) {
  asio::post(executor_, [self = shared_from_this(), h = std::move(handler)]() mutable {
    if (self->finished_) return deliver(std::move(h), self->executor_, self->final_status_);
    self->finishers_.push_back(std::move(h));
  });
}

void StreamCore::abort(Status why) {
  asio::post(executor_, [self = shared_from_this(), why = std::move(why)]() mutable {
    if (self->finished_) return;
    if (self->abort_hook_) {
      // Ends the call where it lives (CANCEL to the peer); on_finished() follows.
      auto hook = std::move(self->abort_hook_);
      hook(why);
    }
    self->on_finished(std::move(why), StreamError::Kind::kTransport);
  });
}

// --- the connection's side ----------------------------------------------------------------

void StreamCore::attach(std::unique_ptr<StreamSink> sink) {
  if (finished_) return;
  sink_ = std::move(sink);
  pump_writes();
}

void StreamCore::on_message(Buffer message) {
  if (finished_) return;
  inbound_.push_back(std::move(message));
  serve_reads();
}

void StreamCore::on_end_of_stream() {
  end_of_stream_ = true;
  serve_reads();
}

void StreamCore::on_finished(Status status, StreamError::Kind kind) {
  if (finished_) return;
  finished_ = true;
  final_status_ = std::move(status);
  final_kind_ = kind;
  sink_.reset();
  abort_hook_ = nullptr;
  stop_idle_timer();
  write_in_flight_ = false;
  pump_writes();  // every waiting write fails now
  serve_reads();
  auto finishers = std::move(finishers_);
  finishers_.clear();
  for (auto& finisher : finishers) deliver(std::move(finisher), executor_, final_status_);
}

void StreamCore::on_writable() {
  if (!write_in_flight_ || writes_.empty()) return;
  write_in_flight_ = false;
  PendingWrite done = std::move(writes_.front());
  writes_.pop_front();
  deliver(std::move(done.handler), executor_, Status());
  pump_writes();
}

// --- internals ----------------------------------------------------------------------------

// What a read gets when nothing is left to read: the end of the stream, or why it broke. On
// the client the end is the call's end (the server's trailers); on the server, the client's
// half-close.
void StreamCore::serve_reads() {
  if (!reader_) return;
  ReadResult result;
  if (!inbound_.empty()) {
    result.message = std::move(inbound_.front());
    inbound_.pop_front();
    if (sink_) sink_->message_read();
  } else if (finished_ && !final_status_.ok()) {
    result.error = StreamError{final_kind_, final_status_};
  } else if (!finished_ && !(end_of_stream_ && !is_client_)) {
    return arm_idle_timer();  // nothing yet: the read waits
  }
  stop_idle_timer();
  ReadHandler handler = std::move(*reader_);
  reader_.reset();
  deliver(std::move(handler), executor_, std::move(result));
}

Status StreamCore::write_failure() const {
  if (!final_status_.ok()) return final_status_;
  return failed_precondition_error("the call has finished");
}

void StreamCore::pump_writes() {
  while (!writes_.empty() && !write_in_flight_) {
    PendingWrite& front = writes_.front();
    Status status;
    if (finished_) {
      status = write_failure();
    } else if (writes_closed_) {
      status = failed_precondition_error("writes of this stream are already closed");
    } else if (!sink_) {
      return;  // not sent yet: writes wait for the stream to open
    } else {
      writes_closed_ = front.last || front.end_only;
      status =
          front.end_only ? sink_->send_end() : sink_->send(std::move(front.message), front.last);
      if (status.ok() && !front.end_only && sink_->wants_writable()) {
        write_in_flight_ = true;  // completes in on_writable()
        return;
      }
    }
    PendingWrite done = std::move(front);
    writes_.pop_front();
    deliver(std::move(done.handler), executor_, std::move(status));
  }
}

void StreamCore::arm_idle_timer() {
  if (!idle_timeout_ || env_ == nullptr || idle_armed_ || finished_) return;
  idle_armed_ = true;
  const uint64_t generation = ++idle_generation_;
  env_->async_wait_for(
      *idle_timeout_,
      asio::bind_cancellation_slot(
          idle_cancel_.slot(),
          asio::bind_executor(executor_, [self = shared_from_this(), generation](error_code ec) {
            if (!ec) self->on_idle_timeout(generation);
          })));
}

void StreamCore::stop_idle_timer() {
  if (!idle_armed_) return;
  idle_armed_ = false;
  ++idle_generation_;
  idle_cancel_.emit(asio::cancellation_type::terminal);
  idle_cancel_.slot().clear();
}

void StreamCore::on_idle_timeout(uint64_t generation) {
  if (!idle_armed_ || generation != idle_generation_) return;
  idle_armed_ = false;
  idle_cancel_.slot().clear();
  if (!reader_) return;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*idle_timeout_).count();
  ReadResult result;
  result.error = StreamError{StreamError::Kind::kTimeout,
                             deadline_exceeded_error("no message within the idle timeout of " +
                                                     std::to_string(ms) + " ms")};
  ReadHandler handler = std::move(*reader_);
  reader_.reset();
  deliver(std::move(handler), executor_, std::move(result));
}

}  // namespace detail

ClientStream::~ClientStream() {
  if (core_) core_->abort(cancelled_error("stream handle dropped"));
}

ClientStream& ClientStream::operator=(ClientStream&& other) noexcept {
  if (this != &other) {
    if (core_) core_->abort(cancelled_error("stream handle replaced"));
    core_ = std::move(other.core_);
  }
  return *this;
}

void ClientStream::abort() {
  if (core_) core_->abort(cancelled_error("stream aborted by the client"));
}

}  // namespace meshrpc::core
