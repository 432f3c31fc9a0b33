// SETTINGS: what each side tells the other about itself, and how the two sides' limits
// combine into the limits one side must respect when sending.
//
// Each side sends one SETTINGS frame (no ACK flag) first on a connection and answers the
// peer's with an empty SETTINGS ACK. An entry states a bound on what the sender is willing
// to receive; ids this version does not know are ignored, so new settings need no version
// bump. When an id repeats, the last entry wins. An id that is absent means its default
// (the defaults in Limits are the protocol defaults).
//
// Pure functions; no state.
#pragma once

#include <cstdint>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/wire/limits.h"

namespace meshrpc::wire {

// The protocol version this implementation speaks. Sent as PROTOCOL_VERSION; the version
// used on a connection is the lower of the two sides' (a newer side must speak older).
inline constexpr uint64_t kProtocolVersion = 1;
// The oldest version this implementation can speak.
inline constexpr uint64_t kMinProtocolVersion = 1;

// The smallest MAX_FRAME_BYTES a peer may advertise. 16 KiB, as HTTP/2: a peer must accept
// frames big enough for a full SETTINGS frame and modest metadata without splitting.
inline constexpr uint64_t kMinMaxFrameBytes = 16 * 1024;
// The smallest MAX_HEADER_BYTES a peer may advertise. 1 KiB: room for a method name, a
// deadline and a few metadata entries; below that no call could be made.
inline constexpr uint64_t kMinMaxHeaderBytes = 1024;
// The largest window a peer may advertise. 2^31 - 1, as HTTP/2: a window stays far from
// overflowing the signed 64-bit counters the connection layer keeps however many
// WINDOW_UPDATEs arrive, and 2 GiB is more than the bandwidth-delay product of any link.
inline constexpr uint64_t kMaxWindowBytes = (uint64_t{1} << 31) - 1;

enum class SettingId : uint16_t {
  kProtocolVersion = 1,
  kMaxFrameBytes = 2,
  kMaxHeaderBytes = 3,
  kMaxMetadataEntries = 4,
  kMaxConcurrentStreams = 5,
  kInitialStreamWindowBytes = 6,
  kConnectionWindowBytes = 7,
  kMaxMessageBytes = 8,
};

// One entry as on the wire: u16 id + u64 value. The id stays a raw u16 so that entries
// with ids this version does not know survive decoding (and are then ignored).
struct SettingsEntry {
  uint16_t id = 0;
  uint64_t value = 0;

  friend bool operator==(const SettingsEntry&, const SettingsEntry&) = default;
};

// A SETTINGS frame's payload. An ACK carries no entries.
struct Settings {
  bool ack = false;
  std::vector<SettingsEntry> entries;

  friend bool operator==(const Settings&, const Settings&) = default;
};

// The SETTINGS we send: our version and every negotiable receive limit in `ours`.
Settings settings_for(const Limits& ours);

// The outcome of the peer's SETTINGS.
struct NegotiatedLimits {
  uint64_t protocol_version = kProtocolVersion;
  // What we must respect when sending: for size and count bounds the lower of ours and the
  // peer's (a frame, header block, message or stream count above either side's bound fails
  // locally and early); for flow-control windows the peer's value (it is the peer's buffer).
  // Local-only fields (max_settings_entries, max_stream_id, allow_compression) are ours.
  // Receive limits are not here: our decoder keeps enforcing `ours`, which we advertised.
  Limits send;

  friend bool operator==(const NegotiatedLimits&, const NegotiatedLimits&) = default;
};

// Combines our limits with the peer's SETTINGS (not an ACK). Errors (the connection should
// send GOAWAY and close):
//   kUnimplemented no common protocol version (the peer's is below kMinProtocolVersion);
//   INTERNAL       a value out of its range: MAX_FRAME_BYTES below kMinMaxFrameBytes,
//                  MAX_HEADER_BYTES below kMinMaxHeaderBytes, a window above kMaxWindowBytes.
// Values above what a u32 limit can hold are clamped (they only say "no tighter bound").
[[nodiscard]] Result<NegotiatedLimits> negotiate(const Limits& ours, const Settings& peer);

}  // namespace meshrpc::wire
