// Keeps the seeds of struct_decoder_fuzz (tests/fuzz/corpus/struct_decoder/) valid as the
// codec evolves, and replays them through the fuzz target's properties in every build (not
// only the fuzz build): a seed that stops decoding would silently stop steering the fuzzer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "tests/fuzz/struct_decoder_target.h"

namespace meshrpc::codec::fuzz {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::IsNull;

// From CMake, not __FILE__: ccache's base_dir makes __FILE__ relative to the build.
const std::filesystem::path kCorpus =
    std::filesystem::path(MESHRPC_SOURCE_DIR) / "tests/fuzz/corpus/struct_decoder";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(StructDecoderCorpus, SeedsDecodeAsIntendedAndKeepTheFuzzProperties) {
  int seeds = 0;
  int malformed = 0;
  for (const auto& file : std::filesystem::directory_iterator(kCorpus)) {
    const std::string name = file.path().filename().string();
    SCOPED_TRACE(name);
    const std::string input = read_file(file.path());
    ASSERT_FALSE(input.empty());
    Target value;
    if (name.starts_with("malformed")) {  // seeds for the error paths
      EXPECT_THAT(decode_struct(input, value), StatusIs(StatusCode::kInvalidArgument));
      ++malformed;
    } else {
      ASSERT_THAT(decode_struct(input, value), IsOk());
      EXPECT_GT(encoded_size(value), 0u);
    }
    EXPECT_THAT(struct_decoder_violation(input), IsNull());
    ++seeds;
  }
  EXPECT_GE(seeds, 5);
  EXPECT_GE(malformed, 1);
}

TEST(StructDecoderCorpus, DeepTreeSeedSitsExactlyAtTheNestingLimit) {
  Target value;
  ASSERT_THAT(decode_struct(read_file(kCorpus / "deep_tree"), value), IsOk());
  int levels = 1;  // Target itself
  for (const Tree* tree = &value.tree; tree != nullptr;
       tree = tree->children.empty() ? nullptr : &tree->children[0]) {
    ++levels;
  }
  EXPECT_EQ(levels, kMaxNestingDepth);
  EXPECT_THAT(decode_struct(read_file(kCorpus / "malformed_too_deep"), value),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("nesting deeper")));
}

TEST(StructDecoderCorpus, UnpackedSeedDecodesLikeProtobuf) {
  Target value;
  ASSERT_THAT(decode_struct(read_file(kCorpus / "unpacked_unknown_duplicates"), value), IsOk());
  EXPECT_EQ(value.i32s, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(value.i32, 2);
  EXPECT_EQ(value.leaf.id, 1);
  EXPECT_EQ(value.leaf.label, "merged");
  EXPECT_TRUE(value.flag);
}

}  // namespace
}  // namespace meshrpc::codec::fuzz
