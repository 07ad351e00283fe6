#include "bundle/slice_key.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "test_util.h"

namespace trackpoint {
namespace {

using testing::ExactBuffer;
using testing::SpacedHex;

constexpr int64_t kFull = SliceExtent::kFullExtent;

// ---- FORMAT.md 6.2 examples (written by TensorFlow) ------------------------

TEST(SliceKeyTest, VariableRowsExample) {
  const std::string name = "v1/.ATTRIBUTES/VARIABLE_VALUE";
  const TensorSlice slice{{{0, 11}}};
  const std::string key = EncodeTensorNameSlice(name, slice);
  EXPECT_EQ(SpacedHex(key), "00 " + SpacedHex(name) + " 00 01 01 01 80 8b");
  std::string decoded_name;
  TensorSlice decoded;
  ASSERT_TRUE(DecodeTensorNameSlice(key, &decoded_name, &decoded));
  EXPECT_EQ(decoded_name, name);
  EXPECT_EQ(decoded, slice);
}

TEST(SliceKeyTest, PartitionedEmbeddingExample) {
  // "emb" [10,4], rows [4,7), columns spelled out as 0,4.
  const TensorSlice slice{{{4, 3}, {0, 4}}};
  const std::string key = EncodeTensorNameSlice("emb", slice);
  EXPECT_EQ(SpacedHex(key), "00 65 6d 62 00 01 01 02 84 83 80 84");
  std::string name;
  TensorSlice decoded;
  ASSERT_TRUE(DecodeTensorNameSlice(key, &name, &decoded));
  EXPECT_EQ(name, "emb");
  EXPECT_EQ(decoded, slice);
}

TEST(SliceKeyTest, FullDimensionIsStartZeroLengthMinusOne) {
  const TensorSlice slice{{{4, 3}, {0, kFull}}};
  const std::string key = EncodeTensorNameSlice("emb", slice);
  EXPECT_EQ(SpacedHex(key), "00 65 6d 62 00 01 01 02 84 83 80 7f");
  std::string name;
  TensorSlice decoded;
  ASSERT_TRUE(DecodeTensorNameSlice(key, &name, &decoded));
  EXPECT_EQ(decoded, slice);
}

TEST(SliceKeyTest, ScalarAndEscapedNames) {
  const std::string name("a\0b\xff", 4);
  const std::string key = EncodeTensorNameSlice(name, TensorSlice{});
  EXPECT_EQ(SpacedHex(key), "00 61 00 ff 62 ff 00 00 01 00");
  std::string decoded_name;
  TensorSlice decoded{{{1, 1}}};
  ASSERT_TRUE(DecodeTensorNameSlice(key, &decoded_name, &decoded));
  EXPECT_EQ(decoded_name, name);
  EXPECT_TRUE(decoded.extents.empty());
}

TEST(SliceKeyTest, SliceKeysSortBeforeNamesAndAfterTheHeader) {
  const std::string key = EncodeTensorNameSlice("zzz", TensorSlice{{{0, 1}}});
  EXPECT_TRUE(IsSliceKey(key));
  EXPECT_LT(std::string(), key);
  EXPECT_LT(key, std::string("\x01"));
  EXPECT_LT(key, std::string("_CHECKPOINTABLE_OBJECT_GRAPH"));
  EXPECT_FALSE(IsSliceKey(""));
  EXPECT_FALSE(IsSliceKey("v/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_TRUE(IsSliceKey(std::string_view("\0", 1)));
}

TEST(SliceKeyTest, SameNameSlicesSortByStart) {
  const std::string a =
      EncodeTensorNameSlice("w", TensorSlice{{{0, 4}, {0, kFull}}});
  const std::string b =
      EncodeTensorNameSlice("w", TensorSlice{{{4, 6}, {0, kFull}}});
  const std::string c = EncodeTensorNameSlice("w2", TensorSlice{{{0, 1}}});
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(SliceKeyTest, RandomRoundTrip) {
  std::mt19937_64 rng(5);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int i = 0; i < 2000; ++i) {
    std::string name;
    for (int64_t n = pick(0, 20); n > 0; --n) {
      name.push_back(static_cast<char>(pick(0, 255)));
    }
    TensorSlice slice;
    for (int64_t d = pick(0, 6); d > 0; --d) {
      if (pick(0, 3) == 0) {
        slice.extents.push_back({0, kFull});
      } else {
        slice.extents.push_back(
            {pick(0, 1) ? pick(0, 100)
                        : pick(0, std::numeric_limits<int64_t>::max()),
             pick(0, 1) ? pick(0, 100)
                        : pick(0, std::numeric_limits<int64_t>::max())});
      }
    }
    const std::string key = EncodeTensorNameSlice(name, slice);
    ExactBuffer buf(key);
    std::string decoded_name;
    TensorSlice decoded;
    ASSERT_TRUE(DecodeTensorNameSlice(buf.view(), &decoded_name, &decoded))
        << SpacedHex(key);
    EXPECT_EQ(decoded_name, name);
    EXPECT_EQ(decoded, slice);
  }
}

TEST(SliceKeyTest, TruncatedAtEveryByte) {
  const std::string key = EncodeTensorNameSlice(
      std::string("e\0m", 3),
      TensorSlice{{{4, 3}, {0, kFull}, {1 << 20, 70000}}});
  for (size_t n = 0; n < key.size(); ++n) {
    ExactBuffer buf(std::string_view(key).substr(0, n));
    std::string name;
    TensorSlice slice;
    EXPECT_FALSE(DecodeTensorNameSlice(buf.view(), &name, &slice)) << n;
  }
}

TEST(SliceKeyTest, MalformedKeys) {
  const std::string good = EncodeTensorNameSlice("emb", TensorSlice{{{4, 3}}});
  std::string name;
  TensorSlice slice;
  // Trailing bytes.
  EXPECT_FALSE(DecodeTensorNameSlice(good + "x", &name, &slice));
  // Not starting with the number 0.
  std::string bad = good;
  bad.replace(0, 1, std::string("\x01\x01", 2));
  EXPECT_FALSE(DecodeTensorNameSlice(bad, &name, &slice));
  // A plain tensor name.
  EXPECT_FALSE(DecodeTensorNameSlice("emb", &name, &slice));
  EXPECT_FALSE(DecodeTensorNameSlice("", &name, &slice));
  // A rank far beyond what the key could hold.
  // 00 | "a" 00 01 | rank 2^64-1 | 80 80
  std::string huge_rank("\0a\0\x01\x08", 5);
  huge_rank += std::string(8, '\xff') + "\x80\x80";
  EXPECT_FALSE(DecodeTensorNameSlice(huge_rank, &name, &slice));
  // Rank 2, and the second extent's length cut off: 00 | "a" 00 01 | 01 02 |
  // 80 80 | 80 c0.
  const std::string short_rank("\0a\0\x01\x01\x02\x80\x80\x80\xc0", 10);
  EXPECT_FALSE(DecodeTensorNameSlice(short_rank, &name, &slice));
}

TEST(SliceKeyTest, BitFlipsNeverCrash) {
  const std::string key =
      EncodeTensorNameSlice("emb", TensorSlice{{{4, 3}, {0, kFull}}});
  for (size_t i = 0; i < key.size() * 8; ++i) {
    std::string flipped = key;
    flipped[i / 8] = static_cast<char>(flipped[i / 8] ^ (1 << (i % 8)));
    ExactBuffer buf(flipped);
    std::string name;
    TensorSlice slice;
    (void)DecodeTensorNameSlice(buf.view(), &name, &slice);
  }
}

// ---- slice spec strings (FORMAT.md 6.3) -------------------------------------

TEST(SliceSpecTest, Parse) {
  Result<TensorSlice> a = ParseSliceSpec("4,3:0,4");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, (TensorSlice{{{4, 3}, {0, 4}}}));
  Result<TensorSlice> b = ParseSliceSpec("0,11");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (TensorSlice{{{0, 11}}}));
  Result<TensorSlice> c = ParseSliceSpec("-:2,0:-");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (TensorSlice{{{0, kFull}, {2, 0}, {0, kFull}}}));
  Result<TensorSlice> d = ParseSliceSpec("");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->extents.empty());
  Result<TensorSlice> e = ParseSliceSpec("9223372036854775807,0");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->extents[0].start, std::numeric_limits<int64_t>::max());
}

TEST(SliceSpecTest, ParseErrors) {
  for (const char* spec :
       {"4", "4,", ",3", "4,3,2", "a,b", "4,3:", ":4,3", "4,3::0,1", "-1,2",
        "1,-2", "1,-1", "+1,2", " 1,2", "1,2 ", "--", "9223372036854775808,1",
        "1,99999999999999999999", "0x10,1"}) {
    Result<TensorSlice> r = ParseSliceSpec(spec);
    EXPECT_FALSE(r.ok()) << spec;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << spec;
  }
  EXPECT_NE(ParseSliceSpec("4,x").status().message().find("\"4,x\""),
            std::string::npos);
}

TEST(SliceSpecTest, StringRoundTrip) {
  for (const char* spec : {"4,3:0,4", "-", "-:-", "0,11", "", "7,0:-:1,1"}) {
    Result<TensorSlice> parsed = ParseSliceSpec(spec);
    ASSERT_TRUE(parsed.ok()) << spec;
    EXPECT_EQ(SliceSpecString(*parsed), spec);
  }
  EXPECT_EQ(SliceSpecString(TensorSlice{{{4, 3}, {0, kFull}}}), "4,3:-");
}

}  // namespace
}  // namespace trackpoint
