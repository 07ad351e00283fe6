#include "bundle/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "bundle/slice_key.h"
#include "proto/bundle_proto.h"
#include "table/table_builder.h"
#include "test_util.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_writer.h"
#include "util/file.h"
#include "util/fault_injection.h"

namespace trackpoint {
namespace {

using testing::ScratchDir;

using testing::Contains;

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<float> Iota(size_t n, float first) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

TensorSlice Rows(int64_t start, int64_t length) {
  return TensorSlice{{{start, length}, {0, SliceExtent::kFullExtent}}};
}

// Rows [start, start + length) of the [6, 2] tensor 0, 1, ..., 11.
std::vector<float> RowsOf(int64_t start, int64_t length) {
  return Iota(static_cast<size_t>(length * 2), static_cast<float>(start * 2));
}

void AddRows(BundleWriter& w, const std::string& key, int64_t start,
             int64_t length) {
  std::vector<float> rows = RowsOf(start, length);
  ASSERT_TRUE(w.AddSlice(key, {{6, 2}}, Rows(start, length), DataType::kFloat,
                         rows.data(), rows.size() * 4)
                  .ok());
}

std::vector<float> ReadFloats(const BundleReader& r, const std::string& key,
                              size_t n) {
  std::vector<float> out(n);
  Status s = r.ReadTensor(key, out.data(), n * 4);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// Two parts as two processes would write them: each its own tensors and its
// rows of the partitioned "emb" [6, 2].
void WriteTwoParts(const ScratchDir& dir) {
  auto w0 = BundleWriter::Open(dir.Join("ckpt_temp/part-00000-of-00002"));
  ASSERT_TRUE(w0.ok());
  const float a[3] = {1, 2, 3};
  ASSERT_TRUE((*w0)->Add("a", DataType::kFloat, {{3}}, a, 12).ok());
  AddRows(**w0, "emb", 0, 4);
  ASSERT_TRUE((*w0)->Finish().ok());

  auto w1 = BundleWriter::Open(dir.Join("ckpt_temp/part-00001-of-00002"));
  ASSERT_TRUE(w1.ok());
  const int64_t b = 7;
  ASSERT_TRUE((*w1)->Add("b", DataType::kInt64, {{}}, &b, 8).ok());
  AddRows(**w1, "emb", 4, 2);
  ASSERT_TRUE((*w1)->AddString("s", {{1}}, {"hi"}).ok());
  ASSERT_TRUE((*w1)->Finish().ok());
}

std::vector<std::string> TwoParts(const ScratchDir& dir) {
  return {dir.Join("ckpt_temp/part-00000-of-00002"),
          dir.Join("ckpt_temp/part-00001-of-00002")};
}

TEST(MergeTest, MovesDataFilesAndWritesOneIndex) {
  ScratchDir dir;
  WriteTwoParts(dir);
  ASSERT_TRUE(MergeBundles(TwoParts(dir), dir.Join("ckpt")).ok());

  EXPECT_EQ(Listing(dir.path()),
            (std::vector<std::string>{"ckpt.data-00000-of-00002",
                                      "ckpt.data-00001-of-00002", "ckpt.index",
                                      "ckpt_temp"}));
  EXPECT_TRUE(Listing(dir.Join("ckpt_temp")).empty());
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->header().num_shards, 2);
  EXPECT_EQ((*r)->Keys(), (std::vector<std::string>{"a", "b", "emb", "s"}));
  EXPECT_EQ(ReadFloats(**r, "a", 3), (std::vector<float>{1, 2, 3}));
  int64_t b = 0;
  ASSERT_TRUE((*r)->ReadTensor("b", &b, 8).ok());
  EXPECT_EQ(b, 7);
  EXPECT_EQ(ReadFloats(**r, "emb", 12), Iota(12, 0));
  auto s = (*r)->ReadStringTensor("s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<std::string>{"hi"}));

  // The parts' entries point at their renamed data files; the full entry of
  // "emb" lists both parts' slices, in part order.
  EXPECT_EQ((*r)->Find("a")->shard_id, 0);
  EXPECT_EQ((*r)->Find("b")->shard_id, 1);
  EXPECT_EQ((*r)->Find("emb")->slices,
            (std::vector<TensorSlice>{Rows(0, 4), Rows(4, 2)}));
  EXPECT_EQ((*r)->Find(EncodeTensorNameSlice("emb", Rows(4, 2)))->shard_id, 1);
}

TEST(MergeTest, SingleWriterAndMergeAgreeOnTheIndexOfOnePart) {
  // Merging one part reproduces the part's own index (TensorFlow always
  // writes through a merge, even with one part).
  ScratchDir dir;
  auto w = BundleWriter::Open(dir.Join("part"));
  ASSERT_TRUE(w.ok());
  const float a[3] = {1, 2, 3};
  ASSERT_TRUE((*w)->Add("a", DataType::kFloat, {{3}}, a, 12).ok());
  AddRows(**w, "emb", 0, 3);
  AddRows(**w, "emb", 3, 3);
  ASSERT_TRUE((*w)->Finish().ok());
  const std::string part_index = testing::ReadFileOrDie(dir.Join("part.index"));
  const std::string part_data =
      testing::ReadFileOrDie(dir.Join("part.data-00000-of-00001"));

  ASSERT_TRUE(MergeBundles({dir.Join("part")}, dir.Join("out")).ok());
  EXPECT_EQ(testing::ReadFileOrDie(dir.Join("out.index")), part_index);
  EXPECT_EQ(testing::ReadFileOrDie(dir.Join("out.data-00000-of-00001")),
            part_data);
  EXPECT_FALSE(FileExists(dir.Join("part.index")));
}

TEST(MergeTest, NumbersDataFilesInFirstSeenOrder) {
  // Part 0 has two data files; its key order decides their numbers, and
  // part 1's file comes after them.
  ScratchDir dir;
  BundleWriterOptions two;
  two.num_shards = 2;
  auto w0 = BundleWriter::Open(dir.Join("p0"), two);
  ASSERT_TRUE(w0.ok());
  const float x = 1;
  ASSERT_TRUE((*w0)->Add("k1", DataType::kFloat, {{}}, &x, 4, 1).ok());
  ASSERT_TRUE((*w0)->Add("k2", DataType::kFloat, {{}}, &x, 4, 0).ok());
  ASSERT_TRUE((*w0)->Finish().ok());
  auto w1 = BundleWriter::Open(dir.Join("p1"));
  ASSERT_TRUE(w1.ok());
  ASSERT_TRUE((*w1)->Add("k0", DataType::kFloat, {{}}, &x, 4).ok());
  ASSERT_TRUE((*w1)->Finish().ok());

  ASSERT_TRUE(
      MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("m")).ok());
  auto r = BundleReader::Open(dir.Join("m"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->header().num_shards, 3);
  EXPECT_EQ((*r)->Find("k1")->shard_id, 0);  // p0.data-00001-of-00002
  EXPECT_EQ((*r)->Find("k2")->shard_id, 1);  // p0.data-00000-of-00002
  EXPECT_EQ((*r)->Find("k0")->shard_id, 2);  // p1.data-00000-of-00001
  for (const char* key : {"k0", "k1", "k2"}) {
    float v = 0;
    ASSERT_TRUE((*r)->ReadTensor(key, &v, 4).ok()) << key;
    EXPECT_EQ(v, 1);
  }
}

TEST(MergeTest, UnusedDataFilesAreNotCountedAndAreDeleted) {
  ScratchDir dir;
  auto w0 = BundleWriter::Open(dir.Join("p0"));
  ASSERT_TRUE(w0.ok());
  ASSERT_TRUE((*w0)->Finish().ok());  // a process with nothing to write
  auto w1 = BundleWriter::Open(dir.Join("p1"));
  ASSERT_TRUE(w1.ok());
  const float x = 5;
  ASSERT_TRUE((*w1)->Add("x", DataType::kFloat, {{}}, &x, 4).ok());
  ASSERT_TRUE((*w1)->Finish().ok());

  ASSERT_TRUE(
      MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("m")).ok());
  EXPECT_EQ(Listing(dir.path()),
            (std::vector<std::string>{"m.data-00000-of-00001", "m.index"}));
  auto r = BundleReader::Open(dir.Join("m"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->header().num_shards, 1);
}

TEST(MergeTest, NoEntriesAtAllStillGivesOneDataFile) {
  ScratchDir dir;
  auto w = BundleWriter::Open(dir.Join("p0"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Finish().ok());
  ASSERT_TRUE(MergeBundles({dir.Join("p0")}, dir.Join("m")).ok());
  auto r = BundleReader::Open(dir.Join("m"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->header().num_shards, 1);
  EXPECT_TRUE(FileExists(dir.Join("m.data-00000-of-00001")));
}

TEST(MergeTest, KeepsInputsWhenAsked) {
  ScratchDir dir;
  WriteTwoParts(dir);
  MergeOptions options;
  options.delete_inputs = false;
  options.sync = false;
  ASSERT_TRUE(MergeBundles(TwoParts(dir), dir.Join("ckpt"), options).ok());
  EXPECT_TRUE(FileExists(TwoParts(dir)[0] + ".index"));
  EXPECT_TRUE(FileExists(dir.Join("ckpt.index")));
}

// A checkpoint "ckpt" holding the scalar "old" = -1, for merges to replace.
void WriteOldCheckpoint(const ScratchDir& dir) {
  auto old = BundleWriter::Open(dir.Join("ckpt"));
  ASSERT_TRUE(old.ok());
  const float z = -1;
  ASSERT_TRUE((*old)->Add("old", DataType::kFloat, {{}}, &z, 4).ok());
  ASSERT_TRUE((*old)->Finish().ok());
}

TEST(MergeTest, ReplacesAnExistingCheckpoint) {
  ScratchDir dir;
  WriteOldCheckpoint(dir);
  WriteTwoParts(dir);
  ASSERT_TRUE(MergeBundles(TwoParts(dir), dir.Join("ckpt")).ok());
  auto r = BundleReader::Open(dir.Join("ckpt"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Find("old"), nullptr);
  EXPECT_EQ(ReadFloats(**r, "emb", 12), Iota(12, 0));
}

// A merge onto an existing checkpoint that fails while writing its index
// (a full disk) leaves that checkpoint readable, with its own data.
TEST(MergeTest, FailedMergeKeepsTheCheckpointItWouldReplace) {
  for (IoFault fault : {IoFault::kWriteNoSpace, IoFault::kSyncIoError}) {
    SCOPED_TRACE(static_cast<int>(fault));
    ScratchDir dir;
    WriteOldCheckpoint(dir);
    const std::string old_index = testing::ReadFileOrDie(dir.Join("ckpt.index"));
    const std::string old_data =
        testing::ReadFileOrDie(dir.Join("ckpt.data-00000-of-00001"));
    WriteTwoParts(dir);
    SetIoFaultForTesting(fault, 0);
    Status s = MergeBundles(TwoParts(dir), dir.Join("ckpt"));
    SetIoFaultForTesting(IoFault::kNone, 0);
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(Contains(s, "merging into " + dir.Join("ckpt"))) << s.ToString();

    EXPECT_EQ(testing::ReadFileOrDie(dir.Join("ckpt.index")), old_index);
    EXPECT_EQ(testing::ReadFileOrDie(dir.Join("ckpt.data-00000-of-00001")), old_data);
    auto r = BundleReader::Open(dir.Join("ckpt"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(ReadFloats(**r, "old", 1), std::vector<float>{-1});
    for (const std::string& part : TwoParts(dir)) {
      EXPECT_TRUE(FileExists(part + ".index")) << part;
      EXPECT_TRUE(FileExists(DataFilename(part, 0, 1))) << part;
    }
    for (const auto& name : Listing(dir.path())) {
      EXPECT_EQ(name.find("tempstate"), std::string::npos) << name;
    }
  }
}

// A rename that fails once the old index is gone (the merged data files
// take the old ones' names) leaves no index, no temporary file, and the
// parts as they were; when they take new names (another number of files) the
// old index is replaced in one rename, so the old checkpoint stays readable.
TEST(MergeTest, FailedRenameLeavesNoIndexAndNoTemporaryFile) {
  for (int old_shards : {2, 1}) {
    SCOPED_TRACE("old checkpoint of " + std::to_string(old_shards) + " files");
    ScratchDir dir;
    {
      auto old = BundleWriter::Open(dir.Join("ckpt"), {old_shards});
      ASSERT_TRUE(old.ok());
      const float z = -1;
      ASSERT_TRUE((*old)->Add("old", DataType::kFloat, {{}}, &z, 4).ok());
      ASSERT_TRUE((*old)->Finish().ok());
    }
    WriteTwoParts(dir);
    SetIoFaultForTesting(IoFault::kRenameIoError, 0);
    Status s = MergeBundles(TwoParts(dir), dir.Join("ckpt"));
    SetIoFaultForTesting(IoFault::kNone, 0);
    EXPECT_FALSE(s.ok());
    if (old_shards == 2) {
      EXPECT_FALSE(FileExists(dir.Join("ckpt.index")));
    } else {
      auto r = BundleReader::Open(dir.Join("ckpt"));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_NE((*r)->Find("old"), nullptr);
      EXPECT_FALSE(FileExists(DataFilename(dir.Join("ckpt"), 0, 2)));
    }
    for (const auto& name : Listing(dir.path())) {
      EXPECT_EQ(name.find("tempstate"), std::string::npos) << name;
    }
    for (const std::string& part : TwoParts(dir)) {
      EXPECT_TRUE(FileExists(part + ".index")) << part;
      EXPECT_TRUE(FileExists(DataFilename(part, 0, 1))) << part;
    }
  }
}

// A failed merge commits nothing and leaves the parts as they were.
void ExpectNothingCommitted(const ScratchDir& dir,
                            const std::vector<std::string>& parts) {
  EXPECT_FALSE(FileExists(dir.Join("ckpt.index")));
  for (const auto& name : Listing(dir.path())) {
    EXPECT_EQ(name.rfind("ckpt.", 0), std::string::npos) << name;
  }
  for (const std::string& part : parts) {
    EXPECT_TRUE(FileExists(part + ".index")) << part;
    EXPECT_TRUE(FileExists(DataFilename(part, 0, 1))) << part;
  }
}

TEST(MergeTest, DuplicateTensorIsAnError) {
  ScratchDir dir;
  const float x = 1;
  for (const char* name : {"p0", "p1"}) {
    auto w = BundleWriter::Open(dir.Join(name));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add("x", DataType::kFloat, {{}}, &x, 4).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  Status s = MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "'x' is in more than one part")) << s.ToString();
  ExpectNothingCommitted(dir, {dir.Join("p0"), dir.Join("p1")});
}

TEST(MergeTest, SameSliceTwiceIsAnError) {
  ScratchDir dir;
  for (const char* name : {"p0", "p1"}) {
    auto w = BundleWriter::Open(dir.Join(name));
    ASSERT_TRUE(w.ok());
    AddRows(**w, "emb", 0, 3);
    ASSERT_TRUE((*w)->Finish().ok());
  }
  Status s = MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "slice 0,3:- of 'emb'")) << s.ToString();
}

TEST(MergeTest, PartitionedAndWholeTensorIsAnError) {
  ScratchDir dir;
  auto w0 = BundleWriter::Open(dir.Join("p0"));
  ASSERT_TRUE(w0.ok());
  AddRows(**w0, "emb", 0, 3);
  ASSERT_TRUE((*w0)->Finish().ok());
  auto w1 = BundleWriter::Open(dir.Join("p1"));
  ASSERT_TRUE(w1.ok());
  std::vector<float> all = Iota(12, 0);
  ASSERT_TRUE(
      (*w1)->Add("emb", DataType::kFloat, {{6, 2}}, all.data(), 48).ok());
  ASSERT_TRUE((*w1)->Finish().ok());
  Status s = MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "'emb' is in more than one part")) << s.ToString();
}

TEST(MergeTest, PartitionedTensorsMustAgreeOnDtypeAndShape) {
  ScratchDir dir;
  auto w0 = BundleWriter::Open(dir.Join("p0"));
  ASSERT_TRUE(w0.ok());
  AddRows(**w0, "emb", 0, 3);
  ASSERT_TRUE((*w0)->Finish().ok());
  auto w1 = BundleWriter::Open(dir.Join("p1"));
  ASSERT_TRUE(w1.ok());
  std::vector<float> rows(6);
  ASSERT_TRUE((*w1)
                  ->AddSlice("emb", {{7, 2}}, Rows(3, 3), DataType::kFloat,
                             rows.data(), 24)
                  .ok());
  ASSERT_TRUE((*w1)->Finish().ok());
  Status s = MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "float32[6,2] in an earlier part but float32[7,2]"))
      << s.ToString();
}

TEST(MergeTest, SlicesMustTileTheirTensor) {
  ScratchDir dir;
  {
    auto w0 = BundleWriter::Open(dir.Join("p0"));
    ASSERT_TRUE(w0.ok());
    AddRows(**w0, "emb", 0, 3);
    ASSERT_TRUE((*w0)->Finish().ok());
    auto w1 = BundleWriter::Open(dir.Join("p1"));
    ASSERT_TRUE(w1.ok());
    AddRows(**w1, "emb", 4, 2);  // row 3 is nowhere
    ASSERT_TRUE((*w1)->Finish().ok());
  }
  Status s = MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "cover 10 of its 12 elements")) << s.ToString();
  ExpectNothingCommitted(dir, {dir.Join("p0"), dir.Join("p1")});

  // Without the check the merge goes through (as TensorFlow's would).
  MergeOptions lenient;
  lenient.check_slices = false;
  EXPECT_TRUE(
      MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"), lenient)
          .ok());
}

TEST(MergeTest, OverlappingSlicesAreAnError) {
  ScratchDir dir;
  auto w0 = BundleWriter::Open(dir.Join("p0"));
  ASSERT_TRUE(w0.ok());
  AddRows(**w0, "emb", 0, 4);
  ASSERT_TRUE((*w0)->Finish().ok());
  auto w1 = BundleWriter::Open(dir.Join("p1"));
  ASSERT_TRUE(w1.ok());
  AddRows(**w1, "emb", 3, 3);
  ASSERT_TRUE((*w1)->Finish().ok());
  Status s = MergeBundles({dir.Join("p0"), dir.Join("p1")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "slices 0,4:- and 3,3:- of 'emb' overlap"))
      << s.ToString();
}

TEST(MergeTest, BadArguments) {
  ScratchDir dir;
  EXPECT_EQ(MergeBundles({}, dir.Join("ckpt")).code(),
            StatusCode::kInvalidArgument);
  WriteTwoParts(dir);
  EXPECT_EQ(MergeBundles({TwoParts(dir)[0]}, TwoParts(dir)[0]).code(),
            StatusCode::kInvalidArgument);
  Status s =
      MergeBundles({TwoParts(dir)[0], dir.Join("missing")}, dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s, "missing.index")) << s.ToString();
  ExpectNothingCommitted(dir, TwoParts(dir));
}

TEST(MergeTest, PartsMustShareByteOrderAndVersion) {
  ScratchDir dir;
  WriteTwoParts(dir);
  // Rewrite part 1's header by hand: same entries, another version.
  const std::string part1 = TwoParts(dir)[1];
  auto r = BundleReader::Open(part1);
  ASSERT_TRUE(r.ok());
  auto file = NewWritableFile(part1 + ".index");
  ASSERT_TRUE(file.ok());
  BundleHeader header = (*r)->header();
  header.version.min_consumer = 1;
  {
    table::TableBuilder builder(file->get());
    ASSERT_TRUE(builder.Add("", SerializeBundleHeader(header)).ok());
    std::vector<std::pair<std::string, BundleEntry>> entries;
    for (const std::string& key : (*r)->Keys()) {
      const BundleEntry* e = (*r)->Find(key);
      for (const TensorSlice& slice : e->slices) {
        std::string k = EncodeTensorNameSlice(key, slice);
        entries.emplace_back(k, *(*r)->Find(k));
      }
      entries.emplace_back(key, *e);
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [k, e] : entries) {
      ASSERT_TRUE(builder.Add(k, SerializeBundleEntry(e)).ok());
    }
    ASSERT_TRUE(builder.Finish().ok());
  }
  ASSERT_TRUE((*file)->Close().ok());
  Status s = MergeBundles(TwoParts(dir), dir.Join("ckpt"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s, "bundle versions differ")) << s.ToString();
}

}  // namespace
}  // namespace trackpoint
