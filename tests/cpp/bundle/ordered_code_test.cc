#include "bundle/ordered_code.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace trackpoint {
namespace {

namespace oc = ordered_code;
using testing::ExactBuffer;
using testing::SpacedHex;
using testing::Unhex;

std::string Unsigned(uint64_t v) {
  std::string s;
  oc::WriteNumIncreasing(&s, v);
  return s;
}

std::string Signed(int64_t v) {
  std::string s;
  oc::WriteSignedNumIncreasing(&s, v);
  return s;
}

std::string String(std::string_view v) {
  std::string s;
  oc::WriteString(&s, v);
  return s;
}

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Interesting signed values: 0, +-1, powers of two and their neighbours
// (both signs), INT64_MIN/MAX.
std::vector<int64_t> InterestingSigned() {
  std::vector<int64_t> out = {0, 1, -1, kMin, kMax, kMin + 1, kMax - 1};
  for (int shift = 0; shift < 63; ++shift) {
    const int64_t p = int64_t{1} << shift;
    for (int64_t v : {p - 1, p, p + 1}) {
      out.push_back(v);
      out.push_back(-v);
    }
  }
  return out;
}

// ---- unsigned ---------------------------------------------------------------

TEST(OrderedCodeTest, UnsignedExamples) {
  EXPECT_EQ(SpacedHex(Unsigned(0)), "00");
  EXPECT_EQ(SpacedHex(Unsigned(1)), "01 01");
  EXPECT_EQ(SpacedHex(Unsigned(255)), "01 ff");
  EXPECT_EQ(SpacedHex(Unsigned(256)), "02 01 00");
  EXPECT_EQ(SpacedHex(Unsigned(std::numeric_limits<uint64_t>::max())),
            "08 ff ff ff ff ff ff ff ff");
}

TEST(OrderedCodeTest, UnsignedRoundTripAndOrder) {
  std::vector<uint64_t> values = {0, std::numeric_limits<uint64_t>::max()};
  for (int shift = 0; shift < 64; ++shift) {
    const uint64_t p = uint64_t{1} << shift;
    values.insert(values.end(), {p - 1, p, p + 1});
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) values.push_back(rng() >> (rng() % 64));
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::string previous;
  for (uint64_t v : values) {
    const std::string enc = Unsigned(v);
    std::string_view in = enc;
    uint64_t out;
    ASSERT_TRUE(oc::ReadNumIncreasing(&in, &out)) << v;
    EXPECT_EQ(out, v);
    EXPECT_TRUE(in.empty());
    if (!previous.empty()) {
      EXPECT_LT(previous, enc) << v;
    }
    previous = enc;
  }
}

TEST(OrderedCodeTest, UnsignedMalformed) {
  for (const char* hex : {"", "01", "02 01", "09 01 02 03 04 05 06 07 08 09",
                          "08 ff ff ff ff ff ff ff"}) {
    const std::string bytes = Unhex(hex);
    ExactBuffer buf(bytes);
    std::string_view in = buf.view();
    uint64_t v;
    EXPECT_FALSE(oc::ReadNumIncreasing(&in, &v)) << hex;
  }
}

TEST(OrderedCodeTest, UnsignedConsumesOnlyItsBytes) {
  std::string bytes = Unsigned(256) + Unsigned(0) + "x";
  std::string_view in = bytes;
  uint64_t a, b;
  ASSERT_TRUE(oc::ReadNumIncreasing(&in, &a));
  ASSERT_TRUE(oc::ReadNumIncreasing(&in, &b));
  EXPECT_EQ(a, 256u);
  EXPECT_EQ(b, 0u);
  EXPECT_EQ(in, "x");
}

// ---- strings ----------------------------------------------------------------

TEST(OrderedCodeTest, StringEscaping) {
  EXPECT_EQ(SpacedHex(String("")), "00 01");
  EXPECT_EQ(SpacedHex(String("emb")), "65 6d 62 00 01");
  EXPECT_EQ(SpacedHex(String(std::string("a\0b\xff", 4))),
            "61 00 ff 62 ff 00 00 01");
  EXPECT_EQ(SpacedHex(String(std::string("\0\0", 2))), "00 ff 00 ff 00 01");
  EXPECT_EQ(SpacedHex(String("\xff\xff")), "ff 00 ff 00 00 01");
}

TEST(OrderedCodeTest, StringRoundTrip) {
  std::mt19937 rng(11);
  const char alphabet[] = {'\0', '\x01', '\xff', '\xfe', 'a', '/'};
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    for (int n = rng() % 12; n > 0; --n) s.push_back(alphabet[rng() % 6]);
    const std::string enc = String(s) + "tail";
    std::string_view in = enc;
    std::string out;
    ASSERT_TRUE(oc::ReadString(&in, &out)) << SpacedHex(enc);
    EXPECT_EQ(out, s);
    EXPECT_EQ(in, "tail");
    // Skipping with a null output consumes the same bytes.
    std::string_view in2 = enc;
    ASSERT_TRUE(oc::ReadString(&in2, nullptr));
    EXPECT_EQ(in2, "tail");
  }
}

TEST(OrderedCodeTest, StringOrderMatchesBytewiseOrder) {
  std::mt19937 rng(12);
  const char alphabet[] = {'\0', '\x01', '\xff', 'a'};
  auto random_string = [&] {
    std::string s;
    for (int n = rng() % 5; n > 0; --n) s.push_back(alphabet[rng() % 4]);
    return s;
  };
  for (int i = 0; i < 5000; ++i) {
    const std::string a = random_string();
    const std::string b = random_string();
    // Followed by more encoded values, as in a slice key.
    const std::string ea = String(a) + Unsigned(rng() % 300);
    const std::string eb = String(b) + Unsigned(rng() % 300);
    if (a < b) {
      EXPECT_LT(ea, eb) << SpacedHex(a) << " vs " << SpacedHex(b);
    }
    if (b < a) {
      EXPECT_LT(eb, ea) << SpacedHex(a) << " vs " << SpacedHex(b);
    }
  }
}

TEST(OrderedCodeTest, StringMalformed) {
  for (const char* hex :
       {"", "61", "00", "ff", "00 02", "00 00", "ff 01", "ff ff", "61 00 ff"}) {
    const std::string bytes = Unhex(hex);
    ExactBuffer buf(bytes);
    std::string_view in = buf.view();
    std::string out;
    EXPECT_FALSE(oc::ReadString(&in, &out)) << hex;
  }
}

TEST(OrderedCodeTest, StringTruncatedAtEveryByte) {
  const std::string enc =
      String(std::string({'a', '\0', '\xff', 'b', 'c', '\0'}));
  for (size_t n = 0; n < enc.size(); ++n) {
    ExactBuffer buf(std::string_view(enc).substr(0, n));
    std::string_view in = buf.view();
    std::string out;
    EXPECT_FALSE(oc::ReadString(&in, &out)) << n;
  }
}

// ---- signed -----------------------------------------------------------------

TEST(OrderedCodeTest, SignedExamples) {
  EXPECT_EQ(SpacedHex(Signed(0)), "80");
  EXPECT_EQ(SpacedHex(Signed(11)), "8b");
  EXPECT_EQ(SpacedHex(Signed(63)), "bf");
  EXPECT_EQ(SpacedHex(Signed(-1)), "7f");
  EXPECT_EQ(SpacedHex(Signed(-64)), "40");
  EXPECT_EQ(SpacedHex(Signed(64)), "c0 40");
  EXPECT_EQ(SpacedHex(Signed(-65)), "3f bf");
  EXPECT_EQ(SpacedHex(Signed(8191)), "df ff");
  EXPECT_EQ(SpacedHex(Signed(8192)), "e0 20 00");
  // 55 bits: the last 8-byte value; 56 bits: the first 9-byte one.
  EXPECT_EQ(SpacedHex(Signed((int64_t{1} << 55) - 1)),
            "ff 7f ff ff ff ff ff ff");
  EXPECT_EQ(SpacedHex(Signed(int64_t{1} << 55)), "ff 80 80 00 00 00 00 00 00");
  EXPECT_EQ(SpacedHex(Signed(-(int64_t{1} << 55))), "00 80 00 00 00 00 00 00");
  // 62 bits: the last 9-byte value; 63 bits need 10 bytes.
  EXPECT_EQ(SpacedHex(Signed((int64_t{1} << 62) - 1)),
            "ff bf ff ff ff ff ff ff ff");
  EXPECT_EQ(SpacedHex(Signed(int64_t{1} << 62)),
            "ff c0 40 00 00 00 00 00 00 00");
  EXPECT_EQ(SpacedHex(Signed(kMax)), "ff c0 7f ff ff ff ff ff ff ff");
  EXPECT_EQ(SpacedHex(Signed(kMin)), "00 3f 80 00 00 00 00 00 00 00");
}

TEST(OrderedCodeTest, SignedLengthFollowsTheFormula) {
  for (int64_t v : InterestingSigned()) {
    const uint64_t x =
        v < 0 ? ~static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    int bits = 0;
    for (uint64_t t = x; t != 0; t >>= 1) ++bits;
    EXPECT_EQ(Signed(v).size(), static_cast<size_t>(bits / 7 + 1)) << v;
  }
}

TEST(OrderedCodeTest, SignedRoundTripAndOrder) {
  std::vector<int64_t> values = InterestingSigned();
  std::mt19937_64 rng(13);
  for (int i = 0; i < 5000; ++i) {
    values.push_back(static_cast<int64_t>(rng()) >> (rng() % 64));
  }
  for (int64_t v = -70000; v <= 70000; v += 7) values.push_back(v);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::string previous;
  for (int64_t v : values) {
    const std::string enc = Signed(v);
    ExactBuffer buf(enc);
    std::string_view in = buf.view();
    int64_t out;
    ASSERT_TRUE(oc::ReadSignedNumIncreasing(&in, &out))
        << v << " " << SpacedHex(enc);
    EXPECT_EQ(out, v) << SpacedHex(enc);
    EXPECT_TRUE(in.empty());
    if (!previous.empty()) {
      EXPECT_LT(previous, enc) << v;
    }
    previous = enc;
  }
}

TEST(OrderedCodeTest, SignedTruncatedAtEveryByte) {
  for (int64_t v : InterestingSigned()) {
    const std::string enc = Signed(v);
    for (size_t n = 0; n < enc.size(); ++n) {
      ExactBuffer buf(std::string_view(enc).substr(0, n));
      std::string_view in = buf.view();
      int64_t out;
      EXPECT_FALSE(oc::ReadSignedNumIncreasing(&in, &out)) << v << " at " << n;
    }
  }
}

TEST(OrderedCodeTest, SignedMalformed) {
  for (const char* hex : {
           "",
           "ff",  // header continues, no byte 2
           "00",
           "ff e0 00 00 00 00 00 00 00 00 00",  // 11-byte header
           "ff ff ff ff ff ff ff ff ff ff ff",
           "00 1f ff ff ff ff ff ff ff ff ff",  // negative, 11-byte header
           "ff c1 00 00 00 00 00 00 00 00",     // 10 bytes, more than 64 bits
           "ff c0 80 00 00 00 00 00 00 00",     // 10 bytes, 2^63
           "00 3f 7f ff ff ff ff ff ff ff",     // 10 bytes, -2^63 - 1
           "00 3e 80 00 00 00 00 00 00 00",
       }) {
    const std::string bytes = Unhex(hex);
    ExactBuffer buf(bytes);
    std::string_view in = buf.view();
    int64_t out;
    EXPECT_FALSE(oc::ReadSignedNumIncreasing(&in, &out)) << hex;
  }
}

TEST(OrderedCodeTest, SignedAcceptsLongerThanMinimalForms) {
  std::string_view in;
  int64_t v;
  const std::string zero2 = Unhex("c0 00");
  in = zero2;
  ASSERT_TRUE(oc::ReadSignedNumIncreasing(&in, &v));
  EXPECT_EQ(v, 0);
  const std::string minus1 = Unhex("3f ff");
  in = minus1;
  ASSERT_TRUE(oc::ReadSignedNumIncreasing(&in, &v));
  EXPECT_EQ(v, -1);
}

TEST(OrderedCodeTest, SignedEveryTwoByteInputIsSafe) {
  for (int a = 0; a < 256; ++a) {
    for (int b = -1; b < 256; ++b) {
      std::string bytes(1, static_cast<char>(a));
      if (b >= 0) bytes.push_back(static_cast<char>(b));
      ExactBuffer buf(bytes);
      std::string_view in = buf.view();
      int64_t v;
      if (!oc::ReadSignedNumIncreasing(&in, &v)) continue;
      // Whatever decodes must survive a canonical round trip.
      const std::string enc = Signed(v);
      std::string_view again = enc;
      int64_t w;
      ASSERT_TRUE(oc::ReadSignedNumIncreasing(&again, &w));
      EXPECT_EQ(v, w);
    }
  }
}

}  // namespace
}  // namespace trackpoint
