#include "bundle/variant_tensor.h"

#include <gtest/gtest.h>

#include "trackpoint/crc32c.h"

namespace trackpoint {
namespace {

TEST(VariantTensorTest, LayoutIsLengthElementChecksum) {
  std::string payload;
  uint32_t crc = EncodeVariantTensor({"ab"}, &payload);
  // varint 2, "ab", then mask(crc over the 8-byte length and "ab").
  ASSERT_EQ(payload.size(), 1u + 2u + 4u);
  EXPECT_EQ(payload.substr(0, 3), std::string("\x02" "ab", 3));
  const char length[8] = {2, 0, 0, 0, 0, 0, 0, 0};
  uint32_t running = crc32c::Extend(crc32c::Extend(0, length, 8), "ab", 2);
  uint32_t stored = static_cast<uint8_t>(payload[3]) |
                    static_cast<uint8_t>(payload[4]) << 8 |
                    static_cast<uint8_t>(payload[5]) << 16 |
                    static_cast<uint32_t>(static_cast<uint8_t>(payload[6])) << 24;
  EXPECT_EQ(stored, crc32c::Mask(running));
  EXPECT_EQ(crc, crc32c::Extend(running, payload.data() + 3, 4));
}

TEST(VariantTensorTest, RoundTripsElements) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  std::vector<std::string_view> elements = {binary, "", "proto"};
  std::string payload;
  uint32_t crc = EncodeVariantTensor(elements, &payload);
  auto decoded = DecodeVariantTensor(payload, 3, crc, false, "t");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*decoded)[i], elements[i]);
}

TEST(VariantTensorTest, EveryFlippedBitIsDetected) {
  std::string payload;
  uint32_t crc = EncodeVariantTensor({"hello", "world!"}, &payload);
  for (size_t i = 0; i < payload.size() * 8; ++i) {
    std::string bad = payload;
    bad[i / 8] ^= static_cast<char>(1 << (i % 8));
    auto decoded = DecodeVariantTensor(bad, 2, crc, false, "key 'k'");
    ASSERT_FALSE(decoded.ok()) << "bit " << i;
    EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.status().message().find("key 'k'"), std::string::npos);
  }
}

TEST(VariantTensorTest, TruncationTrailingBytesAndHugeCounts) {
  std::string payload;
  uint32_t crc = EncodeVariantTensor({"abc", "de"}, &payload);
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(DecodeVariantTensor(payload.substr(0, n), 2, crc, false, "t").ok())
        << n;
  }
  EXPECT_FALSE(DecodeVariantTensor(payload + "x", 2, crc, false, "t").ok());
  EXPECT_FALSE(DecodeVariantTensor(payload, 1, crc, false, "t").ok());
  auto huge = DecodeVariantTensor(payload, uint64_t{1} << 62, crc, false, "t");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace trackpoint
