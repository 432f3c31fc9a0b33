// The meshrpc frame: types, flags, the 16-byte header, and the typed payloads.
//
// docs/protocol.md is the specification; this header is its vocabulary. Every frame is
//
//    0               1               2               3
//    +---------------+---------------+---------------+---------------+
//  0 |                     length (u32 LE, payload bytes)            |
//    +---------------+---------------+---------------+---------------+
//  4 |  type (u8)    |  flags (u8)   |   reserved (u16, send 0)      |
//    +---------------+---------------+---------------+---------------+
//  8 |                                                               |
//    +                   stream_id (u64 LE, 0 = connection)          +
// 12 |                                                               |
//    +---------------+---------------+---------------+---------------+
// 16 |                 payload (length bytes) ...
//
// followed by `length` payload bytes. The encoder (frame_encoder.h) and the decoder
// (frame_decoder.h) draw each payload layout beside the code that handles it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/status.h"

namespace meshrpc::wire {

inline constexpr size_t kFrameHeaderBytes = 16;

// Values of the type byte. Any other value is an extension frame: skipped unless it carries
// kFlagMandatory. An enum class over u8 holds unknown values too, so a FrameHeader can
// describe a frame this version does not know.
enum class FrameType : uint8_t {
  kSettings = 1,
  kHeaders = 2,
  kData = 3,
  kTrailers = 4,
  kCancel = 5,
  kWindowUpdate = 6,
  kPing = 7,
  kGoAway = 8,
};

// "SETTINGS", "HEADERS", ...; "UNKNOWN" for extension types. For error messages.
constexpr std::string_view frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::kSettings:
      return "SETTINGS";
    case FrameType::kHeaders:
      return "HEADERS";
    case FrameType::kData:
      return "DATA";
    case FrameType::kTrailers:
      return "TRAILERS";
    case FrameType::kCancel:
      return "CANCEL";
    case FrameType::kWindowUpdate:
      return "WINDOW_UPDATE";
    case FrameType::kPing:
      return "PING";
    case FrameType::kGoAway:
      return "GOAWAY";
  }
  return "UNKNOWN";
}

constexpr bool is_known_frame_type(FrameType type) {
  return static_cast<uint8_t>(type) >= 1 && static_cast<uint8_t>(type) <= 8;
}

// HEADERS, DATA, TRAILERS and CANCEL belong to one call: stream_id != 0.
constexpr bool is_stream_scoped(FrameType type) {
  return type == FrameType::kHeaders || type == FrameType::kData || type == FrameType::kTrailers ||
         type == FrameType::kCancel;
}

// SETTINGS, PING and GOAWAY belong to the connection: stream_id == 0. WINDOW_UPDATE is
// neither: stream 0 means the connection window.
constexpr bool is_connection_scoped(FrameType type) {
  return type == FrameType::kSettings || type == FrameType::kPing || type == FrameType::kGoAway;
}

// Flags. Meanings depend on the type; bits a type does not define must be sent as 0 and
// are ignored on receipt, so later versions can give them meaning.
//
// On any type: a receiver that does not know the type must fail the connection instead of
// skipping the frame. Lets a later version add frames that must not be silently dropped.
inline constexpr uint8_t kFlagMandatory = 0x80;
// SETTINGS, PING: this frame acknowledges the peer's.
inline constexpr uint8_t kFlagAck = 0x01;
// HEADERS, DATA: the sender sends nothing more on this stream (half-close).
inline constexpr uint8_t kFlagEndStream = 0x01;
// DATA: the message continues in the next DATA frame of this stream.
inline constexpr uint8_t kFlagContinued = 0x02;
// DATA: the message part is compressed (reserved; see Limits::allow_compression).
inline constexpr uint8_t kFlagCompressed = 0x04;
// DATA: no message at all, only END_STREAM (a pure half-close); the payload is empty.
inline constexpr uint8_t kFlagNoMessage = 0x08;
// TRAILERS: the server did not run the handler, so the call is safe to retry.
inline constexpr uint8_t kFlagRejectedBeforeDispatch = 0x02;

// The fixed 16-byte header, decoded. The reserved bytes are not kept: they are sent as 0
// and ignored on receipt.
struct FrameHeader {
  uint32_t length = 0;
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  uint64_t stream_id = 0;

  bool has_flag(uint8_t flag) const { return (flags & flag) != 0; }
  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

// One complete frame. The payload shares the blocks the bytes were read into (no copy).
struct Frame {
  FrameHeader header;
  Buffer payload;

  friend bool operator==(const Frame&, const Frame&) = default;
};

// Call metadata, in order, duplicates allowed (like HTTP headers). Keys are bytes; the core
// layer decides naming rules.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// HEADERS payload: opens a call (client -> server) or carries response metadata
// (server -> client, with an empty method and zero timeout). END_STREAM is a frame flag,
// passed beside this struct.
struct Headers {
  // Relative deadline. Deadlines travel as durations so the two clocks need not agree.
  // Zero means "no deadline": a caller whose deadline has already passed must fail the call
  // locally instead of sending 0. Never negative.
  std::chrono::nanoseconds timeout{0};
  std::string method;  // "/package.Service/Method"; at most 65535 bytes.
  Metadata metadata;

  friend bool operator==(const Headers&, const Headers&) = default;
};

// TRAILERS payload: the call's final status (server -> client), ending the stream.
struct Trailers {
  Status status;  // code, message and details; an OK status carries neither text.
  bool rejected_before_dispatch = false;
  Metadata metadata;

  friend bool operator==(const Trailers&, const Trailers&) = default;
};

// CANCEL payload: abandon a stream. The client cancels with kCancelled; a server may reset
// a stream with another code (e.g. kResourceExhausted). Never kOk.
struct Cancel {
  StatusCode code = StatusCode::kCancelled;
  std::string reason;

  friend bool operator==(const Cancel&, const Cancel&) = default;
};

// WINDOW_UPDATE payload: more bytes the peer may send on the stream (or on the connection,
// stream 0). Never 0.
struct WindowUpdate {
  uint32_t increment = 0;

  friend bool operator==(const WindowUpdate&, const WindowUpdate&) = default;
};

// PING payload: 8 opaque bytes (kept as a little-endian u64), echoed back with ack set.
struct Ping {
  bool ack = false;
  uint64_t opaque = 0;

  friend bool operator==(const Ping&, const Ping&) = default;
};

// GOAWAY payload: the sender will process no stream above last_stream_id; streams above it
// were not processed and are safe to retry elsewhere. kOk means a graceful shutdown.
struct GoAway {
  uint64_t last_stream_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string reason;

  friend bool operator==(const GoAway&, const GoAway&) = default;
};

}  // namespace meshrpc::wire
