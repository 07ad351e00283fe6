#include "trackpoint/bundle_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <limits>

#include "bundle/string_tensor.h"
#include "proto/bundle_proto.h"
#include "table/block_builder.h"
#include "table/format.h"
#include "table/table_builder.h"
#include "test_util.h"
#include "trackpoint/bundle_writer.h"
#include "trackpoint/crc32c.h"
#include "util/coding.h"
#include "util/file.h"

namespace trackpoint {
namespace {

using testing::FixturePath;
using testing::ReadFileOrDie;
using testing::ScratchDir;
using testing::WriteFileOrDie;

using testing::Contains;

// Writes an index holding header and entries (already in key order) by hand,
// for bundles BundleWriter would never produce.
void WriteIndex(const std::string& prefix, const BundleHeader& header,
                const std::vector<std::pair<std::string, BundleEntry>>& entries) {
  auto file = NewWritableFile(prefix + ".index");
  ASSERT_TRUE(file.ok());
  table::TableBuilder builder(file->get());
  ASSERT_TRUE(builder.Add("", SerializeBundleHeader(header)).ok());
  for (const auto& [key, entry] : entries) {
    ASSERT_TRUE(builder.Add(key, SerializeBundleEntry(entry)).ok());
  }
  ASSERT_TRUE(builder.Finish().ok());
  ASSERT_TRUE((*file)->Close().ok());
}

BundleHeader Header(int num_shards, Endianness e = Endianness::kLittle) {
  BundleHeader h;
  h.num_shards = num_shards;
  h.endianness = e;
  h.version.producer = 1;
  return h;
}

// A small bundle: "a" float32[4] and "b" string[2].
void WriteSmallBundle(const std::string& prefix) {
  auto writer = BundleWriter::Open(prefix);
  ASSERT_TRUE(writer.ok());
  const float a[4] = {1, 2, 3, 4};
  ASSERT_TRUE((*writer)->Add("a", DataType::kFloat, {{4}}, a, 16).ok());
  ASSERT_TRUE((*writer)->AddString("b", {{2}}, {"xy", "z"}).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
}

TEST(BundleReaderTest, MissingIndexIsNotFound) {
  ScratchDir dir;
  auto reader = BundleReader::Open(dir.Join("nothing"));
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(reader.status(), dir.Join("nothing.index")));
}

TEST(BundleReaderTest, MissingDataFileIsNotFoundNamingTheFile) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteSmallBundle(prefix);
  std::filesystem::remove(prefix + ".data-00000-of-00001");
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());  // data files are opened on first read
  float a[4];
  Status s = (*reader)->ReadTensor("a", a, sizeof(a));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s, "ckpt.data-00000-of-00001")) << s.ToString();
}

TEST(BundleReaderTest, UnknownKeyIsNotFoundNamingTheKey) {
  ScratchDir dir;
  WriteSmallBundle(dir.Join("ckpt"));
  auto reader = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(reader.ok());
  auto missing = (*reader)->Lookup("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  // TensorFlow's words, then the bundle.
  EXPECT_TRUE(Contains(missing.status(), "Key nope not found in checkpoint "));
}

TEST(BundleReaderTest, EveryFlippedDataBitNamesTheTensorAndTheFile) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteSmallBundle(prefix);
  const std::string data_name = prefix + ".data-00000-of-00001";
  const std::string good = ReadFileOrDie(data_name);
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    std::string bad = good;
    bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    WriteFileOrDie(data_name, bad);
    auto reader = BundleReader::Open(prefix);
    ASSERT_TRUE(reader.ok());
    float a[4];
    Status sa = (*reader)->ReadTensor("a", a, sizeof(a));
    Status sb = (*reader)->ReadStringTensor("b").status();
    const bool in_a = bit / 8 < 16;
    const Status& s = in_a ? sa : sb;
    EXPECT_TRUE((in_a ? sb : sa).ok()) << "bit " << bit;
    ASSERT_EQ(s.code(), StatusCode::kDataLoss) << "bit " << bit;
    EXPECT_TRUE(Contains(s, in_a ? "'a'" : "'b'")) << s.ToString();
    EXPECT_TRUE(Contains(s, data_name)) << s.ToString();
  }
}

TEST(BundleReaderTest, TruncatedDataFileIsDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteSmallBundle(prefix);
  const std::string data_name = prefix + ".data-00000-of-00001";
  WriteFileOrDie(data_name, ReadFileOrDie(data_name).substr(0, 10));
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  float a[4];
  EXPECT_EQ((*reader)->ReadTensor("a", a, sizeof(a)).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ((*reader)->ReadStringTensor("b").status().code(),
            StatusCode::kDataLoss);
}

TEST(BundleReaderTest, TruncatedOrGarbledIndexIsAnErrorNeverACrash) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteSmallBundle(prefix);
  const std::string index = ReadFileOrDie(prefix + ".index");
  for (size_t n = 0; n < index.size(); ++n) {
    WriteFileOrDie(prefix + ".index", index.substr(0, n));
    auto reader = BundleReader::Open(prefix);
    ASSERT_FALSE(reader.ok()) << "length " << n;
    EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss) << n;
    EXPECT_TRUE(Contains(reader.status(), "ckpt.index"))
        << reader.status().ToString();
  }
  for (size_t bit = 0; bit < index.size() * 8; ++bit) {
    std::string bad = index;
    bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    WriteFileOrDie(prefix + ".index", bad);
    auto reader = BundleReader::Open(prefix);
    // Some bits (footer padding, unused handle bytes) change nothing read;
    // every other flip must be caught.
    if (reader.ok()) {
      float a[4];
      EXPECT_TRUE((*reader)->ReadTensor("a", a, 16).ok()) << "bit " << bit;
    } else {
      EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss) << bit;
    }
  }
}

TEST(BundleReaderTest, HugeOrInconsistentEntriesAreDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteFileOrDie(prefix + ".data-00000-of-00001", std::string(16, '\0'));
  BundleEntry entry;
  entry.dtype = DataType::kFloat;
  entry.size = 16;
  entry.crc32c = crc32c::Mask(crc32c::Value(std::string(16, '\0').data(), 16));

  entry.shape = {{1000000, 1000000, 1000000}};  // 10^18 elements
  WriteIndex(prefix, Header(1), {{"x", entry}});
  EXPECT_EQ(BundleReader::Open(prefix).status().code(), StatusCode::kDataLoss);

  entry.shape = {{3}};  // 12 bytes, entry says 16
  WriteIndex(prefix, Header(1), {{"x", entry}});
  EXPECT_EQ(BundleReader::Open(prefix).status().code(), StatusCode::kDataLoss);

  entry.shape = {{4}};
  entry.shard_id = 1;  // only one shard
  WriteIndex(prefix, Header(1), {{"x", entry}});
  EXPECT_EQ(BundleReader::Open(prefix).status().code(), StatusCode::kDataLoss);

  entry.shard_id = 0;
  entry.offset = int64_t{1} << 40;  // past the end of the file
  WriteIndex(prefix, Header(1), {{"x", entry}});
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  float x[4];
  EXPECT_EQ((*reader)->ReadTensor("x", x, 16).code(), StatusCode::kDataLoss);

  entry.offset = 0;
  BundleHeader future = Header(1);
  future.version.min_consumer = 7;
  WriteIndex(prefix, future, {{"x", entry}});
  EXPECT_EQ(BundleReader::Open(prefix).status().code(), StatusCode::kDataLoss);
}

TEST(BundleReaderTest, SlicesThatDoNotCoverOrOverlapAreDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  auto writer = BundleWriter::Open(prefix);
  ASSERT_TRUE(writer.ok());
  const int32_t rows[4] = {1, 2, 3, 4};
  TensorShape full{{4, 2}};
  ASSERT_TRUE((*writer)->AddSlice("gap", full, {{{0, 2}, {0, 2}}},
                                  DataType::kInt32, rows, 16).ok());
  ASSERT_TRUE((*writer)->AddSlice("overlap", full, {{{0, 2}, {0, 2}}},
                                  DataType::kInt32, rows, 16).ok());
  ASSERT_TRUE((*writer)->AddSlice("overlap", full, {{{1, 2}, {0, 2}}},
                                  DataType::kInt32, rows, 16).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  int32_t out[8];
  Status gap = (*reader)->ReadTensor("gap", out, sizeof(out));
  EXPECT_EQ(gap.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(gap, "cover 4 of its 8")) << gap.ToString();
  EXPECT_EQ((*reader)->ReadTensor("overlap", out, sizeof(out)).code(),
            StatusCode::kDataLoss);
}

// Offsets past 4 GiB: a sparse data file with the payload at 5 GiB.
TEST(BundleReaderTest, ReadsPayloadsBeyondFourGiB) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const int64_t offset = int64_t{5} << 30;
  const double value[2] = {3.25, -1e300};
  int fd = ::open((prefix + ".data-00000-of-00001").c_str(),
                  O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, value, sizeof(value), offset), 16);
  ::close(fd);
  BundleEntry entry;
  entry.dtype = DataType::kDouble;
  entry.shape = {{2}};
  entry.offset = offset;
  entry.size = 16;
  entry.crc32c = crc32c::Mask(crc32c::Value(value, 16));
  WriteIndex(prefix, Header(1), {{"far", entry}});
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->Find("far")->offset, offset);
  double back[2];
  ASSERT_TRUE((*reader)->ReadTensor("far", back, 16).ok());
  EXPECT_EQ(back[0], 3.25);
  EXPECT_EQ(back[1], -1e300);
}

// A bundle written on a big-endian host: values and string lengths stored
// in big-endian order, CRCs over the stored bytes.
TEST(BundleReaderTest, ConvertsBigEndianBundles) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const char be_ints[] = {0, 0, 1, 2, '\xff', '\xff', '\xff', '\xfe'};
  // Big-endian string payload: lengths CRC'd as big-endian u32.
  const char be_len[] = {0, 0, 0, 3};
  const uint32_t len_crc = crc32c::Value(be_len, 4);
  std::string strings = "\x03";
  const uint32_t masked = crc32c::Mask(len_crc);
  for (int i = 3; i >= 0; --i) strings.push_back(static_cast<char>(masked >> (8 * i)));
  strings += "abc";
  uint32_t str_crc = crc32c::Extend(len_crc, strings.data() + 1, 4);
  str_crc = crc32c::Extend(str_crc, "abc", 3);
  WriteFileOrDie(prefix + ".data-00000-of-00001",
                 std::string(be_ints, 8) + strings);

  BundleEntry ints;
  ints.dtype = DataType::kInt32;
  ints.shape = {{2}};
  ints.size = 8;
  ints.crc32c = crc32c::Mask(crc32c::Value(be_ints, 8));
  BundleEntry str;
  str.dtype = DataType::kString;
  str.shape = {{1}};
  str.offset = 8;
  str.size = static_cast<int64_t>(strings.size());
  str.crc32c = crc32c::Mask(str_crc);
  WriteIndex(prefix, Header(1, Endianness::kBig), {{"i", ints}, {"s", str}});

  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  int32_t back[2];
  ASSERT_TRUE((*reader)->ReadTensor("i", back, 8).ok());
  EXPECT_EQ(back[0], 258);
  EXPECT_EQ(back[1], -2);
  auto s = (*reader)->ReadStringTensor("s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)[0], "abc");
}

// TensorFlow's checkpoints: the multi-block index and the sharded one open
// and list every key.
TEST(BundleReaderTest, OpensTensorFlowFixtures) {
  auto many = BundleReader::Open(FixturePath("many_keys/ckpt"));
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  EXPECT_GT((*many)->Keys().size(), 6000u);
  auto sharded = BundleReader::Open(FixturePath("multishard/ckpt"));
  ASSERT_TRUE(sharded.ok()) << sharded.status().ToString();
  EXPECT_GT((*sharded)->header().num_shards, 1);
}

}  // namespace
}  // namespace trackpoint

namespace trackpoint {
namespace {

// ReadTensors: many tensors at once, large ones in parallel chunks.
TEST(BundleReaderTest, ReadTensorsReadsEverythingInParallelChunks) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  // 20 MiB: three 8 MiB read chunks, the last one partial.
  std::vector<float> big((size_t{20} << 20) / 4);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 9973);
  std::vector<int64_t> small = {1, -2, 3};
  {
    auto writer = BundleWriter::Open(prefix);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Add("big", DataType::kFloat,
                               {{static_cast<int64_t>(big.size())}}, big.data(),
                               big.size() * 4).ok());
    ASSERT_TRUE((*writer)->Add("small", DataType::kInt64, {{3}}, small.data(),
                               24).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  std::vector<float> big_back(big.size());
  std::vector<int64_t> small_back(3);
  for (int threads : {1, 2, 4}) {
    std::fill(big_back.begin(), big_back.end(), -1.0f);
    ASSERT_TRUE((*reader)
                    ->ReadTensors({{"big", big_back.data(), big.size() * 4},
                                   {"small", small_back.data(), 24}},
                                  threads)
                    .ok());
    EXPECT_EQ(big_back, big) << threads;
    EXPECT_EQ(small_back, small);
  }

  // A flipped bit in the middle chunk is caught and named.
  const std::string data_name = prefix + ".data-00000-of-00001";
  std::string data = testing::ReadFileOrDie(data_name);
  data[(size_t{12} << 20) + 5] ^= 0x40;
  testing::WriteFileOrDie(data_name, data);
  auto corrupt = BundleReader::Open(prefix);
  ASSERT_TRUE(corrupt.ok());
  Status s = (*corrupt)->ReadTensors(
      {{"small", small_back.data(), 24}, {"big", big_back.data(), big.size() * 4}});
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("'big'"), std::string::npos) << s.ToString();

  // Errors come back in request order: the missing key first.
  Status missing = (*corrupt)->ReadTensors(
      {{"nope", small_back.data(), 24}, {"big", big_back.data(), big.size() * 4}});
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  // A buffer of the wrong size is an argument error.
  EXPECT_EQ((*corrupt)->ReadTensors({{"small", small_back.data(), 16}}).code(),
            StatusCode::kInvalidArgument);
}


// ---- limits: hostile indexes (issue #8; the inputs are also saved under
// tests/fuzz/regressions/bundle_reader/) -------------------------------------

// A string tensor of INT64_MAX elements: "size < elements + 4" overflowed
// int64 (undefined behaviour; UBSan stops there).
TEST(BundleReaderTest, StringEntryOfInt64MaxElementsIsDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteFileOrDie(prefix + ".data-00000-of-00001", std::string(64, '\0'));
  BundleEntry entry;
  entry.dtype = DataType::kString;
  entry.shape = {{std::numeric_limits<int64_t>::max()}};
  entry.size = 64;
  WriteIndex(prefix, Header(1), {{"s", entry}});
  auto reader = BundleReader::Open(prefix);
  EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(reader.status(), "too small")) << reader.status().ToString();
}

// elements * 16 wraps past 2^64 to exactly the claimed size: was accepted,
// so a caller sized a buffer of 1.2e18 complex128 elements.
TEST(BundleReaderTest, SizeThatIsAWrappedProductIsDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteFileOrDie(prefix + ".data-00000-of-00001", "");
  BundleEntry entry;
  entry.dtype = DataType::kComplex128;
  entry.shape = {{1229782938247303442}};
  entry.size = 1229782938247303456;
  ASSERT_EQ(uint64_t{1229782938247303442} * 16, uint64_t{1229782938247303456});
  WriteIndex(prefix, Header(1), {{"z", entry}});
  EXPECT_EQ(BundleReader::Open(prefix).status().code(), StatusCode::kDataLoss);
}

// An index whose entries name one data block twice: iterating yields its
// keys twice (out of order). Find() relies on sorted keys, and a small file
// listing a big block many times would make Open() loop and allocate for
// every repetition.
TEST(BundleReaderTest, DataBlockListedTwiceIsDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const std::string payload(4, '\0');
  WriteFileOrDie(prefix + ".data-00000-of-00001", payload);
  BundleEntry entry;
  entry.dtype = DataType::kFloat;
  entry.shape = {{1}};
  entry.size = 4;
  entry.crc32c = crc32c::Mask(crc32c::Value(payload.data(), 4));

  std::string file;
  auto add_block = [&file](std::string_view contents) {
    table::BlockHandle handle(file.size(), contents.size());
    file.append(contents);
    char trailer[table::kBlockTrailerSize] = {table::kNoCompression};
    std::string stored(contents);
    stored.push_back(table::kNoCompression);
    EncodeFixed32(trailer + 1, crc32c::Mask(crc32c::Value(stored.data(),
                                                          stored.size())));
    file.append(trailer, sizeof(trailer));
    return handle;
  };
  table::BlockBuilder data(16);
  data.Add("", SerializeBundleHeader(Header(1)));
  data.Add("a", SerializeBundleEntry(entry));
  const table::BlockHandle block = add_block(data.Finish());
  table::BlockBuilder meta(16);
  const table::BlockHandle metaindex = add_block(meta.Finish());
  std::string handle;
  block.EncodeTo(&handle);
  table::BlockBuilder index(1);
  index.Add("a", handle);
  index.Add("b", handle);  // the same block again
  table::Footer footer;
  footer.set_metaindex_handle(metaindex);
  footer.set_index_handle(add_block(index.Finish()));
  footer.EncodeTo(&file);
  WriteFileOrDie(prefix + ".index", file);

  auto reader = BundleReader::Open(prefix);
  EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(reader.status(), "out of order"))
      << reader.status().ToString();
}

// CheckStored: what a caller runs before sizing a buffer by an entry's
// shape. An entry consistent in itself (10^18 uint8 elements, size 10^18)
// is only refuted by its data file's size.
TEST(BundleReaderTest, CheckStoredRefutesExtentsPastTheDataFile) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteFileOrDie(prefix + ".data-00000-of-00001", std::string(16, '\0'));
  BundleEntry huge;
  huge.dtype = DataType::kUint8;
  huge.shape = {{1000000, 1000000, 1000000}};
  huge.size = 1000000000000000000;
  BundleEntry fits;
  fits.dtype = DataType::kUint8;
  fits.shape = {{16}};
  fits.size = 16;
  BundleEntry past = fits;
  past.offset = 8;
  WriteIndex(prefix, Header(1), {{"fits", fits}, {"huge", huge}, {"past", past}});
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->CheckStored("fits").ok());
  Status s = (*reader)->CheckStored("huge");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "data-00000-of-00001")) << s.ToString();
  EXPECT_TRUE(Contains(s, "which has 16")) << s.ToString();
  EXPECT_EQ((*reader)->CheckStored("past").code(), StatusCode::kDataLoss);
  EXPECT_EQ((*reader)->CheckStored("nothing").code(), StatusCode::kNotFound);
}

// For a partitioned tensor the slices bound the allocation: a 10^18-element
// tensor with one 2-element slice is refuted before a buffer is made.
TEST(BundleReaderTest, CheckStoredRefutesSlicesSmallerThanTheirTensor) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  auto writer = BundleWriter::Open(prefix);
  ASSERT_TRUE(writer.ok());
  const float two[2] = {1, 2};
  ASSERT_TRUE((*writer)->AddSlice("small", {{4}}, {{{0, 2}}}, DataType::kFloat,
                                  two, 8).ok());
  ASSERT_TRUE((*writer)->AddSlice("small", {{4}}, {{{2, 2}}}, DataType::kFloat,
                                  two, 8).ok());
  ASSERT_TRUE((*writer)->AddSlice("huge", {{1000000, 1000000, 1000000}},
                                  {{{0, 1}, {0, 1}, {0, 2}}}, DataType::kFloat,
                                  two, 8).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->CheckStored("small").ok());
  Status s = (*reader)->CheckStored("huge");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "slices only 2")) << s.ToString();
}

}  // namespace
}  // namespace trackpoint

// ---- ReadTensorToDevice: restores into (fake) device memory -----------------
#include "staging/fake_backend.h"
#include "staging/staging_pool.h"

namespace trackpoint {
namespace {

constexpr size_t kStageChunk = 4096;  // the pool's buffer size in these tests

std::vector<char> StageBytes(size_t n, uint32_t seed) {
  return testing::PseudoRandomBytes(n, seed);
}

std::unique_ptr<staging::StagingPool> StagePool(staging::DeviceBackend& backend,
                                                size_t buffers) {
  return std::move(staging::StagingPool::Create(backend, buffers, kStageChunk))
      .value();
}

// Writes uint8 tensors "t<i>" of the given sizes; returns their bytes.
std::vector<std::vector<char>> WriteBytesBundle(
    const std::string& prefix, const std::vector<size_t>& sizes) {
  std::vector<std::vector<char>> tensors;
  auto writer = BundleWriter::Open(prefix);
  EXPECT_TRUE(writer.ok());
  for (size_t i = 0; i < sizes.size(); ++i) {
    tensors.push_back(StageBytes(sizes[i], static_cast<uint32_t>(i)));
    EXPECT_TRUE((*writer)
                    ->Add("t" + std::to_string(i), DataType::kUint8,
                          {{static_cast<int64_t>(sizes[i])}},
                          tensors[i].data(), sizes[i])
                    .ok());
  }
  EXPECT_TRUE((*writer)->Finish().ok());
  return tensors;
}

TEST(BundleReaderTest, ReadTensorToDeviceIsByteExactAcrossChunks) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const std::vector<size_t> sizes = {0, 1, kStageChunk - 1, kStageChunk,
                                     kStageChunk + 1, 9 * kStageChunk + 5};
  const auto tensors = WriteBytesBundle(prefix, sizes);
  staging::FakeBackendOptions fake;
  fake.copy_delay = std::chrono::microseconds(50);
  staging::FakeDeviceBackend backend(fake);
  auto pool = StagePool(backend, 3);
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<char> device(sizes[i] + 1, '\x5a');  // a guard byte at the end
    Status s = (*reader)->ReadTensorToDevice("t" + std::to_string(i),
                                             device.data(), sizes[i], backend,
                                             *pool);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(std::vector<char>(device.begin(), device.end() - 1), tensors[i]);
    EXPECT_EQ(device.back(), '\x5a');
  }
  EXPECT_EQ(pool->num_free(), pool->num_buffers());
  EXPECT_EQ(backend.live_streams(), 0u);

  std::vector<char> device(kStageChunk);
  EXPECT_EQ((*reader)->ReadTensorToDevice("t3", device.data(), 10, backend,
                                          *pool).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*reader)->ReadTensorToDevice("nope", device.data(), 10, backend,
                                          *pool).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(backend.copies_enqueued(), 1 + 1 + 1 + 2 + 10);
}

TEST(BundleReaderTest, ReadTensorToDeviceAssemblesSlicesOnTheHost) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const std::vector<char> bytes = StageBytes(3 * kStageChunk, 7);
  const size_t half = bytes.size() / 2;
  {
    auto writer = BundleWriter::Open(prefix);
    ASSERT_TRUE(writer.ok());
    const TensorShape full{{2, static_cast<int64_t>(half)}};
    ASSERT_TRUE((*writer)->AddSlice("p", full, {{{1, 1}, {0, -1}}},
                                    DataType::kUint8, bytes.data() + half,
                                    half).ok());
    ASSERT_TRUE((*writer)->AddSlice("p", full, {{{0, 1}, {0, -1}}},
                                    DataType::kUint8, bytes.data(), half).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  staging::FakeDeviceBackend backend;
  auto pool = StagePool(backend, 2);
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  std::vector<char> device(bytes.size());
  Status s = (*reader)->ReadTensorToDevice("p", device.data(), device.size(),
                                           backend, *pool);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(device, bytes);
}

// A flipped bit in any chunk of the payload: every byte still reaches the
// device (unverified), and the call fails with DataLoss naming the key and
// the data file.
TEST(BundleReaderTest, ReadTensorToDeviceDetectsACorruptedChunk) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const auto tensors = WriteBytesBundle(prefix, {5 * kStageChunk + 3});
  const std::string data_name = prefix + ".data-00000-of-00001";
  const std::string good = ReadFileOrDie(data_name);
  staging::FakeDeviceBackend backend;
  auto pool = StagePool(backend, 2);
  for (size_t at : {size_t{0}, 3 * kStageChunk + 17, good.size() - 1}) {
    std::string bad = good;
    bad[at] ^= 0x10;
    WriteFileOrDie(data_name, bad);
    auto reader = BundleReader::Open(prefix);
    ASSERT_TRUE(reader.ok());
    std::vector<char> device(tensors[0].size());
    Status s = (*reader)->ReadTensorToDevice("t0", device.data(),
                                             device.size(), backend, *pool);
    ASSERT_EQ(s.code(), StatusCode::kDataLoss) << "byte " << at;
    EXPECT_TRUE(Contains(s, "'t0'")) << s.ToString();
    EXPECT_TRUE(Contains(s, data_name)) << s.ToString();
    EXPECT_EQ(std::string(device.data(), device.size()), bad);
    EXPECT_EQ(pool->num_free(), pool->num_buffers());
  }
}

// A big-endian bundle is converted on the host before the copy.
TEST(BundleReaderTest, ReadTensorToDeviceConvertsBigEndianBundles) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const char be_ints[] = {0, 0, 1, 2, '\xff', '\xff', '\xff', '\xfe'};
  WriteFileOrDie(prefix + ".data-00000-of-00001", std::string(be_ints, 8));
  BundleEntry ints;
  ints.dtype = DataType::kInt32;
  ints.shape = {{2}};
  ints.size = 8;
  ints.crc32c = crc32c::Mask(crc32c::Value(be_ints, 8));
  WriteIndex(prefix, Header(1, Endianness::kBig), {{"i", ints}});
  staging::FakeDeviceBackend backend;
  auto pool = StagePool(backend, 2);
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  int32_t device[2] = {0, 0};
  Status s = (*reader)->ReadTensorToDevice("i", device, 8, backend, *pool);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(device[0], 258);
  EXPECT_EQ(device[1], -2);
}

TEST(BundleReaderTest, ReadTensorToDeviceReportsCopyAndFileErrors) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const auto tensors = WriteBytesBundle(prefix, {6 * kStageChunk});
  for (bool at_enqueue : {false, true}) {
    staging::FakeBackendOptions fake;
    fake.fail_after_copies = 3;
    fake.fail_at_enqueue = at_enqueue;
    staging::FakeDeviceBackend backend(fake);
    auto pool = StagePool(backend, 2);
    auto reader = BundleReader::Open(prefix);
    ASSERT_TRUE(reader.ok());
    std::vector<char> device(tensors[0].size());
    Status s = (*reader)->ReadTensorToDevice("t0", device.data(),
                                             device.size(), backend, *pool);
    EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
    EXPECT_TRUE(Contains(s, "'t0'")) << s.ToString();
    EXPECT_TRUE(Contains(s, "injected copy failure")) << s.ToString();
    EXPECT_EQ(pool->num_free(), pool->num_buffers());
    EXPECT_EQ(backend.live_streams(), 0u);
    EXPECT_EQ(backend.live_events(), 0u);
  }
  // A data file cut short: refuted before any copy.
  const std::string data_name = prefix + ".data-00000-of-00001";
  WriteFileOrDie(data_name, ReadFileOrDie(data_name).substr(0, kStageChunk));
  staging::FakeDeviceBackend backend;
  auto pool = StagePool(backend, 2);
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  std::vector<char> device(tensors[0].size());
  Status s = (*reader)->ReadTensorToDevice("t0", device.data(), device.size(),
                                           backend, *pool);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_EQ(backend.copies_enqueued(), 0);
}

// tests/fixtures/tf_state (TF 2.21): a tf.data iterator's DT_VARIANT state.
TEST(BundleReaderTest, ReadsVariantTensorsAndTheirChecksums) {
  auto reader = BundleReader::Open(FixturePath("tf_state/iterator/ckpt"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto elements = (*reader)->ReadVariantTensor("it/.ATTRIBUTES/ITERATOR_STATE");
  ASSERT_TRUE(elements.ok()) << elements.status().ToString();
  ASSERT_EQ(elements->size(), 3u);
  for (const std::string& e : *elements) {
    EXPECT_EQ(e.rfind("\n\x14tensorflow::Iterator", 0), 0u);
  }
  EXPECT_EQ((*reader)->ReadVariantTensor("_CHECKPOINTABLE_OBJECT_GRAPH")
                .status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*reader)->DebugString(),
            "_CHECKPOINTABLE_OBJECT_GRAPH (DT_STRING) []\n"
            "it/.ATTRIBUTES/ITERATOR_STATE (DT_VARIANT) [3]\n");
}

// TF's DebugString lists a partitioned tensor's slice entries, not its full
// entry (checked against TF 2.21 on this fixture).
TEST(BundleReaderTest, DebugStringListsSliceEntriesAsTensorFlowDoes) {
  auto reader = BundleReader::Open(FixturePath("tf1_partitioned/model.ckpt-7"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  using namespace std::string_literals;
  const std::string expected =
      "\0emb\0\x01\x01\x02\x80\x84\x80\x84 (DT_FLOAT) [4,4]\n"s +
      "\0emb\0\x01\x01\x02\x84\x83\x80\x84 (DT_FLOAT) [3,4]\n"s +
      "\0emb\0\x01\x01\x02\x87\x83\x80\x84 (DT_FLOAT) [3,4]\n"s +
      "dense/bias (DT_FLOAT) [2]\ndense/kernel (DT_FLOAT) [4,2]\n"
      "global_step (DT_INT64) []\n";
  EXPECT_EQ((*reader)->DebugString(), expected);
}

}  // namespace
}  // namespace trackpoint

namespace trackpoint {
namespace {

// Descriptors of this process open on `path` (Linux: /proc/self/fd).
int OpenDescriptorsOn(const std::string& path) {
  int count = 0;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(fd.path(), link_ec);
    if (!link_ec && target == std::filesystem::path(path)) ++count;
  }
  return count;
}

TEST(BundleReaderTest, CloseDataFilesKeepsTheIndexAndReopensOnTheNextRead) {
  if (!std::filesystem::exists("/proc/self/fd")) GTEST_SKIP() << "needs /proc";
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  WriteSmallBundle(prefix);
  const std::string data_name =
      std::filesystem::canonical(prefix + ".data-00000-of-00001").string();
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(OpenDescriptorsOn(data_name), 0);
  float a[4] = {};
  ASSERT_TRUE((*reader)->ReadTensor("a", a, sizeof(a)).ok());
  EXPECT_EQ(OpenDescriptorsOn(data_name), 1);
  (*reader)->CloseDataFiles();
  EXPECT_EQ(OpenDescriptorsOn(data_name), 0);
  EXPECT_NE((*reader)->Find("b"), nullptr);  // the index is still there
  float again[4] = {};
  ASSERT_TRUE((*reader)->ReadTensor("a", again, sizeof(again)).ok());
  EXPECT_EQ(again[3], 4.0f);
  (*reader)->CloseDataFiles();
  std::filesystem::remove(data_name);
  Status s = (*reader)->ReadTensor("a", again, sizeof(again));
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
}

}  // namespace
}  // namespace trackpoint
