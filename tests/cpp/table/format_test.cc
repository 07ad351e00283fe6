#include "table/format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "test_util.h"
#include "trackpoint/crc32c.h"
#include "util/coding.h"
#include "util/file.h"
#include "util/string_file.h"

namespace trackpoint {
namespace table {
namespace {

using testing::Unhex;

// stored || type || masked crc(stored || type)
std::string WithTrailer(std::string stored, uint8_t type) {
  stored.push_back(static_cast<char>(type));
  const uint32_t crc = crc32c::Value(stored.data(), stored.size());
  PutFixed32(&stored, crc32c::Mask(crc));
  return stored;
}

bool Contains(const Status& s, std::string_view text) {
  return s.message().find(text) != std::string::npos;
}

TEST(FormatTest, Constants) {
  EXPECT_EQ(kBlockTrailerSize, 5u);
  EXPECT_EQ(kNoCompression, 0);
  EXPECT_EQ(kSnappyCompression, 1);
  EXPECT_EQ(Footer::kEncodedLength, 48u);
  EXPECT_EQ(BlockHandle::kMaxEncodedLength, 20u);
}

TEST(BlockHandleTest, RoundTrip) {
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (uint64_t offset :
       {uint64_t{0}, uint64_t{127}, uint64_t{128}, uint64_t{1} << 35, kMax}) {
    for (uint64_t size : {uint64_t{0}, uint64_t{156}, kMax}) {
      std::string encoded;
      BlockHandle(offset, size).EncodeTo(&encoded);
      EXPECT_LE(encoded.size(), BlockHandle::kMaxEncodedLength);
      encoded += "trailing";
      std::string_view in = encoded;
      BlockHandle h;
      ASSERT_TRUE(h.DecodeFrom(&in).ok());
      EXPECT_EQ(h, BlockHandle(offset, size));
      EXPECT_EQ(in, "trailing");
    }
  }
  std::string encoded;
  BlockHandle(174, 15).EncodeTo(&encoded);
  EXPECT_EQ(encoded, Unhex("ae010f"));
}

TEST(BlockHandleTest, Malformed) {
  for (std::string bad : {std::string(), Unhex("ae01"), Unhex("ae"),
                          Unhex("00ff"), Unhex("ffffffffffffffffffff0100")}) {
    std::string_view in = bad;
    BlockHandle h;
    Status s = h.DecodeFrom(&in);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_TRUE(Contains(s, "bad block handle"));
  }
}

// The footer of FORMAT.md section 12 (bytes 194..241).
const char kWorkedFooter[] =
    "a10108ae010f0000000000000000000000000000000000000000000000000000"
    "000000000000000057fb808b247547db";

TEST(FooterTest, EncodeWorkedExample) {
  Footer f;
  f.set_metaindex_handle(BlockHandle(161, 8));
  f.set_index_handle(BlockHandle(174, 15));
  std::string out = "prefix";
  f.EncodeTo(&out);
  EXPECT_EQ(out, "prefix" + Unhex(kWorkedFooter));
}

TEST(FooterTest, DecodeWorkedExample) {
  Footer f;
  ASSERT_TRUE(f.DecodeFrom(Unhex(kWorkedFooter)).ok());
  EXPECT_EQ(f.metaindex_handle(), BlockHandle(161, 8));
  EXPECT_EQ(f.index_handle(), BlockHandle(174, 15));
}

TEST(FooterTest, LargestHandlesFit) {
  Footer f;
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  f.set_metaindex_handle(BlockHandle(kMax, kMax));
  f.set_index_handle(BlockHandle(kMax - 1, kMax - 2));
  std::string out;
  f.EncodeTo(&out);
  ASSERT_EQ(out.size(), 48u);
  Footer g;
  ASSERT_TRUE(g.DecodeFrom(out).ok());
  EXPECT_EQ(g.metaindex_handle(), f.metaindex_handle());
  EXPECT_EQ(g.index_handle(), f.index_handle());
}

TEST(FooterTest, Corrupt) {
  const std::string good = Unhex(kWorkedFooter);
  Footer f;
  std::string bad_magic = good;
  bad_magic[47] ^= 1;
  EXPECT_TRUE(Contains(f.DecodeFrom(bad_magic), "bad magic number"));
  std::string bad_padding = good;
  bad_padding[20] = 1;
  EXPECT_TRUE(Contains(f.DecodeFrom(bad_padding), "corrupt footer"));
  std::string padded_varint = good;  // 0f -> 8f 00: same value, longer
  padded_varint[5] = static_cast<char>(0x8f);
  EXPECT_TRUE(Contains(f.DecodeFrom(padded_varint), "corrupt footer"));
  std::string unterminated = good;
  for (int i = 0; i < 40; ++i) unterminated[i] = static_cast<char>(0xff);
  EXPECT_EQ(f.DecodeFrom(unterminated).code(), StatusCode::kDataLoss);
  EXPECT_EQ(f.DecodeFrom(good.substr(1)).code(), StatusCode::kDataLoss);
}

class ReadBlockTest : public ::testing::Test {
 protected:
  // A file holding "pad" (7 bytes), then the block, then "tail".
  Result<std::string> Read(const std::string& stored_with_trailer,
                           BlockHandle handle) {
    file_ = NewStringRandomAccessFile("padding" + stored_with_trailer + "tail",
                                      "blocks.index");
    return ReadBlock(*file_, handle);
  }
  std::unique_ptr<RandomAccessFile> file_;
};

TEST_F(ReadBlockTest, Uncompressed) {
  const std::string block = "some block bytes";
  Result<std::string> r =
      Read(WithTrailer(block, kNoCompression), BlockHandle(7, block.size()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, block);
  // An empty block is legal too.
  r = Read(WithTrailer("", kNoCompression), BlockHandle(7, 0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "");
}

TEST_F(ReadBlockTest, WorkedExampleMetaindexTrailer) {
  // FORMAT.md: the empty metaindex block's trailer is 00 c0 f2 a1 b0.
  EXPECT_EQ(WithTrailer(Unhex("0000000001000000"), kNoCompression),
            Unhex("000000000100000000c0f2a1b0"));
}

TEST_F(ReadBlockTest, Snappy) {
  // preamble 5, literal of 5 bytes.
  const std::string stored = Unhex("0510") + "hello";
  Result<std::string> r = Read(WithTrailer(stored, kSnappyCompression),
                               BlockHandle(7, stored.size()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "hello");
}

TEST_F(ReadBlockTest, BadSnappy) {
  const std::string stored = Unhex("0610") + "hello";  // claims 6, makes 5
  Result<std::string> r = Read(WithTrailer(stored, kSnappyCompression),
                               BlockHandle(7, stored.size()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(r.status(),
                       "corrupt compressed block in blocks.index "
                       "at offset 7"))
      << r.status().message();
}

TEST_F(ReadBlockTest, ChecksumMismatch) {
  const std::string block = "some block bytes";
  std::string stored = WithTrailer(block, kNoCompression);
  for (size_t i = 0; i < stored.size() * 8; ++i) {
    std::string flipped = stored;
    flipped[i / 8] ^= static_cast<char>(1 << (i % 8));
    Result<std::string> r = Read(flipped, BlockHandle(7, block.size()));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(r.status().message(),
              "block checksum mismatch in blocks.index at offset 7");
  }
}

TEST_F(ReadBlockTest, KindNamesTheBlock) {
  std::string stored = WithTrailer("x", kNoCompression);
  stored[0] = 'y';
  file_ = NewStringRandomAccessFile(stored, "f");
  Result<std::string> r = ReadBlock(*file_, BlockHandle(0, 1), "index block");
  EXPECT_EQ(r.status().message(),
            "index block checksum mismatch in f at offset 0");
}

TEST_F(ReadBlockTest, BadBlockType) {
  for (uint8_t type : {2, 3, 0x80, 0xff}) {
    Result<std::string> r = Read(WithTrailer("abc", type), BlockHandle(7, 3));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_TRUE(Contains(r.status(), "bad block type"));
    EXPECT_TRUE(Contains(r.status(), "blocks.index at offset 7"));
  }
}

TEST_F(ReadBlockTest, HandleOutsideTheFile) {
  const std::string stored = WithTrailer("abc", kNoCompression);
  // The file is 7 + 8 + 4 = 19 bytes.
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (BlockHandle h :
       {BlockHandle(7, 11), BlockHandle(15, 0), BlockHandle(19, 0),
        BlockHandle(20, 0),
        BlockHandle(7, uint64_t{1} << 62),  // no huge buffer
        BlockHandle(7, kMax), BlockHandle(kMax, 3), BlockHandle(kMax - 2, 3)}) {
    Result<std::string> r = Read(stored, h);
    ASSERT_FALSE(r.ok()) << h.offset() << " " << h.size();
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_TRUE(Contains(r.status(), "bad block handle in blocks.index"))
        << r.status().message();
  }
  // The block may end exactly at the end of the file.
  file_ = NewStringRandomAccessFile(stored, "exact");
  EXPECT_TRUE(ReadBlock(*file_, BlockHandle(0, 3)).ok());
}

}  // namespace
}  // namespace table
}  // namespace trackpoint
