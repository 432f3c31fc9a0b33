// Decoding frames from a byte stream: the incremental FrameDecoder, which splits bytes into
// frames and enforces every rule visible in the 16-byte header, and the typed payload
// decoders (decode_headers(), ...), which parse one frame's payload.
//
// Errors are protocol violations by the peer. The connection layer answers any of them by
// sending GOAWAY with the status message as the reason and closing that connection only.
// Codes: RESOURCE_EXHAUSTED when the peer went past one of our Limits (frame length, header
// block, metadata entries, SETTINGS entries, stream id); INTERNAL for every other
// violation. Messages name the offending value and the bound, e.g.
// "frame length 9000000 exceeds max_frame_bytes 1048576".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/wire/frame.h"
#include "meshrpc/wire/limits.h"
#include "meshrpc/wire/settings.h"

namespace meshrpc::wire {

// Which end of the connection is decoding. Servers receive calls (HEADERS open streams,
// with strictly increasing ids); clients receive responses.
enum class Role { kClient, kServer };

// Splits a byte stream into frames. Pure: bytes in, frames out, no I/O.
//
// Validates each header as soon as its 16 bytes are in, before waiting for (or buffering)
// the payload, so an oversized length costs nothing. Header-level rules:
//   - length <= max_frame_bytes (all types, including unknown ones);
//   - unknown type: skipped, payload discarded as it arrives, unless MANDATORY is set;
//   - scope: HEADERS/DATA/TRAILERS/CANCEL on stream != 0, SETTINGS/PING/GOAWAY on 0;
//   - stream_id <= max_stream_id;
//   - sizes fixed by the type: PING 8, WINDOW_UPDATE 4, SETTINGS a multiple of 10 with at
//     most max_settings_entries entries (and empty with ACK), HEADERS/TRAILERS at most
//     max_header_bytes;
//   - DATA flags: COMPRESSED only if allow_compression; NO_MESSAGE only with END_STREAM,
//     without CONTINUED, and with an empty payload;
//   - server role: HEADERS ids strictly increase (no reuse, no regression), and no TRAILERS
//     (they travel server to client only).
// Rules inside payloads are the typed decoders' job; stream existence and state are the
// connection's.
//
// A partial frame is never an error: next() waits for more bytes. After an error the
// decoder is stuck: next() returns the same error and feed() drops its input.
//
// Threading: a value used by one thread at a time (the connection's).
class FrameDecoder {
 public:
  FrameDecoder(Role role, const Limits& limits);

  // Appends received bytes (sharing their blocks).
  void feed(Buffer bytes);

  // The next complete frame of a known type (unknown optional frames are skipped), nullopt
  // when more bytes are needed, or the error. Payloads share the fed blocks: no copy.
  Result<std::optional<Frame>> next();

  // Bytes fed and not yet returned or skipped: lets the connection bound its read buffering.
  size_t buffered_bytes() const { return input_.size(); }
  // Server role: the highest stream id a HEADERS opened so far (0 if none).
  uint64_t highest_opened_stream_id() const { return highest_opened_; }
  // OK, or the error that stopped the decoder.
  const Status& status() const { return error_; }

 private:
  // Checks `header` against the rules above; updates highest_opened_ for server HEADERS.
  Status check_header(const FrameHeader& header);
  Status check_sizes(const FrameHeader& header) const;
  Status check_data_flags(const FrameHeader& header) const;
  Status check_role(const FrameHeader& header);
  // Consumes as much of a skipped frame's payload as is buffered; true when it is all gone.
  bool skip_payload();

  Role role_;
  Limits limits_;
  Buffer input_;
  // The header of the frame whose payload we are waiting for, once checked.
  std::optional<FrameHeader> pending_;
  // Payload bytes of an unknown optional frame still to discard.
  uint64_t skip_bytes_ = 0;
  uint64_t highest_opened_ = 0;
  Status error_;
};

// Reads the 16-byte header at `bytes` (at least kFrameHeaderBytes long). No validation.
FrameHeader parse_frame_header(const char* bytes);

// Typed payload decoders. Each takes a frame of its type (as returned by next(): other
// types are a caller bug), checks every inner length against the bytes that remain, so a
// forged length never reads out of bounds nor allocates, and rejects trailing bytes.
//
// HEADERS: INTERNAL if truncated or timeout_ns >= 2^63; RESOURCE_EXHAUSTED above
// max_metadata_entries.
[[nodiscard]] Result<Headers> decode_headers(const Frame& frame, const Limits& limits);
// TRAILERS: also INTERNAL for a code outside 0..16, or an OK code with a message or details.
[[nodiscard]] Result<Trailers> decode_trailers(const Frame& frame, const Limits& limits);
// SETTINGS: INTERNAL if the length is not a multiple of 10 or an ACK has entries;
// RESOURCE_EXHAUSTED above max_settings_entries.
[[nodiscard]] Result<Settings> decode_settings(const Frame& frame, const Limits& limits);
// CANCEL: INTERNAL for a code outside 1..16 (a cancel is never OK).
[[nodiscard]] Result<Cancel> decode_cancel(const Frame& frame);
// WINDOW_UPDATE: INTERNAL for an increment of 0.
[[nodiscard]] Result<WindowUpdate> decode_window_update(const Frame& frame);
[[nodiscard]] Result<Ping> decode_ping(const Frame& frame);
// GOAWAY: INTERNAL for a code outside 0..16.
[[nodiscard]] Result<GoAway> decode_goaway(const Frame& frame);

}  // namespace meshrpc::wire
