// Helpers shared by the C++ tests: scratch directories, whole-file I/O, hex
// dumps and exact-size buffers.
#ifndef TRACKPOINT_TESTS_TEST_UTIL_H_
#define TRACKPOINT_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/status.h"

#ifndef TRACKPOINT_FIXTURES_DIR
#error "TRACKPOINT_FIXTURES_DIR must point at tests/fixtures"
#endif

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

// Every bundle prefix under the fixtures directory, or under its subdirectory
// `under`, relative to the fixtures directory and sorted: one for each
// "*.index" file at any depth (e.g. "dtypes/ckpt", "objects/slots/ckpt").
// Empty where the directory does not exist.
inline std::vector<std::string> FixturePrefixes(const std::string& under = "") {
  namespace fs = std::filesystem;
  const fs::path root = TRACKPOINT_FIXTURES_DIR;
  std::vector<std::string> prefixes;
  if (!fs::is_directory(root / under)) return prefixes;
  for (const auto& file : fs::recursive_directory_iterator(root / under)) {
    if (!file.is_regular_file() || file.path().extension() != ".index") {
      continue;
    }
    const std::string path = fs::relative(file.path(), root).string();
    prefixes.push_back(path.substr(0, path.size() - 6));
  }
  std::sort(prefixes.begin(), prefixes.end());
  return prefixes;
}

// Bytes as lower-case hex digits: "\x08\x01" -> "0801".
inline std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// The same with a space between bytes, "08 01", as FORMAT.md lists them.
inline std::string SpacedHex(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out += Hex(bytes.substr(i, 1));
  }
  return out;
}

// "08 01 1a" or "08011A" -> bytes. White space is skipped; any other
// character, or an odd number of digits, fails the test.
inline std::string Unhex(std::string_view hex) {
  std::string out;
  int nibbles = 0;
  int value = 0;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      if (c != ' ' && c != '\n' && c != '\t') {
        ADD_FAILURE() << "not a hex digit '" << c << "' in \"" << hex << '"';
      }
      continue;
    }
    value = value * 16 + v;
    if (++nibbles == 2) {
      out.push_back(static_cast<char>(value));
      nibbles = value = 0;
    }
  }
  if (nibbles != 0) ADD_FAILURE() << "odd number of hex digits in " << hex;
  return out;
}

// A heap copy of exactly the bytes of s, so ASan flags any read past the end
// (a std::string's terminating NUL and spare capacity would hide it).
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view s)
      : data_(new char[s.size()]), size_(s.size()) {
    std::copy(s.begin(), s.end(), data_.get());
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

// Whether a status's message mentions text.
inline bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

// n bytes from a xorshift generator: no short period, the same for a seed.
inline std::vector<char> PseudoRandomBytes(size_t n, uint32_t seed) {
  std::vector<char> bytes(n);
  uint32_t x = 2463534242u + seed;
  for (char& b : bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<char>(x);
  }
  return bytes;
}

}  // namespace trackpoint::testing

#endif  // TRACKPOINT_TESTS_TEST_UTIL_H_
