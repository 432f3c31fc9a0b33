#include "meshrpc/base/buffer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace meshrpc {
namespace {

using ::testing::ElementsAre;

// A buffer holding each of `pieces` as its own slice in its own block, with no writable tail.
Buffer sliced(std::initializer_list<std::string_view> pieces) {
  Buffer out;
  for (std::string_view piece : pieces) out.append(Slice::copy_of(piece));
  return out;
}

std::vector<std::string> slice_texts(const Buffer& buffer) {
  std::vector<std::string> out;
  for (const Slice& slice : buffer.slices()) out.emplace_back(slice.view());
  return out;
}

// The structural invariants every Buffer keeps: no empty slices, sizes add up.
void expect_well_formed(const Buffer& buffer) {
  size_t total = 0;
  for (const Slice& slice : buffer.slices()) {
    EXPECT_FALSE(slice.empty());
    total += slice.size();
  }
  EXPECT_EQ(total, buffer.size());
}

// Distinct bytes, so that a byte from the wrong offset shows up as a mismatch.
std::string pattern(size_t size, char first = 'a') {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(first + i % 23);
  return out;
}

// Buffer shapes that exercise every path of the front operations: several slices, one slice
// with a writable tail behind it, and slices followed by tail bytes. All hold kLayoutBytes.
struct Layout {
  std::string_view name;
  std::vector<std::string_view> slices;  // each in its own block
  std::string_view tail;                 // then appended into a writable tail block
  Buffer make() const {
    Buffer out;
    for (std::string_view slice : slices) out.append(Slice::copy_of(slice));
    out.append_copy(tail);
    return out;
  }
};

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> all = {
      {"three slices", {"abc", "defgh", "ij"}, ""},
      {"single slice with tail", {}, "abcdefghij"},
      {"slices then tail", {"ab", "cde"}, "fghij"},
      {"one-byte slices", {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, ""},
  };
  return all;
}

constexpr std::string_view kLayoutBytes = "abcdefghij";

TEST(Block, AllocateRoundsCapacityUpToDefaultAndHoldsOneReference) {
  Block* small = Block::allocate(1);
  EXPECT_EQ(small->capacity(), Block::kDefaultBytes);
  EXPECT_EQ(small->ref_count(), 1u);
  Block* large = Block::allocate(Block::kDefaultBytes + 1);
  EXPECT_GE(large->capacity(), Block::kDefaultBytes + 1);
  small->unref();
  large->unref();
}

TEST(Block, LiveCountFollowsLastUnref) {
  const int64_t start = Block::live_count();
  Block* block = Block::allocate(Block::kDefaultBytes);
  EXPECT_EQ(Block::live_count(), start + 1);
  block->ref();
  EXPECT_EQ(block->ref_count(), 2u);
  block->unref();
  EXPECT_EQ(Block::live_count(), start + 1);
  block->unref();
  EXPECT_EQ(Block::live_count(), start);
}

TEST(Slice, CopyOfHoldsTheBytesInANewBlock) {
  const std::string bytes = "payload";
  Slice slice = Slice::copy_of(bytes);
  EXPECT_EQ(slice.view(), bytes);
  EXPECT_NE(slice.data(), bytes.data());
  ASSERT_NE(slice.block(), nullptr);
  EXPECT_EQ(slice.block()->ref_count(), 1u);
  EXPECT_EQ(slice.data(), slice.block()->data());
}

TEST(Slice, CopySharesTheBlockAndMoveEmptiesTheSource) {
  Slice original = Slice::copy_of("shared");
  const Block* block = original.block();
  {
    Slice copy = original;
    EXPECT_EQ(copy.data(), original.data());
    EXPECT_EQ(block->ref_count(), 2u);
    Slice moved = std::move(copy);
    EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
    EXPECT_EQ(copy.block(), nullptr);
    EXPECT_EQ(moved.view(), "shared");
    EXPECT_EQ(block->ref_count(), 2u);
  }
  EXPECT_EQ(block->ref_count(), 1u);
}

TEST(Slice, SubViewsARangeOfTheSameBlockAndHoldsAReference) {
  Slice whole = Slice::copy_of("0123456789");
  {
    Slice middle = whole.sub(2, 5);
    EXPECT_EQ(middle.view(), "23456");
    EXPECT_EQ(middle.data(), whole.data() + 2);
    EXPECT_EQ(middle.block(), whole.block());
    EXPECT_EQ(whole.block()->ref_count(), 2u);

    Slice nested = middle.sub(1, 2);
    EXPECT_EQ(nested.view(), "34");
    EXPECT_EQ(nested.data(), whole.data() + 3);
    EXPECT_EQ(whole.block()->ref_count(), 3u);

    EXPECT_EQ(whole.sub(0, 10).view(), "0123456789");
    EXPECT_TRUE(whole.sub(10, 0).empty());
  }
  EXPECT_EQ(whole.block()->ref_count(), 1u);
}

TEST(Buffer, AppendCopyOfManySmallPiecesStaysOneSlice) {
  Buffer buffer;
  std::string model;
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = pattern(1 + i % 9, static_cast<char>('a' + i % 7));
    buffer.append_copy(piece);
    model += piece;
  }
  ASSERT_LT(model.size(), Block::kDefaultBytes);
  EXPECT_EQ(buffer.slices().size(), 1u);
  EXPECT_EQ(buffer.size(), model.size());
  EXPECT_EQ(buffer.to_string(), model);
}

TEST(Buffer, AppendCopyContinuesInANewBlockWhenTheTailIsFull) {
  Buffer buffer;
  const std::string first = pattern(Block::kDefaultBytes - 10);
  const std::string second = pattern(100, 'A');
  buffer.append_copy(first);
  buffer.append_copy(second);
  EXPECT_EQ(buffer.slices().size(), 2u);
  EXPECT_NE(buffer.slices()[0].block(), buffer.slices()[1].block());
  EXPECT_EQ(buffer.to_string(), first + second);
}

TEST(Buffer, CommitMakesPreparedBytesVisible) {
  Buffer buffer;
  std::span<char> space = buffer.prepare(10);
  ASSERT_GE(space.size(), 10u);
  std::memcpy(space.data(), "0123456789", 10);
  EXPECT_EQ(buffer.size(), 0u);  // written but not committed
  buffer.commit(6);
  EXPECT_EQ(buffer.size(), 6u);
  EXPECT_EQ(buffer.to_string(), "012345");

  // The next prepare continues right after the committed bytes, so the run stays one slice.
  std::span<char> more = buffer.prepare(4);
  EXPECT_EQ(more.data(), space.data() + 6);
  std::memcpy(more.data(), "abcd", 4);
  buffer.commit(4);
  EXPECT_EQ(buffer.to_string(), "012345abcd");
  EXPECT_EQ(buffer.slices().size(), 1u);
}

TEST(Buffer, EmptyAppendCopyAndZeroCommitAddNoSlice) {
  Buffer buffer;
  buffer.append_copy("");
  (void)buffer.prepare(8);
  buffer.commit(0);
  EXPECT_TRUE(buffer.empty());
  EXPECT_TRUE(buffer.slices().empty());
}

TEST(Buffer, PrepareLargerThanTheTailReturnsEnoughContiguousSpace) {
  Buffer buffer = Buffer::copy_of("head");
  const size_t big = 3 * Block::kDefaultBytes + 7;
  std::span<char> space = buffer.prepare(big);
  ASSERT_GE(space.size(), big);
  const std::string body = pattern(big);
  std::memcpy(space.data(), body.data(), big);
  buffer.commit(big);
  EXPECT_EQ(buffer.to_string(), "head" + body);
  EXPECT_THAT(buffer.slices(), testing::SizeIs(2));
}

TEST(Buffer, CutFrontMatchesAStringModelAtEveryOffset) {
  for (const Layout& layout : layouts()) {
    for (size_t n = 0; n <= kLayoutBytes.size() + 2; ++n) {
      SCOPED_TRACE(testing::Message() << layout.name << ", cut_front(" << n << ")");
      Buffer buffer = layout.make();
      ASSERT_EQ(buffer.to_string(), kLayoutBytes);
      Buffer front = buffer.cut_front(n);
      const size_t taken = std::min(n, kLayoutBytes.size());
      EXPECT_EQ(front.size(), taken);
      EXPECT_EQ(front.to_string(), kLayoutBytes.substr(0, taken));
      EXPECT_EQ(buffer.size(), kLayoutBytes.size() - taken);
      EXPECT_EQ(buffer.to_string(), kLayoutBytes.substr(taken));
      expect_well_formed(front);
      expect_well_formed(buffer);
      // The remainder stays usable: appending lands after what is left.
      buffer.append_copy("XY");
      EXPECT_EQ(buffer.to_string(), std::string(kLayoutBytes.substr(taken)) + "XY");
      EXPECT_EQ(front.to_string(), kLayoutBytes.substr(0, taken));
    }
  }
}

TEST(Buffer, CutFrontSharesBlocksWithoutCopying) {
  Buffer buffer = sliced({"abc", "defgh", "ij"});
  const Slice first = buffer.slices()[0];
  const Slice second = buffer.slices()[1];
  const uint32_t second_refs = second.block()->ref_count();

  Buffer front = buffer.cut_front(5);  // "abc" whole, "de" of the second slice
  ASSERT_THAT(slice_texts(front), ElementsAre("abc", "de"));
  ASSERT_THAT(slice_texts(buffer), ElementsAre("fgh", "ij"));
  EXPECT_EQ(front.slices()[0].data(), first.data());
  EXPECT_EQ(front.slices()[1].data(), second.data());
  EXPECT_EQ(buffer.slices()[0].data(), second.data() + 2);
  EXPECT_EQ(buffer.slices()[0].block(), second.block());
  // The split block is now viewed by both halves.
  EXPECT_EQ(second.block()->ref_count(), second_refs + 1);
}

TEST(Buffer, ConsumeMatchesAStringModelAtEveryOffset) {
  for (const Layout& layout : layouts()) {
    for (size_t n = 0; n <= kLayoutBytes.size() + 2; ++n) {
      SCOPED_TRACE(testing::Message() << layout.name << ", consume(" << n << ")");
      Buffer buffer = layout.make();
      buffer.consume(n);
      const size_t taken = std::min(n, kLayoutBytes.size());
      EXPECT_EQ(buffer.size(), kLayoutBytes.size() - taken);
      EXPECT_EQ(buffer.to_string(), kLayoutBytes.substr(taken));
      expect_well_formed(buffer);
      buffer.append_copy("XY");
      EXPECT_EQ(buffer.to_string(), std::string(kLayoutBytes.substr(taken)) + "XY");
    }
  }
}

TEST(Buffer, ConsumeReleasesWholeSlicesAndKeepsThePartialOneInPlace) {
  Buffer buffer = sliced({"abc", "defgh"});
  const Slice first = buffer.slices()[0];
  const Slice second = buffer.slices()[1];
  buffer.consume(4);
  EXPECT_EQ(first.block()->ref_count(), 1u);  // only `first` still views it
  ASSERT_THAT(slice_texts(buffer), ElementsAre("efgh"));
  EXPECT_EQ(buffer.slices()[0].data(), second.data() + 1);
}

TEST(Buffer, CopyFrontAndAtReadAcrossSlices) {
  for (const Layout& layout : layouts()) {
    SCOPED_TRACE(layout.name);
    const Buffer buffer = layout.make();
    for (size_t n = 0; n <= kLayoutBytes.size(); ++n) {
      std::string out(n, '?');
      buffer.copy_front(out.data(), n);
      EXPECT_EQ(out, kLayoutBytes.substr(0, n));
    }
    for (size_t i = 0; i < kLayoutBytes.size(); ++i) {
      EXPECT_EQ(buffer.at(i), kLayoutBytes[i]) << "at(" << i << ")";
    }
  }
}

TEST(Buffer, PeekPointsIntoTheFirstSliceWhenItHoldsThePrefix) {
  const Buffer buffer = sliced({"abc", "defgh", "ij"});
  char scratch[16] = {};
  EXPECT_EQ(buffer.peek(2, scratch), buffer.slices()[0].data());
  EXPECT_EQ(buffer.peek(3, scratch), buffer.slices()[0].data());
}

TEST(Buffer, PeekCopiesToScratchWhenThePrefixSpansSlices) {
  const Buffer buffer = sliced({"abc", "defgh", "ij"});
  for (size_t n = 4; n <= buffer.size(); ++n) {
    char scratch[16] = {};
    const char* view = buffer.peek(n, scratch);
    EXPECT_EQ(view, scratch) << "peek(" << n << ")";
    EXPECT_EQ(std::string_view(view, n), kLayoutBytes.substr(0, n));
  }
}

TEST(Buffer, FlattenJoinsSlicesIntoOne) {
  Buffer buffer = sliced({"abc", "defgh", "ij"});
  buffer.append_copy("kl");
  const std::string_view flat = buffer.flatten();
  EXPECT_EQ(flat, "abcdefghijkl");
  ASSERT_EQ(buffer.slices().size(), 1u);
  EXPECT_EQ(buffer.slices()[0].data(), flat.data());
  EXPECT_EQ(buffer.size(), 12u);
  // Appending after flatten still lands at the end.
  buffer.append_copy("mn");
  EXPECT_EQ(buffer.to_string(), "abcdefghijklmn");
}

TEST(Buffer, FlattenOfOneSliceCopiesNothing) {
  Buffer buffer = Buffer::copy_of("single");
  const char* data = buffer.slices()[0].data();
  EXPECT_EQ(buffer.flatten().data(), data);
  Buffer empty;
  EXPECT_TRUE(empty.flatten().empty());
}

TEST(Buffer, CopySharesBlocksWithoutCopyingBytes) {
  Buffer original = sliced({"abc", "defgh"});
  original.append_copy("ij");
  std::vector<uint32_t> refs;
  for (const Slice& slice : original.slices()) refs.push_back(slice.block()->ref_count());
  {
    const Buffer copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
    ASSERT_EQ(copy.slices().size(), original.slices().size());
    for (size_t i = 0; i < copy.slices().size(); ++i) {
      EXPECT_EQ(copy.slices()[i].data(), original.slices()[i].data()) << "slice " << i;
      EXPECT_EQ(original.slices()[i].block()->ref_count(), refs[i] + 1) << "slice " << i;
    }
    EXPECT_EQ(copy, original);
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    EXPECT_EQ(original.slices()[i].block()->ref_count(), refs[i]) << "slice " << i;
  }
}

// Each way of getting a second Buffer over the same bytes: the two must then be independent,
// although both may still have room in the original's last block.
struct SharingCase {
  std::string_view name;
  std::function<Buffer(Buffer&)> share;
};

TEST(Buffer, BuffersSharingBytesDoNotShareTheWritableTail) {
  const std::vector<SharingCase> cases = {
      {"copy constructor", [](Buffer& b) { return Buffer(b); }},
      {"copy assignment",
       [](Buffer& b) {
         Buffer out = Buffer::copy_of("previous contents");
         out = b;
         return out;
       }},
      {"append(const Buffer&)",
       [](Buffer& b) {
         Buffer out;
         out.append(b);
         return out;
       }},
      {"slices appended one by one",
       [](Buffer& b) {
         Buffer out;
         for (const Slice& slice : b.slices()) out.append(slice);
         return out;
       }},
  };
  for (const SharingCase& c : cases) {
    SCOPED_TRACE(c.name);
    Buffer original = Buffer::copy_of("head");
    Buffer other = c.share(original);
    other.append_copy("OTHER");
    EXPECT_EQ(original.to_string(), "head");
    original.append_copy("ORIG");
    EXPECT_EQ(original.to_string(), "headORIG");
    EXPECT_EQ(other.to_string(), "headOTHER");
    other.append_copy("+");
    original.append_copy("-");
    EXPECT_EQ(original.to_string(), "headORIG-");
    EXPECT_EQ(other.to_string(), "headOTHER+");
  }
}

TEST(Buffer, CutFrontResultDoesNotShareTheWritableTail) {
  for (size_t n : {size_t{0}, size_t{2}, size_t{4}}) {
    SCOPED_TRACE(testing::Message() << "cut_front(" << n << ")");
    Buffer rest = Buffer::copy_of("head");
    Buffer front = rest.cut_front(n);
    front.append_copy("FRONT");
    rest.append_copy("REST");
    EXPECT_EQ(front.to_string(), std::string("head").substr(0, n) + "FRONT");
    EXPECT_EQ(rest.to_string(), std::string("head").substr(n) + "REST");
  }
}

TEST(Buffer, MoveLeavesTheSourceEmptyAndCarriesTheTail) {
  Buffer source = Buffer::copy_of("abc");
  const char* data = source.slices()[0].data();
  Buffer target = std::move(source);
  // NOLINTBEGIN(bugprone-use-after-move): the moved-from state is part of the contract.
  EXPECT_TRUE(source.empty());
  EXPECT_TRUE(source.slices().empty());
  EXPECT_EQ(source.to_string(), "");
  EXPECT_EQ(target.slices()[0].data(), data);
  // The tail moved too: appending to the target stays contiguous, and the source's own
  // appends go elsewhere.
  target.append_copy("de");
  EXPECT_EQ(target.slices().size(), 1u);
  source.append_copy("xyz");
  EXPECT_EQ(source.to_string(), "xyz");
  EXPECT_EQ(target.to_string(), "abcde");

  Buffer assigned = Buffer::copy_of("old");
  assigned = std::move(target);
  EXPECT_TRUE(target.empty());
  EXPECT_TRUE(target.slices().empty());
  // NOLINTEND(bugprone-use-after-move)
  assigned.append_copy("f");
  EXPECT_EQ(assigned.to_string(), "abcdef");
  EXPECT_EQ(assigned.slices().size(), 1u);
}

TEST(Buffer, AssignmentReleasesThePreviousBlocksIncludingTheTail) {
  const int64_t start = Block::live_count();
  {
    Buffer target = Buffer::copy_of("old");  // one block, viewed by a slice and held as tail
    const Buffer source = sliced({"new"});
    ASSERT_EQ(Block::live_count(), start + 2);
    target = source;
    EXPECT_EQ(Block::live_count(), start + 1);
    EXPECT_EQ(target.to_string(), "new");

    Buffer replaced = Buffer::copy_of("old");
    ASSERT_EQ(Block::live_count(), start + 2);
    replaced = Buffer(source);
    EXPECT_EQ(Block::live_count(), start + 1);
    EXPECT_EQ(replaced.to_string(), "new");
  }
  EXPECT_EQ(Block::live_count(), start);
}

TEST(Buffer, EqualityComparesBytesHoweverSliced) {
  Buffer whole = Buffer::copy_of("hello world");
  EXPECT_EQ(whole, sliced({"hello world"}));
  EXPECT_EQ(whole, sliced({"hel", "lo w", "orld"}));
  EXPECT_EQ(sliced({"h", "ello world"}), sliced({"hello wor", "ld"}));
  EXPECT_NE(whole, sliced({"hello", "world"}));
  EXPECT_NE(whole, sliced({"hello worlD"}));
  EXPECT_NE(whole, sliced({"hello world!"}));
  EXPECT_EQ(Buffer(), sliced({}));
  EXPECT_NE(Buffer(), whole);
}

TEST(Buffer, AppendBufferSharesSlicesAndMoveAppendEmptiesTheSource) {
  Buffer target = Buffer::copy_of("ab");
  const Buffer shared = sliced({"cd", "ef"});
  target.append(shared);
  EXPECT_EQ(target.to_string(), "abcdef");
  EXPECT_EQ(target.slices()[1].data(), shared.slices()[0].data());
  EXPECT_EQ(target.slices()[2].data(), shared.slices()[1].data());
  EXPECT_EQ(shared.to_string(), "cdef");

  Buffer moved = sliced({"gh"});
  const char* moved_data = moved.slices()[0].data();
  target.append(std::move(moved));
  EXPECT_TRUE(moved.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(target.to_string(), "abcdefgh");
  EXPECT_EQ(target.slices().back().data(), moved_data);
  expect_well_formed(target);
}

TEST(Buffer, AppendOfAnEmptyBufferKeepsTheTailContiguous) {
  Buffer target = Buffer::copy_of("ab");
  target.append(Buffer());
  target.append(sliced({}));
  target.append_copy("cd");
  EXPECT_EQ(target.to_string(), "abcd");
  EXPECT_EQ(target.slices().size(), 1u);
}

// A buffer appended to itself holds its bytes twice, for every slice count, including the
// ones where the slice vector outgrows its inline capacity (4) or its heap capacity midway.
TEST(Buffer, AppendToItselfDoublesTheContents) {
  for (size_t count = 1; count <= 9; ++count) {
    SCOPED_TRACE(testing::Message() << count << " slices");
    Buffer buffer;
    std::string model;
    for (size_t i = 0; i < count; ++i) {
      const std::string piece(2, static_cast<char>('a' + i));
      buffer.append(Slice::copy_of(piece));
      model += piece;
    }
    const Buffer& self = buffer;
    buffer.append(self);
    EXPECT_EQ(buffer.size(), 2 * model.size());
    EXPECT_EQ(buffer.to_string(), model + model);
    expect_well_formed(buffer);
  }
}

TEST(Buffer, ClearReleasesEveryBlockAndKeepsTheBufferUsable) {
  const int64_t start = Block::live_count();
  Buffer buffer = sliced({"abc", "def"});
  buffer.append_copy("tail");
  EXPECT_EQ(Block::live_count(), start + 3);
  buffer.clear();
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(Block::live_count(), start);
  buffer.append_copy("again");
  EXPECT_EQ(buffer.to_string(), "again");
}

TEST(Buffer, WorkloadReturnsLiveBlockCountToItsStart) {
  const int64_t start = Block::live_count();
  {
    std::vector<Buffer> kept;
    Buffer stream;
    for (int i = 0; i < 500; ++i) {
      stream.append_copy(pattern(100 + i * 37 % 3000));
      std::span<char> space = stream.prepare(64);
      std::memset(space.data(), 'p', 64);
      stream.commit(64);
      kept.push_back(stream.cut_front(stream.size() / 2));
      Buffer copy = kept.back();
      copy.append(stream);
      if (i % 7 == 0) (void)copy.flatten();
      if (kept.size() > 20) kept.erase(kept.begin());
      stream.consume(50);
    }
    EXPECT_GT(Block::live_count(), start);
  }
  EXPECT_EQ(Block::live_count(), start);
}

struct Modeled {
  Buffer buffer;
  std::string model;
};

// Sizes mostly small (frame headers), sometimes around and past a block.
size_t random_length(std::mt19937_64& rng) {
  const uint64_t kind = rng() % 20;
  if (kind < 16) return rng() % 65;
  if (kind < 19) return rng() % 4096;
  return rng() % (2 * Block::kDefaultBytes);
}

// A cut point: often exactly on a slice edge, otherwise anywhere up to a little past the end.
size_t random_cut(std::mt19937_64& rng, const Buffer& buffer) {
  if (rng() % 3 == 0 && !buffer.slices().empty()) {
    const size_t edges = rng() % (buffer.slices().size() + 1);
    size_t offset = 0;
    for (size_t i = 0; i < edges; ++i) offset += buffer.slices()[i].size();
    return offset;
  }
  return rng() % (buffer.size() + 3);
}

std::string random_bytes(std::mt19937_64& rng, size_t size) {
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>('!' + rng() % 90);
  return out;
}

// Applies one random operation to `subject` and returns its name; `other` (which may be the same
// object) is read, and changed only by operations that take from it. Results that only exist
// inside the operation are checked here, with EXPECT.
std::string apply_random_op(std::mt19937_64& rng, Modeled& subject, Modeled& other) {
  constexpr size_t kMaxModelBytes = size_t{64} * 1024;  // keeps to_string() after every op cheap
  uint64_t op = rng() % 9;
  if (subject.model.size() > kMaxModelBytes) op = 3;
  switch (op) {
    case 0: {
      const std::string bytes = random_bytes(rng, random_length(rng));
      subject.buffer.append_copy(bytes);
      subject.model += bytes;
      return "append_copy(" + std::to_string(bytes.size()) + ")";
    }
    case 1: {
      if (&subject == &other) return "skip self-append";  // covered by its own test
      subject.buffer.append(other.buffer);
      subject.model += other.model;
      return "append(const Buffer&)";
    }
    case 2: {
      const size_t n = random_cut(rng, other.buffer);
      Buffer cut = other.buffer.cut_front(n);
      const std::string cut_model = other.model.substr(0, std::min(n, other.model.size()));
      other.model.erase(0, cut_model.size());
      EXPECT_EQ(cut.to_string(), cut_model) << "cut_front(" << n << ")";
      subject.buffer.append(std::move(cut));
      subject.model += cut_model;
      EXPECT_TRUE(cut.empty()) << "append(Buffer&&) left its source non-empty";  // NOLINT
      return "cut_front(" + std::to_string(n) + ") + append(Buffer&&)";
    }
    case 3: {
      const size_t n = random_cut(rng, subject.buffer);
      subject.buffer.consume(n);
      subject.model.erase(0, std::min(n, subject.model.size()));
      return "consume(" + std::to_string(n) + ")";
    }
    case 4: {
      const size_t want = random_length(rng);
      std::span<char> space = subject.buffer.prepare(want);
      EXPECT_GE(space.size(), want) << "prepare(" << want << ")";
      if (space.size() < want) return "prepare";
      const size_t used = want == 0 ? 0 : rng() % (want + 1);
      const std::string bytes = random_bytes(rng, used);
      std::memcpy(space.data(), bytes.data(), used);
      subject.buffer.commit(used);
      subject.model += bytes;
      return "prepare(" + std::to_string(want) + ") + commit(" + std::to_string(used) + ")";
    }
    case 5: {
      subject.buffer = other.buffer;
      subject.model = other.model;
      return "copy assign";
    }
    case 6: {
      Buffer copy(other.buffer);
      subject.buffer = std::move(copy);
      subject.model = other.model;
      return "copy construct + move assign";
    }
    case 7: {
      EXPECT_EQ(subject.buffer.flatten(), subject.model) << "flatten";
      return "flatten";
    }
    default: {
      const size_t n = random_cut(rng, subject.buffer);
      Buffer front = subject.buffer.cut_front(n);
      const size_t taken = std::min(n, subject.model.size());
      EXPECT_EQ(front.to_string(), subject.model.substr(0, taken)) << "cut_front(" << n << ")";
      subject.model.erase(0, taken);
      return "cut_front(" + std::to_string(n) + ") dropped";
    }
  }
}

TEST(Buffer, RandomOperationsMatchAStringModel) {
  constexpr int kOpsPerSeed = 4000;
  for (uint64_t seed : {1u, 2u, 3u, 20240611u}) {
    const int64_t start = Block::live_count();
    {
      std::mt19937_64 rng(seed);
      std::vector<Modeled> subjects(3);
      for (int i = 0; i < kOpsPerSeed; ++i) {
        Modeled& subject = subjects[rng() % subjects.size()];
        Modeled& other = subjects[rng() % subjects.size()];
        const std::string op = apply_random_op(rng, subject, other);
        SCOPED_TRACE(testing::Message() << "seed " << seed << ", op #" << i << " " << op);
        for (const Modeled& s : subjects) {
          ASSERT_EQ(s.buffer.size(), s.model.size());
          ASSERT_EQ(s.buffer.to_string(), s.model);
        }
        ASSERT_FALSE(HasFailure());
      }
    }
    EXPECT_EQ(Block::live_count(), start) << "seed " << seed;
  }
}

// A blocking queue for handing buffers between threads.
class BufferChannel {
 public:
  void send(std::optional<Buffer> item) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
    }
    ready_.notify_one();
  }
  // An empty optional means the sender is done.
  std::optional<Buffer> receive() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !items_.empty(); });
    std::optional<Buffer> item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::optional<Buffer>> items_;
};

std::string message_bytes(int i) {
  return pattern(1 + (i * 131) % 3000, static_cast<char>('A' + i % 20));
}

TEST(Block, SlicesCreatedOnOneThreadAreReleasedOnAnother) {
  constexpr int kMessages = 3000;
  const int64_t start = Block::live_count();
  {
    BufferChannel to_worker;
    BufferChannel to_main;
    std::atomic<int> worker_mismatches{0};
    std::thread worker([&] {
      // Receives each message, keeps its front half and sends its back half (still sharing
      // the block) back, plus a fresh block of its own.
      int index = 0;
      while (std::optional<Buffer> message = to_worker.receive()) {
        const std::string bytes = message_bytes(index++);
        Buffer front = message->cut_front(message->size() / 2);
        if (front.to_string() != bytes.substr(0, bytes.size() / 2)) worker_mismatches.fetch_add(1);
        Buffer reply = std::move(*message);
        reply.append_copy("!");
        to_main.send(std::move(reply));
      }
      to_main.send(std::nullopt);
    });
    Buffer stream;
    for (int i = 0; i < kMessages; ++i) {
      stream.append_copy(message_bytes(i));
      to_worker.send(stream.cut_front(stream.size()));
    }
    to_worker.send(std::nullopt);
    int received = 0;
    int mismatches = 0;
    while (std::optional<Buffer> reply = to_main.receive()) {
      const std::string bytes = message_bytes(received);
      if (reply->to_string() != bytes.substr(bytes.size() / 2) + "!") ++mismatches;
      ++received;
    }
    worker.join();
    EXPECT_EQ(received, kMessages);
    EXPECT_EQ(mismatches, 0);
    EXPECT_EQ(worker_mismatches.load(), 0);
  }
  EXPECT_EQ(Block::live_count(), start);
}

TEST(Block, CopiesOfOneSliceReleasedConcurrentlyFreeTheBlockOnce) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  const int64_t start = Block::live_count();
  for (int round = 0; round < kRounds; ++round) {
    Buffer shared = sliced({"shared across threads", "and a second block"});
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      // Each thread takes its own copy and makes and drops more copies of it.
      threads.emplace_back([copy = shared] {
        for (int i = 0; i < 50; ++i) {
          Buffer again = copy;
          (void)again.cut_front(10);
        }
      });
    }
    if (round % 2 == 0) shared.clear();  // sometimes the creator lets go first
    for (std::thread& thread : threads) thread.join();
  }
  EXPECT_EQ(Block::live_count(), start);
}

// Holds a slice in a thread_local that is constructed before the thread's block cache, so it is
// destroyed after it when the thread exits.
struct ThreadExitHolder {
  Slice slice;
};

void release_slice_after_cache_teardown() {
  std::thread([] {
    thread_local ThreadExitHolder holder;
    holder.slice = Slice::copy_of("released at thread exit");  // first use builds the cache
    // Two blocks freed now fill the cache's vector to its capacity, so a later give() into the
    // destroyed cache reallocates and frees its storage a second time, which glibc detects.
    Slice first = Slice::copy_of("cached");
    Slice second = Slice::copy_of("cached");
  }).join();
}

// Blocks released while a thread's thread_locals are being destroyed (a thread_local or static
// Buffer) must be freed safely even once that thread's block cache is gone.
TEST(BlockDeathTest, ReleaseDuringThreadExitAfterCacheTeardownIsSafe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const int64_t start = Block::live_count();
        for (int i = 0; i < 20; ++i) release_slice_after_cache_teardown();
        std::_Exit(Block::live_count() == start ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace meshrpc
