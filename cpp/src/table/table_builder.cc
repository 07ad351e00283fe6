// Bytes produced here, a whole table file:
//
//   data block 0 .. data block k    entries in key order (block_builder.cc),
//                                   restart interval 16
//   metaindex block                 always empty: 00000000 01000000
//   index block                     restart interval 1; one entry per data
//                                   block: key = a string >= every key of
//                                   that block and < every key of the next,
//                                   value = its block handle (format.cc)
//   footer                          48 bytes (format.cc)
//
// Every block is followed by its 5-byte trailer (format.cc) with type 0: this
// builder never compresses. Blocks lie back to back from offset 0.
//
// When blocks are cut (TensorFlow's rules, needed for identical bytes):
//   - before adding an entry whose key + value is >= 2 * block_size, the
//     current data block is written out if it holds anything;
//   - after adding an entry, the block is written out once its size
//     estimate (entry bytes + 4 per restart + 4) reaches block_size.
// The index key of a block is ShortestSeparator(its last key, next key), or
// ShortSuccessor(its last key) for the table's last block.
#include "table/table_builder.h"

#include <algorithm>

#include "trackpoint/crc32c.h"
#include "util/coding.h"

namespace trackpoint {
namespace table {
namespace {

// A key for an error message: printable ASCII kept, other bytes as \xNN.
std::string Printable(std::string_view key) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

}  // namespace

void ShortestSeparator(std::string* start, std::string_view limit) {
  const size_t n = std::min(start->size(), limit.size());
  size_t i = 0;
  while (i < n && (*start)[i] == limit[i]) ++i;
  if (i >= n) return;  // one is a prefix of the other
  const auto byte = static_cast<unsigned char>((*start)[i]);
  if (byte < 0xff && byte + 1 < static_cast<unsigned char>(limit[i])) {
    (*start)[i] = static_cast<char>(byte + 1);
    start->resize(i + 1);
  }
}

void ShortSuccessor(std::string* key) {
  for (size_t i = 0; i < key->size(); ++i) {
    const auto byte = static_cast<unsigned char>((*key)[i]);
    if (byte != 0xff) {
      (*key)[i] = static_cast<char>(byte + 1);
      key->resize(i + 1);
      return;
    }
  }
}

TableBuilder::TableBuilder(WritableFile* file,
                           const TableBuilderOptions& options)
    : file_(file),
      options_(options),
      data_block_(options.block_restart_interval),
      index_block_(1) {}

Status TableBuilder::Add(std::string_view key, std::string_view value) {
  if (!status_.ok()) return status_;
  if (finished_) {
    return FailedPreconditionError("TableBuilder::Add after Finish on " +
                                   file_->name());
  }
  if (num_entries_ > 0 && key <= std::string_view(last_key_)) {
    status_ = InvalidArgumentError(
        "table keys must be strictly increasing: '" + Printable(key) +
        "' added after '" + Printable(last_key_) + "' in " + file_->name());
    return status_;
  }
  if (num_entries_ > 0 &&
      key.size() + value.size() >= 2 * options_.block_size) {
    Flush();
  }
  if (pending_index_entry_) {
    ShortestSeparator(&last_key_, key);
    std::string handle;
    pending_handle_.EncodeTo(&handle);
    index_block_.Add(last_key_, handle);
    pending_index_entry_ = false;
  }
  last_key_.assign(key.data(), key.size());
  ++num_entries_;
  data_block_.Add(key, value);
  if (data_block_.CurrentSizeEstimate() >= options_.block_size) Flush();
  return status_;
}

void TableBuilder::Flush() {
  if (!status_.ok() || data_block_.empty()) return;
  pending_handle_ = WriteBlock(&data_block_);
  pending_index_entry_ = status_.ok();
}

BlockHandle TableBuilder::WriteBlock(BlockBuilder* block) {
  const std::string_view contents = block->Finish();
  const BlockHandle handle(offset_, contents.size());
  char trailer[kBlockTrailerSize];
  trailer[0] = static_cast<char>(kNoCompression);
  const uint32_t crc = crc32c::Extend(
      crc32c::Value(contents.data(), contents.size()), trailer, 1);
  EncodeFixed32(trailer + 1, crc32c::Mask(crc));
  Append(contents);
  Append(std::string_view(trailer, kBlockTrailerSize));
  block->Reset();
  return handle;
}

void TableBuilder::Append(std::string_view data) {
  if (!status_.ok()) return;
  status_ = file_->Append(data);
  if (status_.ok()) offset_ += data.size();
}

Status TableBuilder::Finish() {
  if (!status_.ok()) return status_;
  if (finished_) {
    return FailedPreconditionError("TableBuilder::Finish called twice on " +
                                   file_->name());
  }
  finished_ = true;
  Flush();

  BlockBuilder metaindex_block(1);
  Footer footer;
  footer.set_metaindex_handle(WriteBlock(&metaindex_block));

  if (pending_index_entry_) {
    ShortSuccessor(&last_key_);
    std::string handle;
    pending_handle_.EncodeTo(&handle);
    index_block_.Add(last_key_, handle);
    pending_index_entry_ = false;
  }
  footer.set_index_handle(WriteBlock(&index_block_));

  std::string encoded;
  footer.EncodeTo(&encoded);
  Append(encoded);
  return status_;
}

}  // namespace table
}  // namespace trackpoint
