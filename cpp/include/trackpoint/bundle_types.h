// The messages of a tensor bundle's .index, as plain structs. Their wire
// encoding lives in cpp/src/proto/bundle_proto.h.
#ifndef TRACKPOINT_BUNDLE_TYPES_H_
#define TRACKPOINT_BUNDLE_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "trackpoint/types.h"

namespace trackpoint {

// TensorShapeProto: one size per dimension, outermost first.
struct TensorShape {
  std::vector<int64_t> dims;
  bool operator==(const TensorShape& o) const { return dims == o.dims; }
};

// One dimension of a TensorSliceProto. length == kFullExtent means the whole
// dimension (written as an empty Extent message).
struct SliceExtent {
  static constexpr int64_t kFullExtent = -1;
  int64_t start = 0;
  int64_t length = kFullExtent;
  bool operator==(const SliceExtent& o) const {
    return start == o.start && length == o.length;
  }
};

// TensorSliceProto: one extent per dimension.
struct TensorSlice {
  std::vector<SliceExtent> extents;
  bool operator==(const TensorSlice& o) const { return extents == o.extents; }
};

// VersionDef.
struct VersionDef {
  int32_t producer = 0;
  int32_t min_consumer = 0;
  std::vector<int32_t> bad_consumers;
};

enum class Endianness : int32_t { kLittle = 0, kBig = 1 };

// BundleHeaderProto, stored under the empty key.
struct BundleHeader {
  int32_t num_shards = 0;
  Endianness endianness = Endianness::kLittle;
  VersionDef version;
};

// BundleEntryProto, stored under each tensor key. crc32c is the masked CRC
// of the payload. When slices is non-empty the entry describes a partitioned
// tensor and shard_id/offset/size/crc32c are meaningless.
struct BundleEntry {
  DataType dtype = DataType::kInvalid;
  TensorShape shape;
  int32_t shard_id = 0;
  int64_t offset = 0;
  int64_t size = 0;
  uint32_t crc32c = 0;
  std::vector<TensorSlice> slices;
};

// Bundle format version written into every header, and what a reader
// accepts (FORMAT.md section 4.2).
constexpr int32_t kBundleVersionProducer = 1;
constexpr int32_t kBundleVersionMinConsumer = 0;
constexpr int32_t kBundleVersionConsumer = 1;

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_TYPES_H_
