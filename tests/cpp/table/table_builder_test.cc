#include "table/table_builder.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "table/block.h"
#include "table/format.h"
#include "table/table.h"
#include "table/table_test_util.h"
#include "util/file.h"
#include "util/string_file.h"

namespace trackpoint {
namespace table {
namespace {

using testing::BuildTable;
using testing::FixturePath;
using testing::FixturePrefixes;
using testing::Hex;
using testing::KeyValues;
using testing::ReadAll;
using testing::Unhex;
using testing::WorkedExampleIndex;

// The handles of the data blocks, from the index block.
std::vector<BlockHandle> DataBlocks(const std::string& contents) {
  std::vector<BlockHandle> handles;
  auto file = NewStringRandomAccessFile(contents, "t.index");
  Footer footer;
  EXPECT_TRUE(
      footer.DecodeFrom(std::string_view(contents).substr(contents.size() - 48))
          .ok());
  Result<std::string> index = ReadBlock(*file, footer.index_handle());
  EXPECT_TRUE(index.ok());
  auto block = Block::Parse(std::move(index).value(), "t.index", 0);
  EXPECT_TRUE(block.ok());
  auto it = (*block)->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view v = it->value();
    BlockHandle h;
    EXPECT_TRUE(h.DecodeFrom(&v).ok());
    EXPECT_TRUE(v.empty());
    handles.push_back(h);
  }
  return handles;
}

// Every entry of the table in contents, which must open and read cleanly.
KeyValues ReadAll(const std::string& contents) {
  Result<std::unique_ptr<Table>> table =
      Table::Open(NewStringRandomAccessFile(contents, "t.index"));
  EXPECT_TRUE(table.ok()) << table.status().ToString();
  if (!table.ok()) return {};
  Status s;
  KeyValues out = ReadAll(**table, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(TableBuilderTest, WorkedExampleIsByteExact) {
  const KeyValues kv = {
      {"", Unhex("08011a020801")},
      {"_CHECKPOINTABLE_OBJECT_GRAPH", Unhex("080712002010289a013563ab0117")},
      {"s/.ATTRIBUTES/VARIABLE_VALUE", Unhex("08071204120208022808359e9e48ed")},
      {"v/.ATTRIBUTES/VARIABLE_VALUE",
       Unhex("08011204120208022008280835593ce535")},
  };
  const std::string built = BuildTable(kv);
  EXPECT_EQ(built.size(), 242u);
  EXPECT_EQ(Hex(built), Hex(WorkedExampleIndex()));
}

TEST(TableBuilderTest, EmptyTable) {
  const std::string built = BuildTable({});
  // metaindex (8 + 5), index (8 + 5), footer.
  EXPECT_EQ(Hex(built),
            "000000000100000000c0f2a1b0"
            "000000000100000000c0f2a1b0"
            "0008"
            "0d08" +
                std::string(72, '0') + "57fb808b247547db");
  EXPECT_TRUE(ReadAll(built).empty());
}

TEST(TableBuilderTest, ShortestSeparator) {
  struct Case {
    std::string start, limit, expected;
  } cases[] = {
      {"abc", "abe", "abd"},
      {"abc", "abd", "abc"},  // '+1' would reach limit's byte
      {"2", "3", "2"},
      {"layer_04842/.ATTRIBUTES/kernel", "layer_04843/.ATTRIBUTES/bias",
       "layer_04842/.ATTRIBUTES/kernel"},
      {"layer_00100/x", "layer_00300/y", "layer_002"},
      {"ab", "abc", "ab"},  // prefix
      {"", "a", ""},
      {"a\xff", "b", "a\xff"},
      {std::string("\xff\x01zz", 4), std::string("\xff\x03", 2),
       std::string("\xff\x02", 2)},
      {std::string("\x00", 1), std::string("\x02", 1), std::string("\x01", 1)},
  };
  for (const Case& c : cases) {
    std::string s = c.start;
    ShortestSeparator(&s, c.limit);
    EXPECT_EQ(Hex(s), Hex(c.expected)) << c.start << " / " << c.limit;
    EXPECT_GE(s, c.start);
    EXPECT_LT(s, c.limit);
  }
}

TEST(TableBuilderTest, ShortSuccessor) {
  struct Case {
    std::string key, expected;
  } cases[] = {
      {"save_counter/.ATTRIBUTES/VARIABLE_VALUE", "t"},
      {"v/.ATTRIBUTES/VARIABLE_VALUE", "w"},
      {"\xff\xff\xff", "\xff\xff\xff"},  // all 0xff: unchanged
      {"", ""},
      {std::string("\xff\x01"
                   "abc",
                   5),
       std::string("\xff\x02", 2)},
      {std::string("\x00\x00", 2), std::string("\x01", 1)},
  };
  for (const Case& c : cases) {
    std::string s = c.key;
    ShortSuccessor(&s);
    EXPECT_EQ(Hex(s), Hex(c.expected));
    EXPECT_GE(s, c.key);
  }
}

TEST(TableBuilderTest, KeysMustIncreaseAndErrorsAreSticky) {
  std::string contents;
  auto file = NewStringWritableFile(&contents, "order.index");
  TableBuilder builder(file.get());
  EXPECT_TRUE(builder.Add("b", "1").ok());
  Status s = builder.Add("a", "2");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("order.index"), std::string::npos);
  EXPECT_EQ(builder.Add("c", "3").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(builder.Finish().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(builder.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(builder.NumEntries(), 1u);
}

TEST(TableBuilderTest, DuplicateKeyIsAnError) {
  std::string contents;
  auto file = NewStringWritableFile(&contents, "dup.index");
  TableBuilder builder(file.get());
  EXPECT_TRUE(builder.Add("", "header").ok());
  EXPECT_EQ(builder.Add("", "again").code(), StatusCode::kInvalidArgument);
}

TEST(TableBuilderTest, UseAfterFinish) {
  std::string contents;
  auto file = NewStringWritableFile(&contents, "done.index");
  TableBuilder builder(file.get());
  EXPECT_TRUE(builder.Add("a", "1").ok());
  EXPECT_TRUE(builder.Finish().ok());
  const std::string finished = contents;
  EXPECT_EQ(builder.Add("b", "2").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(builder.Finish().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(contents, finished);
}

// Fails every Append after the first `budget` bytes.
class FailingFile final : public WritableFile {
 public:
  explicit FailingFile(size_t budget) : budget_(budget) {}
  Status Append(std::string_view data) override {
    if (!status_.ok()) return status_;
    if (data.size() > budget_) {
      status_ = ResourceExhaustedError("disk full writing " + name_);
      return status_;
    }
    budget_ -= data.size();
    return OkStatus();
  }
  Status Sync() override { return status_; }
  Status Close() override { return status_; }
  const std::string& name() const override { return name_; }

 private:
  size_t budget_;
  Status status_;
  std::string name_ = "full.index";
};

TEST(TableBuilderTest, WriteErrorsAreSticky) {
  TableBuilderOptions options;
  options.block_size = 100;
  for (size_t budget : {size_t{0}, size_t{50}, size_t{200}, size_t{260}}) {
    FailingFile file(budget);
    TableBuilder builder(&file, options);
    Status first;
    for (int i = 0; i < 20 && first.ok(); ++i) {
      first =
          builder.Add("key" + std::to_string(100 + i), std::string(20, 'v'));
    }
    Status finish = builder.Finish();
    EXPECT_EQ(finish.code(), StatusCode::kResourceExhausted) << budget;
    EXPECT_LE(builder.FileSize(), budget);
    EXPECT_EQ(builder.Add("zzz", "").code(), StatusCode::kResourceExhausted);
  }
}

KeyValues ManyKeys(int n) {
  KeyValues kv;
  kv.emplace_back("", "\x08\x01\x1a\x02\x08\x01");
  for (int i = 0; i < n; ++i) {
    char key[64];
    snprintf(key, sizeof(key), "layer_%05d/.ATTRIBUTES/VARIABLE_VALUE", i);
    std::string value = "\x08\x01\x12\x04\x12\x02\x08\x02\x20" +
                        std::to_string(i * 8) + "\x28\x08\x35";
    value.resize(30, static_cast<char>(i));
    kv.emplace_back(key, value);
  }
  return kv;
}

TEST(TableBuilderTest, MultiBlockFollowsTheFlushRule) {
  const KeyValues kv = ManyKeys(8000);
  const std::string built = BuildTable(kv);
  const std::vector<BlockHandle> blocks = DataBlocks(built);
  ASSERT_GE(blocks.size(), 2u);
  // A block is cut as soon as its size estimate reaches 256 KiB, so every
  // block but the last is at least that big (and less than one entry more).
  for (size_t i = 0; i + 1 < blocks.size(); ++i) {
    EXPECT_GE(blocks[i].size(), 262144u);
    EXPECT_LT(blocks[i].size(), 262144u + 100);
  }
  EXPECT_LT(blocks.back().size(), 262144u);
  // Back to back from offset 0.
  uint64_t offset = 0;
  for (const BlockHandle& h : blocks) {
    EXPECT_EQ(h.offset(), offset);
    offset += h.size() + kBlockTrailerSize;
  }
  EXPECT_EQ(ReadAll(built), kv);
}

TEST(TableBuilderTest, SmallBlocksAndSeparators) {
  TableBuilderOptions options;
  options.block_size = 64;
  const KeyValues kv = ManyKeys(200);
  const std::string built = BuildTable(kv, options);
  EXPECT_GT(DataBlocks(built).size(), 50u);
  EXPECT_EQ(ReadAll(built), kv);
}

TEST(TableBuilderTest, HugeEntryFlushesTheBlockFirst) {
  TableBuilderOptions options;
  options.block_size = 100;
  const KeyValues kv = {{"a", "1"}, {"b", std::string(199, 'x')}, {"c", "3"}};
  const std::string built = BuildTable(kv, options);
  const std::vector<BlockHandle> blocks = DataBlocks(built);
  // "a" alone (flushed before "b": 1 + 199 >= 2 * 100), then "b" (flushed by
  // size), then "c".
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].size(), 3 + 1 + 1 + 8u);
  EXPECT_EQ(ReadAll(built), kv);

  // Just below the threshold: no early flush, "a" and "b" share a block.
  const KeyValues kv2 = {{"a", "1"}, {"b", std::string(198, 'x')}, {"c", "3"}};
  const std::vector<BlockHandle> blocks2 = DataBlocks(BuildTable(kv2, options));
  ASSERT_EQ(blocks2.size(), 2u);
  EXPECT_GT(blocks2[0].size(), 200u);
}

// Reads a TensorFlow-written .index with Table and writes its entries back
// with TableBuilder: the bytes must be identical.
void ExpectRebuildIsIdentical(const std::string& path) {
  SCOPED_TRACE(path);
  Result<std::unique_ptr<RandomAccessFile>> file = NewRandomAccessFile(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::string original((*file)->size(), '\0');
  ASSERT_TRUE((*file)->Read(0, original.size(), original.data()).ok());
  const KeyValues kv = ReadAll(original);
  ASSERT_FALSE(kv.empty());
  const std::string rebuilt = BuildTable(kv);
  EXPECT_EQ(rebuilt.size(), original.size());
  EXPECT_TRUE(rebuilt == original);
}

TEST(TableBuilderTest, MatchesTensorFlowMultiBlockIndex) {
  const std::vector<std::string> prefixes = FixturePrefixes("many_keys");
  if (prefixes.empty()) GTEST_SKIP() << "no many_keys/*.index fixture";
  for (const std::string& prefix : prefixes) {
    const std::string path = FixturePath(prefix + ".index");
    std::string contents;
    {
      auto f = NewRandomAccessFile(path);
      ASSERT_TRUE(f.ok());
      contents.resize((*f)->size());
      ASSERT_TRUE((*f)->Read(0, contents.size(), contents.data()).ok());
    }
    EXPECT_GE(DataBlocks(contents).size(), 2u) << path;
    ExpectRebuildIsIdentical(path);
  }
}

TEST(TableBuilderTest, MatchesEveryTensorFlowIndexFixture) {
  const std::vector<std::string> prefixes = FixturePrefixes();
  if (prefixes.empty()) GTEST_SKIP() << "no .index fixtures";
  for (const std::string& prefix : prefixes) {
    ExpectRebuildIsIdentical(FixturePath(prefix + ".index"));
  }
}

}  // namespace
}  // namespace table
}  // namespace trackpoint
