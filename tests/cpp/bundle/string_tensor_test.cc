#include "bundle/string_tensor.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include "trackpoint/crc32c.h"

namespace trackpoint {
namespace {

using testing::Unhex;

// FORMAT.md section 12: the payload of Variable(["hi", ""]) and its entry CRC.
TEST(StringTensorTest, EncodesTensorFlowsBytes) {
  std::string payload;
  uint32_t crc = EncodeStringTensor({"hi", ""}, &payload);
  EXPECT_EQ(payload, Unhex("020078270b346869"));
  EXPECT_EQ(crc32c::Mask(crc), 0xed489e9eu);
}

TEST(StringTensorTest, EmptyTensorIsJustTheChecksum) {
  std::string payload;
  uint32_t crc = EncodeStringTensor({}, &payload);
  EXPECT_EQ(payload, Unhex("d8ea82a2"));
  auto decoded = DecodeStringTensor(payload, 0, crc, false, "t");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->empty());
}

TEST(StringTensorTest, RoundTripsBinaryAndLongStrings) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  std::string long_string(70000, 'x');  // 3-byte varint length
  std::vector<std::string_view> elements = {binary, "", long_string, "\0a"};
  std::string payload;
  uint32_t crc = EncodeStringTensor(elements, &payload);
  auto decoded = DecodeStringTensor(payload, elements.size(), crc, false, "t");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), elements.size());
  for (size_t i = 0; i < elements.size(); ++i) {
    EXPECT_EQ((*decoded)[i], elements[i]);
  }
}

TEST(StringTensorTest, EveryFlippedBitIsDetected) {
  std::string payload;
  uint32_t crc = EncodeStringTensor({"hello", "world!"}, &payload);
  for (size_t i = 0; i < payload.size() * 8; ++i) {
    std::string bad = payload;
    bad[i / 8] ^= static_cast<char>(1 << (i % 8));
    auto decoded = DecodeStringTensor(bad, 2, crc, false, "key 'k'");
    ASSERT_FALSE(decoded.ok()) << "bit " << i;
    EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.status().message().find("key 'k'"), std::string::npos);
  }
}

TEST(StringTensorTest, TruncationAndHugeCountsAreErrors) {
  std::string payload;
  uint32_t crc = EncodeStringTensor({"abc", "de"}, &payload);
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(
        DecodeStringTensor(payload.substr(0, n), 2, crc, false, "t").ok());
  }
  // A count far larger than the payload is refused before any allocation.
  auto huge = DecodeStringTensor(payload, uint64_t{1} << 60, crc, false, "t");
  EXPECT_EQ(huge.status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace trackpoint
