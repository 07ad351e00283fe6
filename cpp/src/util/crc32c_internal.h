// Shared by the CRC-32C implementations: the per-instruction-set entry points
// and the GF(2) arithmetic used to build their constants.
//
// Every Extend* function has the semantics of crc32c::Extend: crc is the
// finished CRC of the preceding bytes (0 at the start of a stream), and the
// result is the finished CRC of those bytes followed by data[0, n).
//
// Polynomial representation ("reflected", as the hardware uses it): a
// uint32_t holds a polynomial of degree < 32 with bit i the coefficient of
// x^(31 - i), so 0x80000000 is 1 and multiplying by x is a right shift.
// The CRC-32C generator P(x) = x^32 + 0x1EDC6F41 becomes kPoly, its low 32
// terms reflected.
#ifndef TRACKPOINT_UTIL_CRC32C_INTERNAL_H_
#define TRACKPOINT_UTIL_CRC32C_INTERNAL_H_

#include <cstddef>
#include <cstdint>

namespace trackpoint {
namespace crc32c {

constexpr uint32_t kPoly = 0x82f63b78u;

// a(x) * b(x) mod P(x).
constexpr uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; ++i) {
    if (a & (0x80000000u >> i)) product ^= b;  // coefficient of x^i in a
    b = (b >> 1) ^ ((b & 1) ? kPoly : 0);      // b *= x
  }
  return product;
}

// x^n mod P(x), by square and multiply.
constexpr uint32_t XPowModP(uint64_t n) {
  uint32_t result = 0x80000000u;  // 1
  uint32_t square = 0x40000000u;  // x^(2^k), starting at x
  for (; n != 0; n >>= 1) {
    if (n & 1) result = MultModP(result, square);
    square = MultModP(square, square);
  }
  return result;
}

// Always available.
uint32_t ExtendPortable(uint32_t crc, const uint8_t* data, size_t n);

// The x86 paths use 64-bit crc32 instructions, so they exist on x86-64 only
// (the build compiles their files, empty elsewhere, for any x86).
#if defined(__x86_64__)
// REQUIRES: the CPU has SSE4.2 and PCLMULQDQ.
uint32_t ExtendSse42(uint32_t crc, const uint8_t* data, size_t n);
// REQUIRES: the CPU has SSE4.2, PCLMULQDQ, AVX-512 F/VL/BW and VPCLMULQDQ,
// and the OS saves zmm state.
uint32_t ExtendAvx512(uint32_t crc, const uint8_t* data, size_t n);
#endif

#if defined(__aarch64__)
// REQUIRES: the CPU has the CRC32 and PMULL extensions.
uint32_t ExtendArm64(uint32_t crc, const uint8_t* data, size_t n);
#endif

}  // namespace crc32c
}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_CRC32C_INTERNAL_H_
