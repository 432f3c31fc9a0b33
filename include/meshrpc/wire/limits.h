// Limits: the bounds one side of a connection enforces on what it receives, and (after
// SETTINGS negotiation, see settings.h) respects in what it sends.
//
// Every field is a hard bound with a clear error when hit (DESIGN.md principle 6). Defaults
// are the protocol defaults too: a peer that has not yet received our SETTINGS assumes them,
// so lowering a receive limit below its default can reject frames sent before our SETTINGS
// arrived (as in HTTP/2). The comment on each field says why the default is that number.
#pragma once

#include <cstdint>
#include <limits>

namespace meshrpc::wire {

struct Limits {
  // Largest payload of one frame. 1 MiB: big enough that a 1 MiB message costs one header
  // per MiB (16 bytes, noise), small enough that one large message cannot hold the write
  // side of a connection for long, so streams interleave (1 MiB is ~0.8 ms at 10 Gb/s).
  // The u32 length field could say 4 GiB; nothing needs frames that large.
  uint32_t max_frame_bytes = 1024 * 1024;

  // Largest HEADERS or TRAILERS payload (method, deadline, metadata, status). 64 KiB:
  // generous for metadata (gRPC's default header list limit is 8 KiB, HTTP servers commonly
  // allow 8-64 KiB), small enough that a peer cannot make us parse megabytes of metadata per
  // call. A header block is one frame, so the effective bound is also <= max_frame_bytes.
  uint32_t max_header_bytes = 64 * 1024;

  // Most metadata entries in one HEADERS or TRAILERS. 64: real calls carry a handful
  // (auth, trace context, a few application keys); 64 leaves room for that and bounds the
  // number of string allocations one frame can cause.
  uint32_t max_metadata_entries = 64;

  // Most streams (calls) the peer may have open at once towards us. 100, as gRPC: enough to
  // keep a connection busy, few enough that one client cannot monopolise a server. A client
  // opens more calls by queueing or by more connections.
  uint32_t max_concurrent_streams = 100;

  // Largest message (the DATA frames of one message, reassembled). 4 MiB, as gRPC, so
  // services ported from gRPC behave the same. The decoder does not reassemble messages;
  // the connection layer enforces this while it does.
  uint64_t max_message_bytes = 4 * 1024 * 1024;

  // Bytes the peer may send on one stream before we grant more with WINDOW_UPDATE.
  // 1 MiB: one stream can carry 1 MiB per round trip, 1 GB/s at a 1 ms datacenter RTT,
  // so a single bulk stream is not window-bound inside a datacenter; a slow consumer pins at
  // most 1 MiB of buffered data per stream.
  uint32_t initial_stream_window_bytes = 1024 * 1024;

  // Bytes the peer may send on the whole connection (all streams) before a connection
  // WINDOW_UPDATE. 16 MiB: at least the bandwidth-delay product of 10 Gb/s at 10 ms RTT
  // (12.5 MB), 16 full stream windows; it is also the most a connection can make us buffer
  // for readers that do not keep up.
  uint32_t connection_window_bytes = 16 * 1024 * 1024;

  // Most entries in one SETTINGS frame. 64: eight ids are defined today; 64 leaves room for
  // the protocol to grow and bounds one SETTINGS frame to 640 bytes of payload. Fixed by the
  // protocol (not negotiated): every implementation accepts at least 64.
  uint32_t max_settings_entries = 64;

  // Highest stream id accepted or sent. 64-bit ids cannot be exhausted in practice (2^63
  // calls at 10 million calls/s is 29,000 years), so the default is the whole u64 space; a
  // test shrinks it to exercise the client's GOAWAY-and-reconnect path on exhaustion.
  // Local only, never negotiated.
  uint64_t max_stream_id = std::numeric_limits<uint64_t>::max();

  // Whether DATA frames may carry the COMPRESSED flag. False until per-message compression
  // is negotiated in SETTINGS; until then a COMPRESSED frame is a protocol error.
  bool allow_compression = false;

  friend bool operator==(const Limits&, const Limits&) = default;
};

}  // namespace meshrpc::wire
