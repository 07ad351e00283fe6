// SSE4.2 CRC-32C: the crc32 instruction, 8 bytes at a time, on three
// independent streams.
//
// crc32 has a latency of 3 cycles and a throughput of 1 per cycle, so a single
// dependency chain runs at a third of the core's speed. A block of 3 * S bytes
// is cut into three stripes of S bytes, each run through its own register
// (the first continues the incoming register, the other two start at 0), and
// the registers are merged at the end of the block (crc32c_internal.h for the
// notation):
//
//   reg(a || b || c) = reg_a * x^(16S) + reg_b * x^(8S) + reg_c   (mod P)
//
// The products by x^(8S) use one PCLMULQDQ: for 32-bit reflected a and k the
// carry-less product is x * a * k as a 64-bit reflected word w, and crc32(0, w)
// is w * x^32 mod P, so crc32(0, clmul(a, x^(8S - 33) mod P)) = a * x^(8S) mod
// P. The constants are computed at compile time. Stripes are 4 KiB for long
// inputs, then 256 and 32 bytes for what remains; the last < 96 bytes go
// through one chain.
#include <nmmintrin.h>  // SSE4.2
#include <wmmintrin.h>  // PCLMULQDQ

#include <cstring>

#include "util/crc32c_internal.h"

#if defined(__x86_64__)

namespace trackpoint {
namespace crc32c {
namespace {

inline uint64_t CrcWord(uint64_t reg, const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return _mm_crc32_u64(reg, word);
}

// Carry-less product of two 32-bit values (at most 63 bits).
inline uint64_t Clmul(uint64_t a, uint32_t k) {
  __m128i product = _mm_clmulepi64_si128(
      _mm_cvtsi64_si128(static_cast<int64_t>(a)), _mm_cvtsi32_si128(k), 0x00);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(product));
}

// Consumes blocks of 3 * kStripe bytes from [*p, end) while there are any.
template <size_t kStripe>
inline uint64_t ThreeStreams(uint64_t reg, const uint8_t** p,
                             const uint8_t* end) {
  constexpr uint32_t kShift2 = XPowModP(16 * kStripe - 33);
  constexpr uint32_t kShift1 = XPowModP(8 * kStripe - 33);
  const uint8_t* q = *p;
  while (static_cast<size_t>(end - q) >= 3 * kStripe) {
    uint64_t a = reg, b = 0, c = 0;
    for (size_t i = 0; i < kStripe; i += 8) {
      a = CrcWord(a, q + i);
      b = CrcWord(b, q + kStripe + i);
      c = CrcWord(c, q + 2 * kStripe + i);
    }
    reg = _mm_crc32_u64(0, Clmul(a, kShift2) ^ Clmul(b, kShift1)) ^ c;
    q += 3 * kStripe;
  }
  *p = q;
  return reg;
}

}  // namespace

uint32_t ExtendSse42(uint32_t crc, const uint8_t* p, size_t n) {
  const uint8_t* end = p + n;
  uint64_t reg = ~crc & 0xffffffffu;
  // Bytes up to 8-byte alignment.
  while (p != end && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    reg = _mm_crc32_u8(static_cast<uint32_t>(reg), *p++);
  }
  reg = ThreeStreams<4096>(reg, &p, end);
  reg = ThreeStreams<256>(reg, &p, end);
  reg = ThreeStreams<32>(reg, &p, end);
  for (; end - p >= 8; p += 8) reg = CrcWord(reg, p);
  while (p != end) reg = _mm_crc32_u8(static_cast<uint32_t>(reg), *p++);
  return ~static_cast<uint32_t>(reg);
}

}  // namespace crc32c
}  // namespace trackpoint

#endif  // defined(__x86_64__)
