#include "table/block_builder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"
#include "util/coding.h"

namespace trackpoint {
namespace table {
namespace {

using testing::Hex;
using testing::Unhex;

struct Entry {
  uint32_t shared, non_shared, value_length;
  std::string key_delta, value;
};

// Splits a finished block into its entries and restart array.
void Decode(std::string_view block, std::vector<Entry>* entries,
            std::vector<uint32_t>* restarts) {
  ASSERT_GE(block.size(), 4u);
  const uint32_t n = DecodeFixed32(block.data() + block.size() - 4);
  ASSERT_LE(4 + 4 * size_t{n}, block.size());
  const size_t end = block.size() - 4 - 4 * size_t{n};
  for (uint32_t i = 0; i < n; ++i) {
    restarts->push_back(DecodeFixed32(block.data() + end + 4 * i));
  }
  std::string_view in = block.substr(0, end);
  while (!in.empty()) {
    Entry e;
    ASSERT_TRUE(GetVarint32(&in, &e.shared));
    ASSERT_TRUE(GetVarint32(&in, &e.non_shared));
    ASSERT_TRUE(GetVarint32(&in, &e.value_length));
    ASSERT_LE(size_t{e.non_shared} + e.value_length, in.size());
    e.key_delta = std::string(in.substr(0, e.non_shared));
    e.value = std::string(in.substr(e.non_shared, e.value_length));
    in.remove_prefix(e.non_shared + e.value_length);
    entries->push_back(e);
  }
}

TEST(BlockBuilderTest, EmptyBlock) {
  BlockBuilder b(16);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.CurrentSizeEstimate(), 8u);
  EXPECT_EQ(Hex(b.Finish()), "0000000001000000");
}

// FORMAT.md section 12: the data block of the worked example (bytes 0..155).
TEST(BlockBuilderTest, WorkedExampleDataBlock) {
  BlockBuilder b(16);
  b.Add("", Unhex("08011a020801"));
  b.Add("_CHECKPOINTABLE_OBJECT_GRAPH", Unhex("080712002010289a013563ab0117"));
  b.Add("s/.ATTRIBUTES/VARIABLE_VALUE",
        Unhex("08071204120208022808359e9e48ed"));
  b.Add("v/.ATTRIBUTES/VARIABLE_VALUE", Unhex("0801120412020802200828083559"
                                              "3ce535"));
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.CurrentSizeEstimate(), 156u);
  EXPECT_EQ(Hex(b.Finish()),
            "00000608011a020801001c0e5f434845434b504f494e5441424c455f4f424a45"
            "43545f4752415048080712002010289a013563ab0117001c0f732f2e41545452"
            "4942555445532f5641524941424c455f56414c55450807120412020802280835"
            "9e9e48ed001c11762f2e415454524942555445532f5641524941424c455f5641"
            "4c554508011204120208022008280835593ce5350000000001000000");
}

TEST(BlockBuilderTest, PrefixCompressionAndRestarts) {
  for (int interval : {1, 2, 16}) {
    SCOPED_TRACE(interval);
    BlockBuilder b(interval);
    std::vector<std::string> keys;
    for (int i = 0; i < 40; ++i) {
      keys.push_back("key/" + std::to_string(1000 + i * 7));
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      b.Add(keys[i], "v" + std::to_string(i));
    }
    const size_t estimate = b.CurrentSizeEstimate();
    const std::string block(b.Finish());
    EXPECT_EQ(block.size(), estimate);

    std::vector<Entry> entries;
    std::vector<uint32_t> restarts;
    Decode(block, &entries, &restarts);
    ASSERT_EQ(entries.size(), keys.size());
    EXPECT_EQ(restarts.size(), (keys.size() + interval - 1) / interval);

    std::string prev;
    size_t offset = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      if (i % interval == 0) {
        EXPECT_EQ(e.shared, 0u);
        EXPECT_EQ(restarts[i / interval], offset);
      } else {
        // Maximal common prefix with the previous key.
        size_t common = 0;
        while (common < prev.size() && common < keys[i].size() &&
               prev[common] == keys[i][common]) {
          ++common;
        }
        EXPECT_EQ(e.shared, common);
      }
      EXPECT_EQ(prev.substr(0, e.shared) + e.key_delta, keys[i]);
      EXPECT_EQ(e.value, "v" + std::to_string(i));
      offset += VarintLength(e.shared) + VarintLength(e.non_shared) +
                VarintLength(e.value_length) + e.non_shared + e.value_length;
      prev = keys[i];
    }
  }
}

TEST(BlockBuilderTest, EstimateTracksEveryAdd) {
  BlockBuilder b(16);
  size_t entry_bytes = 0;
  std::string prev;
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(10000 + i);
    b.Add(key, std::string(i, 'x'));
    // A full key every 16 entries, else the common prefix is left out.
    size_t shared = 0;
    if (i % 16 != 0) {
      while (prev[shared] == key[shared]) ++shared;
    }
    prev = key;
    entry_bytes += VarintLength(shared) + VarintLength(key.size() - shared) +
                   VarintLength(i) + key.size() - shared + i;
    const size_t restarts = i / 16 + 1;
    EXPECT_EQ(b.CurrentSizeEstimate(), entry_bytes + 4 * restarts + 4);
  }
}

TEST(BlockBuilderTest, ResetStartsOver) {
  BlockBuilder b(16);
  b.Add("zzz", "1");
  b.Finish();
  b.Reset();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.CurrentSizeEstimate(), 8u);
  b.Add("aaa", "2");  // smaller than the key before the Reset
  EXPECT_EQ(Hex(b.Finish()),
            "0003016161613200000000"
            "01000000");
}

TEST(BlockBuilderTest, EmptyKeyAndBinaryBytes) {
  BlockBuilder b(16);
  b.Add("", "");
  b.Add(std::string("\x00\xff", 2), std::string("\x00", 1));
  b.Add(std::string("\xff", 1), "");
  EXPECT_EQ(Hex(b.Finish()),
            "000000"
            "00020100ff00"
            "000100ff"
            "00000000"
            "01000000");
}

}  // namespace
}  // namespace table
}  // namespace trackpoint
