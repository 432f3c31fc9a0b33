// PosixDisk: a Disk on a directory of the real file system (RealEnv's disk).
//
//   PosixDisk disk("/var/lib/meshkv");
//   auto file = disk.open("raft/log", OpenMode::create_or_open());
//
// Each call is one or a few system calls (open, pread, pwrite, fdatasync, rename, ...), retried
// on EINTR, with short reads and writes continued until done. Errors map errno to the codes in
// disk.h (EIO is DATA_LOSS, ENOSPC RESOURCE_EXHAUSTED, ...) and keep errno's text.
//
// The calls block the calling thread on the device: on RealEnv, run them on
// Env::blocking_executor().
// Threading: PosixDisk holds nothing but its root, so any thread may use it at once; a File is
// used by one thread at a time. Lifetime: Files may outlive the PosixDisk that opened them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/runtime/disk.h"

namespace meshrpc::runtime {

class PosixDisk final : public Disk {
 public:
  // `root` is the directory every path is relative to. It must exist by the first call (a
  // missing root makes each call NOT_FOUND); a relative `root` is taken from the current
  // directory now, so a later chdir does not move the disk.
  explicit PosixDisk(std::string root);

  const std::string& root() const { return root_; }

  Result<std::unique_ptr<File>> open(std::string_view path, OpenMode mode) override;
  Status remove(std::string_view path) override;
  Status rename(std::string_view from, std::string_view to) override;
  Result<std::vector<std::string>> list(std::string_view dir) override;
  Result<bool> exists(std::string_view path) override;
  Status create_directories(std::string_view dir) override;
  Status sync_directory(std::string_view dir) override;

 private:
  // The validated path's place on the real file system (root_ for the root).
  Result<std::string> resolve(std::string_view operation, std::string_view path,
                              bool allow_root) const;

  std::string root_;
};

}  // namespace meshrpc::runtime
