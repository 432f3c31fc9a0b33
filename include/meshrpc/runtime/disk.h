// Disk: the file system as meshrpc code sees it (DESIGN.md principle 2: the disk is reached
// only through the runtime). PosixDisk is a directory of the real file system; SimDisk keeps
// files in memory and, on a simulated crash, loses exactly what a real machine may lose.
//
// The API is synchronous: each call is one short system call or a few. On RealEnv, code that
// does big or many disk operations runs them on Env::blocking_executor(), never on an io
// thread; under SimEnv nothing blocks and they run inline.
//
// Paths are relative to the disk's root and use '/' between names: "raft/log/00000001".
// Empty and "." components are ignored ("a//b", "./a" and "a/" name "a/b", "a", "a"); an
// absolute path, a ".." component, a NUL byte or a name longer than kMaxNameBytes is
// INVALID_ARGUMENT, so nothing can reach outside the root. "" names the root itself, which
// directory operations (list, sync_directory, create_directories) accept.
//
// Durability follows POSIX, which is what the simulation enforces:
//   - File::sync() makes that file's content durable, not its name.
//   - Creating, removing and renaming entries of a directory become durable only after
//     sync_directory() of that directory (for a rename across directories, of both).
// So a new file survives a crash once written, synced, and its directory synced; the classic
// atomic replace is write_file_atomically() below.
//
// Errors name the operation and the path ("open raft/meta: no such file"). Codes:
//   INVALID_ARGUMENT     a malformed path (above); renaming a directory into itself.
//   NOT_FOUND            the file or directory, or a parent of it, does not exist.
//   ALREADY_EXISTS       an exclusive create of a path that exists.
//   FAILED_PRECONDITION  the path is of the wrong kind (opening a directory as a file, listing a
//                        file, a file where a directory is needed) or a directory to remove or
//                        replace is not empty.
//   RESOURCE_EXHAUSTED   the disk (or quota, or the open-file limit) is full.
//   PERMISSION_DENIED    the file system refused access.
//   DATA_LOSS            an I/O error: what the operation touched is in an unknown state (a
//                        failed sync may have lost unsynced writes). Do not retry; stop using
//                        the file and recover from what was known to be durable.
//   UNKNOWN              any other operating-system error (the message has errno's text).
//
// Threading: a Disk may be used from several threads when the implementation says so
// (PosixDisk: yes; SimDisk: the simulation thread only). A File is used by one thread at a time.
// Lifetime: a Disk outlives the Files it opened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"

namespace meshrpc::runtime {

// How Disk::open treats a missing or existing file. Files are always opened for reading and
// writing.
struct OpenMode {
  // Create the file (empty) when it does not exist; without it a missing file is NOT_FOUND.
  bool create = false;
  // With `create`: fail with ALREADY_EXISTS when the file exists.
  bool exclusive = false;
  // Empty the file when it is opened (an unsynced change, like any write).
  bool truncate = false;

  static OpenMode existing() { return {}; }
  static OpenMode create_or_open() { return {.create = true}; }
  static OpenMode create_new() { return {.create = true, .exclusive = true}; }
  static OpenMode create_or_truncate() { return {.create = true, .truncate = true}; }
};

// An open file. Offsets and sizes are in bytes. The handle follows the file, not its name:
// after a rename it still reads and writes the same file, and a removed file stays usable
// through handles open on it. Closed when destroyed.
class File {
 public:
  virtual ~File() = default;

  // The bytes in [offset, offset + size), or fewer when the file ends before: empty at or
  // past the end. Never more than the file holds, so a large `size` allocates nothing extra.
  virtual Result<std::string> read(uint64_t offset, size_t size) = 0;
  // Writes `bytes` at `offset`, extending the file (with zero bytes between the old end and
  // `offset`) when it ends before. All of `bytes` is written, or an error returned.
  virtual Status write(uint64_t offset, std::string_view bytes) = 0;
  // Writes `bytes` at the current end of the file.
  virtual Status append(std::string_view bytes) = 0;
  virtual Result<uint64_t> size() = 0;
  // Shrinks the file to `size` bytes, or extends it with zero bytes.
  virtual Status truncate(uint64_t size) = 0;
  // Makes the file's content (and size) durable: once it returns OK, a crash keeps it. It does
  // not make the file's name durable: that is Disk::sync_directory of its directory.
  virtual Status sync() = 0;

  // The path the file was opened with.
  virtual const std::string& path() const = 0;
};

class Disk {
 public:
  // The longest name of one path component: NAME_MAX on Linux file systems.
  static constexpr size_t kMaxNameBytes = 255;

  virtual ~Disk() = default;

  // Opens the file at `path` for reading and writing. Its directory must exist.
  virtual Result<std::unique_ptr<File>> open(std::string_view path, OpenMode mode) = 0;
  // Removes a file or an empty directory.
  virtual Status remove(std::string_view path) = 0;
  // Renames a file or directory, atomically replacing `to` when it exists (a file by a file;
  // an empty directory by a directory). Handles open on `from` follow it.
  virtual Status rename(std::string_view from, std::string_view to) = 0;
  // The names in directory `dir` (not "." or ".."), sorted.
  virtual Result<std::vector<std::string>> list(std::string_view dir) = 0;
  // Whether a file or directory exists at `path`. A path through a file is false.
  virtual Result<bool> exists(std::string_view path) = 0;
  // Creates `dir` and any missing parents; OK when it already exists as a directory.
  virtual Status create_directories(std::string_view dir) = 0;
  // Makes the entries of `dir` durable: creations, removals and renames in it so far.
  virtual Status sync_directory(std::string_view dir) = 0;
};

// --- path helpers (used by the implementations, and for callers that build paths) ----------

// The components of `path`, validated as above (empty for the root). `operation` starts the
// error message: "open /etc/passwd: absolute path, want one relative to the disk's root".
Result<std::vector<std::string>> split_disk_path(std::string_view operation, std::string_view path);
// The components joined with '/': the normal form of a path ("" for the root).
std::string join_disk_path(const std::vector<std::string>& components);

// --- whole-file helpers -----------------------------------------------------------------

// The whole content of the file at `path`.
Result<std::string> read_file(Disk& disk, std::string_view path);
// Replaces the file at `path` with `content` so that after a crash it holds either the old
// content or the new, never a mix: writes `path` + ".tmp", syncs it, renames it over `path`
// and syncs the directory. A leftover ".tmp" from a crash is simply overwritten next time.
Status write_file_atomically(Disk& disk, std::string_view path, std::string_view content);

}  // namespace meshrpc::runtime
