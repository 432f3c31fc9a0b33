#include "meshrpc/core/frame_writer.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "meshrpc/runtime/buggify.h"
#include "meshrpc/transport/errors.h"

namespace meshrpc::core {

std::shared_ptr<FrameWriter> FrameWriter::create(std::shared_ptr<transport::ByteStream> stream,
                                                 Options options, ErrorHandler on_error) {
  return std::shared_ptr<FrameWriter>(
      new FrameWriter(std::move(stream), options, std::move(on_error)));
}

FrameWriter::FrameWriter(std::shared_ptr<transport::ByteStream> stream, Options options,
                         ErrorHandler on_error)
    : stream_(std::move(stream)), options_(options), on_error_(std::move(on_error)) {}

Status FrameWriter::enqueue(Buffer frames) {
  if (!status_.ok()) return status_;
  if (queued_bytes() + frames.size() > options_.max_queued_bytes) {
    return resource_exhausted_error(
        "connection write queue of " + std::to_string(queued_bytes() + frames.size()) +
        " bytes would exceed max_queued_bytes " + std::to_string(options_.max_queued_bytes));
  }
  pending_.append(std::move(frames));
  flush_soon();
  return Status();
}

void FrameWriter::flush_soon() {
  // While a write is in flight its completion schedules the next flush.
  if (flush_scheduled_ || writing_ || !status_.ok()) return;
  flush_scheduled_ = true;
  flush_deferrals_ = 0;
  post_flush();
}

void FrameWriter::post_flush() {
  asio::post(stream_->get_executor(), [self = shared_from_this()] { self->on_flush_turn(); });
}

void FrameWriter::on_flush_turn() {
  // BUGGIFY: a write late by a turn, as under a busy executor.
  const bool step_aside = (expect_more_ || MESHRPC_BUGGIFY) && status_.ok() &&
                          !close_after_flush_ && pending_.size() < kCorkBytes &&
                          flush_deferrals_ < kMaxFlushDeferrals;
  expect_more_ = false;
  if (step_aside) {
    ++flush_deferrals_;
    post_flush();
    return;
  }
  flush_scheduled_ = false;
  if (!writing_ && status_.ok() && !pending_.empty()) write_pending();
  close_if_done();
}

void FrameWriter::close_after_flush() {
  if (close_after_flush_) return;
  close_after_flush_ = true;
  if (pending_.empty()) {
    close_if_done();
  } else {
    flush_soon();
  }
}

void FrameWriter::close_if_done() {
  if (close_after_flush_ && !writing_ && (pending_.empty() || !status_.ok())) {
    close_after_flush_ = false;
    if (status_.ok()) status_ = unavailable_error("connection closed");
    stream_->close();
  }
}

void FrameWriter::write_pending() {
  writing_ = true;
  in_flight_ = std::move(pending_);
  pending_.clear();
  iovecs_.clear();
  for (const Slice& slice : in_flight_.slices()) iovecs_.emplace_back(slice.data(), slice.size());
  ++writes_;
  asio::async_write(*stream_, iovecs_,
                    [self = shared_from_this()](const error_code& ec, size_t bytes) {
                      self->on_written(ec, bytes);
                    });
}

void FrameWriter::on_written(const error_code& ec, size_t bytes) {
  writing_ = false;
  bytes_written_ += bytes;
  in_flight_.clear();
  if (ec) {
    status_ = transport::to_status(ec, "connection write");
    pending_.clear();
    if (on_error_) on_error_(status_);
    close_if_done();
    return;
  }
  // Frames queued during the write leave now, or, when a stream writer announced more, in
  // the next flush with what joins them meanwhile.
  if (!pending_.empty()) {
    if (expect_more_) {
      flush_soon();
    } else {
      write_pending();
    }
  } else {
    close_if_done();
  }
}

}  // namespace meshrpc::core
