#include "proto/wire.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace trackpoint {
namespace {

using testing::ExactBuffer;
using testing::SpacedHex;

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

TEST(ProtoWriterTest, Varints) {
  std::string out;
  ProtoWriter w(&out);
  w.WriteVarint(1, 0);
  w.WriteVarint(1, 300);
  w.WriteVarint(2, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(SpacedHex(out), "08 00 08 ac 02 10 ff ff ff ff ff ff ff ff ff 01");
}

TEST(ProtoWriterTest, NegativeIntegersTakeTenBytes) {
  std::string out;
  ProtoWriter w(&out);
  w.WriteInt32(1, -1);
  EXPECT_EQ(SpacedHex(out), "08 ff ff ff ff ff ff ff ff ff 01");
  out.clear();
  w.WriteInt64(1, -1);
  EXPECT_EQ(SpacedHex(out), "08 ff ff ff ff ff ff ff ff ff 01");
  out.clear();
  w.WriteInt32(1, std::numeric_limits<int32_t>::min());
  EXPECT_EQ(SpacedHex(out), "08 80 80 80 80 f8 ff ff ff ff 01");
  out.clear();
  w.WriteInt64(1, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(SpacedHex(out), "08 80 80 80 80 80 80 80 80 80 01");
}

TEST(ProtoWriterTest, FixedBytesAndBool) {
  std::string out;
  ProtoWriter w(&out);
  w.WriteFixed32(6, 0x173ddbc0);
  w.WriteFixed64(1, 0x0102030405060708);
  w.WriteBytes(2, "hi");
  w.WriteMessage(3, "");
  w.WriteBool(4, true);
  w.WriteBool(4, false);
  EXPECT_EQ(SpacedHex(out),
            "35 c0 db 3d 17 09 08 07 06 05 04 03 02 01 12 02 68 69 1a 00 "
            "20 01 20 00");
}

TEST(ProtoWriterTest, LargeFieldNumbers) {
  std::string out;
  ProtoWriter w(&out);
  w.WriteVarint(16, 1);
  w.WriteVarint(kMaxFieldNumber, 1);
  EXPECT_EQ(SpacedHex(out), "80 01 01 f8 ff ff ff 0f 01");
}

TEST(ProtoWriterTest, PackedInt32) {
  std::string out;
  ProtoWriter w(&out);
  w.WritePackedInt32(3, {});
  EXPECT_EQ(out, "");
  w.WritePackedInt32(3, {1, 300, -1});
  EXPECT_EQ(SpacedHex(out), "1a 0d 01 ac 02 ff ff ff ff ff ff ff ff ff 01");
}

TEST(ProtoReaderTest, ReadsWhatTheWriterWrote) {
  std::string out;
  ProtoWriter w(&out);
  w.WriteVarint(1, 300);
  w.WriteInt32(2, -7);
  w.WriteInt64(3, std::numeric_limits<int64_t>::min());
  w.WriteFixed32(4, 0xdeadbeef);
  w.WriteFixed64(5, 0x0123456789abcdef);
  w.WriteBytes(6, std::string("a\0b", 3));
  w.WriteBool(7, true);
  w.WriteVarint(kMaxFieldNumber, 9);

  ProtoReader r(out);
  uint64_t u;
  int32_t i32;
  int64_t i64;
  uint32_t f32;
  uint64_t f64;
  std::string_view bytes;
  bool b;
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.field(), 1u);
  EXPECT_EQ(r.wire_type(), WireType::kVarint);
  ASSERT_TRUE(r.ReadVarint(&u));
  EXPECT_EQ(u, 300u);
  ASSERT_TRUE(r.Next());
  ASSERT_TRUE(r.ReadInt32(&i32));
  EXPECT_EQ(i32, -7);
  ASSERT_TRUE(r.Next());
  ASSERT_TRUE(r.ReadInt64(&i64));
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.wire_type(), WireType::kFixed32);
  ASSERT_TRUE(r.ReadFixed32(&f32));
  EXPECT_EQ(f32, 0xdeadbeefu);
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.wire_type(), WireType::kFixed64);
  ASSERT_TRUE(r.ReadFixed64(&f64));
  EXPECT_EQ(f64, 0x0123456789abcdefu);
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.wire_type(), WireType::kLengthDelimited);
  ASSERT_TRUE(r.ReadBytes(&bytes));
  EXPECT_EQ(bytes, std::string_view("a\0b", 3));
  ASSERT_TRUE(r.Next());
  ASSERT_TRUE(r.ReadBool(&b));
  EXPECT_TRUE(b);
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.field(), kMaxFieldNumber);
  ASSERT_TRUE(r.ReadVarint(&u));
  EXPECT_EQ(u, 9u);
  EXPECT_FALSE(r.Next());
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.position(), out.size());
}

TEST(ProtoReaderTest, Int32TruncatesToLow32Bits) {
  // 2^32 + 5 as a varint: an int32 field reads 5, as protobuf does.
  std::string out;
  ProtoWriter(&out).WriteVarint(1, (uint64_t{1} << 32) + 5);
  ProtoReader r(out);
  int32_t v;
  ASSERT_TRUE(r.Next());
  ASSERT_TRUE(r.ReadInt32(&v));
  EXPECT_EQ(v, 5);
}

TEST(ProtoReaderTest, EmptyInput) {
  ProtoReader r("");
  EXPECT_FALSE(r.Next());
  EXPECT_TRUE(r.ok());
}

TEST(ProtoReaderTest, SkipsEveryWireTypeAutomaticallyAndExplicitly) {
  const std::string msg =
      Bytes({0x08, 0x96, 0x01,                        // 1: varint
             0x11, 1,    2,    3,   4,   5, 6, 7, 8,  // 2: fixed64
             0x1a, 0x03, 'a',  'b', 'c',              // 3: bytes
             0x25, 1,    2,    3,   4,                // 4: fixed32
             0x28, 0x2a});                            // 5: varint 42
  for (bool explicit_skip : {false, true}) {
    ProtoReader r(msg);
    int seen = 0;
    while (r.Next()) {
      ++seen;
      if (r.field() == 5) {
        uint64_t v;
        ASSERT_TRUE(r.ReadVarint(&v));
        EXPECT_EQ(v, 42u);
      } else if (explicit_skip) {
        ASSERT_TRUE(r.Skip()) << r.error();
      }
    }
    EXPECT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(seen, 5);
  }
}

TEST(ProtoReaderTest, GroupsAreErrors) {
  for (int type : {3, 4}) {
    const std::string r_bytes = Bytes({0x08 | type, 0x00});
    ProtoReader r(r_bytes);
    ASSERT_TRUE(r.Next());
    EXPECT_FALSE(r.Skip());
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error().find("group"), std::string::npos) << r.error();
    EXPECT_FALSE(r.Next());
  }
  // Also when the group is skipped implicitly by Next().
  const std::string r_bytes = Bytes({0x0b, 0x0c});
  ProtoReader r(r_bytes);
  ASSERT_TRUE(r.Next());
  EXPECT_FALSE(r.Next());
  EXPECT_FALSE(r.ok());
}

TEST(ProtoReaderTest, InvalidWireTypes) {
  for (int type : {6, 7}) {
    const std::string r_bytes = Bytes({0x08 | type, 0x00});
    ProtoReader r(r_bytes);
    EXPECT_FALSE(r.Next());
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error().find("wire type"), std::string::npos) << r.error();
  }
}

TEST(ProtoReaderTest, InvalidFieldNumbers) {
  // Field 0.
  {
    const std::string r_bytes = Bytes({0x00, 0x01});
    ProtoReader r(r_bytes);
    EXPECT_FALSE(r.Next());
    EXPECT_NE(r.error().find("field number 0"), std::string::npos);
  }
  // Field 2^29: tag (2^29 << 3) = 2^32, a 5-byte varint.
  {
    const std::string r_bytes = Bytes({0x80, 0x80, 0x80, 0x80, 0x10, 0x00});
    ProtoReader r(r_bytes);
    EXPECT_FALSE(r.Next());
    EXPECT_FALSE(r.ok());
  }
  // A tag far beyond 32 bits.
  {
    const std::string r_bytes =
        Bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00});
    ProtoReader r(r_bytes);
    EXPECT_FALSE(r.Next());
    EXPECT_FALSE(r.ok());
  }
}

TEST(ProtoReaderTest, WireTypeMismatchIsAnError) {
  std::string msg = Bytes({0x0a, 0x01, 0x00});  // field 1, length-delimited
  ProtoReader r(msg);
  ASSERT_TRUE(r.Next());
  uint64_t v;
  EXPECT_FALSE(r.ReadVarint(&v));
  EXPECT_NE(r.error().find("expected varint"), std::string::npos) << r.error();
  // Sticky.
  EXPECT_FALSE(r.Next());
  std::string_view b;
  EXPECT_FALSE(r.ReadBytes(&b));
}

TEST(ProtoReaderTest, ReadWithoutCurrentField) {
  const std::string r_bytes = Bytes({0x08, 0x01});
  ProtoReader r(r_bytes);
  uint64_t v;
  EXPECT_FALSE(r.ReadVarint(&v));
  EXPECT_FALSE(r.ok());
  const std::string r2_bytes = Bytes({0x08, 0x01});
  ProtoReader r2(r2_bytes);
  ASSERT_TRUE(r2.Next());
  ASSERT_TRUE(r2.ReadVarint(&v));
  EXPECT_FALSE(r2.ReadVarint(&v));  // value already consumed
  EXPECT_FALSE(r2.ok());
}

TEST(ProtoReaderTest, ElevenByteVarintIsAnError) {
  std::string msg = Bytes({0x08});
  for (int i = 0; i < 10; ++i) msg.push_back(static_cast<char>(0x80));
  msg.push_back(0x00);
  ProtoReader r(msg);
  ASSERT_TRUE(r.Next());
  uint64_t v;
  EXPECT_FALSE(r.ReadVarint(&v));
  EXPECT_NE(r.error().find("varint"), std::string::npos);
}

TEST(ProtoReaderTest, TenByteVarintAbove64BitsIsAnError) {
  // Tenth byte 0x02 would set bit 64.
  std::string msg =
      Bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02});
  ProtoReader r(msg);
  ASSERT_TRUE(r.Next());
  uint64_t v;
  EXPECT_FALSE(r.ReadVarint(&v));
}

TEST(ProtoReaderTest, LengthLargerThanInput) {
  for (const std::string& msg :
       {Bytes({0x0a, 0x05, 'a', 'b'}),
        // Length 2^63: must not overflow the bounds check.
        Bytes(
            {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}),
        // Length 2^64 - 1.
        Bytes({0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
               'x'})}) {
    ExactBuffer buf(msg);
    ProtoReader r(buf.view());
    ASSERT_TRUE(r.Next());
    std::string_view b;
    EXPECT_FALSE(r.ReadBytes(&b));
    EXPECT_NE(r.error().find("exceeds"), std::string::npos) << r.error();
  }
}

TEST(ProtoReaderTest, TruncationAtEveryByte) {
  std::string msg;
  ProtoWriter w(&msg);
  w.WriteVarint(1, 1ull << 40);
  w.WriteFixed64(2, 7);
  w.WriteBytes(3, "hello");
  w.WriteFixed32(4, 9);
  w.WriteInt32(5, -3);
  // Field boundaries: a prefix ending there is a valid (shorter) message.
  std::vector<size_t> boundaries = {0};
  {
    ProtoReader r(msg);
    while (r.Next()) {
      ASSERT_TRUE(r.Skip());
      boundaries.push_back(r.position());
    }
    ASSERT_TRUE(r.ok());
  }
  for (size_t n = 0; n < msg.size(); ++n) {
    ExactBuffer buf(std::string_view(msg).substr(0, n));
    ProtoReader r(buf.view());
    while (r.Next()) {
    }
    const bool at_boundary =
        std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
    EXPECT_EQ(r.ok(), at_boundary) << "prefix " << n << ": " << r.error();
  }
}

TEST(ProtoReaderTest, BitFlipsNeverCrash) {
  std::string msg;
  ProtoWriter w(&msg);
  w.WriteVarint(1, 300);
  w.WriteBytes(2, "abc");
  w.WriteFixed32(3, 1);
  w.WriteFixed64(4, 2);
  for (size_t i = 0; i < msg.size() * 8; ++i) {
    std::string flipped = msg;
    flipped[i / 8] = static_cast<char>(flipped[i / 8] ^ (1 << (i % 8)));
    ExactBuffer buf(flipped);
    ProtoReader r(buf.view());
    while (r.Next()) {
    }
    EXPECT_LE(r.position(), flipped.size());
  }
}

}  // namespace
}  // namespace trackpoint
