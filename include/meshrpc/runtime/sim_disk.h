// SimDisk: an in-memory Disk for the simulation, deterministic, that loses on crash() exactly
// what POSIX allows a real machine to lose (FoundationDB's AsyncFileNonDurable in spirit).
//
// Model. Every file has a current image (what reads see: the page cache) and a durable image
// (what survives a crash); File::sync() copies the first to the second. Every directory has a
// current listing and a durable listing; sync_directory() copies the first to the second, so
// creating, removing and renaming entries are undone by a crash until their directory is
// synced. A handle refers to the file, not its name (an inode), as on POSIX.
//
// crash() is a process crash with power loss: every directory reverts to its durable listing
// and every file to its durable image; open handles go stale (their calls fail with
// FAILED_PRECONDITION, and they may still be destroyed). With Faults::torn_writes, a file may
// keep a prefix of the changes made since its last sync, as a real disk writes back some dirty
// pages before the power goes.
//
// Faults, off by default, are drawn from the Random the disk was built with, so a simulation
// seed replays them exactly. An injected failure (fail_probability) fails the call with
// DATA_LOSS, disk.h's code for an I/O error, before it has any effect.
//
// Threading: the simulation thread only. Lifetime: `random` outlives the disk. A File may
// outlive its disk (a crashed host's objects are torn down in any order): it is then stale.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/runtime/disk.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::runtime {

class SimDisk final : public Disk {
 public:
  // The images are in memory, up to three copies of each byte (current, durable, unsynced
  // changes): 1 GiB of file content keeps a host's disk well within a test machine's memory.
  static constexpr uint64_t kDefaultCapacityBytes = uint64_t{1} << 30;
  // With torn_writes, the unsynced changes a file keeps beyond its own size. Past that (a file
  // rewritten in place many times without a sync) they are folded into one rewrite of the
  // whole file, so memory stays bounded; a crash may then keep a prefix of that rewrite.
  // 1 MiB: thousands of log appends, and small beside the images themselves.
  static constexpr uint64_t kUnsyncedSlackBytes = uint64_t{1} << 20;

  struct Faults {
    // On crash, each file with unsynced changes keeps none of them, all, or a random prefix
    // (counting bytes written, in order; a truncate counts as one), each a third of the time.
    bool torn_writes = false;
    // Probability that a write or append lands with one random bit of it flipped.
    double corrupt_probability = 0;
    // Probability that a call (every Disk and File operation) fails with DATA_LOSS, unapplied.
    double fail_probability = 0;
    // The total size of all files; a write or truncate that would grow past it fails with
    // RESOURCE_EXHAUSTED. A removed file's bytes count until its removal is durable and no
    // handle has it open.
    uint64_t capacity_bytes = kDefaultCapacityBytes;
  };

  struct Stats {
    uint64_t bytes_written = 0;  // By successful writes and appends.
    uint64_t syncs = 0;          // Successful File::sync calls.
    uint64_t directory_syncs = 0;
    uint64_t crashes = 0;
    uint64_t injected_failures = 0;
    uint64_t corrupted_writes = 0;
  };

  explicit SimDisk(Random& random);
  ~SimDisk() override;

  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  void set_faults(const Faults& faults);
  const Faults& faults() const { return faults_; }

  // Loses everything not durable (above). The disk stays usable: the restarted process opens
  // its files again.
  void crash();

  const Stats& stats() const { return stats_; }
  // The bytes counted against capacity_bytes now.
  uint64_t used_bytes() const { return used_bytes_; }
  // The bytes of unsynced changes held for torn crashes (0 without torn_writes).
  uint64_t unsynced_change_bytes() const;

  Result<std::unique_ptr<File>> open(std::string_view path, OpenMode mode) override;
  Status remove(std::string_view path) override;
  Status rename(std::string_view from, std::string_view to) override;
  Result<std::vector<std::string>> list(std::string_view dir) override;
  Result<bool> exists(std::string_view path) override;
  Status create_directories(std::string_view dir) override;
  Status sync_directory(std::string_view dir) override;

 private:
  class OpenFile;

  static constexpr uint64_t kRootId = 0;

  // A name in a directory: a file or a directory, by id (an inode number).
  struct Entry {
    bool is_directory = false;
    uint64_t id = 0;
  };
  using Listing = std::map<std::string, Entry, std::less<>>;

  // One unsynced change to a file, kept to replay a prefix of them on a torn crash.
  struct Change {
    bool is_truncate = false;
    uint64_t offset = 0;  // For a truncate: the new size.
    std::string bytes;
  };
  struct FileData {
    std::string current;
    std::string durable;
    // With torn_writes, the changes since the last sync, in order: durable + these = current.
    // Empty without torn_writes.
    std::vector<Change> unsynced;
    uint64_t unsynced_bytes = 0;
    int open_handles = 0;
  };

  // Where a path's last name lives: its directory's id and the name in it.
  struct Location {
    std::vector<std::string> components;
    uint64_t parent = kRootId;
  };

  Status inject_failure(std::string_view operation, std::string_view path);
  // The directory that `components[0, count)` names, in the current listings.
  Result<uint64_t> find_directory(std::string_view operation, std::string_view path,
                                  const std::vector<std::string>& components, size_t count) const;
  // Validates a path naming a file or directory (not the root) and finds its directory.
  Result<Location> locate(std::string_view operation, std::string_view path) const;
  // Applies a write or truncate to the current image, recording it as unsynced.
  Status change_file(uint64_t id, Change change, std::string_view operation, std::string_view path);
  // Replaces a file's unsynced changes by one rewrite of the whole file (same result).
  static void fold_unsynced(FileData& file);
  // What a file holds after a crash: its durable image plus, with torn writes, a prefix of
  // its unsynced changes.
  std::string recover(const FileData& file);
  // Rebuilds the current listings from the durable ones, from the root.
  void restore_directories();
  // Drops files and durable listings that no listing or handle can reach any more.
  void collect_garbage();

  Random& random_;
  // Expires with the disk, so that handles can tell.
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
  Faults faults_;
  Stats stats_;
  uint64_t used_bytes_ = 0;
  uint64_t next_id_ = kRootId + 1;
  // Bumped by crash(): a handle from an earlier generation is stale.
  uint64_t generation_ = 0;
  std::map<uint64_t, FileData> files_;
  // Exactly the directories reachable from the root in the current listings.
  std::map<uint64_t, Listing> directories_;
  // As of each directory's last sync_directory (empty when it was created).
  std::map<uint64_t, Listing> durable_directories_;
};

}  // namespace meshrpc::runtime
