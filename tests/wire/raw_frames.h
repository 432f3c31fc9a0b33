// Hand-built wire bytes for wire/ tests: independent of the encoder, so tests of the decoder
// do not trust the code under test to produce their inputs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/wire/frame.h"
#include "meshrpc/wire/frame_decoder.h"

namespace meshrpc::wire::testing {

inline std::string le(uint64_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return out;
}
inline std::string u8(uint64_t v) { return le(v, 1); }
inline std::string u16(uint64_t v) { return le(v, 2); }
inline std::string u32(uint64_t v) { return le(v, 4); }
inline std::string u64(uint64_t v) { return le(v, 8); }

// A 16-byte header claiming `length` payload bytes.
inline std::string raw_header(uint32_t length, uint8_t type, uint8_t flags, uint64_t stream_id,
                              uint16_t reserved = 0) {
  return u32(length) + u8(type) + u8(flags) + u16(reserved) + u64(stream_id);
}

inline std::string raw_header(uint32_t length, FrameType type, uint8_t flags, uint64_t stream_id) {
  return raw_header(length, static_cast<uint8_t>(type), flags, stream_id);
}

// A whole frame with a consistent length.
inline std::string raw_frame(FrameType type, uint8_t flags, uint64_t stream_id,
                             std::string_view payload) {
  return raw_header(static_cast<uint32_t>(payload.size()), type, flags, stream_id) +
         std::string(payload);
}

inline std::string raw_metadata(const std::vector<std::pair<std::string, std::string>>& md) {
  std::string out = u16(md.size());
  for (const auto& [key, value] : md) out += u16(key.size()) + key + u32(value.size()) + value;
  return out;
}

// Feeds `bytes` in one piece and returns every frame up to the first nullopt, or the error.
inline Result<std::vector<Frame>> decode_all(FrameDecoder& decoder, std::string_view bytes) {
  decoder.feed(Buffer::copy_of(bytes));
  std::vector<Frame> frames;
  while (true) {
    Result<std::optional<Frame>> next = decoder.next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return frames;
    frames.push_back(std::move(**next));
  }
}

// A frame built directly (no decoder), for the typed decoders.
inline Frame make_frame(FrameType type, uint8_t flags, uint64_t stream_id,
                        std::string_view payload) {
  return Frame{FrameHeader{static_cast<uint32_t>(payload.size()), type, flags, stream_id},
               Buffer::copy_of(payload)};
}

}  // namespace meshrpc::wire::testing
