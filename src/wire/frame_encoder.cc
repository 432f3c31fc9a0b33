#include "meshrpc/wire/frame_encoder.h"

#include <cassert>
#include <limits>
#include <span>
#include <string>

#include "meshrpc/base/status_macros.h"
#include "payload_io.h"

namespace meshrpc::wire {
namespace {

using internal::FieldWriter;

constexpr uint64_t kMaxU16 = std::numeric_limits<uint16_t>::max();
constexpr uint8_t kMaxStatusCode = kStatusCodeCount - 1;

//  Frame header, 16 bytes, little-endian:
//  +--------+--------+--------+--------+------+-------+----------+-------------------+
//  | length (u32, payload bytes)       | type | flags | reserved | stream_id (u64)   |
//  +--------+--------+--------+--------+------+-------+----------+-------------------+
//    0                                   4      5       6..7       8..15
void write_header(FieldWriter& writer, FrameType type, uint8_t flags, uint64_t stream_id,
                  uint32_t length) {
  writer.u32(length);
  writer.u8(static_cast<uint8_t>(type));
  writer.u8(flags);
  writer.u16(0);  // Reserved: sent as 0.
  writer.u64(stream_id);
}

// Appends one frame contiguously to `out`'s tail. `write_payload(FieldWriter&)` writes
// exactly `length` bytes: the caller computed `length` from the same fields.
template <typename WritePayload>
void append_frame(FrameType type, uint8_t flags, uint64_t stream_id, uint64_t length,
                  WritePayload&& write_payload, Buffer& out) {
  const size_t total = kFrameHeaderBytes + static_cast<size_t>(length);
  std::span<char> space = out.prepare(total);
  FieldWriter writer(space.data());
  write_header(writer, type, flags, stream_id, static_cast<uint32_t>(length));
  write_payload(writer);
  assert(writer.written() == total);
  out.commit(total);
}

Status check_flags(FrameType type, uint8_t flags, uint8_t allowed) {
  if ((flags & ~allowed) == 0) return Status();
  return invalid_argument_error(std::string(frame_type_name(type)) + " flags " +
                                std::to_string(flags) + " include bits outside " +
                                std::to_string(allowed));
}

Status check_code(std::string_view what, StatusCode code, uint8_t min) {
  auto value = static_cast<uint8_t>(code);
  if (value >= min && value <= kMaxStatusCode) return Status();
  return invalid_argument_error(std::string(what) + " " + std::to_string(value) +
                                " is not a canonical status code (" + std::to_string(min) + ".." +
                                std::to_string(kMaxStatusCode) + ")");
}

Status check_length(std::string_view what, uint64_t size, uint64_t max) {
  if (size <= max) return Status();
  return resource_exhausted_error(std::string(what) + " length " + std::to_string(size) +
                                  " exceeds " + std::to_string(max));
}

//  Metadata block (end of HEADERS and TRAILERS):
//  +------------+------------------------------------------------------------+
//  | count u16  | count x [ key_len u16 | key | value_len u32 | value ]      |
//  +------------+------------------------------------------------------------+
// Checks `metadata` fits the block and the limits; on success `bytes` is its encoded size.
Status size_metadata(FrameType type, const Metadata& metadata, const Limits& limits,
                     uint64_t& bytes) {
  if (metadata.size() > limits.max_metadata_entries || metadata.size() > kMaxU16) {
    return resource_exhausted_error(
        std::string(frame_type_name(type)) + " has " + std::to_string(metadata.size()) +
        " metadata entries, exceeds max_metadata_entries " +
        std::to_string(std::min<uint64_t>(limits.max_metadata_entries, kMaxU16)));
  }
  bytes = 2;
  for (const auto& [key, value] : metadata) {
    MESHRPC_RETURN_IF_ERROR(check_length("metadata key", key.size(), kMaxU16));
    // Values are bounded by max_header_bytes (a u32) below, so they always fit their u32.
    bytes += 2 + key.size() + 4 + value.size();
  }
  return Status();
}

void write_metadata(FieldWriter& writer, const Metadata& metadata) {
  writer.u16(static_cast<uint16_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {
    writer.u16(static_cast<uint16_t>(key.size()));
    writer.bytes(key);
    writer.u32(static_cast<uint32_t>(value.size()));
    writer.bytes(value);
  }
}

}  // namespace

Status FrameEncoder::check_stream(FrameType type, uint64_t stream_id) const {
  if (is_stream_scoped(type) && stream_id == 0) {
    return invalid_argument_error(std::string(frame_type_name(type)) + " needs a stream id != 0");
  }
  if (stream_id > limits_.max_stream_id) {
    return resource_exhausted_error("stream id " + std::to_string(stream_id) +
                                    " exceeds max_stream_id " +
                                    std::to_string(limits_.max_stream_id));
  }
  return Status();
}

Status FrameEncoder::check_payload_size(FrameType type, uint64_t size) const {
  if (size <= limits_.max_frame_bytes) return Status();
  return resource_exhausted_error(std::string(frame_type_name(type)) + " payload " +
                                  std::to_string(size) + " bytes exceeds max_frame_bytes " +
                                  std::to_string(limits_.max_frame_bytes));
}

Status FrameEncoder::check_header_block(FrameType type, uint64_t size) const {
  if (size > limits_.max_header_bytes) {
    return resource_exhausted_error(std::string(frame_type_name(type)) + " payload " +
                                    std::to_string(size) + " bytes exceeds max_header_bytes " +
                                    std::to_string(limits_.max_header_bytes));
  }
  return check_payload_size(type, size);
}

//  HEADERS payload:
//  +-----------------+----------------+--------+----------------+
//  | timeout_ns u64  | method_len u16 | method | metadata block |
//  +-----------------+----------------+--------+----------------+
Status FrameEncoder::encode_headers(uint64_t stream_id, uint8_t flags, const Headers& headers,
                                    Buffer& out) const {
  MESHRPC_RETURN_IF_ERROR(check_stream(FrameType::kHeaders, stream_id));
  MESHRPC_RETURN_IF_ERROR(check_flags(FrameType::kHeaders, flags, kFlagEndStream));
  if (headers.timeout.count() < 0) {
    return invalid_argument_error("HEADERS timeout " + std::to_string(headers.timeout.count()) +
                                  "ns is negative; fail an expired call locally");
  }
  MESHRPC_RETURN_IF_ERROR(check_length("method", headers.method.size(), kMaxU16));
  uint64_t metadata_bytes = 0;
  MESHRPC_RETURN_IF_ERROR(
      size_metadata(FrameType::kHeaders, headers.metadata, limits_, metadata_bytes));
  const uint64_t length = 8 + 2 + headers.method.size() + metadata_bytes;
  MESHRPC_RETURN_IF_ERROR(check_header_block(FrameType::kHeaders, length));
  append_frame(
      FrameType::kHeaders, flags, stream_id, length,
      [&](FieldWriter& writer) {
        writer.u64(static_cast<uint64_t>(headers.timeout.count()));
        writer.u16(static_cast<uint16_t>(headers.method.size()));
        writer.bytes(headers.method);
        write_metadata(writer, headers.metadata);
      },
      out);
  return Status();
}

//  DATA payload: the message part itself, sent as shared slices.
Status FrameEncoder::encode_data(uint64_t stream_id, uint8_t flags, Buffer message_part,
                                 Buffer& out) const {
  MESHRPC_RETURN_IF_ERROR(check_stream(FrameType::kData, stream_id));
  MESHRPC_RETURN_IF_ERROR(check_flags(
      FrameType::kData, flags, kFlagEndStream | kFlagContinued | kFlagCompressed | kFlagNoMessage));
  if ((flags & kFlagCompressed) && !limits_.allow_compression) {
    return invalid_argument_error("DATA has COMPRESSED but compression was not negotiated");
  }
  if ((flags & kFlagNoMessage) &&
      (!(flags & kFlagEndStream) || (flags & kFlagContinued) || !message_part.empty())) {
    return invalid_argument_error(
        "DATA with NO_MESSAGE needs END_STREAM, no CONTINUED and an empty part (got " +
        std::to_string(message_part.size()) + " bytes)");
  }
  MESHRPC_RETURN_IF_ERROR(check_payload_size(FrameType::kData, message_part.size()));
  char header[kFrameHeaderBytes];
  FieldWriter writer(header);
  write_header(writer, FrameType::kData, flags, stream_id,
               static_cast<uint32_t>(message_part.size()));
  out.append_copy(header, sizeof(header));
  out.append(std::move(message_part));
  return Status();
}

//  TRAILERS payload (flag 0x02 REJECTED_BEFORE_DISPATCH):
//  +---------+-----------------+---------+-----------------+---------+----------------+
//  | code u8 | message_len u32 | message | details_len u32 | details | metadata block |
//  +---------+-----------------+---------+-----------------+---------+----------------+
Status FrameEncoder::encode_trailers(uint64_t stream_id, const Trailers& trailers,
                                     Buffer& out) const {
  MESHRPC_RETURN_IF_ERROR(check_stream(FrameType::kTrailers, stream_id));
  const Status& status = trailers.status;
  MESHRPC_RETURN_IF_ERROR(check_code("TRAILERS status code", status.code(), 0));
  uint64_t metadata_bytes = 0;
  MESHRPC_RETURN_IF_ERROR(
      size_metadata(FrameType::kTrailers, trailers.metadata, limits_, metadata_bytes));
  const uint64_t length =
      1 + 4 + status.message().size() + 4 + status.details().size() + metadata_bytes;
  MESHRPC_RETURN_IF_ERROR(check_header_block(FrameType::kTrailers, length));
  const uint8_t flags = trailers.rejected_before_dispatch ? kFlagRejectedBeforeDispatch : 0;
  append_frame(
      FrameType::kTrailers, flags, stream_id, length,
      [&](FieldWriter& writer) {
        writer.u8(static_cast<uint8_t>(status.code()));
        writer.u32(static_cast<uint32_t>(status.message().size()));
        writer.bytes(status.message());
        writer.u32(static_cast<uint32_t>(status.details().size()));
        writer.bytes(status.details());
        write_metadata(writer, trailers.metadata);
      },
      out);
  return Status();
}

//  CANCEL payload:
//  +---------+----------------+--------+
//  | code u8 | reason_len u32 | reason |
//  +---------+----------------+--------+
Status FrameEncoder::encode_cancel(uint64_t stream_id, const Cancel& cancel, Buffer& out) const {
  MESHRPC_RETURN_IF_ERROR(check_stream(FrameType::kCancel, stream_id));
  MESHRPC_RETURN_IF_ERROR(check_code("CANCEL code", cancel.code, 1));
  const uint64_t length = 1 + 4 + cancel.reason.size();
  MESHRPC_RETURN_IF_ERROR(check_payload_size(FrameType::kCancel, length));
  append_frame(
      FrameType::kCancel, 0, stream_id, length,
      [&](FieldWriter& writer) {
        writer.u8(static_cast<uint8_t>(cancel.code));
        writer.u32(static_cast<uint32_t>(cancel.reason.size()));
        writer.bytes(cancel.reason);
      },
      out);
  return Status();
}

//  WINDOW_UPDATE payload:
//  +---------------+
//  | increment u32 |  (> 0)
//  +---------------+
Status FrameEncoder::encode_window_update(uint64_t stream_id, const WindowUpdate& update,
                                          Buffer& out) const {
  MESHRPC_RETURN_IF_ERROR(check_stream(FrameType::kWindowUpdate, stream_id));
  if (update.increment == 0) {
    return invalid_argument_error("WINDOW_UPDATE increment must be > 0");
  }
  append_frame(
      FrameType::kWindowUpdate, 0, stream_id, 4,
      [&](FieldWriter& writer) { writer.u32(update.increment); }, out);
  return Status();
}

//  PING payload (flag 0x01 ACK):
//  +---------------------+
//  | opaque (8 bytes)    |
//  +---------------------+
Status FrameEncoder::encode_ping(const Ping& ping, Buffer& out) const {
  append_frame(
      FrameType::kPing, ping.ack ? kFlagAck : 0, 0, 8,
      [&](FieldWriter& writer) { writer.u64(ping.opaque); }, out);
  return Status();
}

//  GOAWAY payload:
//  +---------------------+---------+----------------+--------+
//  | last_stream_id u64  | code u8 | reason_len u32 | reason |
//  +---------------------+---------+----------------+--------+
Status FrameEncoder::encode_goaway(const GoAway& goaway, Buffer& out) const {
  MESHRPC_RETURN_IF_ERROR(check_code("GOAWAY code", goaway.code, 0));
  const uint64_t length = 8 + 1 + 4 + goaway.reason.size();
  MESHRPC_RETURN_IF_ERROR(check_payload_size(FrameType::kGoAway, length));
  append_frame(
      FrameType::kGoAway, 0, 0, length,
      [&](FieldWriter& writer) {
        writer.u64(goaway.last_stream_id);
        writer.u8(static_cast<uint8_t>(goaway.code));
        writer.u32(static_cast<uint32_t>(goaway.reason.size()));
        writer.bytes(goaway.reason);
      },
      out);
  return Status();
}

//  SETTINGS payload (flag 0x01 ACK: empty), n entries of 10 bytes:
//  +---------+-----------+---------+-----------+----
//  | id u16  | value u64 | id u16  | value u64 | ...
//  +---------+-----------+---------+-----------+----
Status FrameEncoder::encode_settings(const Settings& settings, Buffer& out) const {
  if (settings.ack && !settings.entries.empty()) {
    return invalid_argument_error("SETTINGS ACK with " + std::to_string(settings.entries.size()) +
                                  " entries; an ACK is empty");
  }
  if (settings.entries.size() > limits_.max_settings_entries) {
    return resource_exhausted_error("SETTINGS has " + std::to_string(settings.entries.size()) +
                                    " entries, exceeds max_settings_entries " +
                                    std::to_string(limits_.max_settings_entries));
  }
  const uint64_t length = 10 * uint64_t{settings.entries.size()};
  MESHRPC_RETURN_IF_ERROR(check_payload_size(FrameType::kSettings, length));
  append_frame(
      FrameType::kSettings, settings.ack ? kFlagAck : 0, 0, length,
      [&](FieldWriter& writer) {
        for (const SettingsEntry& entry : settings.entries) {
          writer.u16(entry.id);
          writer.u64(entry.value);
        }
      },
      out);
  return Status();
}

}  // namespace meshrpc::wire
