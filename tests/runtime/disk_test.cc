// The Disk contract (disk.h), checked on every implementation: PosixDisk in a fresh temporary
// directory and SimDisk (without faults). What only the simulation has (crashes, faults) is in
// sim_disk_test.cc.
#include "meshrpc/runtime/disk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/posix_disk.h"
#include "meshrpc/runtime/random.h"
#include "meshrpc/runtime/sim_disk.h"
#include "tests/support/subprocess.h"

namespace meshrpc::runtime {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::IsOkAndHolds;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct PosixDiskBackend {
  static constexpr const char* kName = "PosixDisk";
  PosixDiskBackend() : root(meshrpc::testing::make_temp_dir("meshrpc-disk-")), disk(root) {}
  ~PosixDiskBackend() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  std::string root;
  PosixDisk disk;
};

struct SimDiskBackend {
  static constexpr const char* kName = "SimDisk";
  Random random{1};
  SimDisk disk{random};
};

template <typename Backend>
class DiskConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (std::is_same_v<Backend, PosixDiskBackend>) {
      ASSERT_FALSE(backend_.root.empty()) << "could not make a temporary directory";
    }
  }

  Disk& disk() { return backend_.disk; }

  // Opens `path`, failing the test (and returning null) on an error.
  std::unique_ptr<File> open(std::string_view path, OpenMode mode = OpenMode::create_or_open()) {
    auto file = disk().open(path, mode);
    EXPECT_THAT(file, IsOk());
    return file.ok() ? std::move(file).value() : nullptr;
  }

  // Creates (or empties) `path` and writes `content` into it.
  void put(std::string_view path, std::string_view content) {
    auto file = open(path, OpenMode::create_or_truncate());
    ASSERT_NE(file, nullptr);
    ASSERT_THAT(file->write(0, content), IsOk());
  }

  Backend backend_;
};

struct BackendNames {
  template <typename Backend>
  static std::string GetName(int) {  // NOLINT(readability-identifier-naming): gtest's name
    return Backend::kName;
  }
};

using Backends = ::testing::Types<PosixDiskBackend, SimDiskBackend>;
TYPED_TEST_SUITE(DiskConformance, Backends, BackendNames);

TYPED_TEST(DiskConformance, WrittenBytesReadBack) {
  auto file = this->open("data");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->write(0, "hello world"), IsOk());
  EXPECT_THAT(file->read(0, 11), IsOkAndHolds("hello world"));
  EXPECT_THAT(file->read(6, 5), IsOkAndHolds("world"));
  EXPECT_THAT(file->size(), IsOkAndHolds(11u));
  EXPECT_EQ(file->path(), "data");
}

TYPED_TEST(DiskConformance, ReadStopsAtTheEndOfTheFile) {
  this->put("data", "hello world");
  auto file = this->open("data", OpenMode::existing());
  ASSERT_NE(file, nullptr);
  EXPECT_THAT(file->read(8, 100), IsOkAndHolds("rld"));
  EXPECT_THAT(file->read(11, 5), IsOkAndHolds(""));
  EXPECT_THAT(file->read(1000, 5), IsOkAndHolds(""));
  // A huge size allocates only what the file holds.
  EXPECT_THAT(file->read(0, size_t{1} << 62), IsOkAndHolds("hello world"));
}

TYPED_TEST(DiskConformance, AppendWritesAtTheEnd) {
  auto file = this->open("log");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->append("ab"), IsOk());
  ASSERT_THAT(file->append("cd"), IsOk());
  ASSERT_THAT(file->write(1, "X"), IsOk());
  ASSERT_THAT(file->append("ef"), IsOk());
  EXPECT_THAT(file->read(0, 100), IsOkAndHolds("aXcdef"));
}

TYPED_TEST(DiskConformance, WritePastTheEndFillsTheGapWithZeros) {
  auto file = this->open("sparse");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->write(4, "x"), IsOk());
  EXPECT_THAT(file->read(0, 100), IsOkAndHolds(std::string("\0\0\0\0x", 5)));
}

TYPED_TEST(DiskConformance, TruncateShrinksAndExtendsWithZeros) {
  this->put("data", "abcdef");
  auto file = this->open("data", OpenMode::existing());
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->truncate(2), IsOk());
  EXPECT_THAT(file->read(0, 100), IsOkAndHolds("ab"));
  ASSERT_THAT(file->truncate(4), IsOk());
  EXPECT_THAT(file->read(0, 100), IsOkAndHolds(std::string("ab\0\0", 4)));
  EXPECT_THAT(file->size(), IsOkAndHolds(4u));
}

TYPED_TEST(DiskConformance, ReopenedFileKeepsItsContentUnlessTruncated) {
  this->put("data", "kept");
  EXPECT_THAT(read_file(this->disk(), "data"), IsOkAndHolds("kept"));
  auto file = this->open("data", OpenMode::create_or_truncate());
  ASSERT_NE(file, nullptr);
  EXPECT_THAT(file->size(), IsOkAndHolds(0u));
}

TYPED_TEST(DiskConformance, MissingFileIsNotFoundNamingThePath) {
  EXPECT_THAT(this->disk().open("missing.log", OpenMode::existing()),
              StatusIs(StatusCode::kNotFound, HasSubstr("missing.log")));
  EXPECT_THAT(this->disk().open("no-dir/file", OpenMode::create_or_open()),
              StatusIs(StatusCode::kNotFound, HasSubstr("no-dir/file")));
  EXPECT_THAT(read_file(this->disk(), "missing.log"),
              StatusIs(StatusCode::kNotFound, HasSubstr("missing.log")));
}

TYPED_TEST(DiskConformance, ExclusiveCreateOfAnExistingFileIsAlreadyExists) {
  EXPECT_THAT(this->disk().open("once", OpenMode::create_new()), IsOk());
  EXPECT_THAT(this->disk().open("once", OpenMode::create_new()),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("once")));
}

TYPED_TEST(DiskConformance, WrongKindOfPathIsFailedPrecondition) {
  ASSERT_THAT(this->disk().create_directories("dir"), IsOk());
  this->put("file", "x");
  EXPECT_THAT(this->disk().open("dir", OpenMode::create_or_open()),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("dir")));
  EXPECT_THAT(this->disk().open("file/x", OpenMode::create_or_open()),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("file/x")));
  EXPECT_THAT(this->disk().list("file"), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->disk().create_directories("file"), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->disk().create_directories("file/sub"),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->disk().sync_directory("file"), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->disk().exists("file/x"), IsOkAndHolds(false));
}

TYPED_TEST(DiskConformance, RenameReplacesTheTarget) {
  this->put("a", "new");
  this->put("b", "old");
  ASSERT_THAT(this->disk().rename("a", "b"), IsOk());
  EXPECT_THAT(read_file(this->disk(), "b"), IsOkAndHolds("new"));
  EXPECT_THAT(this->disk().exists("a"), IsOkAndHolds(false));
  EXPECT_THAT(this->disk().list(""), IsOkAndHolds(ElementsAre("b")));
  // Onto itself: nothing changes.
  ASSERT_THAT(this->disk().rename("b", "b"), IsOk());
  EXPECT_THAT(read_file(this->disk(), "b"), IsOkAndHolds("new"));
}

TYPED_TEST(DiskConformance, RenameOfAMissingFileIsNotFoundNamingThePaths) {
  EXPECT_THAT(this->disk().rename("ghost", "b"),
              StatusIs(StatusCode::kNotFound, HasSubstr("rename ghost -> b")));
  this->put("a", "x");
  EXPECT_THAT(this->disk().rename("a", "no-dir/b"),
              StatusIs(StatusCode::kNotFound, HasSubstr("no-dir/b")));
}

TYPED_TEST(DiskConformance, OpenHandleFollowsItsFileAcrossRenameAndRemove) {
  auto file = this->open("before");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(this->disk().rename("before", "after"), IsOk());
  ASSERT_THAT(file->write(0, "moved"), IsOk());
  EXPECT_THAT(read_file(this->disk(), "after"), IsOkAndHolds("moved"));
  ASSERT_THAT(this->disk().remove("after"), IsOk());
  EXPECT_THAT(this->disk().exists("after"), IsOkAndHolds(false));
  ASSERT_THAT(file->append("!"), IsOk());
  EXPECT_THAT(file->read(0, 100), IsOkAndHolds("moved!"));
}

TYPED_TEST(DiskConformance, TwoHandlesShareOneFile) {
  auto writer = this->open("shared");
  auto reader = this->open("shared", OpenMode::existing());
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  ASSERT_THAT(writer->append("seen"), IsOk());
  EXPECT_THAT(reader->read(0, 100), IsOkAndHolds("seen"));
}

TYPED_TEST(DiskConformance, RenameMovesADirectoryWithItsContents) {
  ASSERT_THAT(this->disk().create_directories("d/e"), IsOk());
  ASSERT_THAT(this->disk().create_directories("x"), IsOk());
  this->put("d/e/f", "deep");
  ASSERT_THAT(this->disk().rename("d", "x/g"), IsOk());
  EXPECT_THAT(read_file(this->disk(), "x/g/e/f"), IsOkAndHolds("deep"));
  EXPECT_THAT(this->disk().exists("d"), IsOkAndHolds(false));
}

TYPED_TEST(DiskConformance, RenameRefusesToBreakTheTree) {
  ASSERT_THAT(this->disk().create_directories("d/sub"), IsOk());
  ASSERT_THAT(this->disk().create_directories("full/x"), IsOk());
  this->put("f", "x");
  EXPECT_THAT(this->disk().rename("d", "d/sub/d"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(this->disk().rename("f", "d"), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->disk().rename("d", "f"), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->disk().rename("d", "full"), StatusIs(StatusCode::kFailedPrecondition));
  // An empty directory may be replaced by a directory.
  ASSERT_THAT(this->disk().create_directories("empty"), IsOk());
  ASSERT_THAT(this->disk().rename("d", "empty"), IsOk());
  EXPECT_THAT(this->disk().list("empty"), IsOkAndHolds(ElementsAre("sub")));
}

TYPED_TEST(DiskConformance, RemoveDeletesFilesAndEmptyDirectories) {
  ASSERT_THAT(this->disk().create_directories("dir/sub"), IsOk());
  this->put("dir/file", "x");
  EXPECT_THAT(this->disk().remove("dir"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("dir")));
  ASSERT_THAT(this->disk().remove("dir/file"), IsOk());
  ASSERT_THAT(this->disk().remove("dir/sub"), IsOk());
  ASSERT_THAT(this->disk().remove("dir"), IsOk());
  EXPECT_THAT(this->disk().list(""), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(this->disk().remove("dir"), StatusIs(StatusCode::kNotFound, HasSubstr("dir")));
}

TYPED_TEST(DiskConformance, ListGivesSortedNamesOfOneDirectory) {
  this->put("b", "");
  this->put("a", "");
  ASSERT_THAT(this->disk().create_directories("c"), IsOk());
  this->put("c/z", "");
  EXPECT_THAT(this->disk().list(""), IsOkAndHolds(ElementsAre("a", "b", "c")));
  EXPECT_THAT(this->disk().list("."), IsOkAndHolds(ElementsAre("a", "b", "c")));
  EXPECT_THAT(this->disk().list("c"), IsOkAndHolds(ElementsAre("z")));
  EXPECT_THAT(this->disk().list("missing"), StatusIs(StatusCode::kNotFound, HasSubstr("missing")));
}

TYPED_TEST(DiskConformance, ExistsSeesFilesAndDirectories) {
  ASSERT_THAT(this->disk().create_directories("dir"), IsOk());
  this->put("dir/file", "");
  EXPECT_THAT(this->disk().exists(""), IsOkAndHolds(true));
  EXPECT_THAT(this->disk().exists("dir"), IsOkAndHolds(true));
  EXPECT_THAT(this->disk().exists("dir/file"), IsOkAndHolds(true));
  EXPECT_THAT(this->disk().exists("dir/other"), IsOkAndHolds(false));
  EXPECT_THAT(this->disk().exists("nothing/here"), IsOkAndHolds(false));
}

TYPED_TEST(DiskConformance, CreateDirectoriesMakesParentsAndIsIdempotent) {
  ASSERT_THAT(this->disk().create_directories("a/b/c"), IsOk());
  ASSERT_THAT(this->disk().create_directories("a/b/c"), IsOk());
  ASSERT_THAT(this->disk().create_directories(""), IsOk());
  EXPECT_THAT(this->disk().list("a"), IsOkAndHolds(ElementsAre("b")));
  EXPECT_THAT(this->disk().list("a/b/c"), IsOkAndHolds(IsEmpty()));
}

TYPED_TEST(DiskConformance, SyncCallsSucceedOnWhatExists) {
  ASSERT_THAT(this->disk().create_directories("dir"), IsOk());
  auto file = this->open("dir/file");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->append("x"), IsOk());
  EXPECT_THAT(file->sync(), IsOk());
  EXPECT_THAT(this->disk().sync_directory("dir"), IsOk());
  EXPECT_THAT(this->disk().sync_directory(""), IsOk());
  EXPECT_THAT(this->disk().sync_directory("missing"),
              StatusIs(StatusCode::kNotFound, HasSubstr("missing")));
}

TYPED_TEST(DiskConformance, EquivalentSpellingsNameTheSameFile) {
  ASSERT_THAT(this->disk().create_directories("a/"), IsOk());
  this->put("a//b", "same");
  EXPECT_THAT(read_file(this->disk(), "./a/b"), IsOkAndHolds("same"));
  EXPECT_THAT(read_file(this->disk(), "a/./b"), IsOkAndHolds("same"));
  EXPECT_THAT(this->disk().list("a/"), IsOkAndHolds(ElementsAre("b")));
}

TYPED_TEST(DiskConformance, PathsOutsideTheRootAreInvalidForEveryOperation) {
  this->put("ok", "x");
  const std::vector<std::string> bad_paths = {
      "/etc/passwd", "..", "../x", "a/../b", "a/..", std::string("a\0b", 3), std::string(256, 'n'),
  };
  Disk& disk = this->disk();
  for (const std::string& path : bad_paths) {
    SCOPED_TRACE(::testing::PrintToString(path));
    EXPECT_THAT(disk.open(path, OpenMode::create_or_open()),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("open")));
    EXPECT_THAT(disk.remove(path), StatusIs(StatusCode::kInvalidArgument, HasSubstr("remove")));
    EXPECT_THAT(disk.rename(path, "ok2"), StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(disk.rename("ok", path), StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(disk.list(path), StatusIs(StatusCode::kInvalidArgument, HasSubstr("list")));
    EXPECT_THAT(disk.exists(path), StatusIs(StatusCode::kInvalidArgument, HasSubstr("exists")));
    EXPECT_THAT(disk.create_directories(path), StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(disk.sync_directory(path), StatusIs(StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(disk.exists("ok"), IsOkAndHolds(true));  // The renames above did nothing.
  EXPECT_THAT(disk.list(""), IsOkAndHolds(ElementsAre("ok")));
  // A name of exactly kMaxNameBytes is fine.
  EXPECT_THAT(disk.open(std::string(Disk::kMaxNameBytes, 'n'), OpenMode::create_or_open()), IsOk());
}

TYPED_TEST(DiskConformance, TheRootIsNoFile) {
  for (const char* root : {"", ".", "./"}) {
    SCOPED_TRACE(root);
    EXPECT_THAT(this->disk().open(root, OpenMode::create_or_open()),
                StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(this->disk().remove(root), StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT(this->disk().rename(root, "x"), StatusIs(StatusCode::kInvalidArgument));
  }
}

TYPED_TEST(DiskConformance, LargeWritesAndReadsRoundTrip) {
  std::string content(3 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 31 + i / 4096);
  auto file = this->open("big");
  ASSERT_NE(file, nullptr);
  ASSERT_THAT(file->write(0, content), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  auto read = file->read(0, content.size());
  ASSERT_THAT(read, IsOk());
  EXPECT_TRUE(*read == content) << "read back " << read->size() << " bytes";
}

TYPED_TEST(DiskConformance, WriteFileAtomicallyReplacesContentAndLeavesNoTemporary) {
  ASSERT_THAT(this->disk().create_directories("meta"), IsOk());
  ASSERT_THAT(write_file_atomically(this->disk(), "meta/state", "one"), IsOk());
  ASSERT_THAT(write_file_atomically(this->disk(), "meta/state", "two"), IsOk());
  EXPECT_THAT(read_file(this->disk(), "meta/state"), IsOkAndHolds("two"));
  EXPECT_THAT(this->disk().list("meta"), IsOkAndHolds(ElementsAre("state")));
  EXPECT_THAT(write_file_atomically(this->disk(), "", "x"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace meshrpc::runtime
