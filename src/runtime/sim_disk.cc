#include "meshrpc/runtime/sim_disk.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <set>
#include <utility>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::runtime {
namespace {

std::string describe(std::string_view operation, std::string_view path, std::string_view what) {
  std::string message(operation);
  message += ' ';
  message += path;
  message += ": ";
  message += what;
  return message;
}

// Writes `bytes` at `offset`, zero-filling any gap past the end.
void write_at(std::string& content, uint64_t offset, std::string_view bytes) {
  if (content.size() < offset + bytes.size()) content.resize(offset + bytes.size(), '\0');
  std::copy(bytes.begin(), bytes.end(), content.begin() + static_cast<ptrdiff_t>(offset));
}

}  // namespace

// A handle on one file (by id), valid until the disk crashes.
class SimDisk::OpenFile final : public File {
 public:
  OpenFile(SimDisk& disk, uint64_t id, std::string path)
      : disk_(disk),
        disk_alive_(disk.alive_),
        id_(id),
        generation_(disk.generation_),
        path_(std::move(path)) {
    ++disk_.files_.at(id_).open_handles;
  }
  ~OpenFile() override {
    if (stale()) return;  // A crash already forgot this handle, or the disk is gone.
    if (--disk_.files_.at(id_).open_handles == 0) disk_.collect_garbage();
  }

  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  Result<std::string> read(uint64_t offset, size_t size) override {
    MESHRPC_RETURN_IF_ERROR(begin("read"));
    const std::string& content = data().current;
    if (offset >= content.size()) return std::string();
    return content.substr(offset, size);
  }

  Status write(uint64_t offset, std::string_view bytes) override {
    MESHRPC_RETURN_IF_ERROR(begin("write"));
    return disk_.change_file(id_, Change{false, offset, std::string(bytes)}, "write", path_);
  }

  Status append(std::string_view bytes) override {
    MESHRPC_RETURN_IF_ERROR(begin("append"));
    return disk_.change_file(id_, Change{false, data().current.size(), std::string(bytes)},
                             "append", path_);
  }

  Result<uint64_t> size() override {
    MESHRPC_RETURN_IF_ERROR(begin("size"));
    return uint64_t{data().current.size()};
  }

  Status truncate(uint64_t size) override {
    MESHRPC_RETURN_IF_ERROR(begin("truncate"));
    return disk_.change_file(id_, Change{true, size, {}}, "truncate", path_);
  }

  Status sync() override {
    MESHRPC_RETURN_IF_ERROR(begin("sync"));
    FileData& file = data();
    file.durable = file.current;
    file.unsynced.clear();
    file.unsynced_bytes = 0;
    ++disk_.stats_.syncs;
    return Status::ok_status();
  }

  const std::string& path() const override { return path_; }

 private:
  bool stale() const { return disk_alive_.expired() || generation_ != disk_.generation_; }
  FileData& data() { return disk_.files_.at(id_); }

  // Every call starts here: a stale handle fails, then perhaps an injected failure.
  Status begin(std::string_view operation) {
    if (stale()) {
      return failed_precondition_error(
          describe(operation, path_, "the file was opened before its disk crashed or went away"));
    }
    return disk_.inject_failure(operation, path_);
  }

  SimDisk& disk_;
  std::weak_ptr<const bool> disk_alive_;
  uint64_t id_;
  uint64_t generation_;
  std::string path_;
};

SimDisk::SimDisk(Random& random) : random_(random) {
  directories_[kRootId];
  durable_directories_[kRootId];
}

SimDisk::~SimDisk() = default;

void SimDisk::set_faults(const Faults& faults) {
  const bool torn_before = faults_.torn_writes;
  faults_ = faults;
  if (torn_before == faults_.torn_writes) return;
  // Keep the invariant: with torn_writes, durable + unsynced = current; without, no log.
  for (auto& [id, file] : files_) {
    file.unsynced.clear();
    file.unsynced_bytes = 0;
    if (faults_.torn_writes && file.current != file.durable) fold_unsynced(file);
  }
}

uint64_t SimDisk::unsynced_change_bytes() const {
  uint64_t total = 0;
  for (const auto& [id, file] : files_) total += file.unsynced_bytes;
  return total;
}

void SimDisk::fold_unsynced(FileData& file) {
  file.unsynced.clear();
  file.unsynced.push_back(Change{true, file.current.size(), {}});
  file.unsynced.push_back(Change{false, 0, file.current});
  file.unsynced_bytes = file.current.size();
}

Status SimDisk::inject_failure(std::string_view operation, std::string_view path) {
  if (faults_.fail_probability <= 0 || !random_.bernoulli(faults_.fail_probability)) {
    return Status::ok_status();
  }
  ++stats_.injected_failures;
  return data_loss_error(describe(operation, path, "I/O error (injected by SimDisk)"));
}

Result<uint64_t> SimDisk::find_directory(std::string_view operation, std::string_view path,
                                         const std::vector<std::string>& components,
                                         size_t count) const {
  uint64_t id = kRootId;
  for (size_t i = 0; i < count; ++i) {
    const Listing& listing = directories_.at(id);
    const auto it = listing.find(components[i]);
    if (it == listing.end()) {
      return not_found_error(describe(operation, path, "no such directory " + components[i]));
    }
    if (!it->second.is_directory) {
      return failed_precondition_error(
          describe(operation, path, components[i] + " is not a directory"));
    }
    id = it->second.id;
  }
  return id;
}

Result<SimDisk::Location> SimDisk::locate(std::string_view operation, std::string_view path) const {
  Location location;
  MESHRPC_ASSIGN_OR_RETURN(location.components, split_disk_path(operation, path));
  if (location.components.empty()) {
    return invalid_argument_error(describe(operation, path, "names the disk's root, not a file"));
  }
  MESHRPC_ASSIGN_OR_RETURN(location.parent, find_directory(operation, path, location.components,
                                                           location.components.size() - 1));
  return location;
}

Status SimDisk::change_file(uint64_t id, Change change, std::string_view operation,
                            std::string_view path) {
  FileData& file = files_.at(id);
  if (!change.is_truncate && change.bytes.empty()) return Status::ok_status();
  if (change.offset > std::numeric_limits<uint64_t>::max() - change.bytes.size()) {
    return invalid_argument_error(describe(operation, path, "offset past the largest file size"));
  }
  const uint64_t old_size = file.current.size();
  const uint64_t new_size =
      change.is_truncate ? change.offset : std::max(old_size, change.offset + change.bytes.size());
  if (new_size > old_size && new_size - old_size > faults_.capacity_bytes - used_bytes_) {
    return resource_exhausted_error(describe(operation, path,
                                             std::to_string(new_size - old_size) +
                                                 " more bytes would exceed capacity_bytes " +
                                                 std::to_string(faults_.capacity_bytes) + " (" +
                                                 std::to_string(used_bytes_) + " in use)"));
  }
  if (change.is_truncate) {
    file.current.resize(new_size, '\0');
  } else {
    if (faults_.corrupt_probability > 0 && random_.bernoulli(faults_.corrupt_probability)) {
      const uint64_t bit = random_.uniform(change.bytes.size() * 8);
      change.bytes[bit / 8] = static_cast<char>(change.bytes[bit / 8] ^ (1 << (bit % 8)));
      ++stats_.corrupted_writes;
    }
    write_at(file.current, change.offset, change.bytes);
    stats_.bytes_written += change.bytes.size();
  }
  used_bytes_ = used_bytes_ - old_size + new_size;
  if (faults_.torn_writes) {
    file.unsynced_bytes += change.bytes.size();
    file.unsynced.push_back(std::move(change));
    if (file.unsynced_bytes > file.current.size() + kUnsyncedSlackBytes) fold_unsynced(file);
  }
  return Status::ok_status();
}

Result<std::unique_ptr<File>> SimDisk::open(std::string_view path, OpenMode mode) {
  MESHRPC_ASSIGN_OR_RETURN(const Location location, locate("open", path));
  MESHRPC_RETURN_IF_ERROR(inject_failure("open", path));
  Listing& listing = directories_.at(location.parent);
  const std::string& name = location.components.back();
  uint64_t id;
  if (const auto it = listing.find(name); it != listing.end()) {
    if (it->second.is_directory) {
      return failed_precondition_error(describe("open", path, "is a directory"));
    }
    if (mode.create && mode.exclusive) {
      return already_exists_error(describe("open", path, "file exists"));
    }
    id = it->second.id;
    if (mode.truncate) MESHRPC_RETURN_IF_ERROR(change_file(id, Change{true, 0, {}}, "open", path));
  } else {
    if (!mode.create) return not_found_error(describe("open", path, "no such file"));
    id = next_id_++;
    files_[id];
    listing[name] = Entry{false, id};
  }
  return std::unique_ptr<File>(std::make_unique<OpenFile>(*this, id, std::string(path)));
}

Status SimDisk::remove(std::string_view path) {
  MESHRPC_ASSIGN_OR_RETURN(const Location location, locate("remove", path));
  MESHRPC_RETURN_IF_ERROR(inject_failure("remove", path));
  Listing& listing = directories_.at(location.parent);
  const auto it = listing.find(location.components.back());
  if (it == listing.end()) {
    return not_found_error(describe("remove", path, "no such file or directory"));
  }
  if (it->second.is_directory) {
    if (!directories_.at(it->second.id).empty()) {
      return failed_precondition_error(describe("remove", path, "directory not empty"));
    }
    directories_.erase(it->second.id);
  }
  listing.erase(it);
  collect_garbage();
  return Status::ok_status();
}

Status SimDisk::rename(std::string_view from, std::string_view to) {
  const std::string operation = "rename " + std::string(from) + " ->";
  MESHRPC_ASSIGN_OR_RETURN(const Location source, locate("rename", from));
  MESHRPC_ASSIGN_OR_RETURN(const Location target, locate(operation, to));
  MESHRPC_RETURN_IF_ERROR(inject_failure(operation, to));
  Listing& source_listing = directories_.at(source.parent);
  const auto moving_it = source_listing.find(source.components.back());
  if (moving_it == source_listing.end()) {
    return not_found_error(
        describe(operation, to, "no such file or directory " + std::string(from)));
  }
  const Entry moving = moving_it->second;
  if (moving.is_directory && target.components.size() > source.components.size() &&
      std::equal(source.components.begin(), source.components.end(), target.components.begin())) {
    return invalid_argument_error(describe(operation, to, "would move a directory into itself"));
  }
  Listing& target_listing = directories_.at(target.parent);
  const std::string& name = target.components.back();
  if (const auto it = target_listing.find(name); it != target_listing.end()) {
    const Entry replaced = it->second;
    if (replaced.id == moving.id) return Status::ok_status();  // The same file or directory.
    if (!moving.is_directory && replaced.is_directory) {
      return failed_precondition_error(describe(operation, to, "is a directory"));
    }
    if (moving.is_directory && !replaced.is_directory) {
      return failed_precondition_error(describe(operation, to, "is not a directory"));
    }
    if (replaced.is_directory) {
      if (!directories_.at(replaced.id).empty()) {
        return failed_precondition_error(describe(operation, to, "directory not empty"));
      }
      directories_.erase(replaced.id);
    }
  }
  source_listing.erase(moving_it);
  target_listing[name] = moving;
  collect_garbage();
  return Status::ok_status();
}

Result<std::vector<std::string>> SimDisk::list(std::string_view dir) {
  MESHRPC_ASSIGN_OR_RETURN(const std::vector<std::string> components, split_disk_path("list", dir));
  MESHRPC_RETURN_IF_ERROR(inject_failure("list", dir));
  MESHRPC_ASSIGN_OR_RETURN(const uint64_t id,
                           find_directory("list", dir, components, components.size()));
  std::vector<std::string> names;
  for (const auto& [name, entry] : directories_.at(id)) names.push_back(name);
  return names;
}

Result<bool> SimDisk::exists(std::string_view path) {
  MESHRPC_ASSIGN_OR_RETURN(const std::vector<std::string> components,
                           split_disk_path("exists", path));
  MESHRPC_RETURN_IF_ERROR(inject_failure("exists", path));
  Entry entry{true, kRootId};
  for (const std::string& name : components) {
    if (!entry.is_directory) return false;  // A path through a file.
    const Listing& listing = directories_.at(entry.id);
    const auto it = listing.find(name);
    if (it == listing.end()) return false;
    entry = it->second;
  }
  return true;
}

Status SimDisk::create_directories(std::string_view dir) {
  MESHRPC_ASSIGN_OR_RETURN(const std::vector<std::string> components,
                           split_disk_path("create_directories", dir));
  MESHRPC_RETURN_IF_ERROR(inject_failure("create_directories", dir));
  uint64_t id = kRootId;
  for (const std::string& name : components) {
    Listing& listing = directories_.at(id);
    if (const auto it = listing.find(name); it != listing.end()) {
      if (!it->second.is_directory) {
        return failed_precondition_error(
            describe("create_directories", dir, name + " is not a directory"));
      }
      id = it->second.id;
      continue;
    }
    const uint64_t created = next_id_++;
    listing[name] = Entry{true, created};
    directories_[created];
    durable_directories_[created];
    id = created;
  }
  return Status::ok_status();
}

Status SimDisk::sync_directory(std::string_view dir) {
  MESHRPC_ASSIGN_OR_RETURN(const std::vector<std::string> components,
                           split_disk_path("sync_directory", dir));
  MESHRPC_RETURN_IF_ERROR(inject_failure("sync_directory", dir));
  MESHRPC_ASSIGN_OR_RETURN(const uint64_t id,
                           find_directory("sync_directory", dir, components, components.size()));
  durable_directories_[id] = directories_.at(id);
  ++stats_.directory_syncs;
  collect_garbage();  // A removal that just became durable may free a file.
  return Status::ok_status();
}

void SimDisk::crash() {
  ++stats_.crashes;
  ++generation_;
  restore_directories();
  std::set<uint64_t> linked;
  for (const auto& [id, listing] : directories_) {
    for (const auto& [name, entry] : listing) {
      if (!entry.is_directory) linked.insert(entry.id);
    }
  }
  used_bytes_ = 0;
  for (auto it = files_.begin(); it != files_.end();) {
    if (!linked.contains(it->first)) {
      it = files_.erase(it);
      continue;
    }
    FileData& file = it->second;
    file.current = recover(file);
    file.durable = file.current;
    file.unsynced.clear();
    file.unsynced_bytes = 0;
    file.open_handles = 0;
    used_bytes_ += file.current.size();
    ++it;
  }
}

std::string SimDisk::recover(const FileData& file) {
  if (!faults_.torn_writes || file.unsynced.empty()) return file.durable;
  uint64_t units = 0;
  for (const Change& change : file.unsynced) {
    units += change.is_truncate ? 1 : change.bytes.size();
  }
  uint64_t keep = 0;
  switch (random_.uniform(3)) {
    case 0:
      keep = 0;
      break;
    case 1:
      keep = units;
      break;
    default:
      keep = random_.uniform(units + 1);
      break;
  }
  std::string content = file.durable;
  for (const Change& change : file.unsynced) {
    if (keep == 0) break;
    if (change.is_truncate) {
      content.resize(change.offset, '\0');
      --keep;
      continue;
    }
    const size_t kept = static_cast<size_t>(std::min<uint64_t>(keep, change.bytes.size()));
    write_at(content, change.offset, std::string_view(change.bytes).substr(0, kept));
    keep -= kept;
  }
  return content;
}

void SimDisk::restore_directories() {
  // Breadth first, names in order. A directory reached twice (renamed across directories with
  // only the target synced) keeps the first link this walk meets, so the tree stays a tree.
  std::map<uint64_t, Listing> restored;
  std::set<uint64_t> reached{kRootId};
  std::deque<uint64_t> pending{kRootId};
  while (!pending.empty()) {
    const uint64_t id = pending.front();
    pending.pop_front();
    Listing listing = durable_directories_.at(id);
    for (auto it = listing.begin(); it != listing.end();) {
      if (it->second.is_directory && !reached.insert(it->second.id).second) {
        it = listing.erase(it);
        continue;
      }
      if (it->second.is_directory) pending.push_back(it->second.id);
      ++it;
    }
    restored[id] = std::move(listing);
  }
  directories_ = restored;
  durable_directories_ = std::move(restored);
}

void SimDisk::collect_garbage() {
  // Live: what the current tree links, plus what a crash could bring back. That is the
  // durable tree from the root, and also from every current directory: its durable listing
  // counts as soon as a sync of its parent links it durably.
  std::set<uint64_t> live_files;
  std::set<uint64_t> live_directories;
  std::vector<uint64_t> pending;
  for (const auto& [id, listing] : directories_) {
    live_directories.insert(id);
    pending.push_back(id);
    for (const auto& [name, entry] : listing) {
      if (!entry.is_directory) live_files.insert(entry.id);
    }
  }
  while (!pending.empty()) {
    const uint64_t id = pending.back();
    pending.pop_back();
    for (const auto& [name, entry] : durable_directories_.at(id)) {
      if (!entry.is_directory) {
        live_files.insert(entry.id);
      } else if (live_directories.insert(entry.id).second) {
        pending.push_back(entry.id);
      }
    }
  }
  std::erase_if(durable_directories_,
                [&](const auto& item) { return !live_directories.contains(item.first); });
  for (auto it = files_.begin(); it != files_.end();) {
    if (live_files.contains(it->first) || it->second.open_handles > 0) {
      ++it;
      continue;
    }
    used_bytes_ -= it->second.current.size();
    it = files_.erase(it);
  }
}

}  // namespace meshrpc::runtime
