// Fuzz target for the whole read path of a bundle: the input is
//   index_size  fixed32 LE
//   index       index_size bytes (clamped to what is there) -> P.index
//   data        the rest                                    ->
//   P.data-00000-of-00001
// written to a scratch directory, then opened with BundleReader; every key
// is checked (CheckStored) and read as a caller would: a buffer sized by the
// entry's shape, allocated only after CheckStored said the bytes are there.
//
// Checked beyond "no crash": what CheckStored lets through is bounded by the
// data file (times the number of entries, which may share bytes).
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "proto/bundle_proto.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/types.h"
#include "util/coding.h"

namespace {

using namespace trackpoint;  // NOLINT: a fuzz target

// Never allocate more than this for one tensor, whatever CheckStored says.
constexpr uint64_t kMaxRead = uint64_t{64} << 20;

const std::string& Prefix();

void RemoveScratch() {
  const std::string& prefix = Prefix();
  ::unlink((prefix + ".index").c_str());
  ::unlink((prefix + ".data-00000-of-00001").c_str());
  ::rmdir(prefix.substr(0, prefix.rfind('/')).c_str());
}

const std::string& Prefix() {
  static const std::string* const prefix = [] {
    // Memory-backed when there is /dev/shm: a disk makes this 30x slower.
    const char* tmp = std::getenv("TMPDIR");
    const std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                             : tmp != nullptr                ? tmp
                                                             : "/tmp";
    std::string templ = base + "/trackpoint_fuzz_XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    std::atexit(RemoveScratch);
    return new std::string(templ + "/ckpt");
  }();
  return *prefix;
}

void WriteFile(const std::string& path, const char* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(n));
  if (!out.good()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const char* p = reinterpret_cast<const char*>(data);
  const size_t index_size = std::min<size_t>(DecodeFixed32(p), size - 4);
  const size_t data_size = size - 4 - index_size;
  const std::string& prefix = Prefix();
  WriteFile(prefix + ".index", p + 4, index_size);
  WriteFile(prefix + ".data-00000-of-00001", p + 4 + index_size, data_size);

  auto opened = BundleReader::Open(prefix);
  if (!opened.ok()) return 0;
  const BundleReader& reader = **opened;
  const std::vector<std::string> keys = reader.Keys();
  for (size_t k = 0; k < keys.size() && k < 64; ++k) {
    const BundleEntry* entry = reader.Find(keys[k]);
    if (entry == nullptr) std::abort();  // Keys() lists only what Find finds
    if (entry->dtype == DataType::kString) {
      (void)reader.ReadStringTensor(keys[k]);
      continue;
    }
    if (!reader.CheckStored(keys[k]).ok()) continue;
    int64_t elements = 0;
    if (!ValidateShape(entry->shape, &elements).ok()) std::abort();
    const uint64_t nbytes =
        static_cast<uint64_t>(elements) * DataTypeSize(entry->dtype);
    if (nbytes > (data_size + 1) * (keys.size() + 1) * 2 + 1024) std::abort();
    if (nbytes > kMaxRead) continue;
    std::vector<char> buffer(static_cast<size_t>(nbytes));
    (void)reader.ReadTensor(keys[k], buffer.data(), buffer.size());
  }
  return 0;
}
