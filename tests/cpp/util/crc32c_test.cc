#include "trackpoint/crc32c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace trackpoint {
namespace crc32c {
namespace {

// Bit at a time, straight from the definition (reflected, poly 0x82F63B78).
uint32_t Reference(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t reg = ~crc;
  for (size_t i = 0; i < n; ++i) {
    reg ^= p[i];
    for (int bit = 0; bit < 8; ++bit)
      reg = (reg >> 1) ^ ((reg & 1) ? 0x82f63b78u : 0);
  }
  return ~reg;
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(n);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

class Crc32cTest : public ::testing::TestWithParam<Impl> {
 protected:
  uint32_t Ext(uint32_t crc, const void* data, size_t n) {
    return ExtendWith(GetParam(), crc, data, n);
  }
  uint32_t Val(const std::vector<uint8_t>& v) {
    return Ext(0, v.data(), v.size());
  }
};

TEST_P(Crc32cTest, Rfc3720Vectors) {
  std::vector<uint8_t> buf(32, 0x00);
  EXPECT_EQ(0x8a9136aau, Val(buf));

  std::fill(buf.begin(), buf.end(), 0xff);
  EXPECT_EQ(0x62a8ab43u, Val(buf));

  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(0x46dd794eu, Val(buf));

  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(0x113fdb5cu, Val(buf));

  const std::vector<uint8_t> iscsi_read = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  EXPECT_EQ(0xd9963a56u, Val(iscsi_read));
}

TEST_P(Crc32cTest, CheckValueAndEmpty) {
  EXPECT_EQ(0xe3069283u, Ext(0, "123456789", 9));
  EXPECT_EQ(0u, Ext(0, nullptr, 0));
  EXPECT_EQ(0x12345678u, Ext(0x12345678u, "x", 0));
}

TEST_P(Crc32cTest, EverySplitPoint) {
  const std::vector<uint8_t> buf = RandomBytes(1031, 1);
  const uint32_t whole = Val(buf);
  EXPECT_EQ(Reference(0, buf.data(), buf.size()), whole);
  for (size_t split = 0; split <= buf.size(); ++split) {
    uint32_t head = Ext(0, buf.data(), split);
    ASSERT_EQ(whole, Ext(head, buf.data() + split, buf.size() - split))
        << "split at " << split;
  }
}

TEST_P(Crc32cTest, EveryAlignmentAndShortLength) {
  const std::vector<uint8_t> buf = RandomBytes(64 + 300, 2);
  for (size_t start = 0; start < 64; ++start) {
    for (size_t len = 0; len <= 300; ++len) {
      const uint8_t* p = buf.data() + start;
      ASSERT_EQ(Reference(0xdeadbeefu, p, len), Ext(0xdeadbeefu, p, len))
          << "start " << start << " length " << len;
    }
  }
}

// Lengths on both sides of every block size the fast paths switch at.
TEST_P(Crc32cTest, LengthsAcrossBlockSizes) {
  const std::vector<uint8_t> buf = RandomBytes(40000, 3);
  for (size_t len = 300; len < 2100; ++len) {
    ASSERT_EQ(Reference(7, buf.data() + 1, len), Ext(7, buf.data() + 1, len))
        << "length " << len;
  }
  for (size_t len = 2100; len + 5 < buf.size(); len += 257) {
    for (size_t start : {0, 5}) {
      ASSERT_EQ(ExtendWith(Impl::kPortable, 7, buf.data() + start, len),
                Ext(7, buf.data() + start, len))
          << "start " << start << " length " << len;
    }
  }
}

TEST_P(Crc32cTest, LargeBuffersMatchPortable) {
  const std::vector<uint8_t> buf = RandomBytes((1 << 20) + 256, 4);
  for (size_t len :
       {size_t{1} << 20, (size_t{1} << 20) + 1, (size_t{1} << 20) + 63,
        (size_t{1} << 20) + 199, size_t{3 * 3 * 4096 + 5}, size_t{999983}}) {
    for (size_t start : {0, 1, 8, 33}) {
      const uint8_t* p = buf.data() + start;
      ASSERT_EQ(ExtendWith(Impl::kPortable, 0, p, len), Ext(0, p, len))
          << "start " << start << " length " << len;
    }
  }
  // The portable implementation itself, against the definition.
  EXPECT_EQ(Reference(0, buf.data(), 65537),
            ExtendWith(Impl::kPortable, 0, buf.data(), 65537));
}

INSTANTIATE_TEST_SUITE_P(AllImpls, Crc32cTest,
                         ::testing::ValuesIn(AvailableImpls()),
                         [](const ::testing::TestParamInfo<Impl>& info) {
                           return std::string(ImplName(info.param));
                         });

TEST(Crc32cDispatchTest, ActiveImplIsAvailableAndUsed) {
  const std::vector<Impl> impls = AvailableImpls();
  ASSERT_FALSE(impls.empty());
  EXPECT_EQ(Impl::kPortable, impls.front());
  EXPECT_NE(impls.end(), std::find(impls.begin(), impls.end(), ActiveImpl()));
  const std::vector<uint8_t> buf = RandomBytes(5000, 5);
  EXPECT_EQ(ExtendWith(ActiveImpl(), 0, buf.data(), buf.size()),
            Value(buf.data(), buf.size()));
  EXPECT_STREQ("portable", ImplName(Impl::kPortable));
  EXPECT_STREQ("sse42", ImplName(Impl::kSse42));
  EXPECT_STREQ("avx512", ImplName(Impl::kAvx512));
  EXPECT_STREQ("arm64", ImplName(Impl::kArm64));
}

TEST(Crc32cMaskTest, RoundTrip) {
  EXPECT_EQ(0xa282ead8u, Mask(0));
  const uint32_t crc = Value("foo", 3);
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Unmask(Mask(Mask(crc)))));
  std::mt19937 rng(6);
  for (int i = 0; i < 1000; ++i) {
    uint32_t v = static_cast<uint32_t>(rng());
    ASSERT_EQ(v, Unmask(Mask(v)));
  }
}

TEST(Crc32cCombineTest, MatchesExtend) {
  const std::vector<uint8_t> buf = RandomBytes(3000, 7);
  for (size_t len = 0; len < buf.size();
       len = len < 100 ? len + 1 : len * 3 / 2) {
    for (size_t split : {size_t{0}, len / 3, len}) {
      const uint32_t a = Value(buf.data(), split);
      const uint32_t b = Value(buf.data() + split, len - split);
      ASSERT_EQ(Value(buf.data(), len), Combine(a, b, len - split))
          << "length " << len << " split " << split;
    }
  }
  EXPECT_EQ(0x1234u, Combine(0, 0x1234u, 0));
  EXPECT_EQ(0xabcdu, Combine(0xabcdu, 0, 0));
}

// Extend(crc, n zero bytes), fed through a 1 MiB zero buffer.
uint32_t ExtendZeros(uint32_t crc, uint64_t n) {
  static const std::vector<uint8_t> zeros(1 << 20);
  for (; n > 0;) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, zeros.size()));
    crc = Extend(crc, zeros.data(), chunk);
    n -= chunk;
  }
  return crc;
}

TEST(Crc32cCombineTest, LongRunsOfZeros) {
  const uint32_t a = Value("trackpoint", 10);
  for (uint64_t n : {uint64_t{1}, uint64_t{4095}, uint64_t{1} << 20,
                     (uint64_t{1} << 24) + 3}) {
    ASSERT_EQ(ExtendZeros(a, n), Combine(a, ExtendZeros(0, n), n))
        << "length " << n;
  }
}

// len_b past 2^32: every bit of the length matters. One pass over 4 GiB of
// zeros (fast on the hardware paths, seconds on the portable one).
TEST(Crc32cCombineTest, LengthOver4GiB) {
  const uint64_t n = (uint64_t{1} << 32) + (uint64_t{1} << 20) + 7;
  const uint32_t a = Value("trackpoint", 10);
  // The CRC of n zero bytes is ~(0xffffffff * x^(8n) mod P), and
  // Combine(c, 0, n) is c * x^(8n) mod P.
  const uint32_t zeros = Combine(0xffffffffu, 0, n) ^ 0xffffffffu;
  EXPECT_EQ(ExtendZeros(a, n), Combine(a, zeros, n));
  EXPECT_NE(Combine(a, zeros, n), Combine(a, zeros, n - (uint64_t{1} << 32)));
}

// Shifting by n1 then n2 is shifting by n1 + n2, for lengths up to 2^64.
TEST(Crc32cCombineTest, ShiftsCompose) {
  std::mt19937_64 rng(8);
  for (int i = 0; i < 200; ++i) {
    const uint32_t a = static_cast<uint32_t>(rng());
    const uint64_t n1 = rng() >> (1 + rng() % 63);  // no overflow below
    const uint64_t n2 = rng() >> (1 + rng() % 63);
    ASSERT_EQ(Combine(a, 0, n1 + n2), Combine(Combine(a, 0, n1), 0, n2));
  }
}

}  // namespace
}  // namespace crc32c
}  // namespace trackpoint
