// Connection: one multiplexed meshrpc connection over a ByteStream, the part that client and
// server share. It runs the handshake (preface, SETTINGS), reads and decodes frames
// (handling every complete frame of a read before the next read), answers PING, tracks
// keepalive, enforces flow control in both directions and writes through a FrameWriter (one
// gathered write per executor turn). Stream-level frames go to the Delegate, which is the
// client or server stream table.
//
// A peer's frame-level protocol violation sends GOAWAY with the decoder's message and closes
// this connection only; a blackholed peer is declared dead by keepalive within
// interval + timeout; either way the delegate hears on_closed(status) exactly once.
//
// Threading: everything on the stream's executor, including every call into this class and
// every delegate callback. Lifetime: shared; the read loop and keepalive hold a reference
// until the connection closes. The delegate must call detach() before it dies.
#pragma once

#include <array>
#include <boost/asio/cancellation_signal.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/counter.h"
#include "meshrpc/base/status.h"
#include "meshrpc/core/flow_control.h"
#include "meshrpc/core/frame_writer.h"
#include "meshrpc/core/keepalive.h"
#include "meshrpc/core/peer_guard.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/byte_stream.h"
#include "meshrpc/wire/frame_decoder.h"
#include "meshrpc/wire/frame_encoder.h"
#include "meshrpc/wire/settings.h"

namespace meshrpc::core {

struct ConnectionOptions {
  // What we accept; advertised to the peer in SETTINGS and enforced by our decoder.
  wire::Limits limits;
  KeepaliveOptions keepalive;
  FrameWriter::Options writer;
  // Incremented each time a stream's outgoing message has to wait for flow-control window
  // (its stream's or the connection's): once per wait, not per retry. Set by the server and
  // the channel from their metrics; null: not counted. Must outlive the connection.
  Counter* flow_control_stalls = nullptr;
  // What a peer may do before it counts as abuse (peer_guard.h): floods of PING, SETTINGS and
  // cancelled streams, slow sending, idling, pending bytes. Past a limit the connection
  // closes with a GOAWAY naming it (max_pending_bytes refuses one stream instead).
  PeerLimits peer_limits;
  // Incremented once per limit hit, indexed by PeerGuard::Violation; null: not counted. Must
  // outlive the connection.
  std::array<Counter, PeerGuard::kViolationCount>* limit_hits = nullptr;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  class Delegate {
   public:
    virtual ~Delegate() = default;
    virtual void on_headers(uint64_t stream_id, wire::Headers headers, bool end_stream) = 0;
    // One whole message (DATA fragments joined), or none (`has_message` false) for a pure
    // half-close. `end_stream`: the peer sends nothing more on this stream.
    virtual void on_message(uint64_t stream_id, Buffer message, bool has_message,
                            bool end_stream) = 0;
    virtual void on_trailers(uint64_t stream_id, wire::Trailers trailers) = 0;
    virtual void on_cancel(uint64_t stream_id, wire::Cancel cancel) = 0;
    // A stream-level failure found by the connection (an inbound message over
    // max_message_bytes); the stream's remaining DATA is dropped.
    virtual void on_stream_error(uint64_t stream_id, const Status& status) = 0;
    // The peer will process no stream above goaway.last_stream_id.
    virtual void on_goaway(const wire::GoAway& goaway) = 0;
    // The connection is finished; no callback follows.
    virtual void on_closed(const Status& status) = 0;
    // Every message queued on the stream has gone to the writer (see wants_writable()). May
    // be called from inside any sending call of this class: do not send from it, post.
    virtual void on_stream_writable(uint64_t stream_id) { (void)stream_id; }
    // The peer's SETTINGS changed send_limits() (more concurrent streams, say).
    virtual void on_peer_settings() {}
  };

  static std::shared_ptr<Connection> create(runtime::Env& env,
                                            std::shared_ptr<transport::ByteStream> stream,
                                            wire::Role role, ConnectionOptions options,
                                            Delegate* delegate);

  // Starts the handshake, the read loop and keepalive. The client sends the preface and
  // SETTINGS at once and may send calls right away; the server first reads the preface.
  void start();
  // Server side, before start(): the preface was already read off the stream (by the
  // server's protocol sniffing), so the read loop decodes frames from the first byte.
  void preface_consumed() { preface_pending_ = false; }

  asio::any_io_executor executor() { return stream_->get_executor(); }
  bool closed() const { return closed_; }
  // Limits for what we send (the peer's SETTINGS combined with ours; defaults until then).
  const wire::Limits& send_limits() const { return send_limits_; }
  const ConnectionOptions& options() const { return options_; }
  transport::Address remote_address() const { return stream_->remote_address(); }
  std::shared_ptr<const transport::PeerIdentity> peer_identity() const {
    return stream_->peer_identity();
  }

  // --- sending (all fail with the closing status once closed) ------------------------------
  [[nodiscard]] Status send_headers(uint64_t stream_id, const wire::Headers& headers,
                                    bool end_stream);
  // One message, split into frames by the peer's max frame size and sent as the flow-control
  // windows allow; what does not fit waits for WINDOW_UPDATE. Messages of one stream keep
  // their order. RESOURCE_EXHAUSTED if it exceeds the peer's max_message_bytes.
  [[nodiscard]] Status send_message(uint64_t stream_id, Buffer message, bool end_stream);
  // Half-close without a message.
  [[nodiscard]] Status send_end_stream(uint64_t stream_id);
  [[nodiscard]] Status send_trailers(uint64_t stream_id, const wire::Trailers& trailers);
  [[nodiscard]] Status send_cancel(uint64_t stream_id, const wire::Cancel& cancel);
  // Tells the peer we will process no stream above `last_stream_id`.
  [[nodiscard]] Status send_goaway(uint64_t last_stream_id, StatusCode code,
                                   std::string_view reason);
  // --- streams read and written by the application at its own pace -------------------------
  // The stream's receive window is granted as the application reads, not as messages
  // arrive, so a reader that stops back-pressures the peer. Bytes are held back while a
  // message of the stream waits unread: the stream then buffers at most one unread message
  // plus one window of bytes (a message larger than the window still completes, because
  // the fragments of a message are granted while nothing is unread).
  void hold_receive_grants(uint64_t stream_id);
  // The application took one message of the stream: held grants go out when none is left.
  void message_read(uint64_t stream_id);
  // True when messages queued on the stream still wait for flow-control window; then
  // on_stream_writable(stream_id) follows once they have all gone to the writer.
  bool wants_writable(uint64_t stream_id);

  // Memory a delegate holds for the peer (a unary request until its handler returns): counts
  // with the messages still arriving toward PeerLimits::max_pending_bytes.
  void hold_request_bytes(size_t bytes) { held_request_bytes_ += bytes; }
  void release_request_bytes(size_t bytes) { held_request_bytes_ -= bytes; }
  size_t pending_request_bytes() const { return inbound_bytes_ + held_request_bytes_; }

  // A stream writer is likely to send again soon (its write completes next turn): the
  // writer waits a turn before flushing so the next message joins this one's write.
  void expect_more_output() { writer_->expect_more(); }

  // The stream is finished on our side: its flow-control state and queued output go.
  // (After send_trailers this happens by itself once the trailers are written.)
  void forget_stream(uint64_t stream_id);

  // Closes now: sends nothing more, aborts the stream, reports `status` to the delegate.
  void close(const Status& status);
  // The delegate is going away: no more callbacks; closes the connection.
  void detach();

  // Observability.
  size_t buffered_output_bytes() const;
  uint64_t frames_received() const { return frames_received_; }
  const FrameWriter& writer() const { return *writer_; }

 private:
  // Output of one stream in order: messages wait for flow-control window; frames that need
  // none (trailers, a bare end of stream) wait behind them.
  struct OutboundItem {
    Buffer message;  // message bytes not yet sent
    bool is_message = true;
    bool end_stream = false;
    Buffer raw_frames;             // pre-encoded frames when !is_message
    bool finishes_stream = false;  // trailers: the stream's state goes once they are out
  };
  struct StreamState {
    SendWindow send;
    ReceiveWindow receive;
    std::deque<OutboundItem> outbox;
    Buffer inbound;           // fragments of the message being received
    bool discarding = false;  // the stream failed; its remaining DATA is dropped
    // hold_receive_grants(): grants wait for message_read() while `unread` > 0.
    bool hold_grants = false;
    uint32_t unread = 0;
    uint64_t held_bytes = 0;
    bool notify_writable = false;  // wants_writable() said true: tell when drained
    bool stalled = false;          // output waits for window (counted once per wait)
  };

  Connection(runtime::Env& env, std::shared_ptr<transport::ByteStream> stream, wire::Role role,
             ConnectionOptions options, Delegate* delegate);

  awaitable<void> read_loop();
  awaitable<Status> read_preface();
  awaitable<void> keepalive_loop();
  Status handle_frame(wire::Frame frame);
  Status handle_settings(const wire::Frame& frame);
  Status handle_data(wire::Frame frame);
  Status handle_window_update(const wire::Frame& frame);
  StreamState& stream_state(uint64_t stream_id);
  void erase_stream(std::unordered_map<uint64_t, StreamState>::iterator it);
  // Counts the violation and gives the status that closes the connection for it.
  Status violated(PeerGuard::Violation violation);
  // The timer for keepalive and the guard: whichever comes first.
  runtime::TimePoint next_timer() const;
  void check_guard(runtime::TimePoint now);
  // Sends what the windows allow of the stream's outbox; false if it is still blocked.
  bool pump_outbox(uint64_t stream_id, StreamState& state);
  void pump_blocked_streams();
  Status enqueue(uint64_t stream_id, OutboundItem item);
  Status check_open() const;
  void grant_stream(uint64_t stream_id, StreamState& state, uint64_t bytes);
  uint32_t stream_receive_window() const;
  // Ends the connection: `goaway` (if any) is flushed before the stream closes.
  void finish(const Status& status, bool send_goaway);

  runtime::Env& env_;
  std::shared_ptr<transport::ByteStream> stream_;
  wire::Role role_;
  ConnectionOptions options_;
  Delegate* delegate_;
  wire::FrameDecoder decoder_;
  wire::FrameEncoder encoder_;
  wire::Limits send_limits_;
  std::shared_ptr<FrameWriter> writer_;
  KeepaliveMonitor keepalive_;
  asio::cancellation_signal keepalive_cancel_;
  SendWindow connection_send_;
  ReceiveWindow connection_receive_;
  std::unordered_map<uint64_t, StreamState> streams_;
  std::deque<uint64_t> blocked_streams_;  // waiting for the connection window, in order
  bool closed_ = false;
  bool preface_pending_ = true;  // server side only
  bool settings_acked_ = false;  // the peer acknowledged our SETTINGS
  Status close_status_;
  uint64_t frames_received_ = 0;
  PeerGuard guard_;
  bool peer_settings_received_ = false;
  uint64_t streams_opened_ = 0;    // streams ever opened, either side
  size_t inbound_bytes_ = 0;       // fragments of messages still arriving, all streams
  size_t held_request_bytes_ = 0;  // hold_request_bytes() less release_request_bytes()
};

}  // namespace meshrpc::core
