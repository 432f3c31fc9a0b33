// libFuzzer target for the wire decoders.
//
// Input layout:
//   byte 0   configuration: bit 0 = server role, bit 1 = allow_compression,
//            bit 2 = small limits (so limit checks are reached by short inputs)
//   byte 1   seed for the chunk sizes the bytes are fed in
//   rest     bytes as received from a peer (without the preface)
//
// Properties checked (a violation aborts, which libFuzzer reports with the input):
//   1. No crash, no out-of-bounds read, no unbounded allocation (ASan/UBSan, -rss_limit_mb).
//   2. Chunking does not matter: feeding the bytes in random chunks yields the same frames
//      and the same final status as feeding them at once.
//   3. Every frame that typed-decodes re-encodes without error under the same limits, and
//      the re-encoded frame decodes to an equal frame and an equal typed value.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "meshrpc/wire/frame_decoder.h"
#include "meshrpc/wire/frame_encoder.h"
#include "meshrpc/wire/preface.h"
#include "tests/fuzz/frame_decoder_config.h"

namespace meshrpc::wire {
namespace {

void check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

struct Decoded {
  std::vector<Frame> frames;
  Status status;  // OK if the input ended cleanly (possibly mid-frame).
};

// SplitMix64: a tiny deterministic generator for chunk sizes, seeded from the input.
uint64_t split_mix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Decoded decode(Role role, const Limits& limits, std::string_view bytes, uint64_t chunk_seed) {
  FrameDecoder decoder(role, limits);
  Decoded out;
  size_t offset = 0;
  uint64_t state = chunk_seed;
  while (offset < bytes.size() && out.status.ok()) {
    size_t chunk = chunk_seed == 0 ? bytes.size() : 1 + split_mix(state) % 64;
    chunk = std::min(chunk, bytes.size() - offset);
    decoder.feed(Buffer::copy_of(bytes.substr(offset, chunk)));
    offset += chunk;
    while (true) {
      Result<std::optional<Frame>> next = decoder.next();
      if (!next.ok()) {
        out.status = next.status();
        break;
      }
      if (!next->has_value()) break;
      out.frames.push_back(std::move(**next));
    }
  }
  return out;
}

// Decodes `wire` (one re-encoded frame) and returns it; aborts unless exactly one frame.
Frame decode_one(Role role, const Limits& limits, const Buffer& wire) {
  Decoded again = decode(role, limits, wire.to_string(), 0);
  check(again.status.ok(), "re-encoded frame decodes");
  check(again.frames.size() == 1, "re-encoded frame is one frame");
  return std::move(again.frames[0]);
}

// Typed-decodes `frame`; if that succeeds, re-encodes, re-decodes and compares.
template <typename T, typename DecodeFn, typename EncodeFn>
void round_trip(Role role, const Limits& limits, const Frame& frame, DecodeFn decode_fn,
                EncodeFn encode_fn) {
  Result<T> value = decode_fn(frame);
  if (!value.ok()) return;
  Buffer wire;
  check(encode_fn(*value, wire).ok(), "a decoded value re-encodes");
  Frame again = decode_one(role, limits, wire);
  check(again.header.type == frame.header.type, "type survives");
  check(again.header.stream_id == frame.header.stream_id, "stream id survives");
  Result<T> value_again = decode_fn(again);
  check(value_again.ok() && *value_again == *value, "typed value survives");
}

void round_trip_frame(Role role, const Limits& limits, const Frame& frame) {
  const FrameEncoder encoder(limits);
  const uint64_t id = frame.header.stream_id;
  const uint8_t flags = frame.header.flags;
  switch (frame.header.type) {
    case FrameType::kSettings:
      return round_trip<Settings>(
          role, limits, frame, [&](const Frame& f) { return decode_settings(f, limits); },
          [&](const Settings& v, Buffer& out) { return encoder.encode_settings(v, out); });
    case FrameType::kHeaders:
      return round_trip<Headers>(
          role, limits, frame, [&](const Frame& f) { return decode_headers(f, limits); },
          [&](const Headers& v, Buffer& out) {
            return encoder.encode_headers(id, flags & kFlagEndStream, v, out);
          });
    case FrameType::kData: {
      Buffer wire;
      const uint8_t defined = kFlagEndStream | kFlagContinued | kFlagCompressed | kFlagNoMessage;
      check(encoder.encode_data(id, flags & defined, frame.payload, wire).ok(), "DATA re-encodes");
      Frame again = decode_one(role, limits, wire);
      check(again.payload == frame.payload, "DATA payload survives");
      check(again.header.flags == (flags & defined), "DATA flags survive");
      return;
    }
    case FrameType::kTrailers:
      return round_trip<Trailers>(
          role, limits, frame, [&](const Frame& f) { return decode_trailers(f, limits); },
          [&](const Trailers& v, Buffer& out) { return encoder.encode_trailers(id, v, out); });
    case FrameType::kCancel:
      return round_trip<Cancel>(
          role, limits, frame, [](const Frame& f) { return decode_cancel(f); },
          [&](const Cancel& v, Buffer& out) { return encoder.encode_cancel(id, v, out); });
    case FrameType::kWindowUpdate:
      return round_trip<WindowUpdate>(
          role, limits, frame, [](const Frame& f) { return decode_window_update(f); },
          [&](const WindowUpdate& v, Buffer& out) {
            return encoder.encode_window_update(id, v, out);
          });
    case FrameType::kPing:
      return round_trip<Ping>(
          role, limits, frame, [](const Frame& f) { return decode_ping(f); },
          [&](const Ping& v, Buffer& out) { return encoder.encode_ping(v, out); });
    case FrameType::kGoAway:
      return round_trip<GoAway>(
          role, limits, frame, [](const Frame& f) { return decode_goaway(f); },
          [&](const GoAway& v, Buffer& out) { return encoder.encode_goaway(v, out); });
  }
  check(false, "the decoder returns only known frame types");
}

using fuzz::limits_for;

}  // namespace
}  // namespace meshrpc::wire

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshrpc::wire;  // NOLINT(google-build-using-namespace): fuzz entry point
  if (size < 2) return 0;
  const uint8_t config = data[0];
  const uint64_t chunk_seed = data[1];
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  const Role role = fuzz::role_for(config);
  const Limits limits = limits_for(config);

  (void)classify_connection_start(bytes);  // Must not read past the input.

  Decoded whole = decode(role, limits, bytes, 0);
  Decoded chunked = decode(role, limits, bytes, chunk_seed | 0x100);
  check(whole.frames == chunked.frames, "chunking does not change the frames");
  check(whole.status == chunked.status, "chunking does not change the error");
  for (const Frame& frame : whole.frames) round_trip_frame(role, limits, frame);
  return 0;
}
