#include "meshrpc/runtime/disk.h"

#include <string>
#include <utility>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::runtime {
namespace {

Status bad_path(std::string_view operation, std::string_view path, std::string_view why) {
  std::string message(operation);
  message += ' ';
  message += path;
  message += ": ";
  message += why;
  return invalid_argument_error(message);
}

// The directory part of a normal-form path ("" for a name in the root).
std::string parent_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

}  // namespace

Result<std::vector<std::string>> split_disk_path(std::string_view operation,
                                                 std::string_view path) {
  if (!path.empty() && path.front() == '/') {
    return bad_path(operation, path, "absolute path, want one relative to the disk's root");
  }
  if (path.find('\0') != std::string_view::npos) {
    return bad_path(operation, path, "path contains a NUL byte");
  }
  std::vector<std::string> components;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view name = path.substr(start, end - start);
    if (name == "..") return bad_path(operation, path, "\"..\" would leave the disk's root");
    if (name.size() > Disk::kMaxNameBytes) {
      return bad_path(operation, path,
                      "a name of " + std::to_string(name.size()) + " bytes exceeds kMaxNameBytes " +
                          std::to_string(Disk::kMaxNameBytes));
    }
    if (!name.empty() && name != ".") components.emplace_back(name);
    start = end + 1;
  }
  return components;
}

std::string join_disk_path(const std::vector<std::string>& components) {
  std::string path;
  for (const std::string& name : components) {
    if (!path.empty()) path += '/';
    path += name;
  }
  return path;
}

Result<std::string> read_file(Disk& disk, std::string_view path) {
  MESHRPC_ASSIGN_OR_RETURN(std::unique_ptr<File> file, disk.open(path, OpenMode::existing()));
  MESHRPC_ASSIGN_OR_RETURN(const uint64_t size, file->size());
  return file->read(0, size);
}

Status write_file_atomically(Disk& disk, std::string_view path, std::string_view content) {
  MESHRPC_ASSIGN_OR_RETURN(std::vector<std::string> components,
                           split_disk_path("write_file_atomically", path));
  if (components.empty()) return bad_path("write_file_atomically", path, "the root is no file");
  const std::string target = join_disk_path(components);
  const std::string temporary = target + ".tmp";
  {
    MESHRPC_ASSIGN_OR_RETURN(std::unique_ptr<File> file,
                             disk.open(temporary, OpenMode::create_or_truncate()));
    MESHRPC_RETURN_IF_ERROR(file->write(0, content));
    MESHRPC_RETURN_IF_ERROR(file->sync());
  }
  MESHRPC_RETURN_IF_ERROR(disk.rename(temporary, target));
  return disk.sync_directory(parent_of(target));
}

}  // namespace meshrpc::runtime
