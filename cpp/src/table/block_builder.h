// BlockBuilder: lays out sorted key/value pairs as one table block, with keys
// prefix-compressed against their predecessor and a restart array for binary
// search. The byte layout is described at the top of block_builder.cc.
#ifndef TRACKPOINT_TABLE_BLOCK_BUILDER_H_
#define TRACKPOINT_TABLE_BLOCK_BUILDER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trackpoint {
namespace table {

// Thread safety: not thread-safe.
class BlockBuilder {
 public:
  // A restart point (a full, uncompressed key) every restart_interval
  // entries. REQUIRES: restart_interval >= 1.
  explicit BlockBuilder(int restart_interval);

  BlockBuilder(const BlockBuilder&) = delete;
  BlockBuilder& operator=(const BlockBuilder&) = delete;

  // Forgets everything, as if newly constructed.
  void Reset();

  // REQUIRES: Finish() not called since the last Reset(); key is greater
  // (bytewise) than every key added before.
  void Add(std::string_view key, std::string_view value);

  // Appends the restart array and returns the whole block. The view stays
  // valid until Reset() or destruction.
  std::string_view Finish();

  // The size the block would have if finished now.
  size_t CurrentSizeEstimate() const;

  // True when no entry has been added since the last Reset().
  bool empty() const { return num_entries_ == 0; }

 private:
  const int restart_interval_;
  std::string buffer_;              // entries, then (after Finish) restarts
  std::vector<uint32_t> restarts_;  // offsets of the restart entries
  int counter_ = 0;                 // entries since the last restart
  size_t num_entries_ = 0;
  bool finished_ = false;
  std::string last_key_;
};

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_BLOCK_BUILDER_H_
