// MappedFile: a whole file mapped read-only into memory (POSIX mmap).
//
// The mapping lives as long as its last shared owner, so a view into it (a
// MappedTensor) can outlive the reader that made it. The file must not be
// truncated or rewritten in place while it is mapped: a page past the new
// end would fault (SIGBUS). Checkpoint writers never do that; they write new
// files and rename them into place, which leaves existing mappings intact.
#ifndef TRACKPOINT_UTIL_MAPPED_FILE_H_
#define TRACKPOINT_UTIL_MAPPED_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "trackpoint/status.h"

namespace trackpoint {

// Thread safety: immutable after Open; every method may be called from
// several threads at once.
class MappedFile {
 public:
  // Errors follow the failed system call: NotFound for a missing file,
  // InvalidArgument for a directory, ...
  static Result<std::shared_ptr<const MappedFile>> Open(
      const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The file's bytes; nullptr for an empty file. Page-aligned otherwise.
  const char* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }

  // Whether [offset, offset + n) lies inside the file.
  bool Contains(uint64_t offset, uint64_t n) const {
    return offset <= size_ && n <= size_ - offset;
  }

 private:
  MappedFile(std::string name, const char* data, uint64_t size)
      : name_(std::move(name)), data_(data), size_(size) {}

  std::string name_;
  const char* data_;
  uint64_t size_;
};

}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_MAPPED_FILE_H_
