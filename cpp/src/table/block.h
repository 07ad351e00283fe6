// Block: one parsed, immutable table block (see block_builder.cc for its
// layout) and an iterator over its entries.
#ifndef TRACKPOINT_TABLE_BLOCK_H_
#define TRACKPOINT_TABLE_BLOCK_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "table/iterator.h"
#include "trackpoint/status.h"

namespace trackpoint {
namespace table {

// Thread safety: immutable after Parse(); any number of threads may iterate
// it at once, each with its own iterator.
class Block {
 public:
  // Takes ownership of a block's (decompressed) contents and checks its
  // restart array: num_restarts <= (size - 4) / 4, the first restart at 0,
  // restarts strictly increasing and inside the entry area. Entries are
  // checked as iterators reach them. file and offset only name the block in
  // error messages ("corrupt block in <file> at offset N: ...").
  static Result<std::unique_ptr<Block>> Parse(std::string contents,
                                              std::string file,
                                              uint64_t offset);

  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  // Bytes of the block's contents.
  size_t size() const { return data_.size(); }

  // REQUIRES: the block outlives the iterator.
  std::unique_ptr<Iterator> NewIterator() const;

 private:
  class Iter;

  Block(std::string contents, std::string file, uint64_t offset,
        size_t entries_end, uint32_t num_restarts);
  uint32_t RestartPoint(uint32_t index) const;
  Status Corruption(const std::string& what) const;

  const std::string data_;
  const std::string file_;
  const uint64_t offset_;
  const size_t entries_end_;  // entries fill [0, entries_end_)
  const uint32_t num_restarts_;
};

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_BLOCK_H_
