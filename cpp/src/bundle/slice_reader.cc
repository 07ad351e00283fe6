// ReadRegion: intersects the wanted region with each stored slice of a
// partitioned tensor and moves only the intersections. Stored slices and the
// region are handled as boxes (a start and a length per dimension, full
// extents resolved against the tensor's shape).
#include "bundle/slice_reader.h"

#include <algorithm>
#include <vector>

#include "bundle/slice_copy.h"
#include "bundle/slice_key.h"
#include "proto/bundle_proto.h"

namespace trackpoint {
namespace {

struct Box {
  std::vector<int64_t> start;
  std::vector<int64_t> length;
  bool operator==(const Box& o) const {
    return start == o.start && length == o.length;
  }
};

// REQUIRES: slice is valid for full.
Box ToBox(const TensorSlice& slice, const TensorShape& full) {
  Box box;
  for (size_t d = 0; d < full.dims.size(); ++d) {
    const SliceExtent& e = slice.extents[d];
    const bool whole = e.length == SliceExtent::kFullExtent;
    box.start.push_back(whole ? 0 : e.start);
    box.length.push_back(whole ? full.dims[d] : e.length);
  }
  return box;
}

int64_t NumElements(const Box& box) {
  int64_t n = 1;
  for (int64_t len : box.length) n *= len;
  return n;
}

TensorShape ShapeOf(const Box& box) { return TensorShape{box.length}; }

// The common part of a and b; false when it is empty.
bool Intersect(const Box& a, const Box& b, Box* out) {
  out->start.clear();
  out->length.clear();
  for (size_t d = 0; d < a.start.size(); ++d) {
    const int64_t lo = std::max(a.start[d], b.start[d]);
    const int64_t hi =
        std::min(a.start[d] + a.length[d], b.start[d] + b.length[d]);
    if (hi <= lo) return false;
    out->start.push_back(lo);
    out->length.push_back(hi - lo);
  }
  return true;
}

// inner, as a slice of a tensor that holds just outer.
// REQUIRES: inner lies inside outer.
TensorSlice Relative(const Box& inner, const Box& outer) {
  TensorSlice slice;
  for (size_t d = 0; d < inner.start.size(); ++d) {
    slice.extents.push_back({inner.start[d] - outer.start[d], inner.length[d]});
  }
  return slice;
}

// If inner's elements form one run of a row-major array holding outer, sets
// *offset to the run's first element (counted in outer) and returns true.
bool ContiguousIn(const Box& inner, const Box& outer, int64_t* offset) {
  const size_t rank = inner.start.size();
  // The last dimension inner does not take whole; all before it must be 1.
  size_t partial = rank;
  for (size_t d = rank; d-- > 0;) {
    if (inner.length[d] != outer.length[d]) {
      partial = d;
      break;
    }
  }
  for (size_t d = 0; d < partial && partial < rank; ++d) {
    if (inner.length[d] != 1) return false;
  }
  int64_t stride = 1;
  *offset = 0;
  for (size_t d = rank; d-- > 0;) {
    *offset += (inner.start[d] - outer.start[d]) * stride;
    stride *= outer.length[d];
  }
  return true;
}

}  // namespace

Status ReadRegion(const BundleReader& reader, std::string_view key,
                  const TensorSlice& region, void* dst, size_t nbytes) {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, reader.Lookup(key));
  const std::string what = "'" + std::string(key) + "' in " + reader.prefix();
  const size_t element_size = DataTypeSize(entry->dtype);
  if (element_size == 0) {
    return InvalidArgumentError(what + " is a " + DataTypeName(entry->dtype) +
                                " tensor: only fixed-size dtypes can be read "
                                "by region");
  }
  Status valid = ValidateSlice(region, entry->shape);
  if (!valid.ok()) return valid.Annotate("region of " + what);
  const Box want = ToBox(region, entry->shape);
  const int64_t wanted = NumElements(want);
  if (static_cast<uint64_t>(wanted) * element_size != nbytes) {
    return InvalidArgumentError(
        "buffer of " + std::to_string(nbytes) + " bytes given for region " +
        SliceSpecString(region) + " of " + what + ", which has " +
        std::to_string(wanted * static_cast<int64_t>(element_size)));
  }
  if (wanted == 0) return OkStatus();
  char* out = static_cast<char*>(dst);

  if (entry->slices.empty()) {
    if (ShapeOf(want) == entry->shape) {
      return reader.ReadTensor(key, dst, nbytes);
    }
    // The checksum covers the whole payload, so all of it is read.
    std::vector<char> whole(static_cast<size_t>(entry->size));
    TP_RETURN_IF_ERROR(reader.ReadTensor(key, whole.data(), whole.size()));
    CopySliceOutOfFull(whole.data(), region, entry->shape, element_size, out);
    return OkStatus();
  }

  // The parts of the region the stored slices hold must not overlap.
  std::vector<TensorSlice> parts;  // relative to the region
  std::vector<size_t> part_slice;  // the index of each part's slice
  for (size_t i = 0; i < entry->slices.size(); ++i) {
    Box both;
    if (!Intersect(ToBox(entry->slices[i], entry->shape), want, &both)) {
      continue;
    }
    parts.push_back(Relative(both, want));
    part_slice.push_back(i);
  }
  Result<std::optional<SlicePair>> overlap =
      FindOverlappingSlices(parts, ShapeOf(want));
  if (!overlap.ok()) return overlap.status().Annotate(what);
  if (const std::optional<SlicePair>& pair = *overlap) {
    return DataLossError(
        "slice " + SliceSpecString(entry->slices[part_slice[pair->second]]) +
        " of " + what + " overlaps another stored slice");
  }

  std::vector<char> scratch;
  std::vector<char> piece;
  int64_t covered = 0;
  for (const TensorSlice& slice : entry->slices) {
    const Box have = ToBox(slice, entry->shape);
    Box both;
    if (!Intersect(have, want, &both)) continue;
    const std::string slice_what =
        "slice " + SliceSpecString(slice) + " of " + what;
    const std::string slice_key = EncodeTensorNameSlice(key, slice);
    const BundleEntry* stored = reader.Find(slice_key);
    if (stored == nullptr) {
      return DataLossError(slice_what + " is listed but not stored");
    }
    if (stored->dtype != entry->dtype || !stored->slices.empty() ||
        !(stored->shape == ShapeOf(have))) {
      return DataLossError(slice_what +
                           " has a dtype or shape that disagrees with its "
                           "slice");
    }
    const size_t have_bytes =
        static_cast<size_t>(NumElements(have)) * element_size;
    int64_t offset = 0;
    if (both == have && ContiguousIn(have, want, &offset)) {
      // The stored slice is one run of the region: read it in place.
      TP_RETURN_IF_ERROR(reader.ReadTensor(
          slice_key, out + offset * static_cast<int64_t>(element_size),
          have_bytes));
    } else {
      scratch.resize(have_bytes);
      TP_RETURN_IF_ERROR(
          reader.ReadTensor(slice_key, scratch.data(), scratch.size()));
      if (both == have) {
        CopySliceIntoFull(scratch.data(), Relative(have, want), ShapeOf(want),
                          element_size, out);
      } else if (both == want) {
        CopySliceOutOfFull(scratch.data(), Relative(want, have), ShapeOf(have),
                           element_size, out);
      } else {
        piece.resize(static_cast<size_t>(NumElements(both)) * element_size);
        CopySliceOutOfFull(scratch.data(), Relative(both, have), ShapeOf(have),
                           element_size, piece.data());
        CopySliceIntoFull(piece.data(), Relative(both, want), ShapeOf(want),
                          element_size, out);
      }
    }
    covered += NumElements(both);
  }
  if (covered != wanted) {
    return DataLossError("the stored slices of " + what + " cover " +
                         std::to_string(covered) + " of the " +
                         std::to_string(wanted) + " elements of region " +
                         SliceSpecString(region));
  }
  return OkStatus();
}

}  // namespace trackpoint
