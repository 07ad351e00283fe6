// CRC-32C dispatch and the operations that do not depend on the CPU.
//
// The implementation Extend() runs is chosen once, at the first call, from
// what the CPU and OS report (cpuid and xgetbv on x86-64, getauxval on
// Linux/aarch64), and cached in a function-local static. Code for an
// instruction set lives in its own file compiled with that set's flags, so
// nothing here executes an instruction the CPU might lack.
#include "trackpoint/crc32c.h"

#include "util/crc32c_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace trackpoint {
namespace crc32c {
namespace {

using ExtendFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

struct CpuFeatures {
  bool sse42 = false;   // SSE4.2 + PCLMULQDQ
  bool avx512 = false;  // AVX-512 F/VL/BW + VPCLMULQDQ, zmm state enabled
  bool arm64 = false;   // CRC32 + PMULL
};

CpuFeatures DetectCpu() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool sse42 = (ecx >> 20) & 1;
  const bool pclmul = (ecx >> 1) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  f.sse42 = sse42 && pclmul;
  if (!f.sse42 || !osxsave) return f;
  // XCR0 must enable SSE, AVX, opmask, ZMM_Hi256 and Hi16_ZMM state (bits 1,
  // 2, 5, 6, 7), or the OS would not preserve zmm registers.
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool zmm_state = (xcr0_lo & 0xe6) == 0xe6;
  if (!zmm_state || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  const bool avx512f = (ebx >> 16) & 1;
  const bool avx512bw = (ebx >> 30) & 1;
  const bool avx512vl = (ebx >> 31) & 1;
  const bool vpclmulqdq = (ecx >> 10) & 1;
  f.avx512 = avx512f && avx512bw && avx512vl && vpclmulqdq;
#elif defined(__aarch64__) && defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.arm64 = (hwcap & HWCAP_CRC32) && (hwcap & HWCAP_PMULL);
#elif defined(__aarch64__) && defined(__APPLE__)
  f.arm64 = true;  // every Apple arm64 CPU has CRC32 and PMULL
#endif
  return f;
}

const CpuFeatures& Cpu() {
  static const CpuFeatures features = DetectCpu();
  return features;
}

bool IsAvailable(Impl impl) {
  switch (impl) {
    case Impl::kPortable:
      return true;
    case Impl::kSse42:
      return Cpu().sse42;
    case Impl::kAvx512:
      return Cpu().avx512;
    case Impl::kArm64:
      return Cpu().arm64;
  }
  return false;
}

// REQUIRES: IsAvailable(impl).
ExtendFn FunctionFor(Impl impl) {
  switch (impl) {
#if defined(__x86_64__)
    case Impl::kSse42:
      return ExtendSse42;
    case Impl::kAvx512:
      return ExtendAvx512;
#endif
#if defined(__aarch64__)
    case Impl::kArm64:
      return ExtendArm64;
#endif
    default:
      return ExtendPortable;
  }
}

// Preference order, fastest first. AVX-512 beats SSE4.2 from a few hundred
// bytes up and delegates smaller inputs to it (see crc32c_avx512.cc).
Impl ChooseImpl() {
  for (Impl impl : {Impl::kAvx512, Impl::kSse42, Impl::kArm64}) {
    if (IsAvailable(impl)) return impl;
  }
  return Impl::kPortable;
}

// x^(8 * 2^k) mod P for k = 0..63: the factor that moves a CRC register past
// 2^k bytes.
struct ByteShiftTable {
  uint32_t x8pow2k[64];
};

constexpr ByteShiftTable MakeByteShiftTable() {
  ByteShiftTable table{};
  table.x8pow2k[0] = XPowModP(8);
  for (int k = 1; k < 64; ++k) {
    table.x8pow2k[k] = MultModP(table.x8pow2k[k - 1], table.x8pow2k[k - 1]);
  }
  return table;
}

constexpr ByteShiftTable kByteShift = MakeByteShiftTable();

}  // namespace

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  static const ExtendFn extend = FunctionFor(ActiveImpl());
  return extend(crc, static_cast<const uint8_t*>(data), n);
}

// The CRC of a||b with zero start register is A * x^(8|b|) + B (mod P) on
// the registers, and the init/final inversions of the two finished CRCs
// cancel, so the same identity holds on finished CRCs.
uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t shifted = crc_a;
  for (int k = 0; len_b != 0; ++k, len_b >>= 1) {
    if (len_b & 1) shifted = MultModP(shifted, kByteShift.x8pow2k[k]);
  }
  return shifted ^ crc_b;
}

const char* ImplName(Impl impl) {
  switch (impl) {
    case Impl::kPortable:
      return "portable";
    case Impl::kSse42:
      return "sse42";
    case Impl::kAvx512:
      return "avx512";
    case Impl::kArm64:
      return "arm64";
  }
  return "unknown";
}

std::vector<Impl> AvailableImpls() {
  std::vector<Impl> impls;
  for (Impl impl :
       {Impl::kPortable, Impl::kSse42, Impl::kAvx512, Impl::kArm64}) {
    if (IsAvailable(impl)) impls.push_back(impl);
  }
  return impls;
}

Impl ActiveImpl() {
  static const Impl active = ChooseImpl();
  return active;
}

uint32_t ExtendWith(Impl impl, uint32_t crc, const void* data, size_t n) {
  return FunctionFor(impl)(crc, static_cast<const uint8_t*>(data), n);
}

}  // namespace crc32c
}  // namespace trackpoint
