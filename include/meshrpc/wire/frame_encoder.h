// Encoding frames into a Buffer, ready for one gathered write.
//
// Control frames (everything but DATA) are written contiguously into the output buffer's
// writable tail, so a batch of small frames lands in one block. A DATA frame's header is
// copied likewise and its message part is appended as shared slices: message bytes are never
// copied.
//
// Producing valid frames is the caller's job, so every error here is the caller's: a value
// that cannot be expressed or exceeds a limit (RESOURCE_EXHAUSTED, naming value and limit),
// or a combination the protocol forbids (INVALID_ARGUMENT). On any error `out` is left
// unchanged, so a caller can fail one call and keep using the connection's batch.
//
// Pure and stateless apart from its Limits (the send limits from negotiate(); before the
// peer's SETTINGS arrive, the defaults). Threading: const methods, safe to share.
#pragma once

#include <cstdint>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/status.h"
#include "meshrpc/wire/frame.h"
#include "meshrpc/wire/limits.h"
#include "meshrpc/wire/settings.h"

namespace meshrpc::wire {

class FrameEncoder {
 public:
  explicit FrameEncoder(const Limits& limits) : limits_(limits) {}

  const Limits& limits() const { return limits_; }

  // HEADERS on `stream_id` (> 0). `flags` may be 0 or kFlagEndStream. The method is at most
  // 65535 bytes, keys at most 65535, entries at most max_metadata_entries, the payload at
  // most max_header_bytes and max_frame_bytes, the timeout not negative.
  [[nodiscard]] Status encode_headers(uint64_t stream_id, uint8_t flags, const Headers& headers,
                                      Buffer& out) const;

  // One DATA frame carrying `message_part` (at most max_frame_bytes). `flags` from
  // kFlagEndStream, kFlagContinued, kFlagCompressed (only if allow_compression) and
  // kFlagNoMessage (only with kFlagEndStream, without kFlagContinued, with an empty part).
  // A message larger than max_frame_bytes is sent as several frames, all but the last with
  // kFlagContinued; the caller splits (it also splits by flow-control window).
  [[nodiscard]] Status encode_data(uint64_t stream_id, uint8_t flags, Buffer message_part,
                                   Buffer& out) const;

  // TRAILERS on `stream_id`; flags follow `trailers.rejected_before_dispatch`.
  [[nodiscard]] Status encode_trailers(uint64_t stream_id, const Trailers& trailers,
                                       Buffer& out) const;

  // CANCEL on `stream_id`; the code is not kOk.
  [[nodiscard]] Status encode_cancel(uint64_t stream_id, const Cancel& cancel, Buffer& out) const;

  // WINDOW_UPDATE on `stream_id` (0 = the connection window); the increment is not 0.
  [[nodiscard]] Status encode_window_update(uint64_t stream_id, const WindowUpdate& update,
                                            Buffer& out) const;

  [[nodiscard]] Status encode_ping(const Ping& ping, Buffer& out) const;

  [[nodiscard]] Status encode_goaway(const GoAway& goaway, Buffer& out) const;

  // At most max_settings_entries entries; none with ack.
  [[nodiscard]] Status encode_settings(const Settings& settings, Buffer& out) const;

 private:
  Status check_stream(FrameType type, uint64_t stream_id) const;
  Status check_payload_size(FrameType type, uint64_t size) const;
  Status check_header_block(FrameType type, uint64_t size) const;

  Limits limits_;
};

}  // namespace meshrpc::wire
