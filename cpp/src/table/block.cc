// Reads the block layout written by block_builder.cc:
//   entry* (shared varint32, non_shared varint32, value_length varint32,
//   key_delta, value), restarts fixed32 * n, n fixed32.
#include "table/block.h"

#include "util/coding.h"

namespace trackpoint {
namespace table {

Result<std::unique_ptr<Block>> Block::Parse(std::string contents,
                                            std::string file, uint64_t offset) {
  auto corrupt = [&](const std::string& what) {
    return DataLossError("corrupt block in " + file + " at offset " +
                         std::to_string(offset) + ": " + what);
  };
  const size_t size = contents.size();
  if (size < sizeof(uint32_t)) return corrupt("too short for a restart count");
  const uint32_t num_restarts = DecodeFixed32(contents.data() + size - 4);
  size_t entries_end = 0;
  if (num_restarts > 0) {  // zero restarts: an empty block
    if (num_restarts > (size - 4) / 4) {
      return corrupt("restart count " + std::to_string(num_restarts) +
                     " does not fit in " + std::to_string(size) + " bytes");
    }
    entries_end = size - 4 - size_t{num_restarts} * 4;
    const char* restarts = contents.data() + entries_end;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < num_restarts; ++i) {
      const uint32_t r = DecodeFixed32(restarts + 4 * size_t{i});
      const bool ok = i == 0 ? r == 0 : (r > prev && r < entries_end);
      if (!ok) {
        return corrupt("restart point " + std::to_string(i) + " at " +
                       std::to_string(r) + " is out of order or out of range");
      }
      prev = r;
    }
  }
  return std::unique_ptr<Block>(new Block(std::move(contents), std::move(file),
                                          offset, entries_end, num_restarts));
}

Block::Block(std::string contents, std::string file, uint64_t offset,
             size_t entries_end, uint32_t num_restarts)
    : data_(std::move(contents)),
      file_(std::move(file)),
      offset_(offset),
      entries_end_(entries_end),
      num_restarts_(num_restarts) {}

uint32_t Block::RestartPoint(uint32_t index) const {
  return DecodeFixed32(data_.data() + entries_end_ + 4 * size_t{index});
}

Status Block::Corruption(const std::string& what) const {
  return DataLossError("corrupt block in " + file_ + " at offset " +
                       std::to_string(offset_) + ": " + what);
}

class Block::Iter final : public Iterator {
 public:
  explicit Iter(const Block& block) : block_(block) {}

  bool Valid() const override { return valid_; }
  Status status() const override { return status_; }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }

  void SeekToFirst() override {
    if (!status_.ok()) return;
    key_.clear();
    next_ = 0;
    ParseNextEntry();
  }

  void Next() override { ParseNextEntry(); }

  void Seek(std::string_view target) override {
    if (!status_.ok()) return;
    valid_ = false;
    if (block_.num_restarts_ == 0) return;
    // The last restart point whose key is < target (or the first one).
    uint32_t left = 0;
    uint32_t right = block_.num_restarts_ - 1;
    while (left < right) {
      const uint32_t mid = left + (right - left + 1) / 2;
      std::string_view mid_key;
      if (!RestartKey(mid, &mid_key)) return;
      if (mid_key < target) {
        left = mid;
      } else {
        right = mid - 1;
      }
    }
    key_.clear();
    next_ = block_.RestartPoint(left);
    for (ParseNextEntry(); valid_; ParseNextEntry()) {
      if (std::string_view(key_) >= target) return;
    }
  }

 private:
  // Decodes the entry header at [p, entries_end); nullptr if it overruns.
  const char* DecodeEntry(size_t pos, uint32_t* shared, uint32_t* non_shared,
                          uint32_t* value_length) const {
    const char* p = block_.data_.data() + pos;
    const char* limit = block_.data_.data() + block_.entries_end_;
    if ((p = GetVarint32Ptr(p, limit, shared)) == nullptr) return nullptr;
    if ((p = GetVarint32Ptr(p, limit, non_shared)) == nullptr) return nullptr;
    if ((p = GetVarint32Ptr(p, limit, value_length)) == nullptr) return nullptr;
    if (uint64_t{*non_shared} + *value_length >
        static_cast<uint64_t>(limit - p)) {
      return nullptr;
    }
    return p;
  }

  // The full key stored at restart point index.
  bool RestartKey(uint32_t index, std::string_view* key) {
    const uint32_t pos = block_.RestartPoint(index);
    uint32_t shared, non_shared, value_length;
    const char* p = DecodeEntry(pos, &shared, &non_shared, &value_length);
    if (p == nullptr || shared != 0) {
      Fail("bad entry at restart point " + std::to_string(index));
      return false;
    }
    *key = std::string_view(p, non_shared);
    return true;
  }

  void ParseNextEntry() {
    valid_ = false;
    if (!status_.ok() || next_ >= block_.entries_end_) return;
    uint32_t shared, non_shared, value_length;
    const char* p = DecodeEntry(next_, &shared, &non_shared, &value_length);
    if (p == nullptr || shared > key_.size()) {
      Fail("bad entry at block offset " + std::to_string(next_));
      return;
    }
    key_.resize(shared);
    key_.append(p, non_shared);
    value_ = std::string_view(p + non_shared, value_length);
    next_ = static_cast<size_t>(p + non_shared + value_length -
                                block_.data_.data());
    valid_ = true;
  }

  void Fail(const std::string& what) {
    status_ = block_.Corruption(what);
    valid_ = false;
    key_.clear();
    value_ = {};
  }

  const Block& block_;
  size_t next_ = 0;  // block offset of the entry after the current one
  bool valid_ = false;
  std::string key_;
  std::string_view value_;
  Status status_;
};

std::unique_ptr<Iterator> Block::NewIterator() const {
  return std::make_unique<Iter>(*this);
}

}  // namespace table
}  // namespace trackpoint
