#include "meshrpc/core/connection.h"

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <string>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/status_macros.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/wire/preface.h"

namespace meshrpc::core {
namespace {

std::string stream_name(uint64_t stream_id) { return "stream " + std::to_string(stream_id); }

}  // namespace

std::shared_ptr<Connection> Connection::create(runtime::Env& env,
                                               std::shared_ptr<transport::ByteStream> stream,
                                               wire::Role role, ConnectionOptions options,
                                               Delegate* delegate) {
  return std::shared_ptr<Connection>(
      new Connection(env, std::move(stream), role, std::move(options), delegate));
}

Connection::Connection(runtime::Env& env, std::shared_ptr<transport::ByteStream> stream,
                       wire::Role role, ConnectionOptions options, Delegate* delegate)
    : env_(env),
      stream_(std::move(stream)),
      role_(role),
      options_(std::move(options)),
      delegate_(delegate),
      decoder_(role, options_.limits),
      encoder_(options_.limits),
      // Until the peer's SETTINGS arrive we assume it runs the defaults, as we do.
      send_limits_(wire::Limits{}),
      keepalive_(options_.keepalive, env.now()),
      connection_send_(wire::Limits{}.connection_window_bytes),
      connection_receive_(options_.limits.connection_window_bytes),
      guard_(options_.peer_limits, env.now()) {
  writer_ = FrameWriter::create(stream_, options_.writer, nullptr);
}

void Connection::start() {
  auto self = shared_from_this();
  // Weak: a write in flight keeps the writer alive, possibly past this connection.
  writer_->set_error_handler([weak = weak_from_this()](const Status& status) {
    if (auto connection = weak.lock()) connection->finish(status, /*send_goaway=*/false);
  });
  if (role_ == wire::Role::kClient) {
    writer_->pending().append_copy(wire::preface_view());
  }
  encoder_.encode_settings(wire::settings_for(options_.limits), writer_->pending()).ignore_error();
  writer_->flush_soon();
  asio::co_spawn(
      executor(), [self]() { return self->read_loop(); }, asio::detached);
  asio::co_spawn(
      executor(), [self]() { return self->keepalive_loop(); }, asio::detached);
}

// --- reading ------------------------------------------------------------------------------

awaitable<Status> Connection::read_preface() {
  Buffer input;
  while (input.size() < wire::kPreface.size()) {
    std::span<char> space = input.prepare(wire::kPreface.size());
    auto [ec, n] = co_await stream_->async_read_some(
        asio::buffer(space.data(), wire::kPreface.size() - input.size()), use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "reading the connection preface");
    input.commit(n);
  }
  if (wire::classify_connection_start(input) != wire::ConnectionStart::kMeshrpc) {
    co_return internal_error("connection does not start with the meshrpc preface");
  }
  co_return Status();
}

awaitable<void> Connection::read_loop() {
  auto self = shared_from_this();
  if (role_ == wire::Role::kServer && preface_pending_) {
    Status status = co_await read_preface();
    if (!status.ok()) co_return finish(status, /*send_goaway=*/false);
  }
  while (!closed_) {
    // Every complete frame of the last read is handled before the next read.
    while (!closed_) {
      auto next = decoder_.next();
      if (!next.ok()) co_return finish(next.status(), /*send_goaway=*/true);
      if (!next->has_value()) break;
      ++frames_received_;
      Status status = handle_frame(std::move(**next));
      if (!status.ok()) co_return finish(status, /*send_goaway=*/true);
    }
    if (closed_) co_return;
    // A peer that makes us answer (PING acks, refusals) but never reads the answers would
    // grow our queue without bound; no GOAWAY, since it would not be read either.
    if (writer_->queued_bytes() > options_.peer_limits.max_pending_bytes) {
      co_return finish(violated(PeerGuard::Violation::kUnreadOutput), /*send_goaway=*/false);
    }
    // Wait for bytes holding no buffer, so an idle connection costs no read block; the read
    // that follows does not wait.
    auto [wait_ec] = co_await stream_->async_wait_readable(use_nothrow_awaitable);
    if (closed_) co_return;
    if (wait_ec) co_return finish(transport::to_status(wait_ec, "connection read"), false);
    Buffer input;
    std::span<char> space = input.prepare(Block::kDefaultBytes);
    auto [ec, n] = co_await stream_->async_read_some(asio::buffer(space.data(), space.size()),
                                                     use_nothrow_awaitable);
    if (closed_) co_return;
    if (ec == asio::error::eof)
      co_return finish(unavailable_error("connection closed by peer"), false);
    if (ec) co_return finish(transport::to_status(ec, "connection read"), false);
    input.commit(n);
    guard_.on_bytes_received(n);
    keepalive_.on_frame_received(env_.now());
    // A copy shares the bytes but not the writable tail of the block, which would otherwise
    // stay referenced by the decoder's emptied input while the connection idles.
    decoder_.feed(Buffer(static_cast<const Buffer&>(input)));
  }
}

Status Connection::handle_frame(wire::Frame frame) {
  const uint64_t id = frame.header.stream_id;
  switch (frame.header.type) {
    case wire::FrameType::kSettings:
      return handle_settings(frame);
    case wire::FrameType::kPing: {
      MESHRPC_ASSIGN_OR_RETURN(wire::Ping ping, wire::decode_ping(frame));
      if (ping.ack) return Status();
      if (auto violation = guard_.on_ping(env_.now()); violation != PeerGuard::Violation::kNone) {
        return violated(violation);
      }
      ping.ack = true;
      MESHRPC_RETURN_IF_ERROR(encoder_.encode_ping(ping, writer_->pending()));
      writer_->flush_soon();
      return Status();
    }
    case wire::FrameType::kWindowUpdate:
      return handle_window_update(frame);
    case wire::FrameType::kData:
      return handle_data(std::move(frame));
    case wire::FrameType::kHeaders: {
      MESHRPC_ASSIGN_OR_RETURN(wire::Headers headers, wire::decode_headers(frame, options_.limits));
      if (role_ == wire::Role::kServer) stream_state(id);
      if (delegate_) {
        delegate_->on_headers(id, std::move(headers), frame.header.has_flag(wire::kFlagEndStream));
      }
      return Status();
    }
    case wire::FrameType::kTrailers: {
      MESHRPC_ASSIGN_OR_RETURN(wire::Trailers trailers,
                               wire::decode_trailers(frame, options_.limits));
      forget_stream(id);
      if (delegate_) delegate_->on_trailers(id, std::move(trailers));
      return Status();
    }
    case wire::FrameType::kCancel: {
      MESHRPC_ASSIGN_OR_RETURN(wire::Cancel cancel, wire::decode_cancel(frame));
      if (auto violation = guard_.on_cancel(env_.now()); violation != PeerGuard::Violation::kNone) {
        return violated(violation);
      }
      forget_stream(id);
      if (delegate_) delegate_->on_cancel(id, std::move(cancel));
      return Status();
    }
    case wire::FrameType::kGoAway: {
      MESHRPC_ASSIGN_OR_RETURN(wire::GoAway goaway, wire::decode_goaway(frame));
      if (delegate_) delegate_->on_goaway(goaway);
      return Status();
    }
  }
  return Status();
}

Status Connection::handle_settings(const wire::Frame& frame) {
  MESHRPC_ASSIGN_OR_RETURN(wire::Settings settings, wire::decode_settings(frame, options_.limits));
  if (settings.ack) {
    settings_acked_ = true;
    return Status();
  }
  if (auto violation = guard_.on_settings(env_.now()); violation != PeerGuard::Violation::kNone) {
    return violated(violation);
  }
  peer_settings_received_ = true;
  MESHRPC_ASSIGN_OR_RETURN(wire::NegotiatedLimits negotiated,
                           wire::negotiate(options_.limits, settings));
  const wire::Limits& next = negotiated.send;
  // Windows already in use move by the difference, as HTTP/2 does.
  const int64_t stream_delta =
      int64_t{next.initial_stream_window_bytes} - int64_t{send_limits_.initial_stream_window_bytes};
  const int64_t connection_delta =
      int64_t{next.connection_window_bytes} - int64_t{send_limits_.connection_window_bytes};
  for (auto& [id, state] : streams_) state.send.adjust(stream_delta);
  connection_send_.adjust(connection_delta);
  send_limits_ = next;
  MESHRPC_RETURN_IF_ERROR(encoder_.encode_settings(wire::Settings{true, {}}, writer_->pending()));
  writer_->flush_soon();
  pump_blocked_streams();
  if (delegate_) delegate_->on_peer_settings();
  return Status();
}

Status Connection::handle_window_update(const wire::Frame& frame) {
  MESHRPC_ASSIGN_OR_RETURN(wire::WindowUpdate update, wire::decode_window_update(frame));
  const uint64_t id = frame.header.stream_id;
  if (id == 0) {
    MESHRPC_RETURN_IF_ERROR(connection_send_.grant(update.increment, "connection"));
    pump_blocked_streams();
    return Status();
  }
  auto it = streams_.find(id);
  if (it == streams_.end()) return Status();  // a stream that already finished
  MESHRPC_RETURN_IF_ERROR(it->second.send.grant(update.increment, stream_name(id)));
  pump_outbox(id, it->second);
  writer_->flush_soon();
  return Status();
}

Status Connection::handle_data(wire::Frame frame) {
  const uint64_t id = frame.header.stream_id;
  const size_t bytes = frame.payload.size();
  MESHRPC_RETURN_IF_ERROR(connection_receive_.on_received(bytes, "connection"));
  // Connection window: the bytes are consumed once handed over (or dropped) below.
  auto grant_connection = [this, bytes] {
    if (auto increment = connection_receive_.on_consumed(bytes)) {
      encoder_.encode_window_update(0, {*increment}, writer_->pending()).ignore_error();
      writer_->flush_soon();
    }
  };
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.discarding) {
    grant_connection();  // DATA for a finished or failed stream: dropped
    return Status();
  }
  StreamState& state = it->second;
  MESHRPC_RETURN_IF_ERROR(state.receive.on_received(bytes, stream_name(id)));
  state.inbound.append(std::move(frame.payload));
  inbound_bytes_ += bytes;
  grant_connection();
  Status refused;
  if (state.inbound.size() > options_.limits.max_message_bytes) {
    refused = resource_exhausted_error(
        "received message of at least " + std::to_string(state.inbound.size()) +
        " bytes exceeds max_message_bytes " + std::to_string(options_.limits.max_message_bytes));
  } else if (role_ == wire::Role::kServer &&
             pending_request_bytes() > options_.peer_limits.max_pending_bytes) {
    // Servers only: a client chose its server and the responses it asked for, and may well
    // have many large ones arriving at once.
    refused = violated(PeerGuard::Violation::kPendingBytes);
  }
  if (!refused.ok()) {
    state.discarding = true;
    inbound_bytes_ -= state.inbound.size();
    state.inbound.clear();
    if (delegate_) delegate_->on_stream_error(id, refused);
    return Status();
  }
  const bool end_stream = frame.header.has_flag(wire::kFlagEndStream);
  // Each fragment's bytes count as consumed as they arrive, not when the message is whole: a
  // message larger than the stream window (up to max_message_bytes) completes only if its
  // first fragments are granted first. (After end of stream nothing more comes: no grant.)
  // A stream read at the application's pace holds them back while a message waits unread.
  if (state.hold_grants && state.unread > 0) {
    state.held_bytes += bytes;
  } else if (!end_stream) {
    grant_stream(id, state, bytes);
  }
  if (frame.header.has_flag(wire::kFlagContinued)) return Status();
  inbound_bytes_ -= state.inbound.size();
  Buffer message = std::move(state.inbound);
  state.inbound.clear();
  const bool has_message = !frame.header.has_flag(wire::kFlagNoMessage);
  if (state.hold_grants && has_message) ++state.unread;
  if (delegate_) delegate_->on_message(id, std::move(message), has_message, end_stream);
  return Status();
}

// Until the peer has acknowledged our SETTINGS it may send under the default window (it
// cannot know ours yet, as in HTTP/2): a stream opened then gets the larger of the two.
uint32_t Connection::stream_receive_window() const {
  const uint32_t ours = options_.limits.initial_stream_window_bytes;
  if (settings_acked_) return ours;
  return std::max(ours, wire::Limits{}.initial_stream_window_bytes);
}

void Connection::grant_stream(uint64_t stream_id, StreamState& state, uint64_t bytes) {
  if (auto increment = state.receive.on_consumed(bytes)) {
    encoder_.encode_window_update(stream_id, {*increment}, writer_->pending()).ignore_error();
    writer_->flush_soon();
  }
}

void Connection::hold_receive_grants(uint64_t stream_id) {
  if (!closed_) stream_state(stream_id).hold_grants = true;
}

void Connection::message_read(uint64_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || !it->second.hold_grants || it->second.unread == 0) return;
  StreamState& state = it->second;
  if (--state.unread == 0 && state.held_bytes > 0) {
    grant_stream(stream_id, state, std::exchange(state.held_bytes, 0));
  }
}

bool Connection::wants_writable(uint64_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return false;
  for (const OutboundItem& item : it->second.outbox) {
    if (item.is_message) {
      it->second.notify_writable = true;
      return true;
    }
  }
  return false;
}

// --- sending ------------------------------------------------------------------------------

Status Connection::check_open() const {
  if (closed_) return close_status_;
  return Status();
}

Connection::StreamState& Connection::stream_state(uint64_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    ++streams_opened_;
    it = streams_
             .emplace(stream_id, StreamState{SendWindow(send_limits_.initial_stream_window_bytes),
                                             ReceiveWindow(stream_receive_window()),
                                             {},
                                             {},
                                             false})
             .first;
  }
  return it->second;
}

Status Connection::send_headers(uint64_t stream_id, const wire::Headers& headers, bool end_stream) {
  MESHRPC_RETURN_IF_ERROR(check_open());
  stream_state(stream_id);
  const uint8_t flags = end_stream ? wire::kFlagEndStream : 0;
  MESHRPC_RETURN_IF_ERROR(encoder_.encode_headers(stream_id, flags, headers, writer_->pending()));
  writer_->flush_soon();
  return Status();
}

Status Connection::send_message(uint64_t stream_id, Buffer message, bool end_stream) {
  MESHRPC_RETURN_IF_ERROR(check_open());
  if (message.size() > send_limits_.max_message_bytes) {
    return resource_exhausted_error("message of " + std::to_string(message.size()) +
                                    " bytes exceeds max_message_bytes " +
                                    std::to_string(send_limits_.max_message_bytes));
  }
  return enqueue(stream_id, OutboundItem{std::move(message), true, end_stream, {}});
}

Status Connection::send_end_stream(uint64_t stream_id) {
  MESHRPC_RETURN_IF_ERROR(check_open());
  Buffer frame;
  MESHRPC_RETURN_IF_ERROR(encoder_.encode_data(
      stream_id, wire::kFlagEndStream | wire::kFlagNoMessage, Buffer(), frame));
  return enqueue(stream_id, OutboundItem{{}, false, true, std::move(frame)});
}

Status Connection::send_trailers(uint64_t stream_id, const wire::Trailers& trailers) {
  MESHRPC_RETURN_IF_ERROR(check_open());
  Buffer frame;
  MESHRPC_RETURN_IF_ERROR(encoder_.encode_trailers(stream_id, trailers, frame));
  return enqueue(stream_id, OutboundItem{{}, false, true, std::move(frame), true});
}

Status Connection::send_cancel(uint64_t stream_id, const wire::Cancel& cancel) {
  MESHRPC_RETURN_IF_ERROR(check_open());
  forget_stream(stream_id);  // nothing queued for a cancelled stream goes out
  MESHRPC_RETURN_IF_ERROR(encoder_.encode_cancel(stream_id, cancel, writer_->pending()));
  writer_->flush_soon();
  return Status();
}

Status Connection::send_goaway(uint64_t last_stream_id, StatusCode code, std::string_view reason) {
  MESHRPC_RETURN_IF_ERROR(check_open());
  MESHRPC_RETURN_IF_ERROR(encoder_.encode_goaway(
      wire::GoAway{last_stream_id, code, std::string(reason)}, writer_->pending()));
  writer_->flush_soon();
  return Status();
}

Status Connection::enqueue(uint64_t stream_id, OutboundItem item) {
  StreamState& state = stream_state(stream_id);
  state.outbox.push_back(std::move(item));
  if (state.outbox.size() == 1) pump_outbox(stream_id, state);
  writer_->flush_soon();
  return Status();
}

bool Connection::pump_outbox(uint64_t stream_id, StreamState& state) {
  while (!state.outbox.empty()) {
    OutboundItem& item = state.outbox.front();
    if (!item.is_message) {
      writer_->pending().append(std::move(item.raw_frames));
      if (item.finishes_stream) {
        erase_stream(streams_.find(stream_id));  // `state` dies here
        return true;
      }
      state.outbox.pop_front();
      continue;
    }
    const uint64_t allowance = std::min<uint64_t>(
        {state.send.available(), connection_send_.available(), send_limits_.max_frame_bytes});
    if (allowance == 0 && !item.message.empty()) {
      if (!state.stalled) {
        state.stalled = true;
        if (options_.flow_control_stalls != nullptr) options_.flow_control_stalls->increment();
      }
      if (connection_send_.available() == 0 &&
          std::find(blocked_streams_.begin(), blocked_streams_.end(), stream_id) ==
              blocked_streams_.end()) {
        blocked_streams_.push_back(stream_id);
      }
      return false;
    }
    state.stalled = false;
    Buffer part = item.message.cut_front(allowance);
    const bool last = item.message.empty();
    uint8_t flags = last ? (item.end_stream ? wire::kFlagEndStream : 0) : wire::kFlagContinued;
    state.send.consume(part.size());
    connection_send_.consume(part.size());
    encoder_.encode_data(stream_id, flags, std::move(part), writer_->pending()).ignore_error();
    if (last) state.outbox.pop_front();
  }
  if (state.notify_writable) {
    state.notify_writable = false;
    if (delegate_) delegate_->on_stream_writable(stream_id);
  }
  return true;
}

void Connection::pump_blocked_streams() {
  while (!blocked_streams_.empty() && connection_send_.available() > 0) {
    const uint64_t id = blocked_streams_.front();
    blocked_streams_.pop_front();
    auto it = streams_.find(id);
    // A stream may still be blocked on its own window (a stream the peer refused, its
    // trailers not yet here): it waits for that stream's WINDOW_UPDATE, and must not hold
    // up the streams queued behind it while the connection has window to give them.
    if (it != streams_.end() && !pump_outbox(id, it->second) && connection_send_.available() == 0) {
      break;
    }
  }
  writer_->flush_soon();
}

void Connection::forget_stream(uint64_t stream_id) {
  if (auto it = streams_.find(stream_id); it != streams_.end()) erase_stream(it);
}

void Connection::erase_stream(std::unordered_map<uint64_t, StreamState>::iterator it) {
  inbound_bytes_ -= it->second.inbound.size();
  streams_.erase(it);
}

size_t Connection::buffered_output_bytes() const {
  size_t bytes = writer_->queued_bytes();
  for (const auto& [id, state] : streams_) {
    for (const OutboundItem& item : state.outbox)
      bytes += item.message.size() + item.raw_frames.size();
  }
  return bytes;
}

// --- keepalive and closing ----------------------------------------------------------------

awaitable<void> Connection::keepalive_loop() {
  auto self = shared_from_this();
  // When the env is destroyed with this loop still waiting, Asio destroys the timer (and this
  // frame) but leaves the timer's handler in keepalive_cancel_'s slot; a later finish() (say,
  // from a destructor run by the same teardown) would emit into freed memory. Whoever ends
  // this frame takes the slot's handler with it.
  struct ClearSlot {
    asio::cancellation_signal& signal;
    ~ClearSlot() { signal.slot().clear(); }
  } clear_slot{keepalive_cancel_};
  while (!closed_) {
    auto [ec] = co_await env_.async_wait_until(
        next_timer(),
        asio::bind_cancellation_slot(keepalive_cancel_.slot(), use_nothrow_awaitable));
    if (ec || closed_) co_return;
    const runtime::TimePoint now = env_.now();
    check_guard(now);
    if (closed_ || now < keepalive_.next_check()) continue;
    const auto decision = keepalive_.on_timer(now);
    if (decision.action == KeepaliveMonitor::Action::kSendPing) {
      encoder_.encode_ping(wire::Ping{false, decision.ping_payload}, writer_->pending())
          .ignore_error();
      writer_->flush_soon();
    } else if (decision.action == KeepaliveMonitor::Action::kPeerDead) {
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
          options_.keepalive.interval + options_.keepalive.timeout);
      finish(unavailable_error("peer " + stream_->remote_address().to_string() +
                               " sent nothing for " + std::to_string(waited.count()) +
                               " ms and did not answer a keepalive ping"),
             /*send_goaway=*/false);
    }
  }
}

runtime::TimePoint Connection::next_timer() const {
  return std::min(keepalive_.next_check(), guard_.next_check());
}

void Connection::check_guard(runtime::TimePoint now) {
  if (now < guard_.next_check()) return;
  // Until the peer's SETTINGS arrive its handshake is half-done, like a half-sent frame.
  const bool frame_incomplete = decoder_.buffered_bytes() > 0 || !peer_settings_received_;
  const PeerGuard::Violation violation =
      guard_.on_timer(now, frame_incomplete, streams_.size(), streams_opened_);
  if (violation == PeerGuard::Violation::kNone) return;
  // The GOAWAY names the limit; for idling, nothing is wrong and the peer reconnects when it
  // has calls to make.
  finish(violated(violation), /*send_goaway=*/true);
}

Status Connection::violated(PeerGuard::Violation violation) {
  if (options_.limit_hits != nullptr) {
    (*options_.limit_hits)[static_cast<size_t>(violation)].increment();
  }
  std::string message = guard_.describe(violation);
  MESHRPC_LOG_DEBUG("connection with {}: {}", stream_->remote_address().to_string(), message);
  if (violation == PeerGuard::Violation::kIdle) return unavailable_error(std::move(message));
  return resource_exhausted_error(std::move(message));
}

void Connection::finish(const Status& status, bool send_goaway) {
  if (closed_) return;
  closed_ = true;
  close_status_ = status.ok() ? unavailable_error("connection closed") : status;
  keepalive_cancel_.emit(asio::cancellation_type::terminal);
  if (send_goaway) {
    const uint64_t last = role_ == wire::Role::kServer ? decoder_.highest_opened_stream_id() : 0;
    encoder_
        .encode_goaway(wire::GoAway{last, status.code(), std::string(status.message())},
                       writer_->pending())
        .ignore_error();
  }
  streams_.clear();
  inbound_bytes_ = 0;
  blocked_streams_.clear();
  writer_->close_after_flush();
  if (Delegate* delegate = std::exchange(delegate_, nullptr)) delegate->on_closed(close_status_);
}

void Connection::close(const Status& status) { finish(status, /*send_goaway=*/false); }

void Connection::detach() {
  delegate_ = nullptr;
  finish(cancelled_error("connection closed by its owner"), /*send_goaway=*/false);
}

}  // namespace meshrpc::core
