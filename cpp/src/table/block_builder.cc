// Bytes produced here, one block (data, metaindex and index blocks alike):
//
//   entry*        one per Add(), in key order:
//     shared        varint32   bytes of the key shared with the previous key
//                              (0 at a restart point; otherwise the whole
//                              common prefix)
//     non_shared    varint32   bytes of the key that follow
//     value_length  varint32
//     key_delta     non_shared bytes   key[shared, shared + non_shared)
//     value         value_length bytes
//   restarts      fixed32 * num_restarts   block offset of each restart entry
//   num_restarts  fixed32
//
// Entry 0 is always a restart point, then every restart_interval-th entry
// (0, 16, 32, ... for data blocks; every entry when the interval is 1).
// An empty block is one restart at offset 0: 00000000 01000000.
#include "table/block_builder.h"

#include <algorithm>
#include <cassert>

#include "util/coding.h"

namespace trackpoint {
namespace table {

BlockBuilder::BlockBuilder(int restart_interval)
    : restart_interval_(restart_interval) {
  assert(restart_interval >= 1);
  restarts_.push_back(0);
}

void BlockBuilder::Reset() {
  buffer_.clear();
  restarts_.clear();
  restarts_.push_back(0);
  counter_ = 0;
  num_entries_ = 0;
  finished_ = false;
  last_key_.clear();
}

size_t BlockBuilder::CurrentSizeEstimate() const {
  return buffer_.size() + restarts_.size() * sizeof(uint32_t) +
         sizeof(uint32_t);
}

void BlockBuilder::Add(std::string_view key, std::string_view value) {
  assert(!finished_);
  assert(num_entries_ == 0 || key > std::string_view(last_key_));
  size_t shared = 0;
  if (counter_ < restart_interval_) {
    const size_t n = std::min(last_key_.size(), key.size());
    while (shared < n && last_key_[shared] == key[shared]) ++shared;
  } else {
    restarts_.push_back(static_cast<uint32_t>(buffer_.size()));
    counter_ = 0;
  }
  const size_t non_shared = key.size() - shared;
  PutVarint32(&buffer_, static_cast<uint32_t>(shared));
  PutVarint32(&buffer_, static_cast<uint32_t>(non_shared));
  PutVarint32(&buffer_, static_cast<uint32_t>(value.size()));
  buffer_.append(key.data() + shared, non_shared);
  buffer_.append(value.data(), value.size());

  last_key_.resize(shared);
  last_key_.append(key.data() + shared, non_shared);
  ++counter_;
  ++num_entries_;
}

std::string_view BlockBuilder::Finish() {
  if (!finished_) {
    for (uint32_t r : restarts_) PutFixed32(&buffer_, r);
    PutFixed32(&buffer_, static_cast<uint32_t>(restarts_.size()));
    finished_ = true;
  }
  return buffer_;
}

}  // namespace table
}  // namespace trackpoint
