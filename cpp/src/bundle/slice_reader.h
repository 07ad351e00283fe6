// Reading a region (a box of elements) of a tensor, for restores into a
// different partitioning than the one saved: a process that holds rows
// [256, 512) of an embedding reads just those rows, from whichever stored
// slices hold them.
#ifndef TRACKPOINT_BUNDLE_SLICE_READER_H_
#define TRACKPOINT_BUNDLE_SLICE_READER_H_

#include <cstddef>
#include <string_view>

#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {

// Reads the elements of `region` of the fixed-size-dtype tensor `key` into
// dst, row-major within the region; nbytes must be exactly the region's
// element count times the dtype's size. Of a partitioned tensor only the
// stored slices that intersect the region are read (each verified against
// its CRC32C); those must not overlap and must cover the region. A tensor
// stored whole is read whole (its checksum covers all of it) and the region
// copied out, or read straight into dst when the region is all of it.
//
// Errors: NotFound for a missing key; InvalidArgument for a string tensor, a
// region that does not fit the tensor's shape or a wrong nbytes; DataLoss
// for missing, corrupt, overlapping or insufficient slices.
// Thread safety: as BundleReader::ReadTensor (any number of threads).
Status ReadRegion(const BundleReader& reader, std::string_view key,
                  const TensorSlice& region, void* dst, size_t nbytes);

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_SLICE_READER_H_
