#include "trackpoint/checkpoint_reader.h"

#include <gtest/gtest.h>

#include <complex>
#include <cstring>
#include <filesystem>
#include <thread>

#include "test_util.h"
#include "trackpoint/bundle_writer.h"

namespace trackpoint {
namespace {

using testing::FixturePath;
using testing::ReadFileOrDie;
using testing::ScratchDir;
using testing::WriteFileOrDie;

using testing::Contains;

// Copies every file of a fixture checkpoint into dir, under the same names.
void CopyFixture(const std::string& fixture_dir, const std::string& dir) {
  for (const auto& entry :
       std::filesystem::directory_iterator(FixturePath(fixture_dir))) {
    std::filesystem::copy_file(entry.path(),
                               dir + "/" + entry.path().filename().string());
  }
}

// Flips one bit of a file in place.
void FlipBit(const std::string& path, size_t offset) {
  std::string bytes = ReadFileOrDie(path);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] ^= 0x10;
  WriteFileOrDie(path, bytes);
}

TEST(CheckpointReaderTest, ReadsWorkedExample) {
  auto reader = CheckpointReader::Open(FixturePath("worked_example/tv"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->prefix(), FixturePath("worked_example/tv"));
  EXPECT_EQ((*reader)->Keys(),
            (std::vector<std::string>{"_CHECKPOINTABLE_OBJECT_GRAPH",
                                      "s/.ATTRIBUTES/VARIABLE_VALUE",
                                      "v/.ATTRIBUTES/VARIABLE_VALUE"}));
  EXPECT_TRUE((*reader)->HasTensor("v/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_FALSE((*reader)->HasTensor("v"));

  auto info = (*reader)->GetTensorInfo("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->dtype, DataType::kFloat);
  EXPECT_EQ(info->shape.dims, (std::vector<int64_t>{2}));
  EXPECT_EQ(info->num_elements, 2);
  EXPECT_EQ(info->nbytes, 8u);
  EXPECT_FALSE(info->partitioned);

  float v[2] = {0, 0};
  ASSERT_TRUE(
      (*reader)->ReadTensor("v/.ATTRIBUTES/VARIABLE_VALUE", v, sizeof(v)).ok());
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);

  auto vec = (*reader)->ReadVector<float>("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(vec.ok());
  EXPECT_EQ(*vec, (std::vector<float>{1.0f, 2.0f}));

  auto strings = (*reader)->ReadStringTensor("s/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ(*strings, (std::vector<std::string>{"hi", ""}));
  auto s_info = (*reader)->GetTensorInfo("s/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(s_info.ok());
  EXPECT_EQ(s_info->dtype, DataType::kString);
  EXPECT_EQ(s_info->nbytes, 0u);
}

TEST(CheckpointReaderTest, MissingCheckpointIsNotFound) {
  ScratchDir dir;
  auto reader = CheckpointReader::Open(dir.Join("nope"));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CheckpointReader::Open("").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CheckpointReaderTest, AcceptsIndexFilePath) {
  auto reader = CheckpointReader::Open(FixturePath("worked_example/tv.index"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->prefix(), FixturePath("worked_example/tv"));
}

TEST(CheckpointReaderTest, MissingKeyErrors) {
  auto reader = CheckpointReader::Open(FixturePath("worked_example/tv"));
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->GetTensorInfo("nope").status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(Contains((*reader)->GetTensorInfo("nope").status(), "nope"));
  float v[2];
  EXPECT_EQ((*reader)->ReadTensor("nope", v, sizeof(v)).code(),
            StatusCode::kNotFound);
  EXPECT_EQ((*reader)->MapTensor("nope").status().code(),
            StatusCode::kNotFound);
}

TEST(CheckpointReaderTest, WrongBufferOrTypeIsInvalidArgument) {
  auto reader = CheckpointReader::Open(FixturePath("worked_example/tv"));
  ASSERT_TRUE(reader.ok());
  float v[3];
  EXPECT_EQ((*reader)
                ->ReadTensor("v/.ATTRIBUTES/VARIABLE_VALUE", v, sizeof(v))
                .code(),
            StatusCode::kInvalidArgument);
  auto as_double =
      (*reader)->ReadVector<double>("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_FALSE(as_double.ok());
  EXPECT_EQ(as_double.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(as_double.status(), "float32"));
  EXPECT_TRUE(Contains(as_double.status(), "float64"));
  auto strings = (*reader)->MapTensor("s/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(strings.status().code(), StatusCode::kInvalidArgument);
}

TEST(CheckpointReaderTest, MapsTensorsInPlace) {
  auto reader = CheckpointReader::Open(FixturePath("worked_example/tv"));
  ASSERT_TRUE(reader.ok());
  auto view = (*reader)->MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->dtype(), DataType::kFloat);
  EXPECT_EQ(view->shape().dims, (std::vector<int64_t>{2}));
  EXPECT_EQ(view->num_elements(), 2);
  ASSERT_EQ(view->size(), 8u);
  float v[2];
  std::memcpy(v, view->data(), sizeof(v));
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);
  // The wrong element type gives no pointer.
  EXPECT_EQ(view->data_as<int32_t>(), nullptr);
  if (view->IsAlignedTo(alignof(float))) {
    ASSERT_NE(view->data_as<float>(), nullptr);
    EXPECT_EQ(view->data_as<float>()[1], 2.0f);
  }
}

TEST(CheckpointReaderTest, MappedViewOutlivesReader) {
  MappedTensor view;
  {
    auto reader = CheckpointReader::Open(FixturePath("worked_example/tv"));
    ASSERT_TRUE(reader.ok());
    auto mapped = (*reader)->MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE");
    ASSERT_TRUE(mapped.ok());
    view = std::move(mapped).value();
  }
  float v[2];
  std::memcpy(v, view.data(), sizeof(v));
  EXPECT_EQ(v[1], 2.0f);
}

TEST(CheckpointReaderTest, MapsAlignedBundleWithTypedPointer) {
  ScratchDir dir;
  const std::string prefix = dir.Join("aligned");
  BundleWriterOptions options;
  options.data_alignment = 64;
  auto writer = BundleWriter::Open(prefix, options);
  ASSERT_TRUE(writer.ok());
  const uint8_t odd[3] = {1, 2, 3};
  const double d[3] = {0.5, -1.5, 2.25};
  const std::complex<float> c[1] = {{1.0f, -2.0f}};
  ASSERT_TRUE((*writer)->Add("a_odd", DataType::kUint8, {{3}}, odd, 3).ok());
  ASSERT_TRUE((*writer)->Add("b_double", DataType::kDouble, {{3}}, d, 24).ok());
  ASSERT_TRUE(
      (*writer)->Add("c_complex", DataType::kComplex64, {{1}}, c, 8).ok());
  ASSERT_TRUE((*writer)->Finish().ok());

  auto reader = CheckpointReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  auto view = (*reader)->MapTensor("b_double");
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->IsAlignedTo(64));
  const double* p = view->data_as<double>();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 0.5);
  EXPECT_EQ(p[2], 2.25);
  auto complex_view = (*reader)->MapTensor("c_complex");
  ASSERT_TRUE(complex_view.ok());
  ASSERT_NE(complex_view->data_as<std::complex<float>>(), nullptr);
  EXPECT_EQ(complex_view->data_as<std::complex<float>>()[0],
            std::complex<float>(1.0f, -2.0f));
  auto bytes = (*reader)->ReadVector<uint8_t>("a_odd");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(CheckpointReaderTest, ConcurrentMapsShareOneMapping) {
  auto reader = CheckpointReader::Open(FixturePath("byte_identity/bundle"));
  ASSERT_TRUE(reader.ok());
  std::vector<std::thread> threads;
  std::vector<const void*> data(8, nullptr);
  for (size_t i = 0; i < data.size(); ++i) {
    threads.emplace_back([&, i] {
      auto view = (*reader)->MapTensor("weights");
      if (view.ok()) data[i] = view->data();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const void* p : data) {
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p, data[0]);
  }
}

TEST(CheckpointReaderTest, PartitionedTensorIsReadButNotMapped) {
  auto reader =
      CheckpointReader::Open(FixturePath("tf1_partitioned/model.ckpt-7"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto info = (*reader)->GetTensorInfo("emb");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->partitioned);
  EXPECT_EQ(info->shape.dims, (std::vector<int64_t>{10, 4}));
  auto emb = (*reader)->ReadVector<float>("emb");
  ASSERT_TRUE(emb.ok()) << emb.status().ToString();
  ASSERT_EQ(emb->size(), 40u);
  EXPECT_EQ((*emb)[0], -1.0f);
  EXPECT_EQ((*emb)[39], 18.5f);
  EXPECT_EQ((*reader)->MapTensor("emb").status().code(),
            StatusCode::kUnimplemented);
  // A name-based checkpoint has no object graph.
  EXPECT_FALSE((*reader)->HasObjectGraph());
  EXPECT_EQ((*reader)->ObjectGraph().status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*reader)->ObjectKey("emb").status().code(), StatusCode::kNotFound);
}

TEST(CheckpointReaderTest, CorruptPayloadFailsMapWithVerification) {
  ScratchDir dir;
  CopyFixture("worked_example", dir.path());
  const std::string prefix = dir.Join("tv");
  auto clean = CheckpointReader::Open(prefix);
  ASSERT_TRUE(clean.ok());
  auto info = (*clean)->bundle().Lookup("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(info.ok());
  const size_t offset = static_cast<size_t>((*info)->offset);
  clean->reset();

  FlipBit(prefix + ".data-00000-of-00001", offset + 1);
  auto reader = CheckpointReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  auto verified = (*reader)->MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(verified.status(), "checksum mismatch"));
  EXPECT_TRUE(Contains(verified.status(), "v/.ATTRIBUTES/VARIABLE_VALUE"));
  MapOptions unverified;
  unverified.verify_checksum = false;
  EXPECT_TRUE(
      (*reader)->MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE", unverified).ok());
  float v[2];
  EXPECT_EQ((*reader)
                ->ReadTensor("v/.ATTRIBUTES/VARIABLE_VALUE", v, sizeof(v))
                .code(),
            StatusCode::kDataLoss);
}

TEST(CheckpointReaderTest, TruncatedDataFileIsDataLoss) {
  ScratchDir dir;
  CopyFixture("worked_example", dir.path());
  const std::string data = dir.Join("tv.data-00000-of-00001");
  std::filesystem::resize_file(data, 2);
  auto reader = CheckpointReader::Open(dir.Join("tv"));
  ASSERT_TRUE(reader.ok());
  MapOptions unverified;
  unverified.verify_checksum = false;
  auto view = (*reader)->MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE", unverified);
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(view.status(), "past the end"));
}

TEST(CheckpointReaderTest, MissingDataFileIsNotFound) {
  ScratchDir dir;
  CopyFixture("worked_example", dir.path());
  std::filesystem::remove(dir.Join("tv.data-00000-of-00001"));
  auto reader = CheckpointReader::Open(dir.Join("tv"));
  ASSERT_TRUE(reader.ok());
  auto view = (*reader)->MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(view.status(), "tv.data-00000-of-00001"));
}

TEST(CheckpointReaderTest, OpensLatestCheckpointOfDirectory) {
  auto reader = CheckpointReader::Open(FixturePath("manager"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->prefix(), FixturePath("manager") + "/ckpt-5");
  auto latest = LatestCheckpoint(FixturePath("objects/saved"));
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(*latest, FixturePath("objects/saved") + "/saved-2");
}

TEST(CheckpointReaderTest, DirectoryWithoutStateFileIsNotFound) {
  ScratchDir dir;
  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(reader.status(), "checkpoint"));
}

TEST(CheckpointReaderTest, StateFileNamingMissingCheckpointIsNotFound) {
  ScratchDir dir;
  WriteFileOrDie(dir.Join("checkpoint"), "model_checkpoint_path: \"gone\"\n");
  auto latest = LatestCheckpoint(dir.path());
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(latest.status(), "gone.index"));
}

TEST(CheckpointReaderTest, StateFileWithAbsolutePath) {
  ScratchDir dir;
  const std::string prefix = FixturePath("worked_example/tv");
  WriteFileOrDie(dir.Join("checkpoint"),
                 "model_checkpoint_path: \"" + prefix + "\"\n");
  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->prefix(), prefix);
}

TEST(CheckpointReaderTest, MalformedStateFileIsDataLoss) {
  ScratchDir dir;
  WriteFileOrDie(dir.Join("checkpoint"), "all_model_checkpoint_paths: \"x\"\n");
  EXPECT_EQ(LatestCheckpoint(dir.path()).status().code(),
            StatusCode::kDataLoss);
  WriteFileOrDie(dir.Join("checkpoint"), "model_checkpoint_path: \"x\n");
  EXPECT_EQ(LatestCheckpoint(dir.path()).status().code(),
            StatusCode::kDataLoss);
  WriteFileOrDie(dir.Join("checkpoint"), "model_checkpoint_path: \"\"\n");
  EXPECT_EQ(LatestCheckpoint(dir.path()).status().code(),
            StatusCode::kDataLoss);
}

TEST(ParseModelCheckpointPathTest, FindsFieldAndDecodesEscapes) {
  EXPECT_EQ(
      ParseModelCheckpointPath("model_checkpoint_path: \"ckpt-5\"\n").value(),
      "ckpt-5");
  // all_model_checkpoint_paths is a different field; a path that contains
  // the field name is not the field.
  EXPECT_EQ(ParseModelCheckpointPath(
                "all_model_checkpoint_paths: \"model_checkpoint_path: x\"\n"
                "model_checkpoint_path: 'a/b'\n")
                .value(),
            "a/b");
  EXPECT_EQ(ParseModelCheckpointPath(
                "# comment model_checkpoint_path: \"no\"\n"
                "model_checkpoint_path:\"q\\\"u\\\\o\\x41\\101\\n\"")
                .value(),
            "q\"u\\oAA\n");
  EXPECT_EQ(ParseModelCheckpointPath("model_checkpoint_path: \"ckpt-1\"\n"
                                     "last_preserved_timestamp: 12.5\n"
                                     "model_checkpoint_path: \"ckpt-2\"\n")
                .value(),
            "ckpt-2");
  EXPECT_EQ(ParseModelCheckpointPath("").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ParseModelCheckpointPath("model_checkpoint_path").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(
      ParseModelCheckpointPath("model_checkpoint_path: 5").status().code(),
      StatusCode::kDataLoss);
  EXPECT_EQ(
      ParseModelCheckpointPath("model_checkpoint_path: \"x\\").status().code(),
      StatusCode::kDataLoss);
}

TEST(CheckpointReaderTest, FindsKeysByObjectPath) {
  auto reader = CheckpointReader::Open(FixturePath("objects/nested/ckpt"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE((*reader)->HasObjectGraph());
  auto graph = (*reader)->ObjectGraph();
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ((*graph)->nodes.size(), 23u);

  EXPECT_EQ((*reader)->ObjectKey("model/step").value(),
            "model/step/.ATTRIBUTES/VARIABLE_VALUE");
  // A variable reachable by several paths is stored once, under the key of
  // its first path.
  EXPECT_EQ((*reader)->ObjectKey("model/tied").value(),
            "extra/kernel_ref/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ((*reader)->ObjectKey("/model/encoder/block/kernel/").value(),
            "extra/kernel_ref/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ((*reader)->ObjectKey("model/encoder/layers/2").value(),
            "model/encoder/layers/2/.ATTRIBUTES/VARIABLE_VALUE");
  // A local name with a '/' in it.
  EXPECT_EQ(
      (*reader)->ObjectKeyAt({"model", "encoder", "table", "a/b"}).value(),
      "model/encoder/table/a.Sb/.ATTRIBUTES/VARIABLE_VALUE");

  auto missing = (*reader)->ObjectKey("model/encoder/nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status(), "(root).model.encoder"));
  EXPECT_TRUE(Contains(missing.status(), "'nope'"));
  auto no_value = (*reader)->ObjectKey("model/aux");
  EXPECT_EQ(no_value.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(no_value.status(), "VARIABLE_VALUE"));

  auto key = (*reader)->ObjectKey("model/step");
  ASSERT_TRUE(key.ok());
  auto info = (*reader)->GetTensorInfo(*key);
  EXPECT_TRUE(info.ok());
}

TEST(CheckpointReaderTest, CorruptObjectGraphIsDataLoss) {
  ScratchDir dir;
  const std::string prefix = dir.Join("bad_graph");
  auto writer = BundleWriter::Open(prefix);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)
                  ->AddString(CheckpointReader::kObjectGraphKey, {{}},
                              {std::string_view("\xff")})
                  .ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto reader = CheckpointReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->ObjectGraph().status().code(), StatusCode::kDataLoss);
  // The error is remembered, not recomputed into something else.
  EXPECT_EQ((*reader)->ObjectKey("x").status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace trackpoint
