#include "meshrpc/wire/settings.h"

#include <algorithm>
#include <limits>
#include <string>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::wire {
namespace {

uint32_t clamp_to_u32(uint64_t value) {
  return static_cast<uint32_t>(std::min<uint64_t>(value, std::numeric_limits<uint32_t>::max()));
}

// Checks that a peer's value for setting `name` lies in [min, max].
Status check_range(std::string_view name, uint64_t value, uint64_t min, uint64_t max) {
  if (value >= min && value <= max) return Status();
  const bool low = value < min;
  return internal_error("SETTINGS " + std::string(name) + " value " + std::to_string(value) +
                        (low ? " is below minimum " : " is above maximum ") +
                        std::to_string(low ? min : max));
}

Status apply_version(uint64_t value, uint64_t& version) {
  if (value < kMinProtocolVersion) {
    return Status(StatusCode::kUnimplemented, "peer speaks protocol version " +
                                                  std::to_string(value) + ", this side speaks " +
                                                  std::to_string(kMinProtocolVersion) + ".." +
                                                  std::to_string(kProtocolVersion));
  }
  version = std::min(kProtocolVersion, value);
  return Status();
}

// Records one peer entry in `peer` (the peer's receive limits, starting at the protocol
// defaults) after checking its range. Unknown ids are ignored.
Status apply_entry(const SettingsEntry& entry, uint64_t& version, Limits& peer) {
  constexpr uint64_t kAny = std::numeric_limits<uint64_t>::max();
  const uint64_t v = entry.value;
  switch (static_cast<SettingId>(entry.id)) {
    case SettingId::kProtocolVersion:
      return apply_version(v, version);
    case SettingId::kMaxFrameBytes:
      MESHRPC_RETURN_IF_ERROR(check_range("MAX_FRAME_BYTES", v, kMinMaxFrameBytes, kAny));
      peer.max_frame_bytes = clamp_to_u32(v);
      break;
    case SettingId::kMaxHeaderBytes:
      MESHRPC_RETURN_IF_ERROR(check_range("MAX_HEADER_BYTES", v, kMinMaxHeaderBytes, kAny));
      peer.max_header_bytes = clamp_to_u32(v);
      break;
    case SettingId::kMaxMetadataEntries:
      peer.max_metadata_entries = clamp_to_u32(v);
      break;
    case SettingId::kMaxConcurrentStreams:
      peer.max_concurrent_streams = clamp_to_u32(v);
      break;
    case SettingId::kInitialStreamWindowBytes:
      MESHRPC_RETURN_IF_ERROR(check_range("INITIAL_STREAM_WINDOW_BYTES", v, 0, kMaxWindowBytes));
      peer.initial_stream_window_bytes = static_cast<uint32_t>(v);
      break;
    case SettingId::kConnectionWindowBytes:
      MESHRPC_RETURN_IF_ERROR(check_range("CONNECTION_WINDOW_BYTES", v, 0, kMaxWindowBytes));
      peer.connection_window_bytes = static_cast<uint32_t>(v);
      break;
    case SettingId::kMaxMessageBytes:
      peer.max_message_bytes = v;
      break;
  }
  return Status();  // Ids this version does not know fall through: ignored by design.
}

}  // namespace

Settings settings_for(const Limits& ours) {
  Settings settings;
  settings.entries = {
      {static_cast<uint16_t>(SettingId::kProtocolVersion), kProtocolVersion},
      {static_cast<uint16_t>(SettingId::kMaxFrameBytes), ours.max_frame_bytes},
      {static_cast<uint16_t>(SettingId::kMaxHeaderBytes), ours.max_header_bytes},
      {static_cast<uint16_t>(SettingId::kMaxMetadataEntries), ours.max_metadata_entries},
      {static_cast<uint16_t>(SettingId::kMaxConcurrentStreams), ours.max_concurrent_streams},
      {static_cast<uint16_t>(SettingId::kInitialStreamWindowBytes),
       ours.initial_stream_window_bytes},
      {static_cast<uint16_t>(SettingId::kConnectionWindowBytes), ours.connection_window_bytes},
      {static_cast<uint16_t>(SettingId::kMaxMessageBytes), ours.max_message_bytes},
  };
  return settings;
}

Result<NegotiatedLimits> negotiate(const Limits& ours, const Settings& peer_settings) {
  // An ACK carries no entries; negotiating from one is a caller bug that would silently
  // leave every limit at its default.
  if (peer_settings.ack) return internal_error("negotiate() given a SETTINGS ACK");
  NegotiatedLimits out;
  Limits peer;  // Absent ids mean the protocol defaults.
  for (const SettingsEntry& entry : peer_settings.entries) {
    MESHRPC_RETURN_IF_ERROR(apply_entry(entry, out.protocol_version, peer));
  }
  out.send = ours;
  out.send.max_frame_bytes = std::min(ours.max_frame_bytes, peer.max_frame_bytes);
  out.send.max_header_bytes = std::min(ours.max_header_bytes, peer.max_header_bytes);
  out.send.max_metadata_entries = std::min(ours.max_metadata_entries, peer.max_metadata_entries);
  out.send.max_concurrent_streams =
      std::min(ours.max_concurrent_streams, peer.max_concurrent_streams);
  out.send.max_message_bytes = std::min(ours.max_message_bytes, peer.max_message_bytes);
  // Windows are the peer's buffers: its numbers, whatever ours are.
  out.send.initial_stream_window_bytes = peer.initial_stream_window_bytes;
  out.send.connection_window_bytes = peer.connection_window_bytes;
  return out;
}

}  // namespace meshrpc::wire
