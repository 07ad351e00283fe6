// TableBuilder: writes sorted key/value pairs as a table (.index) file,
// byte-for-byte as TensorFlow's table builder does with the options bundles
// use. The file layout is described at the top of table_builder.cc.
#ifndef TRACKPOINT_TABLE_TABLE_BUILDER_H_
#define TRACKPOINT_TABLE_TABLE_BUILDER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "table/block_builder.h"
#include "table/format.h"
#include "trackpoint/status.h"
#include "util/file.h"

namespace trackpoint {
namespace table {

struct TableBuilderOptions {
  // A data block is cut once its estimated size reaches this (TensorFlow's
  // default, used for every bundle).
  size_t block_size = 262144;
  // A full key every this many entries in data blocks (index blocks use 1).
  int block_restart_interval = 16;
};

// Thread safety: not thread-safe.
class TableBuilder {
 public:
  // Writes through file, which the caller owns and closes after Finish().
  // REQUIRES: file outlives the builder.
  explicit TableBuilder(WritableFile* file,
                        const TableBuilderOptions& options = {});

  TableBuilder(const TableBuilder&) = delete;
  TableBuilder& operator=(const TableBuilder&) = delete;

  // Adds one entry. Keys must be strictly increasing (bytewise); a key that
  // is not is an InvalidArgument error. Errors are sticky: after one, every
  // call returns it and nothing more is written.
  Status Add(std::string_view key, std::string_view value);

  // Writes the last data block, the metaindex and index blocks and the
  // footer. Returns the first error of the builder's life, if any. Calling
  // Add() or Finish() again afterwards is a FailedPrecondition error.
  Status Finish();

  // The first error so far (OK if none).
  const Status& status() const { return status_; }

  // Entries added so far.
  uint64_t NumEntries() const { return num_entries_; }

  // Bytes written so far; the final file size after a successful Finish().
  uint64_t FileSize() const { return offset_; }

 private:
  void Flush();
  BlockHandle WriteBlock(BlockBuilder* block);
  void Append(std::string_view data);

  WritableFile* const file_;
  const TableBuilderOptions options_;
  Status status_;
  uint64_t offset_ = 0;
  uint64_t num_entries_ = 0;
  bool finished_ = false;
  BlockBuilder data_block_;
  BlockBuilder index_block_;
  std::string last_key_;
  // After a data block is written its index entry waits for the next key, so
  // that the index key can be a short separator between the two blocks.
  bool pending_index_entry_ = false;
  BlockHandle pending_handle_;
};

// If there is a byte string shorter than *start in [*start, limit), makes
// *start the one TensorFlow picks: *start cut after its first byte that
// differs from limit, with that byte incremented, when that is still below
// limit's byte. Otherwise leaves *start unchanged.
// REQUIRES: *start < limit.
void ShortestSeparator(std::string* start, std::string_view limit);

// Makes *key a short string >= *key: cut after its first byte that is not
// 0xff, with that byte incremented. A key of only 0xff bytes is unchanged.
void ShortSuccessor(std::string* key);

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_TABLE_BUILDER_H_
