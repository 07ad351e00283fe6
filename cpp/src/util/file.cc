#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

namespace trackpoint {
namespace {

constexpr size_t kWriteBufferSize = 1 << 20;

std::string RangeMessage(const std::string& name, uint64_t offset, size_t n,
                         uint64_t size) {
  return "read of " + std::to_string(n) + " bytes at offset " +
         std::to_string(offset) + " is past the end of " + name + " (" +
         std::to_string(size) + " bytes); the file is truncated or the index "
         "is corrupt";
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string name)
      : fd_(fd), name_(std::move(name)) {
    buffer_.reserve(kWriteBufferSize);
  }
  ~PosixWritableFile() override { Close(); }
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;

  Status Append(std::string_view data) override {
    if (!status_.ok()) return status_;
    if (buffer_.size() + data.size() <= kWriteBufferSize) {
      buffer_.append(data);
      return OkStatus();
    }
    TP_RETURN_IF_ERROR(FlushBuffer());
    if (data.size() < kWriteBufferSize) {
      buffer_.append(data);
      return OkStatus();
    }
    return WriteRaw(data.data(), data.size());
  }

  Status Sync() override {
    TP_RETURN_IF_ERROR(FlushBuffer());
    if (fd_ >= 0 && ::fsync(fd_) != 0) {
      status_ = ErrnoToStatus(errno, "fsync " + name_);
    }
    return status_;
  }

  Status Close() override {
    if (fd_ < 0) return status_;
    Status flushed = FlushBuffer();
    if (::close(fd_) != 0 && status_.ok()) {
      status_ = ErrnoToStatus(errno, "close " + name_);
    }
    fd_ = -1;
    return status_;
  }

  const std::string& name() const override { return name_; }

 private:
  Status FlushBuffer() {
    if (!status_.ok() || buffer_.empty()) return status_;
    Status s = WriteRaw(buffer_.data(), buffer_.size());
    buffer_.clear();
    return s;
  }

  Status WriteRaw(const char* data, size_t n) {
    while (n > 0) {
      ssize_t written = ::write(fd_, data, n);
      if (written < 0) {
        if (errno == EINTR) continue;
        status_ = ErrnoToStatus(errno, "write " + name_);
        return status_;
      }
      data += written;
      n -= static_cast<size_t>(written);
    }
    return OkStatus();
  }

  int fd_;
  std::string name_;
  std::string buffer_;
  Status status_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(int fd, std::string name, uint64_t size)
      : fd_(fd), name_(std::move(name)), size_(size) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }
  PosixRandomAccessFile(const PosixRandomAccessFile&) = delete;
  PosixRandomAccessFile& operator=(const PosixRandomAccessFile&) = delete;

  Status Read(uint64_t offset, size_t n, char* dst) const override {
    if (offset > size_ || n > size_ - offset) {
      return DataLossError(RangeMessage(name_, offset, n, size_));
    }
    while (n > 0) {
      ssize_t got = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "read " + name_);
      }
      if (got == 0) {
        return DataLossError("unexpected end of file in " + name_ +
                             " at offset " + std::to_string(offset));
      }
      dst += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<size_t>(got);
    }
    return OkStatus();
  }
  uint64_t size() const override { return size_; }
  const std::string& name() const override { return name_; }

 private:
  int fd_;
  std::string name_;
  uint64_t size_;
};

class StringWritableFile final : public WritableFile {
 public:
  StringWritableFile(std::string* contents, std::string name)
      : contents_(contents), name_(std::move(name)) {}
  Status Append(std::string_view data) override {
    contents_->append(data);
    return OkStatus();
  }
  Status Sync() override { return OkStatus(); }
  Status Close() override { return OkStatus(); }
  const std::string& name() const override { return name_; }

 private:
  std::string* contents_;
  std::string name_;
};

class StringRandomAccessFile final : public RandomAccessFile {
 public:
  StringRandomAccessFile(std::string contents, std::string name)
      : contents_(std::move(contents)), name_(std::move(name)) {}
  Status Read(uint64_t offset, size_t n, char* dst) const override {
    if (offset > contents_.size() || n > contents_.size() - offset) {
      return DataLossError(RangeMessage(name_, offset, n, contents_.size()));
    }
    contents_.copy(dst, n, offset);
    return OkStatus();
  }
  uint64_t size() const override { return contents_.size(); }
  const std::string& name() const override { return name_; }

 private:
  std::string contents_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "cannot create " + path);
  return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
}

Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "cannot open " + path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = ErrnoToStatus(errno, "cannot stat " + path);
    ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError(path + " is a directory, not a file");
  }
  return std::unique_ptr<RandomAccessFile>(
      new PosixRandomAccessFile(fd, path, static_cast<uint64_t>(st.st_size)));
}

std::unique_ptr<WritableFile> NewStringWritableFile(std::string* contents,
                                                    std::string name) {
  return std::make_unique<StringWritableFile>(contents, std::move(name));
}

std::unique_ptr<RandomAccessFile> NewStringRandomAccessFile(
    std::string contents, std::string name) {
  return std::make_unique<StringRandomAccessFile>(std::move(contents),
                                                  std::move(name));
}

bool FileExists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

Result<uint64_t> GetFileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, "cannot stat " + path);
  }
  return static_cast<uint64_t>(st.st_size);
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoToStatus(errno, "cannot rename " + from + " to " + to);
  }
  return OkStatus();
}

Status DeleteFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    return ErrnoToStatus(errno, "cannot delete " + path);
  }
  return OkStatus();
}

Status CreateDirs(const std::string& path) {
  if (path.empty() || path == "." || path == "/") return OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return OkStatus();
    return AlreadyExistsError(path + " exists and is not a directory");
  }
  TP_RETURN_IF_ERROR(CreateDirs(Dirname(path)));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "cannot create directory " + path);
  }
  return OkStatus();
}

Status SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "cannot open directory " + path);
  Status s;
  if (::fsync(fd) != 0) s = ErrnoToStatus(errno, "fsync directory " + path);
  ::close(fd);
  return s;
}

std::string Dirname(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;  // ignore trailing slashes
  size_t slash = path.rfind('/', end - 1);
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

uint64_t RandomU64() {
  static thread_local std::mt19937_64 engine(std::random_device{}());
  return engine();
}

}  // namespace trackpoint
