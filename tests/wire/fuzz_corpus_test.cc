// Keeps the hand-written fuzz seeds (tests/fuzz/corpus/frame_decoder/) valid as the protocol
// evolves: a seed that stops decoding would silently stop steering the fuzzer to deep code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/wire/frame_decoder.h"
#include "raw_frames.h"
#include "tests/fuzz/frame_decoder_config.h"

namespace meshrpc::wire {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::IsEmpty;
using ::testing::Not;

// From CMake, not __FILE__: ccache's base_dir makes __FILE__ relative to the build.
const std::filesystem::path kCorpus =
    std::filesystem::path(MESHRPC_SOURCE_DIR) / "tests/fuzz/corpus/frame_decoder";

using fuzz::limits_for;

TEST(FuzzCorpus, SeedsDecodeToFramesAsIntended) {
  int seeds = 0;
  for (const auto& file : std::filesystem::directory_iterator(kCorpus)) {
    std::ifstream in(file.path(), std::ios::binary);
    std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(file.path().filename().string());
    ASSERT_GE(input.size(), 2u);
    const auto config = static_cast<uint8_t>(input[0]);
    FrameDecoder decoder(fuzz::role_for(config), limits_for(config));
    Result<std::vector<Frame>> frames = testing::decode_all(decoder, input.substr(2));
    if (file.path().filename().string().find("mandatory") != std::string::npos) {
      EXPECT_THAT(frames, StatusIs(StatusCode::kInternal));  // The seed for the error path.
    } else {
      ASSERT_THAT(frames, IsOk());
      EXPECT_THAT(*frames, Not(IsEmpty()));
      EXPECT_EQ(decoder.buffered_bytes(), 0u);
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 5);
}

}  // namespace
}  // namespace meshrpc::wire
