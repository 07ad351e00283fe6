#include "table/block.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "table/block_builder.h"
#include "util/coding.h"

namespace trackpoint {
namespace table {
namespace {

std::unique_ptr<Block> MustParse(std::string contents) {
  Result<std::unique_ptr<Block>> block =
      Block::Parse(std::move(contents), "test.index", 123);
  EXPECT_TRUE(block.ok()) << block.status().ToString();
  return block.ok() ? std::move(block).value() : nullptr;
}

std::vector<std::pair<std::string, std::string>> ReadAll(const Block& block) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = block.NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.emplace_back(it->key(), it->value());
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::string BuildBlock(const std::map<std::string, std::string>& kv,
                       int interval) {
  BlockBuilder b(interval);
  for (const auto& [k, v] : kv) b.Add(k, v);
  return std::string(b.Finish());
}

TEST(BlockTest, EmptyBlocks) {
  // What BlockBuilder writes for no entries.
  auto block = MustParse(std::string("\0\0\0\0\1\0\0\0", 8));
  ASSERT_NE(block, nullptr);
  EXPECT_TRUE(ReadAll(*block).empty());
  auto it = block->NewIterator();
  it->Seek("anything");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());

  // num_restarts = 0 is read as empty, whatever precedes it.
  for (std::string contents :
       {std::string(4, '\0'), std::string("junk") + std::string(4, '\0')}) {
    auto empty = MustParse(contents);
    ASSERT_NE(empty, nullptr);
    EXPECT_TRUE(ReadAll(*empty).empty());
    auto it2 = empty->NewIterator();
    it2->Seek("");
    EXPECT_FALSE(it2->Valid());
    EXPECT_TRUE(it2->status().ok());
  }
}

class BlockRoundTripTest : public ::testing::TestWithParam<int> {};

TEST_P(BlockRoundTripTest, IterateAndSeek) {
  std::map<std::string, std::string> kv;
  kv[""] = "header";
  for (int i = 0; i < 300; i += 3) {
    char key[64];
    snprintf(key, sizeof(key), "layer_%05d/.ATTRIBUTES/VARIABLE_VALUE", i);
    kv[key] = std::string(i % 37, static_cast<char>('a' + i % 26));
  }
  auto block = MustParse(BuildBlock(kv, GetParam()));
  ASSERT_NE(block, nullptr);
  auto all = ReadAll(*block);
  ASSERT_EQ(all, (std::vector<std::pair<std::string, std::string>>(kv.begin(),
                                                                   kv.end())));

  auto it = block->NewIterator();
  for (auto expected = kv.begin(); expected != kv.end(); ++expected) {
    // Exactly the key.
    it->Seek(expected->first);
    ASSERT_TRUE(it->Valid());
    EXPECT_EQ(it->key(), expected->first);
    EXPECT_EQ(it->value(), expected->second);
    // Just after the key: the next entry.
    it->Seek(expected->first + std::string(1, '\0'));
    auto next = std::next(expected);
    if (next == kv.end()) {
      EXPECT_FALSE(it->Valid());
    } else {
      ASSERT_TRUE(it->Valid());
      EXPECT_EQ(it->key(), next->first);
      it->Next();
      EXPECT_EQ(it->Valid(), std::next(next) != kv.end());
    }
  }
  it->Seek("");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "");
  it->Seek("layer_");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "layer_00000/.ATTRIBUTES/VARIABLE_VALUE");
  it->Seek("m");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

INSTANTIATE_TEST_SUITE_P(RestartIntervals, BlockRoundTripTest,
                         ::testing::Values(1, 2, 3, 16, 1000));

std::string RawBlock(std::string entries, std::vector<uint32_t> restarts) {
  for (uint32_t r : restarts) PutFixed32(&entries, r);
  PutFixed32(&entries, static_cast<uint32_t>(restarts.size()));
  return entries;
}

void ExpectCorruptParse(std::string contents) {
  Result<std::unique_ptr<Block>> block =
      Block::Parse(std::move(contents), "bad.index", 77);
  ASSERT_FALSE(block.ok());
  EXPECT_EQ(block.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(block.status().message().find("corrupt block in bad.index at "
                                          "offset 77"),
            std::string::npos)
      << block.status().message();
}

TEST(BlockTest, BadRestartArrays) {
  ExpectCorruptParse("");
  ExpectCorruptParse("abc");
  ExpectCorruptParse(std::string("\xff\xff\xff\xff", 4));  // absurd count
  ExpectCorruptParse(std::string("\x02\x00\x00\x00", 4));  // 2 restarts in 0 B
  const std::string entry(
      "\x00\x01\x01"
      "ab",
      5);
  ExpectCorruptParse(RawBlock(entry, {5}));      // first restart not at 0
  ExpectCorruptParse(RawBlock(entry, {0, 5}));   // past the entries
  ExpectCorruptParse(RawBlock(entry, {0, 99}));  // far past them
  ExpectCorruptParse(RawBlock(entry + entry, {0, 0}));  // not increasing
  std::string absurd = entry;
  PutFixed32(&absurd, 0);
  PutFixed32(&absurd, 0x40000000);
  ExpectCorruptParse(absurd);
}

// Parses fine; the iterator reports the bad entry.
void ExpectCorruptIteration(std::string contents) {
  auto block = MustParse(std::move(contents));
  ASSERT_NE(block, nullptr);
  auto it = block->NewIterator();
  int steps = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++steps;
  EXPECT_LT(steps, 100);
  EXPECT_EQ(it->status().code(), StatusCode::kDataLoss);
  EXPECT_NE(it->status().message().find("corrupt block in test.index"),
            std::string::npos);
  // Sticky: later seeks keep it invalid.
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  it->Seek("");
  EXPECT_FALSE(it->Valid());
  EXPECT_FALSE(it->status().ok());
}

TEST(BlockTest, BadEntries) {
  const std::string good(
      "\x00\x02\x01"
      "abX",
      6);
  // shared larger than the previous key.
  ExpectCorruptIteration(RawBlock(good + std::string("\x03\x01\x00"
                                                     "c",
                                                     4),
                                  {0}));
  // shared on the first entry.
  ExpectCorruptIteration(RawBlock(std::string("\x01\x01\x00"
                                              "c",
                                              4),
                                  {0}));
  // key runs past the entries.
  ExpectCorruptIteration(RawBlock(std::string("\x00\x09\x00"
                                              "abc",
                                              6),
                                  {0}));
  // value runs past the entries.
  ExpectCorruptIteration(RawBlock(good + std::string("\x00\x01\x09"
                                                     "c",
                                                     4),
                                  {0}));
  // truncated varint.
  ExpectCorruptIteration(RawBlock(good + std::string("\x00\x81", 2), {0}));
  // lengths that overflow 32 bits when added.
  ExpectCorruptIteration(RawBlock(
      std::string("\x00\xff\xff\xff\xff\x0f\xff\xff\xff\xff\x0f", 11), {0}));
}

TEST(BlockTest, SeekWithBadRestartEntry) {
  // Restart point 1 holds an entry with shared != 0: binary search catches it.
  const std::string e0(
      "\x00\x01\x00"
      "a",
      4);
  const std::string e1(
      "\x01\x01\x00"
      "b",
      4);
  auto block = MustParse(RawBlock(e0 + e1, {0, 4}));
  ASSERT_NE(block, nullptr);
  auto it = block->NewIterator();
  it->Seek("b");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().code(), StatusCode::kDataLoss);
}

// Every truncation and every flipped bit of a real block either parses and
// iterates or reports DataLoss; never a crash or an endless loop (run under
// ASan/UBSan).
TEST(BlockTest, TruncationsAndBitFlipsNeverCrash) {
  std::map<std::string, std::string> kv;
  for (int i = 0; i < 40; ++i) kv["key" + std::to_string(i * 13)] = "v";
  const std::string good = BuildBlock(kv, 4);
  auto exercise = [](std::string contents) {
    Result<std::unique_ptr<Block>> block =
        Block::Parse(std::move(contents), "t", 0);
    if (!block.ok()) {
      EXPECT_EQ(block.status().code(), StatusCode::kDataLoss);
      return;
    }
    auto it = (*block)->NewIterator();
    int steps = 0;
    for (it->SeekToFirst(); it->Valid() && steps < 1000; it->Next()) ++steps;
    EXPECT_LT(steps, 1000);
    for (const char* target : {"", "key2", "key300", "zzz"}) {
      it->Seek(target);
      if (it->Valid()) {
        EXPECT_GE(it->key(), std::string_view(target));
      }
    }
  };
  for (size_t n = 0; n < good.size(); ++n) exercise(good.substr(0, n));
  for (size_t i = 0; i < good.size() * 8; ++i) {
    std::string flipped = good;
    flipped[i / 8] ^= static_cast<char>(1 << (i % 8));
    exercise(flipped);
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string junk = good;
    for (int k = 0; k < 4; ++k) {
      junk[rng() % junk.size()] = static_cast<char>(rng());
    }
    exercise(junk);
  }
}

}  // namespace
}  // namespace table
}  // namespace trackpoint
