// Canonical encoding of the bundle messages (tags in hex; "omitted if 0"
// means proto3 leaves the default out; wire format in proto/wire.h):
//
// BundleHeaderProto                      e.g. 08 01 1a 02 08 01
//   08 num_shards   int32 varint         omitted if 0
//   10 endianness   enum varint          omitted if LITTLE (0); BIG = 1
//   1a version      VersionDef           always written
// VersionDef
//   08 producer     int32 varint         omitted if 0
//   10 min_consumer int32 varint         omitted if 0
//   1a bad_consumers packed int32        omitted if empty (readers also take
//                                        unpacked 18 <varint> fields)
// BundleEntryProto         e.g. 08 09 12 00 28 08 35 01 75 de 41
//   08 dtype        enum varint          omitted if 0 (DT_INVALID)
//   12 shape        TensorShapeProto     always written, even empty (12 00)
//   18 shard_id     int32 varint         omitted if 0
//   20 offset       int64 varint         omitted if 0
//   28 size         int64 varint         omitted if 0
//   35 crc32c       fixed32 (4 bytes LE) masked CRC; omitted if 0
//   3a slices       TensorSliceProto     one per slice, repeated
// TensorShapeProto         e.g. [2,3]: 12 02 08 02 12 02 08 03
//   12 dim          Dim                  one per dimension, outermost first
//   18 unknown_rank bool                 never written; rejected when read
// TensorShapeProto.Dim
//   08 size         int64 varint         omitted if 0 (so [0] is 12 00)
//   12 name         string               never written; ignored when read
// TensorSliceProto   e.g. rows [4,7), all columns: 0a 04 08 04 10 03 0a 00
//   0a extent       Extent               one per dimension
// TensorSliceProto.Extent (empty message for a full dimension)
//   08 start        int64 varint         omitted if 0
//   10 length       int64 varint         written whenever the extent is not
//                                        full, even if 0 (oneof has_length)
#include "proto/bundle_proto.h"

#include <limits>
#include <string>
#include <utility>

#include "proto/wire.h"
#include "util/coding.h"

namespace trackpoint {
namespace {

// ---- error helpers ----------------------------------------------------------

// The reader failed while reading message.field.
constexpr char kHeaderName[] = "BundleHeaderProto";
constexpr char kEntryName[] = "BundleEntryProto";
constexpr char kShapeName[] = "TensorShapeProto";
constexpr char kDimName[] = "TensorShapeProto.Dim";
constexpr char kSliceName[] = "TensorSliceProto";
constexpr char kExtentName[] = "TensorSliceProto.Extent";
constexpr char kVersionName[] = "VersionDef";

// ---- parsers that merge into an existing value (protobuf semantics: a
// repeated field accumulates, a scalar keeps its last value, a message
// field seen twice is merged) -------------------------------------------------

Status MergeDim(std::string_view data, int64_t* size) {
  ProtoReader r(data);
  while (r.Next()) {
    if (r.field() == 1 && !r.ReadInt64(size)) {
      return FieldError(kDimName, "size", r);
    }
    // Field 2 (name) and unknown fields are skipped by Next().
  }
  return EndStatus(kDimName, r);
}

Status MergeTensorShape(std::string_view data, TensorShape* shape,
                        bool* unknown_rank) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 2: {
        std::string_view bytes;
        if (!r.ReadBytes(&bytes)) return FieldError(kShapeName, "dim", r);
        int64_t size = 0;
        TP_RETURN_IF_ERROR(
            MergeDim(bytes, &size).Annotate(Where(kShapeName, "dim")));
        shape->dims.push_back(size);
        break;
      }
      case 3:
        if (!r.ReadBool(unknown_rank)) {
          return FieldError(kShapeName, "unknown_rank", r);
        }
        break;
      default:
        break;
    }
  }
  return EndStatus(kShapeName, r);
}

Status CheckKnownRank(bool unknown_rank) {
  if (!unknown_rank) return OkStatus();
  return DataLossError(
      "TensorShapeProto has unknown_rank set; a bundle needs a fully "
      "defined shape");
}

Status MergeExtent(std::string_view data, SliceExtent* extent) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        if (!r.ReadInt64(&extent->start)) {
          return FieldError(kExtentName, "start", r);
        }
        break;
      case 2:
        if (!r.ReadInt64(&extent->length)) {
          return FieldError(kExtentName, "length", r);
        }
        break;
      default:
        break;
    }
  }
  return EndStatus(kExtentName, r);
}

Status MergeTensorSlice(std::string_view data, TensorSlice* slice) {
  ProtoReader r(data);
  while (r.Next()) {
    if (r.field() != 1) continue;
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return FieldError(kSliceName, "extent", r);
    SliceExtent extent;
    TP_RETURN_IF_ERROR(
        MergeExtent(bytes, &extent).Annotate(Where(kSliceName, "extent")));
    // An absent length is the full extent; TensorFlow then ignores start.
    if (extent.length == SliceExtent::kFullExtent) extent.start = 0;
    slice->extents.push_back(extent);
  }
  return EndStatus(kSliceName, r);
}

// Accepts the packed form (one length-delimited run of varints) and the
// unpacked form (one varint per field).
bool ReadRepeatedInt32(ProtoReader* r, std::vector<int32_t>* out) {
  if (r->wire_type() != WireType::kLengthDelimited) {
    int32_t v;
    if (!r->ReadInt32(&v)) return false;
    out->push_back(v);
    return true;
  }
  std::string_view packed;
  if (!r->ReadBytes(&packed)) return false;
  while (!packed.empty()) {
    uint64_t v;
    if (!GetVarint64(&packed, &v)) return false;
    out->push_back(static_cast<int32_t>(static_cast<uint32_t>(v)));
  }
  return true;
}

Status MergeVersionDef(std::string_view data, VersionDef* version) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        if (!r.ReadInt32(&version->producer)) {
          return FieldError(kVersionName, "producer", r);
        }
        break;
      case 2:
        if (!r.ReadInt32(&version->min_consumer)) {
          return FieldError(kVersionName, "min_consumer", r);
        }
        break;
      case 3:
        if (!ReadRepeatedInt32(&r, &version->bad_consumers)) {
          if (r.ok()) {
            return DataLossError(
                "malformed VersionDef.bad_consumers: bad packed varint");
          }
          return FieldError(kVersionName, "bad_consumers", r);
        }
        break;
      default:
        break;
    }
  }
  return EndStatus(kVersionName, r);
}

}  // namespace

// ---- serialization ----------------------------------------------------------

std::string SerializeVersionDef(const VersionDef& version) {
  std::string out;
  ProtoWriter w(&out);
  if (version.producer != 0) w.WriteInt32(1, version.producer);
  if (version.min_consumer != 0) w.WriteInt32(2, version.min_consumer);
  w.WritePackedInt32(3, version.bad_consumers);
  return out;
}

std::string SerializeBundleHeader(const BundleHeader& header) {
  std::string out;
  ProtoWriter w(&out);
  if (header.num_shards != 0) w.WriteInt32(1, header.num_shards);
  if (header.endianness != Endianness::kLittle) {
    w.WriteInt32(2, static_cast<int32_t>(header.endianness));
  }
  w.WriteMessage(3, SerializeVersionDef(header.version));
  return out;
}

std::string SerializeTensorShape(const TensorShape& shape) {
  std::string out;
  ProtoWriter w(&out);
  std::string dim;
  for (int64_t size : shape.dims) {
    dim.clear();
    ProtoWriter d(&dim);
    if (size != 0) d.WriteInt64(1, size);
    w.WriteMessage(2, dim);
  }
  return out;
}

std::string SerializeTensorSlice(const TensorSlice& slice) {
  std::string out;
  ProtoWriter w(&out);
  std::string extent;
  for (const SliceExtent& e : slice.extents) {
    extent.clear();
    ProtoWriter x(&extent);
    if (e.length != SliceExtent::kFullExtent) {
      if (e.start != 0) x.WriteInt64(1, e.start);
      x.WriteInt64(2, e.length);
    }
    w.WriteMessage(1, extent);
  }
  return out;
}

std::string SerializeBundleEntry(const BundleEntry& entry) {
  std::string out;
  ProtoWriter w(&out);
  if (entry.dtype != DataType::kInvalid) {
    w.WriteInt32(1, static_cast<int32_t>(entry.dtype));
  }
  w.WriteMessage(2, SerializeTensorShape(entry.shape));
  if (entry.shard_id != 0) w.WriteInt32(3, entry.shard_id);
  if (entry.offset != 0) w.WriteInt64(4, entry.offset);
  if (entry.size != 0) w.WriteInt64(5, entry.size);
  if (entry.crc32c != 0) w.WriteFixed32(6, entry.crc32c);
  for (const TensorSlice& slice : entry.slices) {
    w.WriteMessage(7, SerializeTensorSlice(slice));
  }
  return out;
}

// ---- parsing ----------------------------------------------------------------

Result<VersionDef> ParseVersionDef(std::string_view data) {
  VersionDef version;
  TP_RETURN_IF_ERROR(MergeVersionDef(data, &version));
  return version;
}

Result<BundleHeader> ParseBundleHeader(std::string_view data) {
  BundleHeader header;
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        if (!r.ReadInt32(&header.num_shards)) {
          return FieldError(kHeaderName, "num_shards", r);
        }
        break;
      case 2: {
        int32_t v;
        if (!r.ReadInt32(&v)) return FieldError(kHeaderName, "endianness", r);
        // Kept as is (proto3 enums are open); the reader checks the value.
        header.endianness = static_cast<Endianness>(v);
        break;
      }
      case 3: {
        std::string_view bytes;
        if (!r.ReadBytes(&bytes)) return FieldError(kHeaderName, "version", r);
        TP_RETURN_IF_ERROR(MergeVersionDef(bytes, &header.version)
                               .Annotate(Where(kHeaderName, "version")));
        break;
      }
      default:
        break;
    }
  }
  TP_RETURN_IF_ERROR(EndStatus(kHeaderName, r));
  return header;
}

Result<TensorShape> ParseTensorShape(std::string_view data) {
  TensorShape shape;
  bool unknown_rank = false;
  TP_RETURN_IF_ERROR(MergeTensorShape(data, &shape, &unknown_rank));
  TP_RETURN_IF_ERROR(CheckKnownRank(unknown_rank));
  return shape;
}

Result<TensorSlice> ParseTensorSlice(std::string_view data) {
  TensorSlice slice;
  TP_RETURN_IF_ERROR(MergeTensorSlice(data, &slice));
  return slice;
}

Result<BundleEntry> ParseBundleEntry(std::string_view data) {
  BundleEntry entry;
  bool unknown_rank = false;
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1: {
        int32_t v;
        if (!r.ReadInt32(&v)) return FieldError(kEntryName, "dtype", r);
        // Kept as is (proto3 enums are open); the reader checks the value.
        entry.dtype = static_cast<DataType>(v);
        break;
      }
      case 2: {
        std::string_view bytes;
        if (!r.ReadBytes(&bytes)) return FieldError(kEntryName, "shape", r);
        TP_RETURN_IF_ERROR(MergeTensorShape(bytes, &entry.shape, &unknown_rank)
                               .Annotate(Where(kEntryName, "shape")));
        break;
      }
      case 3:
        if (!r.ReadInt32(&entry.shard_id)) {
          return FieldError(kEntryName, "shard_id", r);
        }
        break;
      case 4:
        if (!r.ReadInt64(&entry.offset)) {
          return FieldError(kEntryName, "offset", r);
        }
        break;
      case 5:
        if (!r.ReadInt64(&entry.size)) return FieldError(kEntryName, "size", r);
        break;
      case 6:
        if (!r.ReadFixed32(&entry.crc32c)) {
          return FieldError(kEntryName, "crc32c", r);
        }
        break;
      case 7: {
        std::string_view bytes;
        if (!r.ReadBytes(&bytes)) return FieldError(kEntryName, "slices", r);
        TensorSlice slice;
        TP_RETURN_IF_ERROR(MergeTensorSlice(bytes, &slice)
                               .Annotate(Where(kEntryName, "slices")));
        entry.slices.push_back(std::move(slice));
        break;
      }
      default:
        break;
    }
  }
  TP_RETURN_IF_ERROR(EndStatus(kEntryName, r));
  TP_RETURN_IF_ERROR(
      CheckKnownRank(unknown_rank).Annotate(Where(kEntryName, "shape")));
  return entry;
}

// ---- validation -------------------------------------------------------------

Status ValidateShape(const TensorShape& shape, int64_t* num_elements) {
  if (shape.dims.size() > static_cast<size_t>(kMaxTensorRank)) {
    return InvalidArgumentError("shape has " +
                                std::to_string(shape.dims.size()) +
                                " dimensions, more than the maximum of " +
                                std::to_string(kMaxTensorRank));
  }
  int64_t count = 1;
  for (size_t d = 0; d < shape.dims.size(); ++d) {
    const int64_t size = shape.dims[d];
    if (size < 0) {
      return InvalidArgumentError("shape dimension " + std::to_string(d) +
                                  " has negative size " + std::to_string(size));
    }
    if (size != 0 && count > std::numeric_limits<int64_t>::max() / size) {
      return InvalidArgumentError(
          "shape's element count overflows int64 at dimension " +
          std::to_string(d));
    }
    count *= size;
  }
  if (num_elements != nullptr) *num_elements = count;
  return OkStatus();
}

Status ValidateSlice(const TensorSlice& slice, const TensorShape& full) {
  if (slice.extents.size() != full.dims.size()) {
    return InvalidArgumentError(
        "slice has " + std::to_string(slice.extents.size()) +
        " extents but the tensor has " + std::to_string(full.dims.size()) +
        " dimensions");
  }
  for (size_t d = 0; d < slice.extents.size(); ++d) {
    const SliceExtent& e = slice.extents[d];
    const int64_t size = full.dims[d];
    const std::string where = "slice extent " + std::to_string(d) + " (start " +
                              std::to_string(e.start) + ", length " +
                              std::to_string(e.length) + ")";
    if (e.length == SliceExtent::kFullExtent) {
      if (e.start != 0) {
        return InvalidArgumentError(where + ": a full extent must start at 0");
      }
      continue;
    }
    if (e.start < 0 || e.length < 0) {
      return InvalidArgumentError(where + ": start and length must be >= 0");
    }
    // start <= size and length <= size - start, written so nothing overflows.
    if (e.start > size || e.length > size - e.start) {
      return InvalidArgumentError(where + " exceeds dimension size " +
                                  std::to_string(size));
    }
  }
  return OkStatus();
}

}  // namespace trackpoint
