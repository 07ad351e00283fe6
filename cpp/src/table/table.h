// Table: a read-only view of a table (.index) file written by TableBuilder
// or by TensorFlow: the footer and the index block are read at Open(), data
// blocks when an iterator reaches them.
#ifndef TRACKPOINT_TABLE_TABLE_H_
#define TRACKPOINT_TABLE_TABLE_H_

#include <memory>

#include "table/block.h"
#include "table/format.h"
#include "table/iterator.h"
#include "trackpoint/status.h"
#include "util/file.h"

namespace trackpoint {
namespace table {

// Thread safety: immutable after Open(); any number of threads may create
// and use iterators at once (each iterator is used by one thread).
class Table {
 public:
  // Checks the footer (size >= 48, magic number), the metaindex block's
  // checksum (its contents are ignored) and reads the index block. Errors
  // are DataLoss naming the file: "<file> is not a checkpoint index (bad
  // magic number)", "index block checksum mismatch in <file> at offset N"...
  // REQUIRES: file != nullptr.
  static Result<std::unique_ptr<Table>> Open(
      std::shared_ptr<const RandomAccessFile> file);

  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // An iterator over every entry of the table in key order, reading each
  // data block when it gets there (one data block is held at a time). It
  // shares ownership of the file and the index block, so it may outlive the
  // Table. Corruption makes it invalid with a DataLoss status().
  std::unique_ptr<Iterator> NewIterator() const;

  const RandomAccessFile& file() const { return *file_; }
  const Footer& footer() const { return footer_; }

 private:
  class Iter;

  Table(std::shared_ptr<const RandomAccessFile> file, const Footer& footer,
        std::shared_ptr<const Block> index_block);

  const std::shared_ptr<const RandomAccessFile> file_;
  const Footer footer_;
  const std::shared_ptr<const Block> index_block_;
};

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_TABLE_H_
