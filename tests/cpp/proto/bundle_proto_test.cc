#include "proto/bundle_proto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "proto/wire.h"
#include "test_util.h"

namespace trackpoint {
namespace {

using testing::ExactBuffer;
using testing::SpacedHex;
using testing::Unhex;

bool SameEntry(const BundleEntry& a, const BundleEntry& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.shard_id == b.shard_id &&
         a.offset == b.offset && a.size == b.size && a.crc32c == b.crc32c &&
         a.slices == b.slices;
}

bool SameHeader(const BundleHeader& a, const BundleHeader& b) {
  return a.num_shards == b.num_shards && a.endianness == b.endianness &&
         a.version.producer == b.version.producer &&
         a.version.min_consumer == b.version.min_consumer &&
         a.version.bad_consumers == b.version.bad_consumers;
}

BundleEntry MakeEntry(DataType dtype, std::vector<int64_t> dims, int64_t offset,
                      int64_t size, uint32_t crc) {
  BundleEntry e;
  e.dtype = dtype;
  e.shape.dims = std::move(dims);
  e.offset = offset;
  e.size = size;
  e.crc32c = crc;
  return e;
}

BundleHeader StandardHeader() {
  BundleHeader h;
  h.num_shards = 1;
  h.version.producer = kBundleVersionProducer;
  return h;
}

// Offsets just past each top-level field of msg (and 0): the prefixes that
// are themselves complete messages.
std::vector<size_t> FieldBoundaries(std::string_view msg) {
  std::vector<size_t> out = {0};
  ProtoReader r(msg);
  while (r.Next()) {
    EXPECT_TRUE(r.Skip());
    out.push_back(r.position());
  }
  EXPECT_TRUE(r.ok());
  return out;
}

// ---- golden bytes (FORMAT.md 4.2, 4.4, 12; written by TensorFlow 2.21) ------

struct GoldenEntry {
  const char* what;
  BundleEntry entry;
  const char* hex;
};

std::vector<GoldenEntry> GoldenEntries() {
  return {
      {"float32 [2,3] at offset 8",
       MakeEntry(DataType::kFloat, {2, 3}, 8, 24, 0x173ddbc0),
       "08 01 12 08 12 02 08 02 12 02 08 03 20 08 28 18 35 c0 db 3d 17"},
      {"int64 scalar at offset 0",
       MakeEntry(DataType::kInt64, {}, 0, 8, 0x41de7501),
       "08 09 12 00 28 08 35 01 75 de 41"},
      {"empty float32 [0,3]",
       MakeEntry(DataType::kFloat, {0, 3}, 70, 0, 0xa282ead8),
       "08 01 12 06 12 00 12 02 08 03 20 46 35 d8 ea 82 a2"},
      {"_CHECKPOINTABLE_OBJECT_GRAPH",
       MakeEntry(DataType::kString, {}, 16, 154, 0x1701ab63),
       "08 07 12 00 20 10 28 9a 01 35 63 ab 01 17"},
      {"s/.ATTRIBUTES/VARIABLE_VALUE",
       MakeEntry(DataType::kString, {2}, 0, 8, 0xed489e9e),
       "08 07 12 04 12 02 08 02 28 08 35 9e 9e 48 ed"},
      {"v/.ATTRIBUTES/VARIABLE_VALUE",
       MakeEntry(DataType::kFloat, {2}, 8, 8, 0x35e53c59),
       "08 01 12 04 12 02 08 02 20 08 28 08 35 59 3c e5 35"},
  };
}

TEST(BundleProtoTest, GoldenEntriesSerializeExactly) {
  for (const GoldenEntry& g : GoldenEntries()) {
    EXPECT_EQ(SpacedHex(SerializeBundleEntry(g.entry)), SpacedHex(Unhex(g.hex)))
        << g.what;
  }
}

TEST(BundleProtoTest, GoldenEntriesParse) {
  for (const GoldenEntry& g : GoldenEntries()) {
    Result<BundleEntry> parsed = ParseBundleEntry(Unhex(g.hex));
    ASSERT_TRUE(parsed.ok()) << g.what << ": " << parsed.status().ToString();
    EXPECT_TRUE(SameEntry(*parsed, g.entry)) << g.what;
  }
}

TEST(BundleProtoTest, GoldenHeader) {
  const std::string bytes = Unhex("08 01 1a 02 08 01");
  EXPECT_EQ(SerializeBundleHeader(StandardHeader()), bytes);
  Result<BundleHeader> parsed = ParseBundleHeader(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(SameHeader(*parsed, StandardHeader()));
}

TEST(BundleProtoTest, BigEndianHeader) {
  BundleHeader h = StandardHeader();
  h.endianness = Endianness::kBig;
  const std::string bytes = Unhex("08 01 10 01 1a 02 08 01");
  EXPECT_EQ(SerializeBundleHeader(h), bytes);
  Result<BundleHeader> parsed = ParseBundleHeader(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->endianness, Endianness::kBig);
}

TEST(BundleProtoTest, HeaderWithoutVersionParses) {
  // Bundles from before the version field existed.
  Result<BundleHeader> parsed = ParseBundleHeader(Unhex("08 02"));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->num_shards, 2);
  EXPECT_EQ(parsed->version.producer, 0);
  // The version message is always written, even when empty.
  EXPECT_EQ(SpacedHex(SerializeBundleHeader(BundleHeader())), "1a 00");
}

TEST(BundleProtoTest, GoldenShape) {
  TensorShape shape{{2, 3}};
  EXPECT_EQ(SpacedHex(SerializeTensorShape(shape)), "12 02 08 02 12 02 08 03");
  Result<TensorShape> parsed =
      ParseTensorShape(Unhex("12 02 08 02 12 02 08 03"));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, shape);
  // A zero-size dimension is an empty Dim; a scalar is an empty shape.
  EXPECT_EQ(SpacedHex(SerializeTensorShape(TensorShape{{0}})), "12 00");
  EXPECT_EQ(SerializeTensorShape(TensorShape{}), "");
}

TEST(BundleProtoTest, ScalarEntryAlwaysHasShape) {
  BundleEntry e;  // all defaults
  EXPECT_EQ(SpacedHex(SerializeBundleEntry(e)), "12 00");
  e.crc32c = 0;  // a zero CRC is omitted like any proto3 default
  e.dtype = DataType::kBool;
  EXPECT_EQ(SpacedHex(SerializeBundleEntry(e)), "08 0a 12 00");
}

TEST(BundleProtoTest, NegativeAndLargeValues) {
  BundleEntry e =
      MakeEntry(DataType::kDouble, {std::numeric_limits<int64_t>::max()},
                std::numeric_limits<int64_t>::max(), -1, 0xffffffff);
  e.shard_id = -1;
  const std::string bytes = SerializeBundleEntry(e);
  // shard_id -1: tag 18 + 10 bytes.
  EXPECT_NE(SpacedHex(bytes).find("18 ff ff ff ff ff ff ff ff ff 01"),
            std::string::npos);
  Result<BundleEntry> parsed = ParseBundleEntry(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(SameEntry(*parsed, e));
}

TEST(BundleProtoTest, UnknownDtypeValueIsKept) {
  Result<BundleEntry> parsed = ParseBundleEntry(Unhex("08 c8 01 12 00"));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(static_cast<int32_t>(parsed->dtype), 200);
}

// ---- slices -----------------------------------------------------------------

TEST(BundleProtoTest, SliceExtents) {
  // Rows [4,7), all columns.
  TensorSlice rows{{{4, 3}, {0, SliceExtent::kFullExtent}}};
  EXPECT_EQ(SpacedHex(SerializeTensorSlice(rows)), "0a 04 08 04 10 03 0a 00");
  // TF1 partitioners spell full dimensions out: start 0 is omitted, the
  // length is present.
  TensorSlice spelled{{{0, 4}}};
  EXPECT_EQ(SpacedHex(SerializeTensorSlice(spelled)), "0a 02 10 04");
  // A zero length is still written (the oneof records its presence).
  TensorSlice empty{{{5, 0}}};
  EXPECT_EQ(SpacedHex(SerializeTensorSlice(empty)), "0a 04 08 05 10 00");
  for (const TensorSlice& s : {rows, spelled, empty}) {
    Result<TensorSlice> parsed = ParseTensorSlice(SerializeTensorSlice(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
}

TEST(BundleProtoTest, ExtentWithoutLengthIsFull) {
  // Start without length: the full extent; TensorFlow ignores the start.
  Result<TensorSlice> parsed = ParseTensorSlice(Unhex("0a 02 08 05 0a 00"));
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->extents.size(), 2u);
  EXPECT_EQ(parsed->extents[0], (SliceExtent{0, SliceExtent::kFullExtent}));
  EXPECT_EQ(parsed->extents[1], (SliceExtent{0, SliceExtent::kFullExtent}));
}

TEST(BundleProtoTest, PartitionedEntry) {
  // Full entry of a float32 [10,4] tensor stored as two row slices.
  BundleEntry e = MakeEntry(DataType::kFloat, {10, 4}, 0, 0, 0);
  e.slices.push_back(TensorSlice{{{0, 4}, {0, SliceExtent::kFullExtent}}});
  e.slices.push_back(TensorSlice{{{4, 6}, {0, SliceExtent::kFullExtent}}});
  const std::string expected = Unhex(
      "08 01 12 08 12 02 08 0a 12 02 08 04 "
      "3a 06 0a 02 10 04 0a 00 "
      "3a 08 0a 04 08 04 10 06 0a 00");
  EXPECT_EQ(SpacedHex(SerializeBundleEntry(e)), SpacedHex(expected));
  Result<BundleEntry> parsed = ParseBundleEntry(expected);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(SameEntry(*parsed, e));
}

// ---- VersionDef -------------------------------------------------------------

TEST(BundleProtoTest, VersionDefPackedAndUnpacked) {
  VersionDef v;
  v.producer = 1;
  v.min_consumer = 3;
  v.bad_consumers = {1, 2};
  EXPECT_EQ(SpacedHex(SerializeVersionDef(v)), "08 01 10 03 1a 02 01 02");
  for (const char* hex : {"08 01 10 03 1a 02 01 02",      // packed
                          "08 01 10 03 18 01 18 02",      // unpacked
                          "08 01 10 03 18 01 1a 01 02"})  // mixed
  {
    Result<VersionDef> parsed = ParseVersionDef(Unhex(hex));
    ASSERT_TRUE(parsed.ok()) << hex;
    EXPECT_EQ(parsed->producer, 1);
    EXPECT_EQ(parsed->min_consumer, 3);
    EXPECT_EQ(parsed->bad_consumers, (std::vector<int32_t>{1, 2})) << hex;
  }
  // A negative bad consumer: 10 bytes inside the packed run.
  v.bad_consumers = {-1};
  Result<VersionDef> parsed = ParseVersionDef(SerializeVersionDef(v));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->bad_consumers, std::vector<int32_t>{-1});
  // A truncated varint inside the packed run.
  Result<VersionDef> bad = ParseVersionDef(Unhex("1a 01 80"));
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("bad_consumers"), std::string::npos);
}

TEST(BundleProtoTest, HeaderWithBadConsumersRoundTrips) {
  BundleHeader h = StandardHeader();
  h.num_shards = 3;
  h.version.min_consumer = 1;
  h.version.bad_consumers = {7, 1};
  Result<BundleHeader> parsed = ParseBundleHeader(SerializeBundleHeader(h));
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(SameHeader(*parsed, h));
}

// ---- protobuf parsing rules -------------------------------------------------

TEST(BundleProtoTest, UnknownFieldsOfEveryWireTypeAreSkipped) {
  // The v entry from FORMAT.md 12 with unknown fields (varint, fixed64,
  // length-delimited, fixed32) at the top level, in the shape and in a dim,
  // and a dim name.
  const std::string bytes = Unhex(
      // 8: varint
      "40 05 "
      // dtype
      "08 01 "
      // shape (23 bytes): a dim (size 2, name "a", unknown 3: varint and
      // 4: fixed32), then unknown 9: fixed64
      "12 17 "
      "  12 0c 08 02 12 01 61 18 07 25 01 02 03 04 "
      "  49 01 02 03 04 05 06 07 08 "
      // offset, unknown 10: bytes, size, unknown 11: fixed32, crc32c
      "20 08 "
      "52 03 78 79 7a "
      "28 08 "
      "5d 00 00 00 00 "
      "35 59 3c e5 35 "
      // unknown field 2^29-1: fixed64
      "f9 ff ff ff 0f 01 02 03 04 05 06 07 08");
  Result<BundleEntry> parsed = ParseBundleEntry(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(
      SameEntry(*parsed, MakeEntry(DataType::kFloat, {2}, 8, 8, 0x35e53c59)));
  // The header too (and an old, unknown "optional" field inside version).
  Result<BundleHeader> header =
      ParseBundleHeader(Unhex("08 01 22 02 68 69 1a 04 08 01 20 09"));
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_TRUE(SameHeader(*header, StandardHeader()));
}

TEST(BundleProtoTest, GroupsAreDataLoss) {
  Result<BundleEntry> parsed = ParseBundleEntry(Unhex("08 01 43 44 12 00"));
  EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
}

TEST(BundleProtoTest, LastScalarWinsAndRepeatedAccumulate) {
  // dtype twice, offset twice, shape twice (merged: dims accumulate).
  Result<BundleEntry> parsed = ParseBundleEntry(
      Unhex("08 01 08 09 20 05 12 02 12 00 20 07 12 04 12 02 08 03"));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->dtype, DataType::kInt64);
  EXPECT_EQ(parsed->offset, 7);
  EXPECT_EQ(parsed->shape.dims, (std::vector<int64_t>{0, 3}));
  // Dim size twice.
  Result<TensorShape> shape = ParseTensorShape(Unhex("12 04 08 05 08 06"));
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->dims, std::vector<int64_t>{6});
  // Version twice: merged.
  Result<BundleHeader> header =
      ParseBundleHeader(Unhex("1a 02 08 01 1a 02 10 02"));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->version.producer, 1);
  EXPECT_EQ(header->version.min_consumer, 2);
}

TEST(BundleProtoTest, UnknownRankIsDataLoss) {
  Result<BundleEntry> entry = ParseBundleEntry(Unhex("08 01 12 02 18 01"));
  EXPECT_EQ(entry.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(entry.status().message().find("unknown_rank"), std::string::npos);
  EXPECT_EQ(ParseTensorShape(Unhex("18 01")).status().code(),
            StatusCode::kDataLoss);
  // unknown_rank explicitly false is fine, and so is true then false.
  EXPECT_TRUE(ParseTensorShape(Unhex("18 00")).ok());
  EXPECT_TRUE(ParseBundleEntry(Unhex("12 02 18 01 12 02 18 00")).ok());
}

TEST(BundleProtoTest, WrongWireTypeNamesTheField) {
  // dtype as length-delimited.
  Result<BundleEntry> a = ParseBundleEntry(Unhex("0a 00"));
  EXPECT_EQ(a.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(a.status().message().find("BundleEntryProto.dtype"),
            std::string::npos)
      << a.status().message();
  // crc32c as a varint.
  Result<BundleEntry> b = ParseBundleEntry(Unhex("12 00 30 01"));
  EXPECT_NE(b.status().message().find("BundleEntryProto.crc32c"),
            std::string::npos);
  // A dim's size truncated inside the shape: the message names the path.
  Result<BundleEntry> c = ParseBundleEntry(Unhex("12 03 12 01 08"));
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(c.status().message().find("BundleEntryProto.shape"),
            std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("TensorShapeProto.Dim.size"),
            std::string::npos)
      << c.status().message();
}

// ---- corruption -------------------------------------------------------------

TEST(BundleProtoTest, TruncationAtEveryByte) {
  std::vector<std::string> messages;
  for (const GoldenEntry& g : GoldenEntries()) messages.push_back(Unhex(g.hex));
  BundleEntry sliced = MakeEntry(DataType::kFloat, {10, 4}, 0, 0, 0);
  sliced.slices.push_back(TensorSlice{{{4, 6}, {0, SliceExtent::kFullExtent}}});
  messages.push_back(SerializeBundleEntry(sliced));
  for (const std::string& msg : messages) {
    const std::vector<size_t> boundaries = FieldBoundaries(msg);
    for (size_t n = 0; n < msg.size(); ++n) {
      ExactBuffer buf(std::string_view(msg).substr(0, n));
      Result<BundleEntry> parsed = ParseBundleEntry(buf.view());
      const bool at_boundary = std::find(boundaries.begin(), boundaries.end(),
                                         n) != boundaries.end();
      EXPECT_EQ(parsed.ok(), at_boundary) << SpacedHex(msg) << " cut at " << n
                                          << ": " << parsed.status().ToString();
      if (!parsed.ok()) {
        EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
      }
    }
  }
  const std::string header = SerializeBundleHeader(StandardHeader());
  for (size_t n = 0; n < header.size(); ++n) {
    ExactBuffer buf(std::string_view(header).substr(0, n));
    Result<BundleHeader> parsed = ParseBundleHeader(buf.view());
    EXPECT_EQ(parsed.ok(), n == 0 || n == 2) << n;
  }
}

TEST(BundleProtoTest, BitFlipsNeverCrash) {
  std::vector<std::string> messages;
  for (const GoldenEntry& g : GoldenEntries()) messages.push_back(Unhex(g.hex));
  messages.push_back(SerializeBundleHeader(StandardHeader()));
  for (const std::string& msg : messages) {
    for (size_t i = 0; i < msg.size() * 8; ++i) {
      std::string flipped = msg;
      flipped[i / 8] = static_cast<char>(flipped[i / 8] ^ (1 << (i % 8)));
      ExactBuffer buf(flipped);
      Result<BundleEntry> entry = ParseBundleEntry(buf.view());
      Result<BundleHeader> header = ParseBundleHeader(buf.view());
      if (entry.ok()) (void)ValidateShape(entry->shape, nullptr);
      if (!entry.ok()) {
        EXPECT_EQ(entry.status().code(), StatusCode::kDataLoss);
      }
      if (!header.ok()) {
        EXPECT_EQ(header.status().code(), StatusCode::kDataLoss);
      }
    }
  }
}

TEST(BundleProtoTest, OverlongLengthAndVarint) {
  // Shape length 2^63 with 2 bytes left.
  EXPECT_FALSE(
      ParseBundleEntry(Unhex("12 80 80 80 80 80 80 80 80 80 01 00 00")).ok());
  // Shape length 5 with 2 bytes left.
  EXPECT_FALSE(ParseBundleEntry(Unhex("08 01 12 05 12 00")).ok());
  // Eleven-byte varint for offset.
  EXPECT_FALSE(
      ParseBundleEntry(Unhex("20 80 80 80 80 80 80 80 80 80 80 00")).ok());
}

TEST(BundleProtoTest, DimOfTwoToThe63ParsesButFailsValidation) {
  // size = 2^63 as a varint reads as INT64_MIN.
  Result<BundleEntry> parsed = ParseBundleEntry(
      Unhex("08 01 12 0d 12 0b 08 80 80 80 80 80 80 80 80 80 01"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->shape.dims.size(), 1u);
  EXPECT_EQ(parsed->shape.dims[0], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(ValidateShape(parsed->shape, nullptr).code(),
            StatusCode::kInvalidArgument);
}

// ---- random round trips -----------------------------------------------------

TEST(BundleProtoTest, RandomEntriesRoundTrip) {
  std::mt19937_64 rng(20240601);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto any_int64 = [&]() {
    switch (pick(0, 3)) {
      case 0:
        return int64_t{0};
      case 1:
        return pick(0, 1000);
      case 2:
        return pick(std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max());
      default:
        return pick(-5, 5);
    }
  };
  for (int iter = 0; iter < 2000; ++iter) {
    BundleEntry e;
    e.dtype = static_cast<DataType>(pick(0, 33));
    for (int64_t d = pick(0, 6); d > 0; --d)
      e.shape.dims.push_back(any_int64());
    e.shard_id = static_cast<int32_t>(pick(-3, 100));
    e.offset = any_int64();
    e.size = any_int64();
    e.crc32c = static_cast<uint32_t>(pick(0, 0xffffffff));
    for (int64_t s = pick(0, 3) == 0 ? pick(1, 4) : 0; s > 0; --s) {
      TensorSlice slice;
      for (size_t d = 0; d < e.shape.dims.size(); ++d) {
        if (pick(0, 2) == 0) {
          slice.extents.push_back({0, SliceExtent::kFullExtent});
        } else {
          slice.extents.push_back({pick(0, 3) == 0 ? 0 : any_int64(),
                                   pick(0, 3) == 0 ? 0 : pick(0, 1 << 20)});
        }
      }
      e.slices.push_back(std::move(slice));
    }
    const std::string bytes = SerializeBundleEntry(e);
    Result<BundleEntry> parsed = ParseBundleEntry(bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    ASSERT_TRUE(SameEntry(*parsed, e)) << SpacedHex(bytes);
    ASSERT_EQ(SerializeBundleEntry(*parsed), bytes);

    BundleHeader h;
    h.num_shards = static_cast<int32_t>(pick(-2, 1000));
    h.endianness = pick(0, 1) ? Endianness::kBig : Endianness::kLittle;
    h.version.producer = static_cast<int32_t>(pick(-2, 5));
    h.version.min_consumer = static_cast<int32_t>(pick(-2, 5));
    for (int64_t b = pick(0, 3); b > 0; --b) {
      h.version.bad_consumers.push_back(
          static_cast<int32_t>(pick(std::numeric_limits<int32_t>::min(),
                                    std::numeric_limits<int32_t>::max())));
    }
    Result<BundleHeader> ph = ParseBundleHeader(SerializeBundleHeader(h));
    ASSERT_TRUE(ph.ok());
    ASSERT_TRUE(SameHeader(*ph, h));
  }
}

// ---- validation -------------------------------------------------------------

TEST(ValidateShapeTest, Valid) {
  int64_t n = -1;
  EXPECT_TRUE(ValidateShape(TensorShape{}, &n).ok());
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(ValidateShape(TensorShape{{2, 3}}, &n).ok());
  EXPECT_EQ(n, 6);
  EXPECT_TRUE(ValidateShape(TensorShape{{0, 3}}, &n).ok());
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(
      ValidateShape(TensorShape{{std::numeric_limits<int64_t>::max()}}, &n)
          .ok());
  EXPECT_EQ(n, std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(
      ValidateShape(TensorShape{{int64_t{1} << 31, int64_t{1} << 31}}, &n)
          .ok());
  EXPECT_EQ(n, int64_t{1} << 62);
  EXPECT_TRUE(
      ValidateShape(TensorShape{std::vector<int64_t>(254, 1)}, &n).ok());
  EXPECT_TRUE(ValidateShape(TensorShape{{5}}, nullptr).ok());
}

TEST(ValidateShapeTest, Invalid) {
  EXPECT_EQ(ValidateShape(TensorShape{{2, -1}}, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ValidateShape(TensorShape{{std::numeric_limits<int64_t>::min()}}, nullptr)
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      ValidateShape(TensorShape{std::vector<int64_t>(255, 1)}, nullptr).ok());
  Status s = ValidateShape(TensorShape{std::vector<int64_t>(300, 1)}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("300"), std::string::npos);
  // Products that overflow int64.
  EXPECT_FALSE(ValidateShape(TensorShape{{int64_t{1} << 62, 2}}, nullptr).ok());
  EXPECT_FALSE(
      ValidateShape(TensorShape{{int64_t{1} << 32, int64_t{1} << 32}}, nullptr)
          .ok());
  EXPECT_FALSE(
      ValidateShape(TensorShape{{std::numeric_limits<int64_t>::max(), 2}},
                    nullptr)
          .ok());
  // Like TensorFlow, the product is checked dimension by dimension.
  EXPECT_FALSE(
      ValidateShape(TensorShape{{int64_t{1} << 40, int64_t{1} << 40, 0}},
                    nullptr)
          .ok());
  EXPECT_TRUE(ValidateShape(
                  TensorShape{{0, int64_t{1} << 40, int64_t{1} << 40}}, nullptr)
                  .ok());
}

TEST(ValidateSliceTest, Valid) {
  TensorShape shape{{10, 4}};
  EXPECT_TRUE(
      ValidateSlice(TensorSlice{{{4, 3}, {0, SliceExtent::kFullExtent}}}, shape)
          .ok());
  EXPECT_TRUE(ValidateSlice(TensorSlice{{{0, 10}, {0, 4}}}, shape).ok());
  EXPECT_TRUE(ValidateSlice(TensorSlice{{{10, 0}, {4, 0}}}, shape).ok());
  EXPECT_TRUE(ValidateSlice(TensorSlice{}, TensorShape{}).ok());
}

TEST(ValidateSliceTest, Invalid) {
  TensorShape shape{{10, 4}};
  auto code = [&](TensorSlice s) { return ValidateSlice(s, shape).code(); };
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kFull = SliceExtent::kFullExtent;
  EXPECT_EQ(code(TensorSlice{{{0, 1}}}), StatusCode::kInvalidArgument);  // rank
  EXPECT_EQ(code(TensorSlice{{{-1, 2}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(TensorSlice{{{0, -2}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(TensorSlice{{{8, 3}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(TensorSlice{{{11, 0}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(TensorSlice{{{kMax, kMax}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(TensorSlice{{{1, kMax}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(TensorSlice{{{3, kFull}, {0, kFull}}}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSlice(TensorSlice{{{0, 0}}}, TensorShape{{-1}}).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace trackpoint
