#include "meshrpc/runtime/posix_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::runtime {
namespace {

// Runs a system call again while it is interrupted by a signal before doing anything.
template <typename Call>
auto retry_on_eintr(Call call) {
  decltype(call()) result;
  do {
    result = call();
  } while (result == -1 && errno == EINTR);
  return result;
}

StatusCode code_for_errno(int error) {
  switch (error) {
    case ENOENT:
      return StatusCode::kNotFound;
    case EEXIST:
      return StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
    case EROFS:
      return StatusCode::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
      return StatusCode::kResourceExhausted;
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
    case EBUSY:
    case ELOOP:
      return StatusCode::kFailedPrecondition;
    case EINVAL:
    case ENAMETOOLONG:
      return StatusCode::kInvalidArgument;
    case EIO:
      return StatusCode::kDataLoss;
    default:
      return StatusCode::kUnknown;
  }
}

// "open raft/log: No such file or directory", with the code for `error`.
Status errno_status(int error, std::string_view operation, std::string_view path) {
  std::string message(operation);
  message += ' ';
  message += path;
  message += ": ";
  message += std::generic_category().message(error);
  return Status(code_for_errno(error), message);
}

// For the system call that just failed.
Status last_error(std::string_view operation, std::string_view path) {
  return errno_status(errno, operation, path);
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // A close error cannot lose data that sync() reported durable, and there is no one to tell.
  ~PosixFile() override { ::close(fd_); }

  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Result<std::string> read(uint64_t offset, size_t size) override {
    MESHRPC_ASSIGN_OR_RETURN(const uint64_t file_size, this->size());
    if (offset >= file_size) return std::string();
    std::string bytes(std::min<uint64_t>(size, file_size - offset), '\0');
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = retry_on_eintr([&] {
        return ::pread(fd_, bytes.data() + done, bytes.size() - done,
                       static_cast<off_t>(offset + done));
      });
      if (n < 0) return last_error("read", path_);
      if (n == 0) break;  // The file shrank since size(): it ends here.
      done += static_cast<size_t>(n);
    }
    bytes.resize(done);
    return bytes;
  }

  Status write(uint64_t offset, std::string_view bytes) override {
    if (offset > static_cast<uint64_t>(std::numeric_limits<off_t>::max()) - bytes.size()) {
      return invalid_argument_error("write " + path_ + ": offset " + std::to_string(offset) +
                                    " is past the largest file size");
    }
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = retry_on_eintr([&] {
        return ::pwrite(fd_, bytes.data() + done, bytes.size() - done,
                        static_cast<off_t>(offset + done));
      });
      if (n < 0) return last_error("write", path_);
      // pwrite writes at least one byte unless it fails; 0 would loop forever.
      if (n == 0) return errno_status(EIO, "write", path_);
      done += static_cast<size_t>(n);
    }
    return Status::ok_status();
  }

  Status append(std::string_view bytes) override {
    // Not O_APPEND: Linux's pwrite ignores the offset on such a file, and write() would need a
    // shared file position. One handle appends from one thread at a time (File's contract).
    MESHRPC_ASSIGN_OR_RETURN(const uint64_t end, size());
    return write(end, bytes);
  }

  Result<uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return last_error("stat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

  Status truncate(uint64_t size) override {
    if (size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
      return invalid_argument_error("truncate " + path_ + ": size " + std::to_string(size) +
                                    " is past the largest file size");
    }
    if (retry_on_eintr([&] { return ::ftruncate(fd_, static_cast<off_t>(size)); }) != 0) {
      return last_error("truncate", path_);
    }
    return Status::ok_status();
  }

  Status sync() override {
    // fdatasync flushes the data and the metadata needed to read it back (the size), which
    // is all sync() promises; fsync would also flush timestamps, one more write per call.
    if (retry_on_eintr([&] { return ::fdatasync(fd_); }) != 0) return last_error("sync", path_);
    return Status::ok_status();
  }

  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
};

std::string absolute_root(std::string root) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(root, ec);
  if (ec) return root;  // Only when the current directory is gone; calls then fail clearly.
  std::string normal = path.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

}  // namespace

PosixDisk::PosixDisk(std::string root) : root_(absolute_root(std::move(root))) {}

Result<std::string> PosixDisk::resolve(std::string_view operation, std::string_view path,
                                       bool allow_root) const {
  MESHRPC_ASSIGN_OR_RETURN(std::vector<std::string> components, split_disk_path(operation, path));
  if (components.empty()) {
    if (allow_root) return root_;
    return invalid_argument_error(std::string(operation) + " " + std::string(path) +
                                  ": names the disk's root, not a file");
  }
  return root_ + "/" + join_disk_path(components);
}

Result<std::unique_ptr<File>> PosixDisk::open(std::string_view path, OpenMode mode) {
  MESHRPC_ASSIGN_OR_RETURN(const std::string full, resolve("open", path, false));
  int flags = O_RDWR | O_CLOEXEC;
  if (mode.create) flags |= O_CREAT;
  if (mode.create && mode.exclusive) flags |= O_EXCL;
  if (mode.truncate) flags |= O_TRUNC;
  const int fd = retry_on_eintr([&] { return ::open(full.c_str(), flags, 0644); });
  if (fd < 0) return last_error("open", path);
  auto file = std::make_unique<PosixFile>(fd, std::string(path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return last_error("open", path);
  if (!S_ISREG(st.st_mode)) {
    return failed_precondition_error("open " + std::string(path) + ": not a regular file");
  }
  return std::unique_ptr<File>(std::move(file));
}

Status PosixDisk::remove(std::string_view path) {
  MESHRPC_ASSIGN_OR_RETURN(const std::string full, resolve("remove", path, false));
  struct stat st {};
  if (::lstat(full.c_str(), &st) != 0) return last_error("remove", path);
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(full.c_str()) != 0) return last_error("remove", path);
    return Status::ok_status();
  }
  if (::rmdir(full.c_str()) != 0) {
    // rmdir may say EEXIST for a non-empty directory; that is no create conflict.
    return errno_status(errno == EEXIST ? ENOTEMPTY : errno, "remove", path);
  }
  return Status::ok_status();
}

Status PosixDisk::rename(std::string_view from, std::string_view to) {
  const std::string operation = "rename " + std::string(from) + " ->";
  MESHRPC_ASSIGN_OR_RETURN(const std::string full_from, resolve("rename", from, false));
  MESHRPC_ASSIGN_OR_RETURN(const std::string full_to, resolve(operation, to, false));
  if (::rename(full_from.c_str(), full_to.c_str()) != 0) {
    // EEXIST: the target is a non-empty directory, as ENOTEMPTY.
    return errno_status(errno == EEXIST ? ENOTEMPTY : errno, operation, to);
  }
  return Status::ok_status();
}

Result<std::vector<std::string>> PosixDisk::list(std::string_view dir) {
  MESHRPC_ASSIGN_OR_RETURN(const std::string full, resolve("list", dir, true));
  std::vector<std::string> names;
  std::error_code ec;
  std::filesystem::directory_iterator it(full, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return errno_status(ec.value(), "list", dir);
  std::sort(names.begin(), names.end());
  return names;
}

Result<bool> PosixDisk::exists(std::string_view path) {
  MESHRPC_ASSIGN_OR_RETURN(const std::string full, resolve("exists", path, true));
  struct stat st {};
  if (::stat(full.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return last_error("exists", path);
}

Status PosixDisk::create_directories(std::string_view dir) {
  MESHRPC_ASSIGN_OR_RETURN(std::vector<std::string> components,
                           split_disk_path("create_directories", dir));
  // Checks that `full` is a directory, after mkdir found something there (or for the root, so
  // that a missing root is NOT_FOUND rather than a confusing mkdir error).
  auto check_directory = [&](const std::string& full) {
    struct stat st {};
    if (::stat(full.c_str(), &st) != 0) return last_error("create_directories", dir);
    if (!S_ISDIR(st.st_mode)) return errno_status(ENOTDIR, "create_directories", dir);
    return Status::ok_status();
  };
  std::string full = root_;
  MESHRPC_RETURN_IF_ERROR(check_directory(full));
  for (const std::string& name : components) {
    full += "/" + name;
    if (::mkdir(full.c_str(), 0755) == 0) continue;
    if (errno != EEXIST) return last_error("create_directories", dir);
    MESHRPC_RETURN_IF_ERROR(check_directory(full));
  }
  return Status::ok_status();
}

Status PosixDisk::sync_directory(std::string_view dir) {
  MESHRPC_ASSIGN_OR_RETURN(const std::string full, resolve("sync_directory", dir, true));
  const int fd =
      retry_on_eintr([&] { return ::open(full.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return last_error("sync_directory", dir);
  const int result = retry_on_eintr([&] { return ::fsync(fd); });
  const int error = errno;
  ::close(fd);
  if (result != 0) return errno_status(error, "sync_directory", dir);
  return Status::ok_status();
}

}  // namespace meshrpc::runtime
