#include "payload_io.h"

#include <algorithm>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::wire::internal {

Status FieldReader::need(std::string_view field, std::string_view suffix, size_t size) const {
  if (size <= remaining_) return Status();
  return internal_error(std::string(frame_type_name(type_)) + " payload truncated: " +
                        std::string(field) + std::string(suffix) + " needs " +
                        std::to_string(size) + " bytes, " + std::to_string(remaining_) + " remain");
}

void FieldReader::copy_out(char* out, size_t size) {
  // Invariant: size <= remaining_, so the slices hold `size` more bytes.
  remaining_ -= size;
  while (size > 0) {
    const Slice& slice = slices_[slice_index_];
    size_t n = std::min(size, slice.size() - slice_offset_);
    std::memcpy(out, slice.data() + slice_offset_, n);
    out += n;
    size -= n;
    slice_offset_ += n;
    if (slice_offset_ == slice.size()) {
      ++slice_index_;
      slice_offset_ = 0;
    }
  }
}

Status FieldReader::fixed(std::string_view field, std::string_view suffix, int size,
                          uint64_t& out) {
  MESHRPC_RETURN_IF_ERROR(need(field, suffix, static_cast<size_t>(size)));
  char raw[8];
  copy_out(raw, static_cast<size_t>(size));
  out = load_le(raw, size);
  return Status();
}

Status FieldReader::u8(std::string_view field, uint8_t& out) {
  uint64_t v = 0;
  Status status = fixed(field, "", 1, v);
  out = static_cast<uint8_t>(v);
  return status;
}

Status FieldReader::u16(std::string_view field, uint16_t& out) {
  uint64_t v = 0;
  Status status = fixed(field, "", 2, v);
  out = static_cast<uint16_t>(v);
  return status;
}

Status FieldReader::u32(std::string_view field, uint32_t& out) {
  uint64_t v = 0;
  Status status = fixed(field, "", 4, v);
  out = static_cast<uint32_t>(v);
  return status;
}

Status FieldReader::u64(std::string_view field, uint64_t& out) { return fixed(field, "", 8, out); }

Status FieldReader::bytes(std::string_view field, size_t size, std::string& out) {
  // Checked before resizing: a forged length must not make us allocate.
  MESHRPC_RETURN_IF_ERROR(need(field, "", size));
  out.resize(size);
  copy_out(out.data(), size);
  return Status();
}

Status FieldReader::string(std::string_view field, int length_bytes, std::string& out) {
  uint64_t size = 0;
  MESHRPC_RETURN_IF_ERROR(fixed(field, " length", length_bytes, size));
  return bytes(field, static_cast<size_t>(size), out);
}

Status FieldReader::expect_end() const {
  if (remaining_ == 0) return Status();
  return internal_error(std::string(frame_type_name(type_)) + " payload has " +
                        std::to_string(remaining_) + " trailing bytes");
}

}  // namespace meshrpc::wire::internal
