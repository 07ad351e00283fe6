// Helpers shared by the table tests: the worked example's index file, and
// building and reading whole tables in memory.
#ifndef TRACKPOINT_TESTS_TABLE_TABLE_TEST_UTIL_H_
#define TRACKPOINT_TESTS_TABLE_TABLE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "table/table.h"
#include "table/table_builder.h"
#include "test_util.h"
#include "trackpoint/status.h"
#include "util/file.h"
#include "util/string_file.h"

namespace trackpoint::testing {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// FORMAT.md section 12: tv.index, written by TensorFlow 2.21 (242 bytes).
inline const std::string& WorkedExampleIndex() {
  static const std::string* bytes = new std::string(
      Unhex("00000608011a020801001c0e5f434845434b504f494e5441424c455f4f424a45"
            "43545f4752415048080712002010289a013563ab0117001c0f732f2e41545452"
            "4942555445532f5641524941424c455f56414c55450807120412020802280835"
            "9e9e48ed001c11762f2e415454524942555445532f5641524941424c455f5641"
            "4c554508011204120208022008280835593ce535000000000100000000ddda61"
            "89000000000100000000c0f2a1b000010377009c01000000000100000000e7cc"
            "ead8a10108ae010f000000000000000000000000000000000000000000000000"
            "0000000000000000000057fb808b247547db"));
  return *bytes;
}

// The table TableBuilder writes for kv, built in memory. Every Add and the
// Finish must succeed, and NumEntries and FileSize must match what was
// written.
inline std::string BuildTable(const KeyValues& kv,
                              const table::TableBuilderOptions& options = {}) {
  std::string contents;
  auto file = NewStringWritableFile(&contents, "built.index");
  table::TableBuilder builder(file.get(), options);
  for (const auto& [k, v] : kv) EXPECT_TRUE(builder.Add(k, v).ok());
  EXPECT_TRUE(builder.Finish().ok());
  EXPECT_EQ(builder.NumEntries(), kv.size());
  EXPECT_EQ(builder.FileSize(), contents.size());
  return contents;
}

// Every entry of table via SeekToFirst/Next (at most a million, so a corrupt
// table cannot loop forever); the iterator's final status in *status.
inline KeyValues ReadAll(const table::Table& table, Status* status) {
  KeyValues out;
  auto it = table.NewIterator();
  size_t steps = 0;
  for (it->SeekToFirst(); it->Valid() && steps < 1000000; it->Next(), ++steps) {
    out.emplace_back(it->key(), it->value());
  }
  *status = it->status();
  return out;
}

}  // namespace trackpoint::testing

#endif  // TRACKPOINT_TESTS_TABLE_TABLE_TEST_UTIL_H_
