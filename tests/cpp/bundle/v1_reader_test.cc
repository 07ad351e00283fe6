#include "bundle/v1_reader.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace trackpoint {
namespace {

using testing::FixturePath;
using testing::ReadFileOrDie;
using testing::ScratchDir;
using testing::WriteFileOrDie;

// tests/fixtures/tf1_v1format, written by TF 2.21 (generate_tf_state.py).
TEST(V1ReaderTest, ReadsSaverTestsCheckpoint) {
  auto reader = V1Reader::Open(FixturePath("tf1_v1format/ckpt_for_debug_string"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->Keys(), (std::vector<std::string>{"v0", "v1"}));
  EXPECT_EQ((*reader)->DebugString(), "v0 (DT_FLOAT) [2,3]\nv1 (DT_FLOAT) [3,2,1]\n");
  float v0[6] = {};
  ASSERT_TRUE((*reader)->ReadTensor("v0", v0, sizeof(v0)).ok());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(v0[i], i + 1.0f);
  EXPECT_EQ((*reader)->ReadTensor("v0", v0, 8).code(), StatusCode::kInvalidArgument);
  Status missing = (*reader)->ReadTensor("v3", v0, sizeof(v0));
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("v3 not found in checkpoint"), std::string::npos);
}

TEST(V1ReaderTest, AssemblesPartitionedTensorsAndReadsStrings) {
  auto reader = V1Reader::Open(FixturePath("tf1_v1format/dtypes"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const V1Tensor* part = (*reader)->Find("partitioned");
  ASSERT_NE(part, nullptr);
  EXPECT_EQ(part->slices.size(), 3u);
  float values[20] = {};
  ASSERT_TRUE((*reader)->ReadTensor("partitioned", values, sizeof(values)).ok());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(values[i], static_cast<float>(i));
  auto strings = (*reader)->ReadStringTensor("string");
  ASSERT_TRUE(strings.ok()) << strings.status().ToString();
  EXPECT_EQ(*strings, (std::vector<std::string>{"", "hello", "h\xc3\xa9llo",
                                                std::string("a\0b", 3)}));
}

TEST(V1ReaderTest, MissingAndForeignFiles) {
  ScratchDir dir;
  EXPECT_EQ(V1Reader::Open(dir.path() + "/nope").status().code(),
            StatusCode::kNotFound);
  WriteFileOrDie(dir.path() + "/junk", std::string(100, 'x'));
  auto junk = V1Reader::Open(dir.path() + "/junk");
  EXPECT_EQ(junk.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(junk.status().message().find("is not a V1 checkpoint"), std::string::npos);
  // A V2 bundle index is a table too, but holds no SavedTensorSliceMeta.
  auto index = V1Reader::Open(FixturePath("worked_example/tv.index"));
  EXPECT_EQ(index.status().code(), StatusCode::kDataLoss);
}

TEST(V1ReaderTest, EveryFlippedByteOfTheFileIsCaughtOrHarmless) {
  const std::string good = ReadFileOrDie(FixturePath("tf1_v1format/ckpt_for_debug_string"));
  ScratchDir dir;
  const std::string path = dir.path() + "/ckpt";
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x40;
    WriteFileOrDie(path, bad);
    auto reader = V1Reader::Open(path);
    if (!reader.ok()) continue;  // caught: block CRC, footer, metadata
    float v0[6];
    (void)(*reader)->ReadTensor("v0", v0, sizeof(v0));  // must not crash
  }
}

}  // namespace
}  // namespace trackpoint
