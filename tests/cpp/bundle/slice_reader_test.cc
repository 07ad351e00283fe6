#include "bundle/slice_reader.h"

#include <gtest/gtest.h>

#include <numeric>

#include "bundle/slice_copy.h"
#include "bundle/slice_key.h"
#include "proto/bundle_proto.h"
#include "table/table_builder.h"
#include "test_util.h"
#include "trackpoint/bundle_writer.h"
#include "util/file.h"

namespace trackpoint {
namespace {

using testing::ReadFileOrDie;
using testing::ScratchDir;
using testing::WriteFileOrDie;

constexpr int64_t kFull = SliceExtent::kFullExtent;

using testing::Contains;

int64_t NumElements(const TensorShape& shape) {
  int64_t n = 1;
  for (int64_t d : shape.dims) n *= d;
  return n;
}

// The tensor 0, 1, 2, ... of the given shape.
std::vector<int32_t> Iota(const TensorShape& shape) {
  std::vector<int32_t> v(static_cast<size_t>(NumElements(shape)));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Writes "t" (the Iota tensor of shape) to prefix, stored as the given
// slices, or whole when there are none.
void WriteTensor(const std::string& prefix, const TensorShape& shape,
                 const std::vector<TensorSlice>& slices) {
  auto w = BundleWriter::Open(prefix);
  ASSERT_TRUE(w.ok());
  const std::vector<int32_t> full = Iota(shape);
  if (slices.empty()) {
    ASSERT_TRUE(
        (*w)->Add("t", DataType::kInt32, shape, full.data(), full.size() * 4)
            .ok());
  }
  for (const TensorSlice& slice : slices) {
    std::vector<int32_t> part(
        static_cast<size_t>(NumElements(SliceShape(slice, shape))));
    CopySliceOutOfFull(reinterpret_cast<const char*>(full.data()), slice, shape,
                       4, reinterpret_cast<char*>(part.data()));
    Status s = (*w)->AddSlice("t", shape, slice, DataType::kInt32, part.data(),
                              part.size() * 4);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE((*w)->Finish().ok());
}

std::vector<int32_t> Expected(const TensorShape& shape,
                              const TensorSlice& region) {
  const std::vector<int32_t> full = Iota(shape);
  std::vector<int32_t> out(
      static_cast<size_t>(NumElements(SliceShape(region, shape))));
  CopySliceOutOfFull(reinterpret_cast<const char*>(full.data()), region, shape,
                     4, reinterpret_cast<char*>(out.data()));
  return out;
}

// Every box [a, b) x [c, d) x ... of shape, as explicit extents.
std::vector<TensorSlice> AllRegions(const TensorShape& shape) {
  std::vector<TensorSlice> out = {TensorSlice{}};
  for (int64_t dim : shape.dims) {
    std::vector<TensorSlice> next;
    for (const TensorSlice& prefix : out) {
      for (int64_t start = 0; start < dim; ++start) {
        for (int64_t length = 1; start + length <= dim; ++length) {
          TensorSlice s = prefix;
          s.extents.push_back({start, length});
          next.push_back(s);
        }
      }
    }
    out = std::move(next);
  }
  return out;
}

void ExpectEveryRegionReads(const TensorShape& shape,
                            const std::vector<TensorSlice>& stored) {
  ScratchDir dir;
  WriteTensor(dir.Join("ckpt"), shape, stored);
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok());
  std::vector<TensorSlice> regions = AllRegions(shape);
  TensorSlice whole;
  for (size_t d = 0; d < shape.dims.size(); ++d)
    whole.extents.push_back({0, kFull});
  regions.push_back(whole);
  for (const TensorSlice& region : regions) {
    std::vector<int32_t> want = Expected(shape, region);
    std::vector<int32_t> got(want.size(), -1);
    Status s = ReadRegion(**r, "t", region, got.data(), got.size() * 4);
    ASSERT_TRUE(s.ok()) << SliceSpecString(region) << ": " << s.ToString();
    ASSERT_EQ(got, want) << SliceSpecString(region);
  }
}

TensorSlice Spec(const std::string& spec) {
  auto s = ParseSliceSpec(spec);
  EXPECT_TRUE(s.ok()) << spec;
  return *s;
}

TEST(SliceReaderTest, WholeTensor) { ExpectEveryRegionReads({{5, 4}}, {}); }

TEST(SliceReaderTest, RowSlices) {
  ExpectEveryRegionReads({{5, 4}},
                         {Spec("0,2:-"), Spec("2,1:-"), Spec("3,2:-")});
}

TEST(SliceReaderTest, ColumnSlicesSpelledOut) {
  // As TF1 partitioners write them: full dimensions spelled start 0, length D.
  ExpectEveryRegionReads({{5, 4}}, {Spec("0,5:0,1"), Spec("0,5:1,3")});
}

TEST(SliceReaderTest, Blocks) {
  ExpectEveryRegionReads({{5, 4}}, {Spec("0,3:0,2"), Spec("0,3:2,2"),
                                    Spec("3,2:0,3"), Spec("3,2:3,1")});
}

TEST(SliceReaderTest, ThreeDimensions) {
  ExpectEveryRegionReads(
      {{3, 4, 2}}, {Spec("0,1:-:-"), Spec("1,2:0,3:-"), Spec("1,2:3,1:0,1"),
                    Spec("1,2:3,1:1,1")});
}

TEST(SliceReaderTest, OneDimension) {
  ExpectEveryRegionReads({{7}}, {Spec("0,3"), Spec("3,4")});
}

TEST(SliceReaderTest, ScalarAndEmptyRegion) {
  ScratchDir dir;
  WriteTensor(dir.Join("s"), {{}}, {});
  auto r = BundleReader::Open(dir.Join("s"));
  ASSERT_TRUE(r.ok());
  int32_t v = -1;
  ASSERT_TRUE(ReadRegion(**r, "t", TensorSlice{}, &v, 4).ok());
  EXPECT_EQ(v, 0);

  WriteTensor(dir.Join("m"), {{4, 2}}, {Spec("0,2:-"), Spec("2,2:-")});
  auto m = BundleReader::Open(dir.Join("m"));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(ReadRegion(**m, "t", Spec("1,0:-"), nullptr, 0).ok());
}

TEST(SliceReaderTest, ReadsOnlyTheSlicesItNeeds) {
  // Corrupt the stored slice of rows [2, 5): regions that avoid it still
  // read, those that touch it report the checksum mismatch.
  ScratchDir dir;
  WriteTensor(dir.Join("ckpt"), {{5, 4}}, {Spec("0,2:-"), Spec("2,3:-")});
  {
    auto r = BundleReader::Open(dir.Join("ckpt"));
    ASSERT_TRUE(r.ok());
    const BundleEntry* bad =
        (*r)->Find(EncodeTensorNameSlice("t", Spec("2,3:-")));
    ASSERT_NE(bad, nullptr);
    const std::string data_name = DataFilename(dir.Join("ckpt"), 0, 1);
    std::string data = ReadFileOrDie(data_name);
    data[static_cast<size_t>(bad->offset) + 5] ^= 0x10;
    WriteFileOrDie(data_name, data);
  }
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> rows(8);
  ASSERT_TRUE(ReadRegion(**r, "t", Spec("0,2:-"), rows.data(), 32).ok());
  EXPECT_EQ(rows, Expected({{5, 4}}, Spec("0,2:-")));
  Status s = ReadRegion(**r, "t", Spec("1,2:-"), rows.data(), 32);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "checksum mismatch")) << s.ToString();
}

TEST(SliceReaderTest, UncoveredRegionIsDataLoss) {
  ScratchDir dir;
  WriteTensor(dir.Join("ckpt"), {{5, 4}}, {Spec("0,2:-"), Spec("3,2:-")});
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> rows(20);
  EXPECT_TRUE(ReadRegion(**r, "t", Spec("3,2:-"), rows.data(), 32).ok());
  Status s = ReadRegion(**r, "t", Spec("1,3:-"), rows.data(), 48);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "cover 8 of the 12 elements of region 1,3:-"))
      << s.ToString();
}

TEST(SliceReaderTest, OverlappingSlicesAreDataLoss) {
  ScratchDir dir;
  WriteTensor(dir.Join("ckpt"), {{5, 4}}, {Spec("0,3:-"), Spec("2,3:-")});
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> rows(20);
  EXPECT_TRUE(ReadRegion(**r, "t", Spec("0,2:-"), rows.data(), 32).ok());
  Status s = ReadRegion(**r, "t", Spec("1,3:-"), rows.data(), 48);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "overlaps")) << s.ToString();
}

TEST(SliceReaderTest, ListedButMissingSliceIsDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  auto file = NewWritableFile(prefix + ".index");
  ASSERT_TRUE(file.ok());
  {
    table::TableBuilder builder(file->get());
    BundleHeader header;
    header.num_shards = 1;
    header.version.producer = 1;
    ASSERT_TRUE(builder.Add("", SerializeBundleHeader(header)).ok());
    BundleEntry full;
    full.dtype = DataType::kInt32;
    full.shape = {{5, 4}};
    full.slices = {Spec("0,5:-")};
    ASSERT_TRUE(builder.Add("t", SerializeBundleEntry(full)).ok());
    ASSERT_TRUE(builder.Finish().ok());
  }
  ASSERT_TRUE((*file)->Close().ok());
  auto r = BundleReader::Open(prefix);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<int32_t> rows(4);
  Status s = ReadRegion(**r, "t", Spec("1,1:-"), rows.data(), 16);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "listed but not stored")) << s.ToString();
}

TEST(SliceReaderTest, BadArguments) {
  ScratchDir dir;
  WriteTensor(dir.Join("ckpt"), {{5, 4}}, {Spec("0,2:-"), Spec("2,3:-")});
  {
    auto w = BundleWriter::Open(dir.Join("str"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AddString("s", {{2}}, {"a", "b"}).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok());
  std::vector<int32_t> buf(20);
  EXPECT_EQ(ReadRegion(**r, "nope", Spec("0,1:-"), buf.data(), 16).code(),
            StatusCode::kNotFound);
  Status s = ReadRegion(**r, "t", Spec("0,1:-"), buf.data(), 12);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "buffer of 12 bytes")) << s.ToString();
  EXPECT_EQ(ReadRegion(**r, "t", Spec("4,2:-"), buf.data(), 32).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadRegion(**r, "t", Spec("0,1"), buf.data(), 16).code(),
            StatusCode::kInvalidArgument);
  auto str = BundleReader::Open(dir.Join("str"));
  ASSERT_TRUE(str.ok());
  s = ReadRegion(**str, "s", Spec("0,1"), buf.data(), 8);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s, "only fixed-size dtypes")) << s.ToString();
}

}  // namespace
}  // namespace trackpoint
