#include "util/mapped_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "util/file.h"

namespace trackpoint {

Result<std::shared_ptr<const MappedFile>> MappedFile::Open(
    const std::string& path) {
  TP_ASSIGN_OR_RETURN(OpenedFile opened, OpenForReading(path));
  const int fd = opened.fd;
  const uint64_t size = opened.size;
  void* data = nullptr;
  if (size > 0) {
    // The mapping keeps its own reference to the file; the descriptor can go.
    data = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd,
                  0);
    if (data == MAP_FAILED) {
      Status s = ErrnoToStatus(errno, "cannot mmap " + path);
      ::close(fd);
      return s;
    }
  }
  ::close(fd);
  return std::shared_ptr<const MappedFile>(
      new MappedFile(path, static_cast<const char*>(data), size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) {
    ::munmap(const_cast<char*>(data_), static_cast<size_t>(size_));
  }
}

}  // namespace trackpoint
