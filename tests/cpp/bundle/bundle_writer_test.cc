#include "trackpoint/bundle_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "staging/fake_backend.h"
#include "staging/staging_pool.h"
#include "test_util.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/crc32c.h"
#include "util/file.h"
#include "util/fault_injection.h"

namespace trackpoint {
namespace {

using testing::FixturePath;
using testing::ReadFileOrDie;
using testing::ScratchDir;

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// FORMAT.md section 12: Checkpoint(v=[1., 2.], s=["hi", ""]).write() by
// TensorFlow. Writing the same tensors in the same order must give the same
// bytes, index and data.
TEST(BundleWriterTest, ReproducesTensorFlowsWorkedExample) {
  const std::string fixture = FixturePath("worked_example/tv");
  auto tf_reader = BundleReader::Open(fixture);
  ASSERT_TRUE(tf_reader.ok()) << tf_reader.status().ToString();
  auto graph = (*tf_reader)->ReadStringTensor("_CHECKPOINTABLE_OBJECT_GRAPH");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();

  ScratchDir dir;
  auto writer = BundleWriter::Open(dir.Join("tv"));
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->AddString("s/.ATTRIBUTES/VARIABLE_VALUE", {{2}},
                                   {"hi", ""}).ok());
  const float v[] = {1.0f, 2.0f};
  ASSERT_TRUE((*writer)->Add("v/.ATTRIBUTES/VARIABLE_VALUE", DataType::kFloat,
                             {{2}}, v, sizeof(v)).ok());
  ASSERT_TRUE((*writer)->AddString("_CHECKPOINTABLE_OBJECT_GRAPH", {{}},
                                   {(*graph)[0]}).ok());
  ASSERT_TRUE((*writer)->Finish().ok());

  EXPECT_EQ(ReadFileOrDie(dir.Join("tv.index")),
            ReadFileOrDie(fixture + ".index"));
  EXPECT_EQ(ReadFileOrDie(dir.Join("tv.data-00000-of-00001")),
            ReadFileOrDie(fixture + ".data-00000-of-00001"));
  EXPECT_EQ(ListDir(dir.path()),
            (std::vector<std::string>{"tv.data-00000-of-00001", "tv.index"}));
}

TEST(BundleWriterTest, FilesAppearOnlyAtFinish) {
  ScratchDir dir;
  const std::string prefix = dir.Join("sub/dir/ckpt");  // parents created
  auto writer = BundleWriter::Open(prefix);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  const int32_t x = 7;
  ASSERT_TRUE((*writer)->Add("x", DataType::kInt32, {{}}, &x, 4).ok());
  for (const std::string& name : ListDir(dir.Join("sub/dir"))) {
    EXPECT_NE(name.find(".tempstate"), std::string::npos) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(prefix + ".index"));
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_EQ(ListDir(dir.Join("sub/dir")),
            (std::vector<std::string>{"ckpt.data-00000-of-00001", "ckpt.index"}));
}

TEST(BundleWriterTest, AbandonedWriterLeavesNothing) {
  ScratchDir dir;
  {
    auto writer = BundleWriter::Open(dir.Join("ckpt"), {/*num_shards=*/3});
    ASSERT_TRUE(writer.ok());
    const double d = 1.5;
    ASSERT_TRUE((*writer)->Add("d", DataType::kDouble, {{1}}, &d, 8, 2).ok());
  }
  EXPECT_TRUE(ListDir(dir.path()).empty());
}

TEST(BundleWriterTest, RejectsBadArguments) {
  ScratchDir dir;
  auto writer = BundleWriter::Open(dir.Join("ckpt"));
  ASSERT_TRUE(writer.ok());
  BundleWriter& w = **writer;
  const float f[2] = {1, 2};
  EXPECT_EQ(w.Add("", DataType::kFloat, {{2}}, f, 8).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add(std::string("\0x", 2), DataType::kFloat, {{2}}, f, 8).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("f", DataType::kFloat, {{3}}, f, 8).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("f", DataType::kString, {{2}}, f, 8).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("f", DataType::kFloat, {{2}}, f, 8, /*shard=*/1).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("f", DataType::kFloat, {{-2}}, f, 8).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddString("s", {{2}}, {"only one"}).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.Add("f", DataType::kFloat, {{2}}, f, 8).ok());
  Status dup = w.Add("f", DataType::kFloat, {{2}}, f, 8);
  EXPECT_EQ(dup.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("duplicate"), std::string::npos);
  // Argument errors are not sticky: the bundle still finishes.
  EXPECT_TRUE(w.Finish().ok());
  EXPECT_EQ(w.Finish().code(), StatusCode::kFailedPrecondition);
}

TEST(BundleWriterTest, RoundTripsEveryFixedSizeDtypeAcrossShards) {
  ScratchDir dir;
  BundleWriterOptions options;
  options.num_shards = 3;
  options.data_alignment = 64;
  auto writer = BundleWriter::Open(dir.Join("ckpt"), options);
  ASSERT_TRUE(writer.ok());
  std::mt19937 rng(42);
  std::map<std::string, std::pair<DataType, std::string>> written;
  int i = 0;
  for (int32_t v = 1; v <= 33; ++v) {
    if (!IsStorableDataType(v) || DataTypeSize(DataType(v)) == 0) continue;
    DataType dtype = static_cast<DataType>(v);
    std::string bytes(DataTypeSize(dtype) * 15, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string key = std::string("t/") + DataTypeName(dtype);
    ASSERT_TRUE((*writer)->Add(key, dtype, {{3, 5}}, bytes.data(), bytes.size(),
                               i++ % 3).ok());
    written[key] = {dtype, bytes};
  }
  ASSERT_TRUE((*writer)->Finish().ok());

  auto reader = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->header().num_shards, 3);
  EXPECT_EQ((*reader)->Keys().size(), written.size());
  for (const auto& [key, value] : written) {
    const BundleEntry* entry = (*reader)->Find(key);
    ASSERT_NE(entry, nullptr) << key;
    EXPECT_EQ(entry->dtype, value.first);
    EXPECT_EQ(entry->offset % 64, 0) << key;
    std::string back(value.second.size(), '\0');
    ASSERT_TRUE((*reader)->ReadTensor(key, back.data(), back.size()).ok());
    EXPECT_EQ(back, value.second) << key;
  }
}

TEST(BundleWriterTest, PartitionedTensorIsAssembledFromItsSlices) {
  ScratchDir dir;
  auto writer = BundleWriter::Open(dir.Join("ckpt"), {/*num_shards=*/2});
  ASSERT_TRUE(writer.ok());
  // A [5, 2] int64 tensor holding 0..9, stored as rows [0,3) and [3,5).
  std::vector<int64_t> top = {0, 1, 2, 3, 4, 5}, bottom = {6, 7, 8, 9};
  TensorShape full{{5, 2}};
  TensorSlice first{{{0, 3}, {0, SliceExtent::kFullExtent}}};
  TensorSlice second{{{3, 2}, {0, SliceExtent::kFullExtent}}};
  ASSERT_TRUE((*writer)->AddSlice("emb", full, second, DataType::kInt64,
                                  bottom.data(), 32, 1).ok());
  ASSERT_TRUE((*writer)->AddSlice("emb", full, first, DataType::kInt64,
                                  top.data(), 48, 0).ok());
  // A slice covering everything is stored as a plain tensor.
  const float whole[2] = {1, 2};
  ASSERT_TRUE((*writer)->AddSlice("plain", {{2}}, {{{0, 2}}}, DataType::kFloat,
                                  whole, 8).ok());
  ASSERT_TRUE((*writer)->Finish().ok());

  auto reader = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->Keys(), (std::vector<std::string>{"emb", "plain"}));
  EXPECT_EQ((*reader)->Find("emb")->slices.size(), 2u);
  EXPECT_TRUE((*reader)->Find("plain")->slices.empty());
  std::vector<int64_t> back(10, -1);
  ASSERT_TRUE((*reader)->ReadTensor("emb", back.data(), 80).ok());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(back[i], i);
}

TEST(BundleWriterTest, DataFileNamesWidenPastFiveDigits) {
  EXPECT_EQ(DataFilename("p", 0, 1), "p.data-00000-of-00001");
  EXPECT_EQ(DataFilename("p", 123456, 200000), "p.data-123456-of-200000");
}

// ---- AddFromDevice: tensors staged from (fake) device memory ----------------

constexpr size_t kStageChunk = 4096;  // the pool's buffer size in these tests

std::vector<char> Bytes(size_t n, uint32_t seed) {
  return testing::PseudoRandomBytes(n, seed);
}

std::unique_ptr<staging::StagingPool> MakeStagingPool(
    staging::DeviceBackend& backend, size_t buffers) {
  return std::move(staging::StagingPool::Create(backend, buffers, kStageChunk))
      .value();
}

// The same float tensors written once from host memory with Add and once
// from "device" memory with AddFromDevice (sizes around the chunk size, up
// to many chunks, in two shards, with alignment padding) give the same
// files, byte for byte.
TEST(BundleWriterTest, AddFromDeviceWritesTheSameBytesAsAdd) {
  const std::vector<size_t> floats = {0,  1,  kStageChunk / 4 - 1,
                                      kStageChunk / 4,  kStageChunk / 4 + 1,
                                      7 * kStageChunk / 4 + 3};
  std::vector<std::vector<char>> tensors;
  for (size_t i = 0; i < floats.size(); ++i) {
    tensors.push_back(Bytes(floats[i] * 4, static_cast<uint32_t>(i)));
  }
  BundleWriterOptions options;
  options.num_shards = 2;
  options.data_alignment = 64;
  options.sync = false;
  ScratchDir dir;
  for (const char* name : {"host", "device"}) {
    staging::FakeBackendOptions fake;
    fake.copy_delay = std::chrono::microseconds(50);  // copies lag the sink
    staging::FakeDeviceBackend backend(fake);
    auto pool = MakeStagingPool(backend, 3);
    auto writer = BundleWriter::Open(dir.Join(name), options);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const std::string key = "t" + std::to_string(i);
      const TensorShape shape{{static_cast<int64_t>(floats[i])}};
      const int shard = static_cast<int>(i % 2);
      Status s = std::string(name) == "host"
                     ? (*writer)->Add(key, DataType::kFloat, shape,
                                      tensors[i].data(), tensors[i].size(),
                                      shard)
                     : (*writer)->AddFromDevice(
                           key, DataType::kFloat, shape, tensors[i].data(),
                           tensors[i].size(), backend, *pool, shard);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_TRUE((*writer)->Finish().ok());
    EXPECT_EQ(pool->num_free(), pool->num_buffers());
    EXPECT_EQ(backend.live_streams(), 0u);
  }
  for (const char* suffix :
       {".index", ".data-00000-of-00002", ".data-00001-of-00002"}) {
    EXPECT_EQ(ReadFileOrDie(dir.Join("host") + suffix),
              ReadFileOrDie(dir.Join("device") + suffix))
        << suffix;
  }
  auto reader = BundleReader::Open(dir.Join("device"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const std::vector<char>& last = tensors.back();
  std::vector<char> back(last.size());
  ASSERT_TRUE((*reader)->ReadTensor("t5", back.data(), back.size()).ok());
  EXPECT_EQ(back, last);
}

TEST(BundleWriterTest, AddFromDeviceChecksItsArgumentsFirst) {
  staging::FakeDeviceBackend backend;
  auto pool = MakeStagingPool(backend, 2);
  ScratchDir dir;
  auto writer = BundleWriter::Open(dir.Join("ckpt"));
  ASSERT_TRUE(writer.ok());
  const std::vector<char> bytes = Bytes(12, 0);
  Status s = (*writer)->AddFromDevice("x", DataType::kFloat, {{4}},
                                      bytes.data(), 12, backend, *pool);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'x'"), std::string::npos) << s.ToString();
  EXPECT_EQ(backend.copies_enqueued(), 0);
  // Nothing was written: the writer is still good.
  ASSERT_TRUE((*writer)->AddFromDevice("x", DataType::kFloat, {{3}},
                                       bytes.data(), 12, backend, *pool)
                  .ok());
  EXPECT_EQ((*writer)->AddFromDevice("x", DataType::kFloat, {{3}},
                                     bytes.data(), 12, backend, *pool)
                .code(),
            StatusCode::kInvalidArgument);  // duplicate key
  EXPECT_TRUE((*writer)->Finish().ok());
}

// A copy failing part way (as an asynchronous CUDA error, or at enqueue):
// a clean error naming the key, the pool whole again, the bundle failed for
// good, and no file left once the writer is gone.
TEST(BundleWriterTest, AddFromDeviceCopyFailureFailsTheBundle) {
  for (bool at_enqueue : {false, true}) {
    staging::FakeBackendOptions fake;
    fake.fail_after_copies = 2;
    fake.fail_at_enqueue = at_enqueue;
    staging::FakeDeviceBackend backend(fake);
    auto pool = MakeStagingPool(backend, 2);
    ScratchDir dir;
    {
      auto writer = BundleWriter::Open(dir.Join("ckpt"), {/*num_shards=*/2});
      ASSERT_TRUE(writer.ok());
      const int32_t x = 7;
      ASSERT_TRUE((*writer)->Add("x", DataType::kInt32, {{}}, &x, 4).ok());
      const std::vector<char> bytes = Bytes(5 * kStageChunk, 1);
      Status s = (*writer)->AddFromDevice(
          "model/w", DataType::kUint8,
          {{static_cast<int64_t>(bytes.size())}}, bytes.data(), bytes.size(),
          backend, *pool, 1);
      EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
      EXPECT_NE(s.message().find("'model/w'"), std::string::npos)
          << s.ToString();
      EXPECT_NE(s.message().find("injected copy failure"), std::string::npos)
          << s.ToString();
      EXPECT_EQ(pool->num_free(), pool->num_buffers());
      EXPECT_EQ(backend.live_streams(), 0u);
      EXPECT_EQ(backend.live_events(), 0u);
      EXPECT_EQ((*writer)->Add("y", DataType::kInt32, {{}}, &x, 4).code(),
                StatusCode::kInternal);  // sticky
      EXPECT_EQ((*writer)->Finish().code(), StatusCode::kInternal);
    }
    EXPECT_TRUE(ListDir(dir.path()).empty()) << "at_enqueue " << at_enqueue;
  }
}

}  // namespace
}  // namespace trackpoint

namespace trackpoint {
namespace {

// Tensors of 8 MiB or more are written by several threads at their offsets;
// the file must hold exactly what a sequential write would.
TEST(BundleWriterTest, LargeTensorsWrittenInParallelLandInOrder) {
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  std::vector<uint32_t> big((size_t{40} << 20) / 4 + 3);  // not a piece multiple
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint32_t>(i * 2654435761u);
  const int16_t before[3] = {1, 2, 3};
  const int16_t after[2] = {-4, 5};
  {
    auto writer = BundleWriter::Open(prefix);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Add("a", DataType::kInt16, {{3}}, before, 6).ok());
    ASSERT_TRUE((*writer)->Add("big", DataType::kUint32,
                               {{static_cast<int64_t>(big.size())}}, big.data(),
                               big.size() * 4).ok());
    ASSERT_TRUE((*writer)->Add("z", DataType::kInt16, {{2}}, after, 4).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  std::string expected(reinterpret_cast<const char*>(before), 6);
  expected.append(reinterpret_cast<const char*>(big.data()), big.size() * 4);
  expected.append(reinterpret_cast<const char*>(after), 4);
  EXPECT_TRUE(testing::ReadFileOrDie(prefix + ".data-00000-of-00001") == expected);
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Find("big")->crc32c,
            crc32c::Mask(crc32c::Value(big.data(), big.size() * 4)));
  EXPECT_EQ((*reader)->Find("z")->offset, static_cast<int64_t>(6 + big.size() * 4));
  std::vector<uint32_t> back(big.size());
  ASSERT_TRUE((*reader)->ReadTensor("big", back.data(), back.size() * 4).ok());
  EXPECT_TRUE(back == big);
}

TEST(BundleWriterTest, DiskFullDuringAParallelWriteIsACleanError) {
  testing::ScratchDir dir;
  std::vector<char> big(size_t{48} << 20, 'x');
  {
    auto writer = BundleWriter::Open(dir.Join("ckpt"));
    ASSERT_TRUE(writer.ok());
    SetIoFaultForTesting(IoFault::kWriteNoSpace, size_t{10} << 20);
    Status s = (*writer)->Add("big", DataType::kInt8,
                              {{static_cast<int64_t>(big.size())}}, big.data(),
                              big.size());
    SetIoFaultForTesting(IoFault::kNone, 0);
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
    EXPECT_EQ((*writer)->Finish().code(), StatusCode::kResourceExhausted);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// ---- Writing over an existing bundle while the disk fails ------------------

// Disarms the process-wide fault hook after every test, pass or fail.
class BundleOverwriteTest : public ::testing::Test {
 protected:
  void TearDown() override { SetIoFaultForTesting(IoFault::kNone, 0); }
};

// A bundle of two shards whose every value is `fill`; the same file sizes
// whatever the fill.
Status WriteFilledBundle(const std::string& prefix, int32_t fill) {
  TP_ASSIGN_OR_RETURN(auto writer, BundleWriter::Open(prefix, {2}));
  const std::vector<int32_t> big(4096, fill);
  TP_RETURN_IF_ERROR(writer->Add("big", DataType::kInt32, {{4096}}, big.data(),
                                 big.size() * sizeof(int32_t)));
  const std::string label = "fill " + std::to_string(fill % 10);
  TP_RETURN_IF_ERROR(writer->AddString("label", {{}}, {label}, 1));
  return writer->Finish();
}

// The bundle at prefix reads back whole, every CRC verified, with `fill`.
void ExpectFilledBundle(const std::string& prefix, int32_t fill) {
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<int32_t> big(4096);
  Status s = (*reader)->ReadTensor("big", big.data(), big.size() * 4);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(big, std::vector<int32_t>(4096, fill));
  auto label = (*reader)->ReadStringTensor("label");
  ASSERT_TRUE(label.ok()) << label.status().ToString();
  EXPECT_EQ((*label)[0], "fill " + std::to_string(fill % 10));
}

std::map<std::string, std::string> DirContents(const std::string& dir) {
  std::map<std::string, std::string> contents;
  for (const std::string& name : ListDir(dir)) {
    contents[name] = ReadFileOrDie(dir + "/" + name);
  }
  return contents;
}

// A fault while anything of the new bundle is still being written or
// fsynced (its data files, then its index) fails the overwrite before the
// old bundle is touched: it stays byte for byte, and no temporary file is
// left.
TEST_F(BundleOverwriteTest, FailureWhileWritingKeepsTheOldBundle) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  ASSERT_TRUE(WriteFilledBundle(prefix, 1).ok());
  const std::map<std::string, std::string> before = DirContents(dir.path());
  // Data files are written first (D bytes in all), the index (I bytes) last.
  const uint64_t d = before.at("ckpt.data-00000-of-00002").size() +
                     before.at("ckpt.data-00001-of-00002").size();
  const uint64_t i = before.at("ckpt.index").size();
  struct Case {
    IoFault fault;
    uint64_t budget;
    StatusCode code;
  };
  const Case cases[] = {
      // In the data files.
      {IoFault::kWriteNoSpace, 0, StatusCode::kResourceExhausted},
      {IoFault::kWriteIoError, d / 2, StatusCode::kUnavailable},
      {IoFault::kSyncIoError, 0, StatusCode::kUnavailable},
      // In the index, its data files complete.
      {IoFault::kWriteNoSpace, d + 1, StatusCode::kResourceExhausted},
      {IoFault::kWriteNoSpace, d + i - 1, StatusCode::kResourceExhausted},
      {IoFault::kWriteIoError, d + i / 2, StatusCode::kUnavailable},
      {IoFault::kSyncIoError, d + 1, StatusCode::kUnavailable},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("fault " + std::to_string(static_cast<int>(c.fault)) +
                 " after " + std::to_string(c.budget) + " bytes");
    SetIoFaultForTesting(c.fault, c.budget);
    Status s = WriteFilledBundle(prefix, 2);
    SetIoFaultForTesting(IoFault::kNone, 0);
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    EXPECT_TRUE(DirContents(dir.path()) == before);
    ExpectFilledBundle(prefix, 1);
  }
  // The disk works again: the overwrite goes through.
  ASSERT_TRUE(WriteFilledBundle(prefix, 2).ok());
  ExpectFilledBundle(prefix, 2);
  std::vector<std::string> names;
  for (const auto& [name, bytes] : before) names.push_back(name);
  EXPECT_EQ(ListDir(dir.path()), names);
}

// Once the new bundle is complete the old index goes, then files are
// renamed into place: a fault there (a rename, a directory fsync after the
// old index went) leaves no index at all, never one beside data files it does
// not describe, and no temporary file.
TEST_F(BundleOverwriteTest, FailureWhileRenamingLeavesNoIndex) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  ASSERT_TRUE(WriteFilledBundle(prefix, 1).ok());
  SetIoFaultForTesting(IoFault::kRenameIoError, 0);
  Status s = WriteFilledBundle(prefix, 2);
  SetIoFaultForTesting(IoFault::kNone, 0);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  for (const std::string& name : ListDir(dir.path())) {
    EXPECT_EQ(name.find(".tempstate"), std::string::npos) << name;
    EXPECT_NE(name, "ckpt.index");
  }
  EXPECT_EQ(BundleReader::Open(prefix).status().code(), StatusCode::kNotFound);
}

// The new files' names are made durable (a directory fsync) before the old
// index goes: when that fsync fails, the old bundle is still there, byte for
// byte, and no temporary file is left.
TEST_F(BundleOverwriteTest, FailedDirectorySyncBeforeTheOldIndexGoesKeepsIt) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  ASSERT_TRUE(WriteFilledBundle(prefix, 1).ok());
  const std::map<std::string, std::string> before = DirContents(dir.path());
  SetIoFaultForTesting(IoFault::kDirSyncIoError, 0);
  Status s = WriteFilledBundle(prefix, 2);
  SetIoFaultForTesting(IoFault::kNone, 0);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(DirContents(dir.path()) == before);
  ExpectFilledBundle(prefix, 1);
}

// An overwrite whose data files all take new names (another number of
// shards) replaces the old index in one rename: a failure before that keeps
// the old bundle whole, and nothing of the new one is left.
TEST_F(BundleOverwriteTest, AnotherShardCountReplacesTheIndexInOneRename) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  {
    auto writer = BundleWriter::Open(prefix, {1});
    ASSERT_TRUE(writer.ok());
    const std::vector<int32_t> big(4096, 1);
    ASSERT_TRUE((*writer)
                    ->Add("big", DataType::kInt32, {{4096}}, big.data(),
                          big.size() * sizeof(int32_t))
                    .ok());
    ASSERT_TRUE((*writer)->AddString("label", {{}}, {"fill 1"}, 0).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  const std::map<std::string, std::string> before = DirContents(dir.path());
  for (IoFault fault : {IoFault::kRenameIoError, IoFault::kDirSyncIoError}) {
    SCOPED_TRACE("fault " + std::to_string(static_cast<int>(fault)));
    SetIoFaultForTesting(fault, 0);
    Status s = WriteFilledBundle(prefix, 2);
    SetIoFaultForTesting(IoFault::kNone, 0);
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_TRUE(DirContents(dir.path()) == before);
    ExpectFilledBundle(prefix, 1);
  }
  ASSERT_TRUE(WriteFilledBundle(prefix, 2).ok());
  ExpectFilledBundle(prefix, 2);
}

// A writer whose Finish() failed has deleted its files already: dropping it
// later must not delete the files of a bundle written since at the same
// prefix (a retried save).
TEST_F(BundleOverwriteTest, DroppingAFailedWriterSparesALaterBundle) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  auto failed = BundleWriter::Open(prefix, {2});  // the same file names
  ASSERT_TRUE(failed.ok());
  const int32_t x = 1;
  ASSERT_TRUE((*failed)->Add("x", DataType::kInt32, {{}}, &x, 4, 1).ok());
  // The directory fsync after the data files' renames fails: they are in
  // place, the index not yet.
  SetIoFaultForTesting(IoFault::kDirSyncIoError, 0);
  EXPECT_EQ((*failed)->Finish().code(), StatusCode::kUnavailable);
  SetIoFaultForTesting(IoFault::kNone, 0);
  EXPECT_TRUE(ListDir(dir.path()).empty());

  ASSERT_TRUE(WriteFilledBundle(prefix, 3).ok());
  failed->reset();
  ExpectFilledBundle(prefix, 3);
}

}  // namespace
}  // namespace trackpoint
