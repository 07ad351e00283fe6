// The file layer: every byte trackpoint reads or writes goes through these
// two interfaces, so tests can swap in memory-backed files (string_file.h).
// This file holds the interfaces and the POSIX files and directory
// operations; the process-wide fault injection they consult is in
// fault_injection.h.
#ifndef TRACKPOINT_UTIL_FILE_H_
#define TRACKPOINT_UTIL_FILE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "trackpoint/status.h"

namespace trackpoint {

// An append-only file. Errors are sticky: after a failed call every later
// call returns the same error.
// Thread safety: not thread-safe; one writer at a time.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Appends data in pieces of piece_size bytes, calling on_piece(i, piece)
  // for each piece just before it is written (e.g. to checksum it while it is
  // in cache). Files that can write at offsets write the pieces on up to
  // `threads` threads at once (on_piece must then be thread-safe); this
  // default writes them in order.
  using PieceFn = std::function<void(size_t index, std::string_view piece)>;
  virtual Status AppendInPieces(std::string_view data, size_t piece_size,
                                int threads, const PieceFn& on_piece);
  // Pushes buffered bytes to the OS and fsyncs them.
  virtual Status Sync() = 0;
  // Flushes and closes; does not fsync. Idempotent.
  virtual Status Close() = 0;
  virtual const std::string& name() const = 0;
};

// A file read at arbitrary offsets.
// Thread safety: Read is safe to call from several threads at once.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads exactly n bytes at offset into dst. A range past the end of the
  // file is a DataLoss error naming the file, the offset and the size.
  virtual Status Read(uint64_t offset, size_t n, char* dst) const = 0;
  virtual uint64_t size() const = 0;
  virtual const std::string& name() const = 0;
};

Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path);

// An existing regular file opened read-only: its descriptor, which the caller
// closes, and its size. A directory is an InvalidArgument error.
struct OpenedFile {
  int fd;
  uint64_t size;
};
Result<OpenedFile> OpenForReading(const std::string& path);
Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
    const std::string& path);

bool FileExists(const std::string& path);
Result<uint64_t> GetFileSize(const std::string& path);
Status RenameFile(const std::string& from, const std::string& to);
Status DeleteFile(const std::string& path);
// Creates the directory and its missing parents ("mkdir -p").
Status CreateDirs(const std::string& path);
// fsyncs a directory, making renames and creations inside it durable.
Status SyncDir(const std::string& path);
// The directory part of a path ("." when there is none).
std::string Dirname(const std::string& path);
// A random unsigned 64-bit number, for temporary file names.
uint64_t RandomU64();

// The DataLoss message of a read of n bytes at offset past the end of a file
// of `size` bytes named `name` (for RandomAccessFile implementations).
std::string ReadPastEndMessage(const std::string& name, uint64_t offset,
                               size_t n, uint64_t size);

}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_FILE_H_
