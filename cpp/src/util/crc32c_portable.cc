// Portable CRC-32C: table-driven "slicing-by-8".
//
// kTables.t[0][b] is the CRC register after shifting byte b through it;
// t[k][b] is the same for byte b followed by k zero bytes. Eight table
// lookups, one per byte of an 8-byte word, then advance the register by the
// whole word at once. The tables (8 KiB) are built at compile time.
#include "util/coding.h"
#include "util/crc32c_internal.h"

namespace trackpoint {
namespace crc32c {
namespace {

struct Tables {
  uint32_t t[8][256];
};

constexpr Tables MakeTables() {
  Tables tables{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ ((crc & 1) ? kPoly : 0);
    tables.t[0][b] = crc;
  }
  for (int k = 1; k < 8; ++k) {
    for (int b = 0; b < 256; ++b) {
      uint32_t prev = tables.t[k - 1][b];
      tables.t[k][b] = (prev >> 8) ^ tables.t[0][prev & 0xff];
    }
  }
  return tables;
}

constexpr Tables kTables = MakeTables();

inline uint32_t StepByte(uint32_t l, uint8_t byte) {
  return (l >> 8) ^ kTables.t[0][(l ^ byte) & 0xff];
}

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  uint32_t l = ~crc;
  // Byte steps up to 8-byte alignment, so the word loads below are aligned.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    l = StepByte(l, *p++);
    --n;
  }
  for (; n >= 8; p += 8, n -= 8) {
    const char* c = reinterpret_cast<const char*>(p);
    uint32_t lo = l ^ DecodeFixed32(c);
    uint32_t hi = DecodeFixed32(c + 4);
    l = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
        t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
        t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n) l = StepByte(l, *p++);
  return ~l;
}

}  // namespace crc32c
}  // namespace trackpoint
