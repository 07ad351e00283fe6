// The framing shared by every block of a table (.index) file: block handles,
// the 5-byte block trailer, the 48-byte footer, and reading a checked block.
#ifndef TRACKPOINT_TABLE_FORMAT_H_
#define TRACKPOINT_TABLE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trackpoint/status.h"
#include "util/file.h"

namespace trackpoint {
namespace table {

// After every stored block: compression type (1 byte) + masked CRC (4 bytes).
constexpr size_t kBlockTrailerSize = 5;

// The stored bytes of a block are raw (kNoCompression) or raw-format Snappy.
// TensorFlow writes bundles uncompressed; readers also accept Snappy.
enum CompressionType : uint8_t {
  kNoCompression = 0,
  kSnappyCompression = 1,
};

// "Table magic number" of LevelDB-style tables, the last 8 bytes of the file.
constexpr uint64_t kTableMagicNumber = 0xdb4775248b80fb57ull;

// A decompressed block larger than this is treated as corruption (TensorFlow
// writes blocks of about 256 KiB).
constexpr size_t kMaxUncompressedBlockSize = size_t{64} << 20;

// Where a block lies in the file: its offset and the size of its stored
// bytes, not counting the trailer.
// Thread safety: a plain value.
class BlockHandle {
 public:
  // Two varint64s.
  static constexpr size_t kMaxEncodedLength = 20;

  BlockHandle() = default;
  BlockHandle(uint64_t offset, uint64_t size) : offset_(offset), size_(size) {}

  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  void set_size(uint64_t size) { size_ = size; }

  // Appends varint64 offset, varint64 size.
  void EncodeTo(std::string* dst) const;
  // Consumes a handle from the front of *input, leaving any bytes after it.
  // DataLoss "bad block handle" if the varints are truncated or too long.
  Status DecodeFrom(std::string_view* input);

  bool operator==(const BlockHandle& o) const {
    return offset_ == o.offset_ && size_ == o.size_;
  }
  bool operator!=(const BlockHandle& o) const { return !(*this == o); }

 private:
  uint64_t offset_ = 0;
  uint64_t size_ = 0;
};

// The fixed-size tail of every table file.
// Thread safety: a plain value.
class Footer {
 public:
  static constexpr size_t kEncodedLength = 48;

  const BlockHandle& metaindex_handle() const { return metaindex_handle_; }
  const BlockHandle& index_handle() const { return index_handle_; }
  void set_metaindex_handle(const BlockHandle& h) { metaindex_handle_ = h; }
  void set_index_handle(const BlockHandle& h) { index_handle_ = h; }

  // Appends exactly kEncodedLength bytes.
  void EncodeTo(std::string* dst) const;
  // Decodes the last kEncodedLength bytes of a file. DataLoss with "bad magic
  // number" when the magic is wrong, "corrupt footer" when the handles do not
  // decode or the footer is not exactly what EncodeTo() would write for them
  // (non-zero padding, over-long varints).
  // REQUIRES: input.size() == kEncodedLength.
  Status DecodeFrom(std::string_view input);

 private:
  BlockHandle metaindex_handle_;
  BlockHandle index_handle_;
};

// Reads the block at handle plus its trailer, checks the CRC and returns the
// block's contents, decompressed if it was stored compressed. Every error is
// DataLoss naming the file and the block's offset, with kind in front
// ("index block checksum mismatch in <file> at offset N"). Nothing is
// allocated before the handle has been checked against the file's size.
Result<std::string> ReadBlock(const RandomAccessFile& file,
                              const BlockHandle& handle,
                              std::string_view kind = "block");

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_FORMAT_H_
