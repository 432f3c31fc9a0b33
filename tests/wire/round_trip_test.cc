// Property test: random frames of every type, encoded into one buffer, fed to the decoder in
// random chunk sizes (down to one byte at a time), come back equal after typed decoding.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/wire/frame_decoder.h"
#include "meshrpc/wire/frame_encoder.h"
#include "raw_frames.h"

namespace meshrpc::wire {
namespace {

using ::meshrpc::testing::IsOk;

// A frame as the sender meant it. `body` holds the typed payload (Buffer for DATA).
struct Sample {
  uint64_t stream_id = 0;
  uint8_t flags = 0;  // HEADERS and DATA only; other types carry theirs in the struct.
  std::variant<Settings, Headers, Buffer, Trailers, Cancel, WindowUpdate, Ping, GoAway> body;
};

class SampleGenerator {
 public:
  SampleGenerator(uint64_t seed, Role receiver) : rng_(seed), receiver_(receiver) {}

  Sample next() {
    // The variant index + 1 is the frame type. A server never receives TRAILERS.
    int type = 0;
    do {
      type = uniform(1, 8);
    } while (receiver_ == Role::kServer && type == static_cast<int>(FrameType::kTrailers));
    switch (static_cast<FrameType>(type)) {
      case FrameType::kSettings:
        return {0, 0, settings()};
      case FrameType::kHeaders:
        return headers();
      case FrameType::kData:
        return data();
      case FrameType::kTrailers:
        return {stream(), 0, trailers()};
      case FrameType::kCancel:
        return {stream(), 0, Cancel{code(1), text(40)}};
      case FrameType::kWindowUpdate:
        return {coin() ? 0 : stream(), 0, WindowUpdate{static_cast<uint32_t>(uniform(1, 1 << 30))}};
      case FrameType::kPing:
        return {0, 0, Ping{coin(), rng_()}};
      case FrameType::kGoAway:
        return {0, 0, GoAway{rng_(), code(0), text(60)}};
    }
    return {};
  }

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return uniform(0, 1) == 1; }

 private:
  uint64_t stream() { return coin() ? static_cast<uint64_t>(uniform(1, 20)) : rng_() | 1; }
  StatusCode code(int min) { return static_cast<StatusCode>(uniform(min, kStatusCodeCount - 1)); }

  // Mostly short, sometimes empty, now and then long: lengths cross slice boundaries.
  std::string text(int usual_max) {
    int size = uniform(0, 20) == 0 ? uniform(0, 3000) : uniform(0, usual_max);
    std::string out(static_cast<size_t>(size), '\0');
    for (char& c : out) c = static_cast<char>(uniform(0, 255));
    return out;
  }

  Metadata metadata() {
    Metadata out(static_cast<size_t>(uniform(0, 5)));
    for (auto& [key, value] : out) {
      key = text(12);
      value = text(30);
    }
    return out;
  }

  Settings settings() {
    Settings out;
    out.ack = uniform(0, 3) == 0;
    if (!out.ack) {
      out.entries.resize(static_cast<size_t>(uniform(0, 10)));
      for (SettingsEntry& entry : out.entries)
        entry = {static_cast<uint16_t>(uniform(0, 20)), rng_()};
    }
    return out;
  }

  Sample headers() {
    // A server requires strictly increasing ids on HEADERS.
    uint64_t id = receiver_ == Role::kServer ? (next_server_stream_ += uniform(1, 1000)) : stream();
    auto timeout = std::chrono::nanoseconds(coin() ? 0 : static_cast<int64_t>(rng_() >> 1));
    return {id, static_cast<uint8_t>(coin() ? kFlagEndStream : 0),
            Headers{timeout, text(40), metadata()}};
  }

  Sample data() {
    if (uniform(0, 9) == 0) return {stream(), kFlagNoMessage | kFlagEndStream, Buffer()};
    uint8_t flags =
        static_cast<uint8_t>((coin() ? kFlagEndStream : 0) | (coin() ? kFlagContinued : 0));
    return {stream(), flags, Buffer::copy_of(text(uniform(0, 9) == 0 ? 20000 : 200))};
  }

  Trailers trailers() {
    StatusCode c = code(0);
    std::string message = text(40);
    std::string details = text(20);
    return Trailers{Status(c, message, details), coin(), metadata()};
  }

  std::mt19937_64 rng_;
  Role receiver_;
  uint64_t next_server_stream_ = 0;
};

struct Encode {
  const FrameEncoder& encoder;
  const Sample& sample;
  Buffer& out;
  Status operator()(const Settings& s) const { return encoder.encode_settings(s, out); }
  Status operator()(const Headers& h) const {
    return encoder.encode_headers(sample.stream_id, sample.flags, h, out);
  }
  Status operator()(const Buffer& d) const {
    return encoder.encode_data(sample.stream_id, sample.flags, d, out);
  }
  Status operator()(const Trailers& t) const {
    return encoder.encode_trailers(sample.stream_id, t, out);
  }
  Status operator()(const Cancel& c) const {
    return encoder.encode_cancel(sample.stream_id, c, out);
  }
  Status operator()(const WindowUpdate& w) const {
    return encoder.encode_window_update(sample.stream_id, w, out);
  }
  Status operator()(const Ping& p) const { return encoder.encode_ping(p, out); }
  Status operator()(const GoAway& g) const { return encoder.encode_goaway(g, out); }
};

// Typed-decodes `frame` into the same alternative as `expected` and compares.
template <typename T>
void expect_typed_equal(Result<T> decoded, const T& expected) {
  ASSERT_THAT(decoded, IsOk());
  EXPECT_TRUE(*decoded == expected);
}

void expect_frame_matches(const Frame& frame, const Sample& sample, const Limits& limits) {
  EXPECT_EQ(static_cast<size_t>(frame.header.type), sample.body.index() + 1);
  EXPECT_EQ(frame.header.stream_id, sample.stream_id);
  std::visit(
      [&](const auto& body) {
        using Body = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<Body, Settings>) {
          expect_typed_equal(decode_settings(frame, limits), body);
        } else if constexpr (std::is_same_v<Body, Headers>) {
          EXPECT_EQ(frame.header.flags, sample.flags);
          expect_typed_equal(decode_headers(frame, limits), body);
        } else if constexpr (std::is_same_v<Body, Buffer>) {
          EXPECT_EQ(frame.header.flags, sample.flags);
          EXPECT_TRUE(frame.payload == body);
        } else if constexpr (std::is_same_v<Body, Trailers>) {
          expect_typed_equal(decode_trailers(frame, limits), body);
        } else if constexpr (std::is_same_v<Body, Cancel>) {
          expect_typed_equal(decode_cancel(frame), body);
        } else if constexpr (std::is_same_v<Body, WindowUpdate>) {
          expect_typed_equal(decode_window_update(frame), body);
        } else if constexpr (std::is_same_v<Body, Ping>) {
          expect_typed_equal(decode_ping(frame), body);
        } else {
          expect_typed_equal(decode_goaway(frame), body);
        }
      },
      sample.body);
}

// Feeds `bytes` in chunks chosen by `chunk_size()` and collects every frame.
template <typename ChunkSize>
std::vector<Frame> decode_in_chunks(FrameDecoder& decoder, Buffer bytes, ChunkSize chunk_size) {
  std::vector<Frame> frames;
  while (!bytes.empty()) {
    decoder.feed(bytes.cut_front(chunk_size()));
    while (true) {
      Result<std::optional<Frame>> next = decoder.next();
      EXPECT_THAT(next, IsOk());
      if (!next.ok() || !next->has_value()) break;
      frames.push_back(std::move(**next));
    }
  }
  return frames;
}

void run_round_trips(Role receiver, uint64_t seed, int iterations) {
  SampleGenerator gen(seed, receiver);
  const Limits limits;
  const FrameEncoder encoder(limits);
  for (int i = 0; i < iterations; ++i) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " iteration " + std::to_string(i));
    std::vector<Sample> samples(static_cast<size_t>(gen.uniform(1, 12)));
    Buffer wire;
    for (Sample& sample : samples) {
      sample = gen.next();
      ASSERT_THAT(std::visit(Encode{encoder, sample, wire}, sample.body), IsOk());
      // Unknown optional frames between known ones must be skipped silently.
      if (gen.uniform(0, 7) == 0) {
        wire.append_copy(testing::raw_header(5, 200, 0x01, 3) + "ext!!");
      }
    }
    const int mode = gen.uniform(0, 3);
    FrameDecoder decoder(receiver, limits);
    std::vector<Frame> frames = decode_in_chunks(decoder, wire, [&]() -> size_t {
      switch (mode) {
        case 0:
          return 1;
        case 1:
          return static_cast<size_t>(gen.uniform(1, 17));
        case 2:
          return static_cast<size_t>(gen.uniform(1, 5000));
        default:
          return std::numeric_limits<size_t>::max();
      }
    });
    ASSERT_EQ(frames.size(), samples.size());
    for (size_t f = 0; f < frames.size(); ++f) {
      SCOPED_TRACE("frame " + std::to_string(f));
      expect_frame_matches(frames[f], samples[f], limits);
    }
    EXPECT_EQ(decoder.buffered_bytes(), 0u);
    if (::testing::Test::HasFailure()) return;  // One failing seed/iteration is enough.
  }
}

TEST(RoundTrip, RandomFramesToClientSurviveAnyChunking) {
  run_round_trips(Role::kClient, /*seed=*/0xC0FFEE, /*iterations=*/3000);
}

TEST(RoundTrip, RandomFramesToServerSurviveAnyChunking) {
  run_round_trips(Role::kServer, /*seed=*/20240611, /*iterations=*/3000);
}

}  // namespace
}  // namespace meshrpc::wire
