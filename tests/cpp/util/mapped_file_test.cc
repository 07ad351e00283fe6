#include "util/mapped_file.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace trackpoint {
namespace {

using testing::ScratchDir;
using testing::WriteFileOrDie;

TEST(MappedFileTest, MapsWholeFile) {
  ScratchDir dir;
  const std::string path = dir.Join("f");
  WriteFileOrDie(path, std::string("hello\0world", 11));
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ((*file)->size(), 11u);
  EXPECT_EQ(std::memcmp((*file)->data(), "hello\0world", 11), 0);
  EXPECT_EQ((*file)->name(), path);
  EXPECT_TRUE((*file)->Contains(0, 11));
  EXPECT_TRUE((*file)->Contains(11, 0));
  EXPECT_FALSE((*file)->Contains(10, 2));
  EXPECT_FALSE((*file)->Contains(12, 0));
  EXPECT_FALSE((*file)->Contains(1, UINT64_MAX));
}

TEST(MappedFileTest, EmptyFileHasNoData) {
  ScratchDir dir;
  WriteFileOrDie(dir.Join("empty"), "");
  auto file = MappedFile::Open(dir.Join("empty"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->size(), 0u);
  EXPECT_EQ((*file)->data(), nullptr);
  EXPECT_TRUE((*file)->Contains(0, 0));
}

TEST(MappedFileTest, MappingOutlivesUnlinkedFile) {
  ScratchDir dir;
  const std::string path = dir.Join("f");
  WriteFileOrDie(path, "abc");
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok());
  std::remove(path.c_str());
  EXPECT_EQ(std::string((*file)->data(), 3), "abc");
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  ScratchDir dir;
  auto file = MappedFile::Open(dir.Join("nope"));
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find("nope"), std::string::npos);
}

TEST(MappedFileTest, DirectoryIsInvalidArgument) {
  ScratchDir dir;
  EXPECT_EQ(MappedFile::Open(dir.path()).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace trackpoint
