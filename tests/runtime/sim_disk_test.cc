// What only SimDisk has: crashes that lose what POSIX allows to lose, and injected faults.
// The plain Disk contract is checked in disk_test.cc.
#include "meshrpc/runtime/sim_disk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::runtime {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::IsOkAndHolds;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SimDiskTest : public ::testing::Test {
 protected:
  // Creates `path` with `content`, durable: data synced, then its directory synced.
  void put_durably(std::string_view path, std::string_view content,
                   std::string_view directory = "") {
    auto file = disk_.open(path, OpenMode::create_or_truncate());
    ASSERT_THAT(file, IsOk());
    ASSERT_THAT((*file)->write(0, content), IsOk());
    ASSERT_THAT((*file)->sync(), IsOk());
    ASSERT_THAT(disk_.sync_directory(directory), IsOk());
  }

  std::unique_ptr<File> open(std::string_view path) {
    auto file = disk_.open(path, OpenMode::create_or_open());
    EXPECT_THAT(file, IsOk());
    return file.ok() ? std::move(file).value() : nullptr;
  }

  Random random_{7};
  SimDisk disk_{random_};
};

TEST_F(SimDiskTest, CrashLosesUnsyncedWritesAndKeepsSyncedOnes) {
  put_durably("log", "durable");
  auto file = open("log");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->append(" lost"), IsOk());
  ASSERT_THAT(file->write(0, "D"), IsOk());
  EXPECT_THAT(file->read(0, 100), IsOkAndHolds("Durable lost"));
  file.reset();
  disk_.crash();
  EXPECT_THAT(read_file(disk_, "log"), IsOkAndHolds("durable"));
}

TEST_F(SimDiskTest, CrashKeepsWhatASyncMadeDurableEvenAfterLaterTruncation) {
  put_durably("log", "abc");
  auto file = open("log");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->append("def"), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  ASSERT_THAT(file->truncate(1), IsOk());
  disk_.crash();
  EXPECT_THAT(read_file(disk_, "log"), IsOkAndHolds("abcdef"));
}

TEST_F(SimDiskTest, NewFileVanishesInACrashUntilItsDirectoryIsSynced) {
  auto file = open("fresh");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->append("synced data, unsynced name"), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  file.reset();
  disk_.crash();
  EXPECT_THAT(disk_.exists("fresh"), IsOkAndHolds(false));

  put_durably("fresh", "both synced");
  disk_.crash();
  EXPECT_THAT(read_file(disk_, "fresh"), IsOkAndHolds("both synced"));
}

TEST_F(SimDiskTest, RenameIsUndoneByACrashUntilTheDirectoryIsSynced) {
  put_durably("a", "A");
  put_durably("b", "B");
  ASSERT_THAT(disk_.rename("a", "b"), IsOk());
  disk_.crash();
  EXPECT_THAT(read_file(disk_, "a"), IsOkAndHolds("A"));
  EXPECT_THAT(read_file(disk_, "b"), IsOkAndHolds("B"));

  ASSERT_THAT(disk_.rename("a", "b"), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  disk_.crash();
  EXPECT_THAT(disk_.exists("a"), IsOkAndHolds(false));
  EXPECT_THAT(read_file(disk_, "b"), IsOkAndHolds("A"));
}

TEST_F(SimDiskTest, RemoveIsUndoneByACrashUntilTheDirectoryIsSynced) {
  put_durably("gone", "still here");
  ASSERT_THAT(disk_.remove("gone"), IsOk());
  disk_.crash();
  EXPECT_THAT(read_file(disk_, "gone"), IsOkAndHolds("still here"));

  ASSERT_THAT(disk_.remove("gone"), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  disk_.crash();
  EXPECT_THAT(disk_.exists("gone"), IsOkAndHolds(false));
}

TEST_F(SimDiskTest, NewDirectoryNeedsItsParentSynced) {
  ASSERT_THAT(disk_.create_directories("x/y"), IsOk());
  ASSERT_THAT(disk_.sync_directory("x"), IsOk());
  disk_.crash();
  EXPECT_THAT(disk_.exists("x"), IsOkAndHolds(false));

  ASSERT_THAT(disk_.create_directories("x/y"), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  disk_.crash();
  EXPECT_THAT(disk_.exists("x"), IsOkAndHolds(true));
  EXPECT_THAT(disk_.exists("x/y"), IsOkAndHolds(false));  // x's own listing was not synced.
}

TEST_F(SimDiskTest, ListingSyncedBeforeItsDirectoryWasLinkedCountsOnceItIs) {
  // d's listing (with f) is synced while d itself is not yet durable; f is then unlinked, and
  // only afterwards is d linked durably. A crash brings back d as last synced: with f.
  ASSERT_THAT(disk_.create_directories("d"), IsOk());
  put_durably("d/f", "old", "d");
  ASSERT_THAT(disk_.remove("d/f"), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  disk_.crash();
  EXPECT_THAT(read_file(disk_, "d/f"), IsOkAndHolds("old"));
}

TEST_F(SimDiskTest, RenameAcrossDirectoriesSyncedOnOneSideLeavesTwoNames) {
  ASSERT_THAT(disk_.create_directories("from"), IsOk());
  ASSERT_THAT(disk_.create_directories("to"), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  put_durably("from/f", "data", "from");
  ASSERT_THAT(disk_.rename("from/f", "to/f"), IsOk());
  ASSERT_THAT(disk_.sync_directory("to"), IsOk());
  disk_.crash();
  // POSIX promises nothing better: the new name is durable, the old one's removal is not.
  EXPECT_THAT(read_file(disk_, "from/f"), IsOkAndHolds("data"));
  EXPECT_THAT(read_file(disk_, "to/f"), IsOkAndHolds("data"));
}

TEST_F(SimDiskTest, DirectoryReachedTwiceAfterACrashKeepsOneLink) {
  ASSERT_THAT(disk_.create_directories("p/d"), IsOk());
  ASSERT_THAT(disk_.create_directories("q"), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  ASSERT_THAT(disk_.sync_directory("p"), IsOk());
  ASSERT_THAT(disk_.rename("p/d", "q/d"), IsOk());
  ASSERT_THAT(disk_.sync_directory("q"), IsOk());
  disk_.crash();
  // The walk from the root meets p/d first (names in order); q/d is dropped.
  EXPECT_THAT(disk_.exists("p/d"), IsOkAndHolds(true));
  EXPECT_THAT(disk_.list("q"), IsOkAndHolds(IsEmpty()));
}

TEST_F(SimDiskTest, HandlesOpenedBeforeACrashAreStale) {
  put_durably("log", "x");
  auto file = open("log");
  ASSERT_NE(file, nullptr);
  disk_.crash();
  EXPECT_THAT(file->append("y"), StatusIs(StatusCode::kFailedPrecondition, HasSubstr("log")));
  EXPECT_THAT(file->read(0, 1), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->sync(), StatusIs(StatusCode::kFailedPrecondition));
  file.reset();
  auto reopened = open("log");
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->read(0, 10), IsOkAndHolds("x"));
}

// Runs one torn crash with `seed`: "base-" durable, then "0123456789" appended in two writes.
std::string torn_crash(uint64_t seed) {
  Random random(seed);
  SimDisk disk(random);
  disk.set_faults({.torn_writes = true});
  {
    auto file = disk.open("log", OpenMode::create_or_open());
    EXPECT_THAT(file, IsOk());
    EXPECT_THAT((*file)->append("base-"), IsOk());
    EXPECT_THAT((*file)->sync(), IsOk());
    EXPECT_THAT(disk.sync_directory(""), IsOk());
    EXPECT_THAT((*file)->append("01234"), IsOk());
    EXPECT_THAT((*file)->append("56789"), IsOk());
  }
  disk.crash();
  auto content = read_file(disk, "log");
  EXPECT_THAT(content, IsOk());
  return content.ok() ? *content : "";
}

TEST(SimDisk, TornWritesKeepAPrefixOfTheUnsyncedBytes) {
  const std::string unsynced = "0123456789";
  std::map<std::string, int> kept_counts;  // "none", "some", "all"
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(seed);
    const std::string content = torn_crash(seed);
    ASSERT_TRUE(content.starts_with("base-")) << content;
    const std::string kept = content.substr(5);
    EXPECT_EQ(kept, unsynced.substr(0, kept.size()));
    kept_counts[kept.empty() ? "none" : kept == unsynced ? "all" : "some"]++;
    EXPECT_EQ(torn_crash(seed), content) << "not deterministic";
  }
  EXPECT_GT(kept_counts["none"], 0);
  EXPECT_GT(kept_counts["some"], 0);
  EXPECT_GT(kept_counts["all"], 0);
}

TEST(SimDisk, TornWritesReplayChangesInOrderIncludingTruncation) {
  std::map<std::string, int> outcomes;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Random random(seed);
    SimDisk disk(random);
    disk.set_faults({.torn_writes = true});
    auto file = disk.open("f", OpenMode::create_or_open());
    ASSERT_THAT(file, IsOk());
    ASSERT_THAT((*file)->append("abcdef"), IsOk());
    ASSERT_THAT((*file)->sync(), IsOk());
    ASSERT_THAT(disk.sync_directory(""), IsOk());
    ASSERT_THAT((*file)->truncate(2), IsOk());
    ASSERT_THAT((*file)->append("XY"), IsOk());
    disk.crash();
    auto content = read_file(disk, "f");
    ASSERT_THAT(content, IsOk());
    outcomes[*content]++;
  }
  // Every outcome is a prefix of the change sequence; each of them happens.
  std::map<std::string, int> expected = {{"abcdef", 0}, {"ab", 0}, {"abX", 0}, {"abXY", 0}};
  for (const auto& [content, count] : outcomes) {
    EXPECT_TRUE(expected.contains(content)) << "impossible content " << content;
  }
  for (const auto& [content, count] : expected) {
    EXPECT_TRUE(outcomes.contains(content)) << "never saw " << content;
  }
}

TEST(SimDisk, TornWritesTurnedOnLaterStillCoverEarlierUnsyncedChanges) {
  // Changes made before torn_writes was on are folded into one rewrite of the whole file:
  // truncate to its size, then its bytes from offset 0. A crash keeps a prefix of that.
  int kept_new_bytes = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(seed);
    Random random(seed);
    SimDisk disk(random);
    auto file = disk.open("f", OpenMode::create_or_open());
    ASSERT_THAT(file, IsOk());
    ASSERT_THAT((*file)->append("aaaa"), IsOk());
    ASSERT_THAT((*file)->sync(), IsOk());
    ASSERT_THAT(disk.sync_directory(""), IsOk());
    ASSERT_THAT((*file)->write(0, "bbbb"), IsOk());
    ASSERT_THAT((*file)->append("cc"), IsOk());
    disk.set_faults({.torn_writes = true});
    disk.crash();
    auto content = read_file(disk, "f");
    ASSERT_THAT(content, IsOk());
    const std::string before("aaaa\0\0", 6);
    const std::string after = "bbbbcc";
    if (*content == "aaaa") continue;
    ASSERT_EQ(content->size(), 6u) << *content;
    const size_t prefix = content->find_first_not_of("bc");
    const size_t kept = prefix == std::string::npos ? 6 : prefix;
    EXPECT_EQ(*content, after.substr(0, kept) + before.substr(kept));
    if (kept > 0) ++kept_new_bytes;
  }
  EXPECT_GT(kept_new_bytes, 0);
}

TEST(SimDisk, UnsyncedChangesStayBoundedWhenAFileIsRewrittenInPlace) {
  Random random(5);
  SimDisk disk(random);
  disk.set_faults({.torn_writes = true});
  auto file = disk.open("hot", OpenMode::create_or_open());
  ASSERT_THAT(file, IsOk());
  const uint64_t rewrites = SimDisk::kUnsyncedSlackBytes / 64 + 100;
  uint64_t max_held = 0;
  for (uint64_t i = 0; i < rewrites; ++i) {
    ASSERT_THAT((*file)->write(0, std::string(64, static_cast<char>('a' + i % 26))), IsOk());
    max_held = std::max(max_held, disk.unsynced_change_bytes());
  }
  EXPECT_GT(max_held, SimDisk::kUnsyncedSlackBytes / 2);   // It did hold changes...
  EXPECT_LE(max_held, 64 + SimDisk::kUnsyncedSlackBytes);  // ...up to the bound.
  ASSERT_THAT((*file)->sync(), IsOk());
  EXPECT_EQ(disk.unsynced_change_bytes(), 0u);
}

TEST(SimDisk, FileThatOutlivesItsDiskIsStale) {
  Random random(1);
  auto disk = std::make_unique<SimDisk>(random);
  auto file = disk->open("f", OpenMode::create_or_open());
  ASSERT_THAT(file, IsOk());
  disk.reset();
  EXPECT_THAT((*file)->append("x"), StatusIs(StatusCode::kFailedPrecondition));
}

TEST_F(SimDiskTest, CorruptionFlipsExactlyOneBitOfAWrite) {
  disk_.set_faults({.corrupt_probability = 1});
  const std::string written(64, '\x5a');
  auto file = open("data");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->write(0, written), IsOk());
  auto read = file->read(0, written.size());
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), written.size());
  int flipped_bits = 0;
  for (size_t i = 0; i < written.size(); ++i) {
    flipped_bits += std::popcount(static_cast<unsigned char>((*read)[i] ^ written[i]));
  }
  EXPECT_EQ(flipped_bits, 1);
  EXPECT_EQ(disk_.stats().corrupted_writes, 1u);
}

TEST_F(SimDiskTest, FailProbabilityOneFailsEveryOperationWithDataLossAndNoEffect) {
  put_durably("file", "intact");
  ASSERT_THAT(disk_.create_directories("dir"), IsOk());
  auto file = open("file");
  ASSERT_NE(file, nullptr);
  disk_.set_faults({.fail_probability = 1});
  const auto is_io_error = [](std::string_view path) {
    return StatusIs(StatusCode::kDataLoss, HasSubstr(std::string(path)));
  };
  EXPECT_THAT(disk_.open("file", OpenMode::existing()), is_io_error("file"));
  EXPECT_THAT(disk_.remove("file"), is_io_error("file"));
  EXPECT_THAT(disk_.rename("file", "other"), is_io_error("other"));
  EXPECT_THAT(disk_.list("dir"), is_io_error("dir"));
  EXPECT_THAT(disk_.exists("file"), is_io_error("file"));
  EXPECT_THAT(disk_.create_directories("dir2"), is_io_error("dir2"));
  EXPECT_THAT(disk_.sync_directory("dir"), is_io_error("dir"));
  EXPECT_THAT(file->read(0, 10), is_io_error("file"));
  EXPECT_THAT(file->write(0, "X"), is_io_error("file"));
  EXPECT_THAT(file->append("X"), is_io_error("file"));
  EXPECT_THAT(file->size(), is_io_error("file"));
  EXPECT_THAT(file->truncate(0), is_io_error("file"));
  EXPECT_THAT(file->sync(), is_io_error("file"));
  EXPECT_EQ(disk_.stats().injected_failures, 13u);

  disk_.set_faults({});
  EXPECT_THAT(read_file(disk_, "file"), IsOkAndHolds("intact"));
  EXPECT_THAT(disk_.list(""), IsOkAndHolds(ElementsAre("dir", "file")));
}

TEST(SimDisk, FailProbabilityFailsAFractionOfCallsTheSameWayForTheSameSeed) {
  auto failures = [](uint64_t seed) {
    Random random(seed);
    SimDisk disk(random);
    disk.set_faults({.fail_probability = 0.25});
    std::string pattern;
    for (int i = 0; i < 400; ++i) pattern += disk.exists("x").ok() ? '.' : 'F';
    return pattern;
  };
  const std::string first = failures(3);
  EXPECT_EQ(failures(3), first);
  EXPECT_NE(failures(4), first);
  const auto failed = std::count(first.begin(), first.end(), 'F');
  EXPECT_GT(failed, 60);
  EXPECT_LT(failed, 140);
}

TEST_F(SimDiskTest, WritesPastCapacityFailWithResourceExhaustedAndNoEffect) {
  disk_.set_faults({.capacity_bytes = 100});
  auto a = open("a");
  auto b = open("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_THAT(a->write(0, std::string(60, 'a')), IsOk());
  ASSERT_THAT(b->write(0, std::string(40, 'b')), IsOk());
  EXPECT_EQ(disk_.used_bytes(), 100u);
  EXPECT_THAT(b->append("!"),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("capacity_bytes 100")));
  EXPECT_THAT(a->truncate(61), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(b->size(), IsOkAndHolds(40u));
  // Overwriting in place needs no room; shrinking makes some.
  ASSERT_THAT(a->write(0, std::string(60, 'A')), IsOk());
  ASSERT_THAT(a->truncate(10), IsOk());
  ASSERT_THAT(b->append(std::string(50, 'b')), IsOk());
  EXPECT_EQ(disk_.used_bytes(), 100u);
}

TEST_F(SimDiskTest, RemovedFileFreesItsBytesOnceTheRemovalIsDurableAndItIsClosed) {
  put_durably("big", std::string(30, 'x'));
  EXPECT_EQ(disk_.used_bytes(), 30u);
  auto file = open("big");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(disk_.remove("big"), IsOk());
  EXPECT_EQ(disk_.used_bytes(), 30u);  // A crash would bring it back.
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  EXPECT_EQ(disk_.used_bytes(), 30u);  // Still open.
  file.reset();
  EXPECT_EQ(disk_.used_bytes(), 0u);
}

TEST_F(SimDiskTest, StatsCountBytesWrittenSyncsAndCrashes) {
  auto file = open("f");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->write(0, "abc"), IsOk());
  ASSERT_THAT(file->append("de"), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  ASSERT_THAT(disk_.sync_directory(""), IsOk());
  disk_.crash();
  EXPECT_EQ(disk_.stats().bytes_written, 5u);
  EXPECT_EQ(disk_.stats().syncs, 2u);
  EXPECT_EQ(disk_.stats().directory_syncs, 1u);
  EXPECT_EQ(disk_.stats().crashes, 1u);
  EXPECT_EQ(disk_.stats().injected_failures, 0u);
  EXPECT_EQ(disk_.stats().corrupted_writes, 0u);
}

// A workload under every fault at once; returns what the disk holds after a crash.
std::string faulty_workload(uint64_t seed) {
  Random random(seed);
  SimDisk disk(random);
  disk.set_faults({.torn_writes = true, .corrupt_probability = 0.2, .fail_probability = 0.2});
  for (int round = 0; round < 30; ++round) {
    const std::string name = "f" + std::to_string(round % 4);
    auto file = disk.open(name, OpenMode::create_or_open());
    if (!file.ok()) continue;
    (*file)->append("round " + std::to_string(round) + ";").ignore_error();
    if (round % 3 == 0) (*file)->sync().ignore_error();
    if (round % 5 == 0) disk.sync_directory("").ignore_error();
    if (round % 7 == 0) disk.rename(name, "r" + std::to_string(round)).ignore_error();
  }
  disk.crash();
  disk.set_faults({});
  std::string state;
  const std::vector<std::string> names = disk.list("").value();
  for (const std::string& name : names) {
    state += name + "=" + read_file(disk, name).value_or("?") + "\n";
  }
  return state;
}

TEST(SimDisk, SameSeedGivesTheSameDiskUnderFaults) {
  const std::string first = faulty_workload(11);
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(faulty_workload(11), first);
  EXPECT_NE(faulty_workload(12), first);
}

}  // namespace
}  // namespace meshrpc::runtime
