#include "proto/tensor_proto.h"

#include <gtest/gtest.h>

#include <cstring>

#include "proto/wire.h"

namespace trackpoint {
namespace {

TEST(TensorProtoTest, PackedFloats) {
  // float_val packed: 2a 08 <1.0f> <2.0f>
  std::string proto;
  ProtoWriter w(&proto);
  float values[2] = {1.0f, -2.5f};
  w.WriteBytes(5, std::string_view(reinterpret_cast<const char*>(values), 8));
  float out[2] = {0, 0};
  ASSERT_TRUE(DecodeTensorProtoValues(proto, DataType::kFloat, 2,
                                      reinterpret_cast<char*>(out)).ok());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.5f);
}

TEST(TensorProtoTest, UnpackedNegativeInt8AndInt64) {
  std::string proto;
  ProtoWriter w(&proto);
  w.WriteInt32(7, -128);
  w.WriteInt32(7, 127);
  int8_t out8[2] = {0, 0};
  ASSERT_TRUE(DecodeTensorProtoValues(proto, DataType::kInt8, 2,
                                      reinterpret_cast<char*>(out8)).ok());
  EXPECT_EQ(out8[0], -128);
  EXPECT_EQ(out8[1], 127);

  std::string proto64;
  ProtoWriter w64(&proto64);
  w64.WriteInt64(10, std::numeric_limits<int64_t>::min());
  int64_t out64 = 0;
  ASSERT_TRUE(DecodeTensorProtoValues(proto64, DataType::kInt64, 1,
                                      reinterpret_cast<char*>(&out64)).ok());
  EXPECT_EQ(out64, std::numeric_limits<int64_t>::min());
}

TEST(TensorProtoTest, TensorContentIsRawBytes) {
  std::string proto;
  ProtoWriter w(&proto);
  int32_t values[3] = {1, -2, 3};
  w.WriteBytes(4, std::string_view(reinterpret_cast<const char*>(values), 12));
  int32_t out[3] = {};
  ASSERT_TRUE(DecodeTensorProtoValues(proto, DataType::kInt32, 3,
                                      reinterpret_cast<char*>(out)).ok());
  EXPECT_EQ(std::memcmp(out, values, 12), 0);
  EXPECT_FALSE(DecodeTensorProtoValues(proto, DataType::kInt32, 2,
                                       reinterpret_cast<char*>(out)).ok());
}

TEST(TensorProtoTest, WrongCountsAndTypesAreErrors) {
  std::string proto;
  ProtoWriter w(&proto);
  w.WriteInt32(7, 1);
  w.WriteInt32(7, 2);
  int32_t out[3] = {};
  Status fewer = DecodeTensorProtoValues(proto, DataType::kInt32, 3,
                                         reinterpret_cast<char*>(out));
  EXPECT_EQ(fewer.code(), StatusCode::kDataLoss);
  Status more = DecodeTensorProtoValues(proto, DataType::kInt32, 1,
                                        reinterpret_cast<char*>(out));
  EXPECT_EQ(more.code(), StatusCode::kDataLoss);
  Status variant = DecodeTensorProtoValues(proto, DataType::kVariant, 1,
                                           reinterpret_cast<char*>(out));
  EXPECT_EQ(variant.code(), StatusCode::kUnimplemented);
  // float_val as varints: the wire type does not match.
  std::string bad;
  ProtoWriter wb(&bad);
  wb.WriteVarint(5, 1);
  EXPECT_EQ(DecodeTensorProtoValues(bad, DataType::kFloat, 1,
                                    reinterpret_cast<char*>(out)).code(),
            StatusCode::kDataLoss);
}

TEST(TensorProtoTest, TruncatedInputIsDataLoss) {
  std::string proto;
  ProtoWriter w(&proto);
  double values[2] = {1.0, 2.0};
  w.WriteBytes(6, std::string_view(reinterpret_cast<const char*>(values), 16));
  double out[2];
  for (size_t n = 0; n < proto.size(); ++n) {
    EXPECT_FALSE(DecodeTensorProtoValues(proto.substr(0, n), DataType::kDouble, 2,
                                         reinterpret_cast<char*>(out)).ok()) << n;
  }
}

TEST(TensorProtoTest, Strings) {
  std::string proto;
  ProtoWriter w(&proto);
  w.WriteBytes(8, "");
  w.WriteBytes(8, std::string("a\0b", 3));
  auto strings = DecodeTensorProtoStrings(proto, 2);
  ASSERT_TRUE(strings.ok()) << strings.status().ToString();
  EXPECT_EQ((*strings)[0], "");
  EXPECT_EQ((*strings)[1], std::string("a\0b", 3));
  EXPECT_FALSE(DecodeTensorProtoStrings(proto, 1).ok());
  EXPECT_FALSE(DecodeTensorProtoStrings(proto, 3).ok());
}

}  // namespace
}  // namespace trackpoint
