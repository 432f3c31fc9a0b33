#include "meshrpc/wire/frame_decoder.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <string>

#include "meshrpc/base/status_macros.h"
#include "payload_io.h"

namespace meshrpc::wire {
namespace {

using internal::FieldReader;

constexpr uint8_t kMaxStatusCode = kStatusCodeCount - 1;

std::string type_name(FrameType type) {
  if (is_known_frame_type(type)) return std::string(frame_type_name(type));
  return "type " + std::to_string(static_cast<unsigned>(type));
}

std::string on_stream(const FrameHeader& header) {
  return type_name(header.type) + " frame on stream " + std::to_string(header.stream_id);
}

Status check_scope(const FrameHeader& header) {
  if (is_stream_scoped(header.type) && header.stream_id == 0) {
    return internal_error(on_stream(header) + "; " + type_name(header.type) +
                          " belongs to a stream and needs a stream id != 0");
  }
  if (is_connection_scoped(header.type) && header.stream_id != 0) {
    return internal_error(on_stream(header) + "; " + type_name(header.type) +
                          " belongs to the connection and needs stream id 0");
  }
  return Status();
}

Status check_exact_length(const FrameHeader& header, uint32_t expected) {
  if (header.length == expected) return Status();
  return internal_error(type_name(header.type) + " length " + std::to_string(header.length) +
                        " must be " + std::to_string(expected));
}

}  // namespace

//  Frame header, 16 bytes, little-endian:
//  +--------+--------+--------+--------+------+-------+----------+-------------------+
//  | length (u32, payload bytes)       | type | flags | reserved | stream_id (u64)   |
//  +--------+--------+--------+--------+------+-------+----------+-------------------+
//    0                                   4      5       6..7       8..15
FrameHeader parse_frame_header(const char* bytes) {
  FrameHeader header;
  header.length = static_cast<uint32_t>(internal::load_le(bytes, 4));
  header.type = static_cast<FrameType>(static_cast<uint8_t>(bytes[4]));
  header.flags = static_cast<uint8_t>(bytes[5]);
  // Bytes 6-7 are reserved: ignored on receipt so a later version may use them.
  header.stream_id = internal::load_le(bytes + 8, 8);
  return header;
}

FrameDecoder::FrameDecoder(Role role, const Limits& limits) : role_(role), limits_(limits) {}

void FrameDecoder::feed(Buffer bytes) {
  if (!error_.ok()) return;  // Stuck: nothing fed after an error is ever looked at.
  input_.append(std::move(bytes));
}

bool FrameDecoder::skip_payload() {
  size_t n = static_cast<size_t>(std::min<uint64_t>(skip_bytes_, input_.size()));
  input_.consume(n);
  skip_bytes_ -= n;
  return skip_bytes_ == 0;
}

Result<std::optional<Frame>> FrameDecoder::next() {
  // "Need more bytes" is spelled kNeedMore, not std::nullopt: Result<std::optional<T>> built
  // from std::nullopt holds neither a value nor an error.
  const std::optional<Frame> kNeedMore;
  while (error_.ok()) {
    if (skip_bytes_ > 0 && !skip_payload()) return kNeedMore;
    if (!pending_) {
      if (input_.size() < kFrameHeaderBytes) return kNeedMore;
      char scratch[kFrameHeaderBytes];
      FrameHeader header = parse_frame_header(input_.peek(kFrameHeaderBytes, scratch));
      input_.consume(kFrameHeaderBytes);
      error_ = check_header(header);
      if (!error_.ok()) break;
      if (!is_known_frame_type(header.type)) {
        skip_bytes_ = header.length;  // An optional extension frame: discard its payload.
        continue;
      }
      pending_ = header;
    }
    if (input_.size() < pending_->length) return kNeedMore;
    Frame frame{*pending_, input_.cut_front(pending_->length)};
    pending_.reset();
    return std::optional<Frame>(std::move(frame));
  }
  input_.clear();  // Never needed again; release the blocks.
  return error_;
}

Status FrameDecoder::check_header(const FrameHeader& header) {
  if (header.length > limits_.max_frame_bytes) {
    return resource_exhausted_error("frame length " + std::to_string(header.length) +
                                    " exceeds max_frame_bytes " +
                                    std::to_string(limits_.max_frame_bytes));
  }
  if (!is_known_frame_type(header.type)) {
    if (!header.has_flag(kFlagMandatory)) return Status();
    return internal_error("unknown frame " + type_name(header.type) + " has the MANDATORY flag");
  }
  MESHRPC_RETURN_IF_ERROR(check_scope(header));
  if (header.stream_id > limits_.max_stream_id) {
    return resource_exhausted_error("stream id " + std::to_string(header.stream_id) +
                                    " exceeds max_stream_id " +
                                    std::to_string(limits_.max_stream_id));
  }
  MESHRPC_RETURN_IF_ERROR(check_sizes(header));
  MESHRPC_RETURN_IF_ERROR(check_data_flags(header));
  return check_role(header);
}

Status FrameDecoder::check_sizes(const FrameHeader& header) const {
  switch (header.type) {
    case FrameType::kPing:
      return check_exact_length(header, 8);
    case FrameType::kWindowUpdate:
      return check_exact_length(header, 4);
    case FrameType::kHeaders:
    case FrameType::kTrailers:
      if (header.length <= limits_.max_header_bytes) return Status();
      return resource_exhausted_error(type_name(header.type) + " length " +
                                      std::to_string(header.length) + " exceeds max_header_bytes " +
                                      std::to_string(limits_.max_header_bytes));
    case FrameType::kSettings:
      if (header.has_flag(kFlagAck)) return check_exact_length(header, 0);
      if (header.length % 10 != 0) {
        return internal_error("SETTINGS length " + std::to_string(header.length) +
                              " is not a multiple of 10 (entries are u16 id + u64 value)");
      }
      if (header.length / 10 <= limits_.max_settings_entries) return Status();
      return resource_exhausted_error("SETTINGS has " + std::to_string(header.length / 10) +
                                      " entries, exceeds max_settings_entries " +
                                      std::to_string(limits_.max_settings_entries));
    default:
      return Status();
  }
}

Status FrameDecoder::check_data_flags(const FrameHeader& header) const {
  if (header.type != FrameType::kData) return Status();
  if (header.has_flag(kFlagCompressed) && !limits_.allow_compression) {
    return internal_error(on_stream(header) +
                          " has the COMPRESSED flag; compression was not negotiated");
  }
  if (!header.has_flag(kFlagNoMessage)) return Status();
  if (!header.has_flag(kFlagEndStream) || header.has_flag(kFlagContinued)) {
    return internal_error(on_stream(header) +
                          " has NO_MESSAGE, which needs END_STREAM and no CONTINUED");
  }
  if (header.length != 0) {
    return internal_error(on_stream(header) + " has NO_MESSAGE and a " +
                          std::to_string(header.length) + "-byte payload; it must be empty");
  }
  return Status();
}

Status FrameDecoder::check_role(const FrameHeader& header) {
  if (role_ != Role::kServer) return Status();
  if (header.type == FrameType::kTrailers) {
    return internal_error(on_stream(header) +
                          " received by a server; TRAILERS end a call "
                          "and travel server to client only");
  }
  if (header.type != FrameType::kHeaders) return Status();
  if (header.stream_id <= highest_opened_) {
    return internal_error("HEADERS on stream " + std::to_string(header.stream_id) +
                          ": stream id reuse or regression (highest opened " +
                          std::to_string(highest_opened_) + ")");
  }
  highest_opened_ = header.stream_id;
  return Status();
}

// ---------------------------------------------------------------------------------------
// Typed payloads. All integers little-endian; strings are a length then that many bytes.

namespace {

Status read_status_code(FieldReader& reader, std::string_view field, uint8_t min, StatusCode& out) {
  uint8_t code = 0;
  MESHRPC_RETURN_IF_ERROR(reader.u8(field, code));
  if (code < min || code > kMaxStatusCode) {
    return internal_error(std::string(field) + " " + std::to_string(code) +
                          " is not a canonical status code (" + std::to_string(min) + ".." +
                          std::to_string(kMaxStatusCode) + ")");
  }
  out = static_cast<StatusCode>(code);
  return Status();
}

//  Metadata block (end of HEADERS and TRAILERS):
//  +------------+------------------------------------------------------------+
//  | count u16  | count x [ key_len u16 | key | value_len u32 | value ]      |
//  +------------+------------------------------------------------------------+
Status read_metadata(FieldReader& reader, FrameType type, const Limits& limits, Metadata& out) {
  uint16_t count = 0;
  MESHRPC_RETURN_IF_ERROR(reader.u16("metadata count", count));
  if (count > limits.max_metadata_entries) {
    return resource_exhausted_error(std::string(frame_type_name(type)) + " has " +
                                    std::to_string(count) +
                                    " metadata entries, exceeds max_metadata_entries " +
                                    std::to_string(limits.max_metadata_entries));
  }
  // An entry takes at least 6 bytes, so a forged count cannot make us reserve much.
  out.reserve(std::min<size_t>(count, reader.remaining() / 6));
  for (uint16_t i = 0; i < count; ++i) {
    auto& [key, value] = out.emplace_back();
    MESHRPC_RETURN_IF_ERROR(reader.string("metadata key", 2, key));
    MESHRPC_RETURN_IF_ERROR(reader.string("metadata value", 4, value));
  }
  return Status();
}

}  // namespace

//  HEADERS payload:
//  +-----------------+----------------+--------+----------------+
//  | timeout_ns u64  | method_len u16 | method | metadata block |
//  +-----------------+----------------+--------+----------------+
Result<Headers> decode_headers(const Frame& frame, const Limits& limits) {
  assert(frame.header.type == FrameType::kHeaders);
  FieldReader reader(FrameType::kHeaders, frame.payload);
  Headers headers;
  uint64_t timeout_ns = 0;
  MESHRPC_RETURN_IF_ERROR(reader.u64("timeout_ns", timeout_ns));
  if (timeout_ns > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return internal_error("HEADERS timeout_ns " + std::to_string(timeout_ns) + " exceeds 2^63-1");
  }
  headers.timeout = std::chrono::nanoseconds(static_cast<int64_t>(timeout_ns));
  MESHRPC_RETURN_IF_ERROR(reader.string("method", 2, headers.method));
  MESHRPC_RETURN_IF_ERROR(read_metadata(reader, FrameType::kHeaders, limits, headers.metadata));
  MESHRPC_RETURN_IF_ERROR(reader.expect_end());
  return headers;
}

//  TRAILERS payload (flag 0x02 REJECTED_BEFORE_DISPATCH):
//  +---------+-----------------+---------+-----------------+---------+----------------+
//  | code u8 | message_len u32 | message | details_len u32 | details | metadata block |
//  +---------+-----------------+---------+-----------------+---------+----------------+
Result<Trailers> decode_trailers(const Frame& frame, const Limits& limits) {
  assert(frame.header.type == FrameType::kTrailers);
  FieldReader reader(FrameType::kTrailers, frame.payload);
  StatusCode code = StatusCode::kOk;
  std::string message;
  std::string details;
  MESHRPC_RETURN_IF_ERROR(read_status_code(reader, "TRAILERS status code", 0, code));
  MESHRPC_RETURN_IF_ERROR(reader.string("status message", 4, message));
  MESHRPC_RETURN_IF_ERROR(reader.string("status details", 4, details));
  if (code == StatusCode::kOk && (!message.empty() || !details.empty())) {
    return internal_error("TRAILERS status OK carries a message or details; OK has neither");
  }
  Trailers trailers;
  trailers.status = Status(code, message, details);
  trailers.rejected_before_dispatch = frame.header.has_flag(kFlagRejectedBeforeDispatch);
  MESHRPC_RETURN_IF_ERROR(read_metadata(reader, FrameType::kTrailers, limits, trailers.metadata));
  MESHRPC_RETURN_IF_ERROR(reader.expect_end());
  return trailers;
}

//  SETTINGS payload (flag 0x01 ACK: empty), n entries of 10 bytes:
//  +---------+-----------+---------+-----------+----
//  | id u16  | value u64 | id u16  | value u64 | ...
//  +---------+-----------+---------+-----------+----
Result<Settings> decode_settings(const Frame& frame, const Limits& limits) {
  assert(frame.header.type == FrameType::kSettings);
  Settings settings;
  settings.ack = frame.header.has_flag(kFlagAck);
  size_t size = frame.payload.size();
  if (settings.ack && size != 0) {
    return internal_error("SETTINGS ACK has a " + std::to_string(size) +
                          "-byte payload; it must be empty");
  }
  if (size % 10 != 0) {
    return internal_error("SETTINGS length " + std::to_string(size) +
                          " is not a multiple of 10 (entries are u16 id + u64 value)");
  }
  if (size / 10 > limits.max_settings_entries) {
    return resource_exhausted_error("SETTINGS has " + std::to_string(size / 10) +
                                    " entries, exceeds max_settings_entries " +
                                    std::to_string(limits.max_settings_entries));
  }
  FieldReader reader(FrameType::kSettings, frame.payload);
  settings.entries.resize(size / 10);
  for (SettingsEntry& entry : settings.entries) {
    MESHRPC_RETURN_IF_ERROR(reader.u16("setting id", entry.id));
    MESHRPC_RETURN_IF_ERROR(reader.u64("setting value", entry.value));
  }
  return settings;
}

//  CANCEL payload:
//  +---------+----------------+--------+
//  | code u8 | reason_len u32 | reason |
//  +---------+----------------+--------+
Result<Cancel> decode_cancel(const Frame& frame) {
  assert(frame.header.type == FrameType::kCancel);
  FieldReader reader(FrameType::kCancel, frame.payload);
  Cancel cancel;
  MESHRPC_RETURN_IF_ERROR(read_status_code(reader, "CANCEL code", 1, cancel.code));
  MESHRPC_RETURN_IF_ERROR(reader.string("reason", 4, cancel.reason));
  MESHRPC_RETURN_IF_ERROR(reader.expect_end());
  return cancel;
}

//  WINDOW_UPDATE payload:
//  +---------------+
//  | increment u32 |  (> 0)
//  +---------------+
Result<WindowUpdate> decode_window_update(const Frame& frame) {
  assert(frame.header.type == FrameType::kWindowUpdate);
  FieldReader reader(FrameType::kWindowUpdate, frame.payload);
  WindowUpdate update;
  MESHRPC_RETURN_IF_ERROR(reader.u32("increment", update.increment));
  MESHRPC_RETURN_IF_ERROR(reader.expect_end());
  if (update.increment == 0) {
    return internal_error("WINDOW_UPDATE on stream " + std::to_string(frame.header.stream_id) +
                          " has increment 0; it must be > 0");
  }
  return update;
}

//  PING payload (flag 0x01 ACK):
//  +---------------------+
//  | opaque (8 bytes)    |
//  +---------------------+
Result<Ping> decode_ping(const Frame& frame) {
  assert(frame.header.type == FrameType::kPing);
  FieldReader reader(FrameType::kPing, frame.payload);
  Ping ping;
  ping.ack = frame.header.has_flag(kFlagAck);
  MESHRPC_RETURN_IF_ERROR(reader.u64("opaque", ping.opaque));
  MESHRPC_RETURN_IF_ERROR(reader.expect_end());
  return ping;
}

//  GOAWAY payload:
//  +---------------------+---------+----------------+--------+
//  | last_stream_id u64  | code u8 | reason_len u32 | reason |
//  +---------------------+---------+----------------+--------+
Result<GoAway> decode_goaway(const Frame& frame) {
  assert(frame.header.type == FrameType::kGoAway);
  FieldReader reader(FrameType::kGoAway, frame.payload);
  GoAway goaway;
  MESHRPC_RETURN_IF_ERROR(reader.u64("last_stream_id", goaway.last_stream_id));
  MESHRPC_RETURN_IF_ERROR(read_status_code(reader, "GOAWAY code", 0, goaway.code));
  MESHRPC_RETURN_IF_ERROR(reader.string("reason", 4, goaway.reason));
  MESHRPC_RETURN_IF_ERROR(reader.expect_end());
  return goaway;
}

}  // namespace meshrpc::wire
