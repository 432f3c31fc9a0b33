#include "meshrpc/codec/wire_format.h"

namespace meshrpc::codec {

std::string_view wire_type_name(uint32_t wire_type) {
  switch (wire_type) {
    case 0:
      return "VARINT";
    case 1:
      return "I64";
    case 2:
      return "LEN";
    case 3:
      return "SGROUP";
    case 4:
      return "EGROUP";
    case 5:
      return "I32";
    default:
      return "invalid";
  }
}

bool WireReader::fail(std::string message) {
  error_ = std::move(message) + " at offset " + std::to_string(p_ - begin_);
  p_ = end_;  // nothing more to read: later reads fail too
  return false;
}

bool WireReader::read_varint_slow(uint64_t& value) {
  uint64_t result = 0;
  for (size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (p_ == end_) return fail("truncated varint");
    const auto byte = static_cast<uint8_t>(*p_++);
    // The tenth byte holds bit 63 only; protobuf's own parser ignores the rest, as we do.
    result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      value = result;
      return true;
    }
  }
  return fail("varint longer than 10 bytes");
}

bool WireReader::read_tag(uint32_t& field_number, WireType& type) {
  uint64_t tag = 0;
  if (!read_varint(tag)) return false;
  if (tag > UINT32_MAX) return fail("tag " + std::to_string(tag) + " above 32 bits");
  const auto wire = static_cast<uint32_t>(tag & 7);
  field_number = static_cast<uint32_t>(tag >> 3);
  if (field_number == 0) return fail("field number 0");
  if (wire != 0 && wire != 1 && wire != 2 && wire != 5) {
    return fail("field " + std::to_string(field_number) + " has wire type " + std::to_string(wire) +
                " (" + std::string(wire_type_name(wire)) + "), which meshrpc does not accept");
  }
  type = static_cast<WireType>(wire);
  return true;
}

bool WireReader::read_fixed32(uint32_t& value) {
  if (remaining() < 4) return fail("truncated 4-byte value");
  value = 0;
  for (int i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(static_cast<uint8_t>(p_[i])) << (8 * i);
  p_ += 4;
  return true;
}

bool WireReader::read_fixed64(uint64_t& value) {
  if (remaining() < 8) return fail("truncated 8-byte value");
  value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(static_cast<uint8_t>(p_[i])) << (8 * i);
  p_ += 8;
  return true;
}

bool WireReader::read_length_delimited(std::string_view& value) {
  uint64_t length = 0;
  if (!read_varint(length)) return false;
  if (length > remaining()) {
    return fail("length " + std::to_string(length) + " runs past the end (" +
                std::to_string(remaining()) + " bytes left)");
  }
  value = std::string_view(p_, length);
  p_ += length;
  return true;
}

bool WireReader::skip(WireType type) {
  uint64_t ignored64 = 0;
  uint32_t ignored32 = 0;
  std::string_view ignored;
  switch (type) {
    case WireType::kVarint:
      return read_varint(ignored64);
    case WireType::kI64:
      return read_fixed64(ignored64);
    case WireType::kLen:
      return read_length_delimited(ignored);
    case WireType::kI32:
      return read_fixed32(ignored32);
  }
  return fail("unknown wire type");
}

}  // namespace meshrpc::codec
