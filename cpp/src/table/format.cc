// Bytes produced here:
//
//   block handle (2 to 20 bytes):
//     offset       varint64   first byte of the block in the file
//     size         varint64   stored block bytes, trailer excluded
//
//   block trailer (5 bytes, right after the stored block bytes):
//     type         u8         0 = stored raw, 1 = raw-format Snappy
//     crc          fixed32    masked crc32c(stored block bytes || type)
//
//   footer (48 bytes, the end of the file):
//     metaindex    block handle
//     index        block handle
//     padding      zero bytes up to byte 40 of the footer
//     magic        fixed32 0x8b80fb57, then fixed32 0xdb477524
//                  (kTableMagicNumber, low word first)
#include "table/format.h"

#include "table/snappy.h"
#include "trackpoint/crc32c.h"
#include "util/coding.h"

namespace trackpoint {
namespace table {

void BlockHandle::EncodeTo(std::string* dst) const {
  PutVarint64(dst, offset_);
  PutVarint64(dst, size_);
}

Status BlockHandle::DecodeFrom(std::string_view* input) {
  if (GetVarint64(input, &offset_) && GetVarint64(input, &size_)) {
    return OkStatus();
  }
  return DataLossError("bad block handle");
}

void Footer::EncodeTo(std::string* dst) const {
  const size_t start = dst->size();
  metaindex_handle_.EncodeTo(dst);
  index_handle_.EncodeTo(dst);
  dst->resize(start + 2 * BlockHandle::kMaxEncodedLength, '\0');
  PutFixed32(dst, static_cast<uint32_t>(kTableMagicNumber));
  PutFixed32(dst, static_cast<uint32_t>(kTableMagicNumber >> 32));
}

Status Footer::DecodeFrom(std::string_view input) {
  if (input.size() != kEncodedLength) {
    return DataLossError("corrupt footer (wrong size)");
  }
  const char* magic_ptr = input.data() + kEncodedLength - 8;
  const uint64_t magic = uint64_t{DecodeFixed32(magic_ptr)} |
                         (uint64_t{DecodeFixed32(magic_ptr + 4)} << 32);
  if (magic != kTableMagicNumber) return DataLossError("bad magic number");

  std::string_view handles =
      input.substr(0, 2 * BlockHandle::kMaxEncodedLength);
  if (!metaindex_handle_.DecodeFrom(&handles).ok() ||
      !index_handle_.DecodeFrom(&handles).ok()) {
    return DataLossError("corrupt footer (bad block handle)");
  }
  // A writer has exactly one way to produce a footer for these handles;
  // anything else (stray bits in the padding, padded varints) is damage.
  std::string canonical;
  EncodeTo(&canonical);
  if (canonical != input) {
    return DataLossError("corrupt footer (unexpected bytes in padding)");
  }
  return OkStatus();
}

Result<std::string> ReadBlock(const RandomAccessFile& file,
                              const BlockHandle& handle,
                              std::string_view kind) {
  const std::string what(kind);
  const uint64_t file_size = file.size();
  const uint64_t offset = handle.offset();
  const uint64_t n = handle.size();
  if (offset > file_size || n > file_size - offset ||
      kBlockTrailerSize > file_size - offset - n) {
    return DataLossError(
        "bad " + what + " handle in " + file.name() + ": " + std::to_string(n) +
        " bytes (plus trailer) at offset " + std::to_string(offset) +
        " run past the end of the file (" + std::to_string(file_size) +
        " bytes)");
  }
  const std::string where =
      file.name() + " at offset " + std::to_string(offset);

  std::string buf(static_cast<size_t>(n) + kBlockTrailerSize, '\0');
  TP_RETURN_IF_ERROR(file.Read(offset, buf.size(), buf.data()));

  const char* trailer = buf.data() + n;
  const uint32_t expected = crc32c::Unmask(DecodeFixed32(trailer + 1));
  const uint32_t actual = crc32c::Value(buf.data(), static_cast<size_t>(n) + 1);
  if (actual != expected) {
    return DataLossError(what + " checksum mismatch in " + where);
  }

  const auto type = static_cast<unsigned char>(trailer[0]);
  switch (type) {
    case kNoCompression:
      buf.resize(static_cast<size_t>(n));
      return buf;
    case kSnappyCompression: {
      Result<std::string> raw =
          SnappyUncompress(std::string_view(buf.data(), static_cast<size_t>(n)),
                           kMaxUncompressedBlockSize);
      if (!raw.ok()) {
        return DataLossError("corrupt compressed " + what + " in " + where +
                             ": " + raw.status().message());
      }
      return raw;
    }
    default:
      return DataLossError("bad " + what + " type " + std::to_string(type) +
                           " in " + where);
  }
}

}  // namespace table
}  // namespace trackpoint
