// The file layer's fault injection (SetIoFaultForTesting), and what the
// bundle writer does when the disk fills up or fails under it: a clean error
// with the code of the errno, and no file of the failed bundle left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_writer.h"
#include "util/fault_injection.h"
#include "util/file.h"
#include "util/string_file.h"

namespace trackpoint {
namespace {

using testing::ReadFileOrDie;
using testing::ScratchDir;
using testing::WriteFileOrDie;

// Disarms the process-wide hook after every test, pass or fail.
class FileFaultTest : public ::testing::Test {
 protected:
  void TearDown() override { SetIoFaultForTesting(IoFault::kNone, 0); }
};

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A bundle of a few KiB: two tensors and a string tensor.
Status WriteBundle(const std::string& prefix, float fill) {
  TP_ASSIGN_OR_RETURN(auto writer, BundleWriter::Open(prefix));
  std::vector<float> big(1000, fill);
  TP_RETURN_IF_ERROR(writer->Add("big", DataType::kFloat, {{1000}}, big.data(),
                                 big.size() * sizeof(float)));
  const int32_t small[3] = {1, 2, 3};
  TP_RETURN_IF_ERROR(
      writer->Add("small", DataType::kInt32, {{3}}, small, sizeof(small)));
  TP_RETURN_IF_ERROR(writer->AddString("names", {{2}}, {"alpha", "beta"}));
  return writer->Finish();
}

void ExpectBundleReads(const std::string& prefix, float fill) {
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<float> big(1000);
  ASSERT_TRUE((*reader)->ReadTensor("big", big.data(), 4000).ok());
  EXPECT_EQ(big[999], fill);
}

TEST_F(FileFaultTest, WriteFailsWithEnospcAfterTheBudgetKeepingTheBytesBelow) {
  ScratchDir dir;
  const std::string path = dir.Join("f");
  auto file = NewWritableFile(path);
  ASSERT_TRUE(file.ok());
  SetIoFaultForTesting(IoFault::kWriteNoSpace, 10);
  ASSERT_TRUE((*file)->Append(std::string(100, 'x')).ok());  // buffered
  Status s = (*file)->Sync();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos);
  EXPECT_NE(s.message().find(path), std::string::npos);
  // Sticky: later calls report the same error.
  EXPECT_EQ((*file)->Append("y").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ((*file)->Close().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileOrDie(path), std::string(10, 'x'));
}

TEST_F(FileFaultTest, WriteFailsWithEioAsUnavailable) {
  ScratchDir dir;
  auto file = NewWritableFile(dir.Join("f"));
  ASSERT_TRUE(file.ok());
  SetIoFaultForTesting(IoFault::kWriteIoError, 0);
  ASSERT_TRUE((*file)->Append("abc").ok());
  Status s = (*file)->Close();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("Input/output error"), std::string::npos);
}

TEST_F(FileFaultTest, BudgetCountsEveryFileTogether) {
  ScratchDir dir;
  SetIoFaultForTesting(IoFault::kWriteNoSpace, 5);
  auto a = NewWritableFile(dir.Join("a"));
  auto b = NewWritableFile(dir.Join("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Append("123").ok());
  ASSERT_TRUE((*a)->Close().ok());
  ASSERT_TRUE((*b)->Append("4567").ok());
  EXPECT_EQ((*b)->Close().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileOrDie(dir.Join("b")), "45");
}

TEST_F(FileFaultTest, FsyncOfFilesFails) {
  ScratchDir dir;
  auto file = NewWritableFile(dir.Join("f"));
  ASSERT_TRUE(file.ok());
  SetIoFaultForTesting(IoFault::kSyncIoError, 0);
  ASSERT_TRUE((*file)->Append("abc").ok());
  EXPECT_EQ((*file)->Sync().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(SyncDir(dir.path()).ok());
}

TEST_F(FileFaultTest, FsyncOfDirectoriesFails) {
  ScratchDir dir;
  SetIoFaultForTesting(IoFault::kDirSyncIoError, 0);
  Status s = SyncDir(dir.path());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find(dir.path()), std::string::npos);
}

TEST_F(FileFaultTest, SyncFaultWaitsForItsBudget) {
  ScratchDir dir;
  auto file = NewWritableFile(dir.Join("f"));
  ASSERT_TRUE(file.ok());
  SetIoFaultForTesting(IoFault::kSyncIoError, 4);
  ASSERT_TRUE((*file)->Append("abc").ok());
  EXPECT_TRUE((*file)->Sync().ok());  // 3 of 4 bytes: not yet
  ASSERT_TRUE((*file)->Append("d").ok());
  EXPECT_EQ((*file)->Sync().code(), StatusCode::kUnavailable);
}

TEST_F(FileFaultTest, RenameFailsAndLeavesTheSource) {
  ScratchDir dir;
  WriteFileOrDie(dir.Join("from"), "data");
  SetIoFaultForTesting(IoFault::kRenameIoError, 0);
  Status s = RenameFile(dir.Join("from"), dir.Join("to"));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(FileExists(dir.Join("from")));
  EXPECT_FALSE(FileExists(dir.Join("to")));
}

TEST_F(FileFaultTest, DisarmedHookChangesNothing) {
  ScratchDir dir;
  SetIoFaultForTesting(IoFault::kWriteIoError, 0);
  SetIoFaultForTesting(IoFault::kNone, 0);
  auto file = NewWritableFile(dir.Join("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("abc").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(RenameFile(dir.Join("f"), dir.Join("g")).ok());
  EXPECT_EQ(ReadFileOrDie(dir.Join("g")), "abc");
}

// The string-backed files are for building bytes in memory: never faulted.
TEST_F(FileFaultTest, StringFilesAreNotAffected) {
  SetIoFaultForTesting(IoFault::kWriteNoSpace, 0);
  std::string contents;
  auto file = NewStringWritableFile(&contents, "mem");
  EXPECT_TRUE(file->Append("abc").ok());
  EXPECT_TRUE(file->Sync().ok());
  EXPECT_EQ(contents, "abc");
}

// Every fault, at every interesting moment of a save: the error carries the
// errno's code, no file of the failed bundle is left (temporary or final),
// and an earlier bundle in the same directory still reads.
TEST_F(FileFaultTest, FailedBundleSaveLeavesNothingAndKeepsTheOldBundle) {
  struct Case {
    IoFault fault;
    StatusCode code;
  };
  const Case cases[] = {
      {IoFault::kWriteNoSpace, StatusCode::kResourceExhausted},
      {IoFault::kWriteIoError, StatusCode::kUnavailable},
      {IoFault::kSyncIoError, StatusCode::kUnavailable},
      {IoFault::kDirSyncIoError, StatusCode::kUnavailable},
      {IoFault::kRenameIoError, StatusCode::kUnavailable},
  };
  ScratchDir dir;
  ASSERT_TRUE(WriteBundle(dir.Join("old"), 1.0f).ok());
  const std::vector<std::string> before = Listing(dir.path());
  // Budgets around the end of the data file (D bytes, written first) and of
  // the index (I bytes, written last): with D + I the fault arms exactly
  // when the last byte is out, so it hits the index's fsync, the renames or
  // the final directory fsync.
  const uint64_t d = ReadFileOrDie(dir.Join("old.data-00000-of-00001")).size();
  const uint64_t i = ReadFileOrDie(dir.Join("old.index")).size();
  const uint64_t budgets[] = {0,     1,         d / 2,     d - 1,
                              d,     d + 1,     d + i / 2, d + i - 1,
                              d + i, d + i + 1, 1 << 20};
  for (const Case& c : cases) {
    for (uint64_t budget : budgets) {
      SCOPED_TRACE("fault " + std::to_string(static_cast<int>(c.fault)) +
                   " after " + std::to_string(budget) + " bytes");
      SetIoFaultForTesting(c.fault, budget);
      Status s = WriteBundle(dir.Join("new"), 2.0f);
      SetIoFaultForTesting(IoFault::kNone, 0);
      if (s.ok()) {
        // The budget outlasted the save (or a sync/rename fault armed after
        // its last fsync): the new bundle must then be whole.
        ExpectBundleReads(dir.Join("new"), 2.0f);
        for (const std::string& name : Listing(dir.path())) {
          if (name.rfind("new.", 0) == 0) {
            ASSERT_TRUE(DeleteFile(dir.Join(name)).ok());
          }
        }
      } else {
        EXPECT_EQ(s.code(), c.code) << s.ToString();
      }
      EXPECT_EQ(Listing(dir.path()), before);
      ExpectBundleReads(dir.Join("old"), 1.0f);
    }
  }
}

}  // namespace
}  // namespace trackpoint
