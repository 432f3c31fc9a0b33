// Little-endian field writing and bounds-checked field reading for frame payloads.
// Private to the wire layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/status.h"
#include "meshrpc/wire/frame.h"

namespace meshrpc::wire::internal {

// Writes fields one after another into a contiguous range the caller sized exactly
// (Buffer::prepare). Contract: the caller computed the total size from the same fields, so
// a write never passes the end; the assertion in done() checks that.
class FieldWriter {
 public:
  explicit FieldWriter(char* out) : out_(out), start_(out) {}

  void u8(uint8_t v) { *out_++ = static_cast<char>(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void bytes(std::string_view v) {
    if (!v.empty()) std::memcpy(out_, v.data(), v.size());
    out_ += v.size();
  }
  size_t written() const { return static_cast<size_t>(out_ - start_); }

 private:
  // Byte by byte, so the layout is little-endian whatever the host order.
  void put(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) *out_++ = static_cast<char>((v >> (8 * i)) & 0xFF);
  }

  char* out_;
  char* start_;
};

inline uint64_t load_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

// Reads fields in order from a payload that may span several slices. Never reads past the
// payload: each read checks what remains first and reports a truncation naming the frame
// type, the field, and the sizes. The payload must outlive the reader.
class FieldReader {
 public:
  FieldReader(FrameType type, const Buffer& payload)
      : type_(type), slices_(payload.slices()), remaining_(payload.size()) {}

  size_t remaining() const { return remaining_; }

  Status u8(std::string_view field, uint8_t& out);
  Status u16(std::string_view field, uint16_t& out);
  Status u32(std::string_view field, uint32_t& out);
  Status u64(std::string_view field, uint64_t& out);
  // `size` bytes into `out` (replacing its contents).
  Status bytes(std::string_view field, size_t size, std::string& out);
  // A length-prefixed string: u16 or u32 length (`length_bytes` 2 or 4), then the bytes.
  Status string(std::string_view field, int length_bytes, std::string& out);
  // OK when every byte was read; else an error naming the trailing byte count.
  Status expect_end() const;

 private:
  // The field is named `field` + `suffix` in errors; built only on error, so reads allocate
  // nothing.
  Status need(std::string_view field, std::string_view suffix, size_t size) const;
  Status fixed(std::string_view field, std::string_view suffix, int size, uint64_t& out);
  void copy_out(char* out, size_t size);

  FrameType type_;
  std::span<const Slice> slices_;
  size_t slice_index_ = 0;
  size_t slice_offset_ = 0;
  size_t remaining_;
};

}  // namespace meshrpc::wire::internal
