#include "table/snappy.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "test_util.h"

namespace trackpoint {
namespace table {
namespace {

using testing::Unhex;

constexpr size_t kCap = size_t{1} << 20;

std::string ReadFixture(const std::string& name) {
  return testing::ReadFileOrDie(testing::FixturePath("snappy/" + name));
}

void ExpectMalformed(std::string_view compressed, size_t cap = kCap) {
  Result<std::string> r = SnappyUncompress(compressed, cap);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("malformed snappy data"),
            std::string::npos);
}

// Streams made by cramjam (a real Snappy implementation); see
// tests/fixtures/snappy/generate.py.
class SnappyFixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SnappyFixtureTest, MatchesTheCompressorsInput) {
  const std::string raw = ReadFixture(std::string(GetParam()) + ".raw");
  const std::string compressed =
      ReadFixture(std::string(GetParam()) + ".snappy");
  ASSERT_FALSE(compressed.empty());
  Result<uint64_t> length = SnappyUncompressedLength(compressed);
  ASSERT_TRUE(length.ok());
  EXPECT_EQ(*length, raw.size());
  Result<std::string> r = SnappyUncompress(compressed, kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, raw);
  // Exactly the claimed length is allowed as the cap; one less is not.
  EXPECT_TRUE(SnappyUncompress(compressed, raw.size()).ok());
  if (!raw.empty()) ExpectMalformed(compressed, raw.size() - 1);
}

TEST_P(SnappyFixtureTest, EveryTruncationIsMalformed) {
  const std::string compressed =
      ReadFixture(std::string(GetParam()) + ".snappy");
  for (size_t n = 0; n < compressed.size(); ++n) {
    ExpectMalformed(std::string_view(compressed).substr(0, n));
  }
}

TEST_P(SnappyFixtureTest, DamageNeverCrashes) {
  const std::string compressed =
      ReadFixture(std::string(GetParam()) + ".snappy");
  if (compressed.empty()) return;
  std::mt19937 rng(1);
  for (int round = 0; round < 500; ++round) {
    std::string damaged = compressed;
    for (int k = 0; k < 3; ++k) {
      damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    Result<std::string> r = SnappyUncompress(damaged, kCap);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cramjam, SnappyFixtureTest,
                         ::testing::Values("empty", "short_literal", "run",
                                           "keys", "far_copy", "random_short",
                                           "random"));

// Element kinds real compressors never emit (they work on 64 KiB fragments).
TEST(SnappyTest, CopyWithFourByteOffset) {
  // preamble 8, literal "abcd", copy-4 length 4 offset 4.
  Result<std::string> r =
      SnappyUncompress(Unhex("080c616263640f04000000"), kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "abcdabcd");
}

TEST(SnappyTest, LiteralLengthInThreeAndFourBytes) {
  const std::string payload(100, 'q');
  Result<std::string> r = SnappyUncompress(Unhex("64f8630000") + payload, kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, payload);
  r = SnappyUncompress(Unhex("64fc63000000") + payload, kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, payload);
}

TEST(SnappyTest, OverlappingCopies) {
  // "a", then copy-1 length 10 offset 1; then copy-2 length 3 offset 2.
  Result<std::string> r = SnappyUncompress(Unhex("0e00611901"
                                                 "0a0200"),
                                           kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, std::string(14, 'a'));
  // copy-1 with the high offset bits in the tag: offset 256 + 4.
  std::string raw(260, '\0');
  for (int i = 0; i < 260; ++i) raw[i] = static_cast<char>(i * 7);
  std::string stream = Unhex(
      "8802"
      "f40301");  // length 264; literal of 260
  stream += raw;
  stream += Unhex("2104");  // copy-1 len 4, offset 0x104
  r = SnappyUncompress(stream, kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, raw + raw.substr(0, 4));
}

TEST(SnappyTest, Malformed) {
  ExpectMalformed("");                     // no preamble
  ExpectMalformed(Unhex("ffffffffff"));    // unterminated
  ExpectMalformed(Unhex("ffffffff7f"));    // more than 32 bits
  ExpectMalformed(Unhex("0500"));          // claims 5, no output
  ExpectMalformed(Unhex("0104") + "ab");   // literal past output
  ExpectMalformed(Unhex("0a24") + "abc");  // literal past input
  ExpectMalformed(Unhex("0af0"));          // literal length missing
  ExpectMalformed(Unhex("0af801"));        // literal length short
  ExpectMalformed(
      Unhex("050061"
            "0100"));  // copy offset 0
  ExpectMalformed(
      Unhex("050061"
            "0102"));  // copy before start
  ExpectMalformed(
      Unhex("050061"
            "0e0200"));  // copy-2 before start
  ExpectMalformed(
      Unhex("050061"
            "0f02000000"));  // copy-4 before start
  ExpectMalformed(
      Unhex("050061"
            "0f00000080"));  // copy-4 huge offset
  ExpectMalformed(
      Unhex("030061"
            "0101"));  // copy past output
  ExpectMalformed(
      Unhex("050061"
            "01"));  // copy-1 truncated
  ExpectMalformed(
      Unhex("050061"
            "0e01"));  // copy-2 truncated
  ExpectMalformed(
      Unhex("050061"
            "0f010000"));  // copy-4 truncated
  ExpectMalformed(
      Unhex("0300"
            "61"
            "00"
            "62"));  // stops short of 3
}

TEST(SnappyTest, LengthClaimsAreCheckedBeforeAllocating) {
  // 4 GiB - 1 claimed by a 6-byte stream: more than any stream of that size
  // can produce, refused without allocating.
  ExpectMalformed(Unhex("ffffffff0f00"), ~size_t{0});
  // Above the caller's cap.
  ExpectMalformed(Unhex("e807"), 999);
  // A copy-2 of 64 bytes is the best ratio: 3 bytes -> 64 bytes.
  Result<std::string> r = SnappyUncompress(Unhex("41"
                                                 "00"
                                                 "61"
                                                 "fe0100"),
                                           kCap);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, std::string(65, 'a'));
}

TEST(SnappyTest, UncompressedLength) {
  Result<uint64_t> n = SnappyUncompressedLength(Unhex("e807ffff"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1000u);
  EXPECT_FALSE(SnappyUncompressedLength("").ok());
  EXPECT_FALSE(SnappyUncompressedLength(Unhex("80")).ok());
}

}  // namespace
}  // namespace table
}  // namespace trackpoint
