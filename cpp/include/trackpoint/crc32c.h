// CRC-32C (Castagnoli), as used by TensorFlow checkpoints, and TensorFlow's
// masking of stored CRCs.
//
// Extend() picks the fastest implementation this CPU supports, once, at the
// first call. Every implementation is also reachable by name for tests and
// benchmarks.
#ifndef TRACKPOINT_CRC32C_H_
#define TRACKPOINT_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace trackpoint {
namespace crc32c {

// The CRC of data[0, n) continuing from crc, the CRC of the bytes before it
// (0 for the start of a stream): Extend(Extend(0, a), b) == CRC of a||b.
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// The CRC of a||b given crc_a = Value(a), crc_b = Value(b) and len_b = |b|,
// without touching the bytes (for CRCs computed in parallel pieces).
uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// TensorFlow stores masked CRCs so that a CRC over bytes that embed CRCs
// stays well distributed.
constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

enum class Impl { kPortable, kSse42, kAvx512, kArm64 };

const char* ImplName(Impl impl);
// The implementations this CPU can run, portable first.
std::vector<Impl> AvailableImpls();
// The one Extend() uses.
Impl ActiveImpl();
// REQUIRES: impl is in AvailableImpls().
uint32_t ExtendWith(Impl impl, uint32_t crc, const void* data, size_t n);

}  // namespace crc32c
}  // namespace trackpoint

#endif  // TRACKPOINT_CRC32C_H_
