// ARMv8 CRC-32C: the crc32cx instruction (__crc32cd), 8 bytes at a time, on
// three independent streams merged with one PMULL per stream.
//
// The same scheme as crc32c_sse42.cc, which explains it: blocks of three
// stripes of S bytes, registers merged as
//
//   reg(a || b || c) = reg_a * x^(16S) + reg_b * x^(8S) + reg_c   (mod P)
//
// where a * x^(8S) mod P = crc32cx(0, pmull(a, x^(8S - 33) mod P)); the
// ARMv8 CRC instructions use the same bit order as x86's crc32. Stripes are
// 1 KiB, then 128 and 32 bytes; the rest goes through one chain.
#include <cstring>

#include "util/crc32c_internal.h"

#if defined(__aarch64__)

#include <arm_acle.h>
#include <arm_neon.h>

namespace trackpoint {
namespace crc32c {
namespace {

inline uint32_t CrcWord(uint32_t reg, const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return __crc32cd(reg, word);
}

// Carry-less product of two 32-bit values (at most 63 bits).
inline uint64_t Clmul(uint32_t a, uint32_t k) {
  return vgetq_lane_u64(vreinterpretq_u64_p128(vmull_p64(a, k)), 0);
}

// Consumes blocks of 3 * kStripe bytes from [*p, end) while there are any.
template <size_t kStripe>
inline uint32_t ThreeStreams(uint32_t reg, const uint8_t** p,
                             const uint8_t* end) {
  constexpr uint32_t kShift2 = XPowModP(16 * kStripe - 33);
  constexpr uint32_t kShift1 = XPowModP(8 * kStripe - 33);
  const uint8_t* q = *p;
  while (static_cast<size_t>(end - q) >= 3 * kStripe) {
    uint32_t a = reg, b = 0, c = 0;
    for (size_t i = 0; i < kStripe; i += 8) {
      a = CrcWord(a, q + i);
      b = CrcWord(b, q + kStripe + i);
      c = CrcWord(c, q + 2 * kStripe + i);
    }
    reg = __crc32cd(0, Clmul(a, kShift2) ^ Clmul(b, kShift1)) ^ c;
    q += 3 * kStripe;
  }
  *p = q;
  return reg;
}

}  // namespace

uint32_t ExtendArm64(uint32_t crc, const uint8_t* p, size_t n) {
  const uint8_t* end = p + n;
  uint32_t reg = ~crc;
  while (p != end && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    reg = __crc32cb(reg, *p++);
  }
  reg = ThreeStreams<1024>(reg, &p, end);
  reg = ThreeStreams<128>(reg, &p, end);
  reg = ThreeStreams<32>(reg, &p, end);
  for (; end - p >= 8; p += 8) reg = CrcWord(reg, p);
  while (p != end) reg = __crc32cb(reg, *p++);
  return ~reg;
}

}  // namespace crc32c
}  // namespace trackpoint

#endif  // defined(__aarch64__)
