#include "table/table.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "table/block_builder.h"
#include "table/format.h"
#include "table/table_builder.h"
#include "table/table_test_util.h"
#include "trackpoint/crc32c.h"
#include "util/coding.h"
#include "util/file.h"
#include "util/string_file.h"

namespace trackpoint {
namespace table {
namespace {

using testing::BuildTable;
using testing::FixturePath;
using testing::FixturePrefixes;
using testing::KeyValues;
using testing::ReadAll;
using testing::Unhex;
using testing::WorkedExampleIndex;

Result<std::unique_ptr<Table>> OpenString(std::string contents,
                                          std::string name = "t.index") {
  return Table::Open(NewStringRandomAccessFile(std::move(contents), name));
}

// Assembles a table by hand, so tests can store any bytes with any block
// type and point index entries anywhere.
class RawTable {
 public:
  BlockHandle AddBlock(std::string_view stored, uint8_t type = kNoCompression) {
    BlockHandle h(bytes_.size(), stored.size());
    std::string block(stored);
    block.push_back(static_cast<char>(type));
    PutFixed32(&block, crc32c::Mask(crc32c::Value(block.data(), block.size())));
    bytes_ += block;
    return h;
  }
  // index: (key, raw index value) pairs.
  std::string Finish(const KeyValues& index) {
    BlockBuilder index_block(1);
    for (const auto& [k, v] : index) index_block.Add(k, v);
    return FinishWithIndexBlock(index_block.Finish());
  }
  // Stores index_block as it is (which may be malformed).
  std::string FinishWithIndexBlock(std::string_view index_block) {
    BlockBuilder meta(1);
    Footer footer;
    footer.set_metaindex_handle(AddBlock(meta.Finish()));
    footer.set_index_handle(AddBlock(index_block));
    footer.EncodeTo(&bytes_);
    return bytes_;
  }

 private:
  std::string bytes_;
};

std::string Handle(uint64_t offset, uint64_t size) {
  std::string s;
  BlockHandle(offset, size).EncodeTo(&s);
  return s;
}

std::string DataBlock(const KeyValues& kv) {
  BlockBuilder b(16);
  for (const auto& [k, v] : kv) b.Add(k, v);
  return std::string(b.Finish());
}

// A raw Snappy stream holding raw as one literal (valid Snappy, no
// compression), so tests can build type-1 blocks without a compressor.
std::string SnappyLiteral(std::string_view raw) {
  std::string out;
  PutVarint32(&out, static_cast<uint32_t>(raw.size()));
  if (raw.empty()) return out;
  const uint32_t n = static_cast<uint32_t>(raw.size() - 1);
  if (n < 60) {
    out.push_back(static_cast<char>(n << 2));
  } else {
    const int bytes = n < (1u << 8)    ? 1
                      : n < (1u << 16) ? 2
                      : n < (1u << 24) ? 3
                                       : 4;
    out.push_back(static_cast<char>((59 + bytes) << 2));
    for (int i = 0; i < bytes; ++i)
      out.push_back(static_cast<char>(n >> (8 * i)));
  }
  out.append(raw);
  return out;
}

TEST(TableTest, ReadsTheWorkedExample) {
  auto table = OpenString(WorkedExampleIndex(), "tv.index");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->footer().index_handle(), BlockHandle(174, 15));
  Status s;
  const KeyValues all = ReadAll(**table, &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0], KeyValues::value_type("", Unhex("08011a020801")));
  EXPECT_EQ(all[1].first, "_CHECKPOINTABLE_OBJECT_GRAPH");
  EXPECT_EQ(all[2].first, "s/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(all[3],
            KeyValues::value_type("v/.ATTRIBUTES/VARIABLE_VALUE",
                                  Unhex("08011204120208022008280835593ce535")));
  auto it = (*table)->NewIterator();
  it->Seek("t");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "v/.ATTRIBUTES/VARIABLE_VALUE");
  it->Seek("v/.ATTRIBUTES/VARIABLE_VALUE0");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

TEST(TableTest, EmptyTable) {
  auto table = OpenString(BuildTable({}));
  ASSERT_TRUE(table.ok());
  auto it = (*table)->NewIterator();
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  it->Seek("");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

KeyValues ManyKeys(int n) {
  KeyValues kv;
  kv.emplace_back("", "\x08\x01\x1a\x02\x08\x01");
  for (int i = 0; i < n; ++i) {
    char key[64];
    snprintf(key, sizeof(key), "layer_%05d/.ATTRIBUTES/VARIABLE_VALUE", i);
    std::string value = "entry " + std::to_string(i) + " ";
    value.resize(30, static_cast<char>('a' + i % 26));
    kv.emplace_back(key, value);
  }
  return kv;
}

class MultiBlockTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    kv_ = new KeyValues(ManyKeys(8000));
    contents_ = new std::string(BuildTable(*kv_));
  }
  static void TearDownTestSuite() {
    delete kv_;
    delete contents_;
  }
  static KeyValues* kv_;
  static std::string* contents_;
};
KeyValues* MultiBlockTest::kv_;
std::string* MultiBlockTest::contents_;

TEST_F(MultiBlockTest, HasSeveralBlocksTheFirstAtLeast256KiB) {
  auto table = OpenString(*contents_);
  ASSERT_TRUE(table.ok());
  // Walk the index block directly.
  auto file = NewStringRandomAccessFile(*contents_, "t.index");
  Result<std::string> index =
      ReadBlock(*file, (*table)->footer().index_handle());
  ASSERT_TRUE(index.ok());
  auto block = Block::Parse(std::move(index).value(), "t.index", 0);
  ASSERT_TRUE(block.ok());
  std::vector<BlockHandle> handles;
  auto it = (*block)->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view v = it->value();
    ASSERT_TRUE(handles.emplace_back().DecodeFrom(&v).ok());
  }
  ASSERT_GE(handles.size(), 2u);
  EXPECT_GE(handles[0].size(), 256u * 1024);
}

TEST_F(MultiBlockTest, IteratesEverythingInOrder) {
  auto table = OpenString(*contents_);
  ASSERT_TRUE(table.ok());
  Status s;
  EXPECT_EQ(ReadAll(**table, &s), *kv_);
  EXPECT_TRUE(s.ok());
}

TEST_F(MultiBlockTest, SeekToEveryKeyAndBetween) {
  auto table = OpenString(*contents_);
  ASSERT_TRUE(table.ok());
  auto it = (*table)->NewIterator();
  const KeyValues& kv = *kv_;
  for (size_t i = 0; i < kv.size(); ++i) {
    it->Seek(kv[i].first);
    ASSERT_TRUE(it->Valid()) << i;
    ASSERT_EQ(it->key(), kv[i].first);
    ASSERT_EQ(it->value(), kv[i].second);
    // Between this key and the next.
    it->Seek(kv[i].first + std::string(1, '\0'));
    if (i + 1 == kv.size()) {
      EXPECT_FALSE(it->Valid());
    } else {
      ASSERT_TRUE(it->Valid()) << i;
      ASSERT_EQ(it->key(), kv[i + 1].first);
      it->Next();  // and onwards across block boundaries
      if (i + 2 < kv.size()) {
        ASSERT_TRUE(it->Valid());
        ASSERT_EQ(it->key(), kv[i + 2].first);
      }
    }
  }
  it->Seek("");  // before (at) the first key
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "");
  it->Seek("a");  // between "" and "layer_..."
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), kv[1].first);
  it->Seek("layer_05000");  // a prefix of a key
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "layer_05000/.ATTRIBUTES/VARIABLE_VALUE");
  for (const char* past : {"layer_99999", "m", "\xff"}) {
    it->Seek(past);
    EXPECT_FALSE(it->Valid());
  }
  EXPECT_TRUE(it->status().ok());
  it->SeekToFirst();  // usable again after running off the end
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "");
}

TEST_F(MultiBlockTest, IteratorOutlivesTable) {
  std::unique_ptr<Iterator> it;
  {
    auto table = OpenString(*contents_);
    ASSERT_TRUE(table.ok());
    it = (*table)->NewIterator();
  }
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  EXPECT_EQ(n, kv_->size());
  EXPECT_TRUE(it->status().ok());
}

TEST(TableTest, SnappyCompressedDataBlock) {
  const KeyValues kv = ManyKeys(100);
  const std::string raw = DataBlock(kv);
  RawTable t;
  BlockHandle h = t.AddBlock(SnappyLiteral(raw), kSnappyCompression);
  const std::string contents = t.Finish({{"m", Handle(h.offset(), h.size())}});
  auto table = OpenString(contents);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  Status s;
  EXPECT_EQ(ReadAll(**table, &s), kv);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(TableTest, TrailingBytesAfterIndexHandleAreTolerated) {
  const KeyValues a = {{"a", "1"}, {"b", "2"}};
  const KeyValues c = {{"c", "3"}};
  RawTable t;
  BlockHandle h1 = t.AddBlock(DataBlock(a));
  BlockHandle h2 = t.AddBlock(DataBlock(c));
  const std::string contents = t.Finish(
      {{"b", Handle(h1.offset(), h1.size()) + "extra"},
       {"d", Handle(h2.offset(), h2.size()) + std::string(30, '\xff')}});
  auto table = OpenString(contents);
  ASSERT_TRUE(table.ok());
  Status s;
  EXPECT_EQ(ReadAll(**table, &s),
            (KeyValues{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  EXPECT_TRUE(s.ok());
}

TEST(TableTest, EmptyDataBlocksAreSkipped) {
  RawTable t;
  BlockHandle empty = t.AddBlock(DataBlock({}));
  BlockHandle full = t.AddBlock(DataBlock({{"k", "v"}}));
  const std::string contents =
      t.Finish({{"a", Handle(empty.offset(), empty.size())},
                {"b", Handle(empty.offset(), empty.size())},
                {"l", Handle(full.offset(), full.size())},
                {"z", Handle(empty.offset(), empty.size())}});
  auto table = OpenString(contents);
  ASSERT_TRUE(table.ok());
  Status s;
  EXPECT_EQ(ReadAll(**table, &s), (KeyValues{{"k", "v"}}));
  EXPECT_TRUE(s.ok());
  auto it = (*table)->NewIterator();
  it->Seek("");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "k");
}

// Opening fails, or iterating (and seeking) ends with DataLoss.
void ExpectCorrupt(const std::string& contents,
                   const std::string& expect_text = "") {
  auto table = OpenString(contents, "bad.index");
  Status s;
  if (table.ok()) {
    ReadAll(**table, &s);
    if (s.ok()) {
      auto it = (*table)->NewIterator();
      it->Seek("v");
      s = it->status();
    }
  } else {
    s = table.status();
  }
  ASSERT_FALSE(s.ok()) << "corruption went unnoticed";
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("bad.index"), std::string::npos) << s.message();
  if (!expect_text.empty()) {
    EXPECT_NE(s.message().find(expect_text), std::string::npos) << s.message();
  }
}

TEST(TableTest, TooShortAndBadMagic) {
  auto t = OpenString("", "short.index");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(t.status().message().find(
                "short.index is too short to be a checkpoint index"),
            std::string::npos);
  auto m = OpenString(std::string(100, 'x'), "text.index");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(),
            "text.index is not a checkpoint index (bad magic number)");
}

TEST(TableTest, EveryTruncationFails) {
  const std::string& good = WorkedExampleIndex();
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    ExpectCorrupt(good.substr(0, n));
  }
  // The multi-block table, cut inside its blocks.
  const std::string big = BuildTable(ManyKeys(8000));
  for (size_t n : {size_t{0}, size_t{47}, size_t{48}, size_t{1000},
                   size_t{262144}, big.size() - 49, big.size() - 1}) {
    ExpectCorrupt(big.substr(0, n));
  }
}

TEST(TableTest, EveryBitFlipFails) {
  const std::string& good = WorkedExampleIndex();
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    std::string flipped = good;
    flipped[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    ExpectCorrupt(flipped);
  }
}

TEST(TableTest, ChecksumMismatchNamesFileAndOffset) {
  std::string bad = WorkedExampleIndex();
  bad[20] ^= 1;  // inside the data block at offset 0
  ExpectCorrupt(bad, "data block checksum mismatch in bad.index at offset 0");
  bad = WorkedExampleIndex();
  bad[180] ^= 1;  // inside the index block at offset 174
  ExpectCorrupt(bad,
                "index block checksum mismatch in bad.index at offset 174");
}

TEST(TableTest, BadBlockType) {
  RawTable t;
  BlockHandle h = t.AddBlock(DataBlock({{"k", "v"}}), 2);
  ExpectCorrupt(t.Finish({{"l", Handle(h.offset(), h.size())}}),
                "bad data block type 2");
}

TEST(TableTest, IndexHandlePastTheEnd) {
  RawTable t;
  BlockHandle h = t.AddBlock(DataBlock({{"k", "v"}}));
  ExpectCorrupt(t.Finish({{"l", Handle(h.offset() + 100000, h.size())}}),
                "bad data block handle");
  RawTable t2;
  h = t2.AddBlock(DataBlock({{"k", "v"}}));
  ExpectCorrupt(t2.Finish({{"l", Handle(h.offset(), h.size() + 100000)}}),
                "bad data block handle");
}

TEST(TableTest, HugeHandleSizesAllocateNothing) {
  RawTable t;
  BlockHandle h = t.AddBlock(DataBlock({{"k", "v"}}));
  ExpectCorrupt(t.Finish({{"l", Handle(h.offset(), uint64_t{1} << 62)}}),
                "bad data block handle");
  // A footer whose index handle claims an exabyte.
  std::string contents = WorkedExampleIndex();
  Footer footer;
  footer.set_metaindex_handle(BlockHandle(161, 8));
  footer.set_index_handle(BlockHandle(174, ~uint64_t{0} - 10));
  std::string encoded;
  footer.EncodeTo(&encoded);
  contents.replace(contents.size() - 48, 48, encoded);
  ExpectCorrupt(contents, "bad index block handle");
}

TEST(TableTest, BadIndexValue) {
  RawTable t;
  t.AddBlock(DataBlock({{"k", "v"}}));
  ExpectCorrupt(t.Finish({{"l", Unhex("ff")}}), "bad block handle");
}

TEST(TableTest, AbsurdRestartCountInDataBlock) {
  std::string block = DataBlock({{"k", "v"}});
  block.replace(block.size() - 4, 4, "\xff\xff\xff\x7f");
  RawTable t;
  BlockHandle h = t.AddBlock(block);
  ExpectCorrupt(t.Finish({{"l", Handle(h.offset(), h.size())}}),
                "corrupt block in bad.index");
}

TEST(TableTest, CorruptIndexBlockContents) {
  // A well-checksummed index block whose entry overruns: the iterator (not
  // Open, which only checks the restart array) reports it.
  RawTable t;
  BlockHandle h = t.AddBlock(DataBlock({{"k", "v"}}));
  std::string raw_index =
      std::string("\x00\x01\x40", 3) + "l" + Handle(h.offset(), h.size());
  PutFixed32(&raw_index, 0);
  PutFixed32(&raw_index, 1);
  const std::string contents = t.FinishWithIndexBlock(raw_index);
  ExpectCorrupt(contents, "corrupt block in bad.index");
}

TEST(TableTest, SnappyBlockClaimingTooMuch) {
  // A type-1 block whose preamble claims 100 MiB: refused before allocating.
  std::string stored;
  PutVarint32(&stored, 100u << 20);
  stored += std::string(10, '\0');
  RawTable t;
  BlockHandle h = t.AddBlock(stored, kSnappyCompression);
  ExpectCorrupt(t.Finish({{"l", Handle(h.offset(), h.size())}}),
                "corrupt compressed data block");
}

TEST(TableTest, ReadsTensorFlowMultiBlockIndexFromDisk) {
  const std::vector<std::string> prefixes = FixturePrefixes("many_keys");
  if (prefixes.empty()) GTEST_SKIP() << "no many_keys/*.index fixture";
  for (const std::string& prefix : prefixes) {
    const std::string path = FixturePath(prefix + ".index");
    auto file = NewRandomAccessFile(path);
    ASSERT_TRUE(file.ok());
    auto table = Table::Open(std::move(file).value());
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    Status s;
    const KeyValues all = ReadAll(**table, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_GT(all.size(), 1000u);
    EXPECT_EQ(all[0].first, "");
    for (size_t i = 1; i < all.size(); ++i) {
      ASSERT_LT(all[i - 1].first, all[i].first);
    }
    auto it = (*table)->NewIterator();
    for (size_t i = 0; i < all.size(); i += 7) {
      it->Seek(all[i].first);
      ASSERT_TRUE(it->Valid());
      ASSERT_EQ(it->key(), all[i].first);
      ASSERT_EQ(it->value(), all[i].second);
    }
  }
}

}  // namespace
}  // namespace table
}  // namespace trackpoint
