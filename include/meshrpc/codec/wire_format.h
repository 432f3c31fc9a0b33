// The protobuf binary wire format, the subset meshrpc's struct codec writes and reads.
//
// A message is a sequence of fields; each field is a tag then a value:
//
//   tag   = varint( field_number << 3 | wire_type )
//   value = varint                      wire type 0 (VARINT: ints, bool, enums)
//         | 8 bytes little-endian       wire type 1 (I64: double, fixed64)
//         | varint(length) bytes[length] wire type 2 (LEN: string, bytes, nested, packed)
//         | 4 bytes little-endian       wire type 5 (I32: float, fixed32)
//
//   varint: 7 bits per byte, least significant group first, high bit set on every byte but
//   the last; at most 10 bytes. 300 = 0xAC 0x02.
//
// Wire types 3 and 4 (proto2 groups) are rejected: nothing meshrpc generates or accepts
// uses them. Pure functions over memory, no allocation; WireReader never reads past its end.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "meshrpc/base/status.h"

namespace meshrpc::codec {

enum class WireType : uint8_t { kVarint = 0, kI64 = 1, kLen = 2, kI32 = 5 };

// Field numbers are 1 .. 2^29 - 1; 19000 .. 19999 are reserved by protobuf.
inline constexpr uint32_t kMaxFieldNumber = (1u << 29) - 1;
inline constexpr size_t kMaxVarintBytes = 10;

std::string_view wire_type_name(uint32_t wire_type);

constexpr uint32_t make_tag(uint32_t field_number, WireType type) {
  return (field_number << 3) | static_cast<uint32_t>(type);
}

constexpr size_t varint_size(uint64_t value) {
  // 1 byte per started group of 7 bits; 0 still takes one byte.
  size_t bytes = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++bytes;
  }
  return bytes;
}

constexpr uint64_t zigzag_encode(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}
constexpr int64_t zigzag_decode(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

// Writes into memory the caller sized beforehand (with the *_size functions): no bounds
// checks, so the size pass and the write pass must agree.
class WireWriter {
 public:
  explicit WireWriter(char* out) : p_(out) {}

  char* position() const { return p_; }

  void varint(uint64_t value) {
    while (value >= 0x80) {
      *p_++ = static_cast<char>(value | 0x80);
      value >>= 7;
    }
    *p_++ = static_cast<char>(value);
  }
  void tag(uint32_t field_number, WireType type) { varint(make_tag(field_number, type)); }
  void fixed32(uint32_t value) {
    for (int i = 0; i < 4; ++i) *p_++ = static_cast<char>(value >> (8 * i));
  }
  void fixed64(uint64_t value) {
    for (int i = 0; i < 8; ++i) *p_++ = static_cast<char>(value >> (8 * i));
  }
  void bytes(const void* data, size_t size) {
    if (size != 0) std::memcpy(p_, data, size);
    p_ += size;
  }

 private:
  char* p_;
};

// Reads fields from a contiguous range. Every read checks the bytes left and returns false
// (and leaves the reader unusable) on truncated or malformed input; error() then says what.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool at_end() const { return p_ == end_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

  // The next tag: field number >= 1 and a wire type meshrpc accepts.
  bool read_tag(uint32_t& field_number, WireType& type);
  bool read_varint(uint64_t& value) {
    if (p_ < end_ && static_cast<uint8_t>(*p_) < 0x80) {  // the common one-byte case
      value = static_cast<uint8_t>(*p_++);
      return true;
    }
    return read_varint_slow(value);
  }
  bool read_fixed32(uint32_t& value);
  bool read_fixed64(uint64_t& value);
  // A LEN value: its length prefix, then that many bytes (a view into the input).
  bool read_length_delimited(std::string_view& value);
  // Skips the value of a field of `type` (unknown fields).
  bool skip(WireType type);

  // Why the last read failed, e.g. "varint longer than 10 bytes at offset 12".
  const std::string& error() const { return error_; }

 private:
  bool read_varint_slow(uint64_t& value);
  bool fail(std::string message);

  const char* p_;
  const char* end_;
  const char* begin_ = p_;
  std::string error_;
};

}  // namespace meshrpc::codec
