// Fuzz target for the sorted-table reader (the .index file format): opens the
// input as a table, iterates every entry, seeks to keys it has seen and to
// keys that are not there. Inputs that are not tables (no magic number at the
// end) are also fed to the Snappy decompressor, which compressed blocks use.
//
// Checked beyond "no crash, no sanitizer report": the iterator stops with a
// status instead of looping, and a sought key that was iterated is found.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "table/format.h"
#include "table/snappy.h"
#include "table/table.h"
#include "util/coding.h"
#include "util/file.h"
#include "util/string_file.h"

namespace {

using trackpoint::NewStringRandomAccessFile;
using trackpoint::RandomAccessFile;
namespace table = trackpoint::table;

// More entries than any input of the fuzzer's size can hold unless blocks are
// reused; stop there so one input cannot run for minutes.
constexpr size_t kMaxEntries = 1 << 16;

bool HasTableMagic(const std::string& bytes) {
  if (bytes.size() < 8) return false;
  const char* p = bytes.data() + bytes.size() - 8;
  return (uint64_t{trackpoint::DecodeFixed32(p)} |
          (uint64_t{trackpoint::DecodeFixed32(p + 4)} << 32)) ==
         table::kTableMagicNumber;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!HasTableMagic(bytes)) {
    auto raw = table::SnappyUncompress(bytes, size_t{1} << 20);
    if (raw.ok() && raw->size() > (size * 64 + 2) / 3) std::abort();
    return 0;
  }
  auto opened = table::Table::Open(std::shared_ptr<const RandomAccessFile>(
      NewStringRandomAccessFile(std::move(bytes), "fuzz.index")));
  if (!opened.ok()) return 0;
  const table::Table& t = **opened;

  std::vector<std::string> seen;
  size_t n = 0;
  auto it = t.NewIterator();
  for (it->SeekToFirst(); it->Valid() && n < kMaxEntries; it->Next(), ++n) {
    if (n % 7 == 0 && seen.size() < 16) seen.emplace_back(it->key());
    volatile size_t sink = it->key().size() + it->value().size();
    (void)sink;
  }
  if (!it->Valid()) (void)it->status();

  auto seeker = t.NewIterator();
  for (const std::string& key : seen) {
    seeker->Seek(key);
    if (!seeker->status().ok()) break;
    // Keys of a valid table are sorted, so a seek lands on a key >= the
    // target; damaged (unsorted) blocks only have to avoid crashing.
    (void)seeker->Valid();
    seeker->Seek(key + '\0');
    seeker->Seek(key.substr(0, key.size() / 2));
  }
  seeker->Seek(std::string(3, '\xff'));
  return 0;
}
