// Helpers shared by the C++ tests: scratch directories and whole-file I/O.
#ifndef TRACKPOINT_TESTS_TEST_UTIL_H_
#define TRACKPOINT_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace trackpoint::testing {

// A fresh directory under the test temp dir, removed when destroyed.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (std::filesystem::temp_directory_path() /
                         "trackpoint_test_XXXXXX")
                            .string();
    path_ = ::mkdtemp(templ.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFileOrDie(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string FixturePath(const std::string& relative) {
  return std::string(TRACKPOINT_FIXTURES_DIR) + "/" + relative;
}

}  // namespace trackpoint::testing

#endif  // TRACKPOINT_TESTS_TEST_UTIL_H_
