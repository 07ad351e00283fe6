// Moving the elements of one slice of a tensor between a buffer holding just
// the slice (row-major within the slice, as a slice entry stores it) and a
// buffer holding the whole tensor, and checking that slices do not overlap.
#ifndef TRACKPOINT_BUNDLE_SLICE_COPY_H_
#define TRACKPOINT_BUNDLE_SLICE_COPY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {

// The shape of the slice's own elements (full extents resolved).
// REQUIRES: slice is valid for full (ValidateSlice).
TensorShape SliceShape(const TensorSlice& slice, const TensorShape& full);

// True when the two slices of a tensor of shape full share an element.
// REQUIRES: both are valid for full.
bool SlicesOverlap(const TensorSlice& a, const TensorSlice& b,
                   const TensorShape& full);

// How many slice comparisons FindOverlappingSlices makes at most by default
// (half a second on the 2-core development machine).
inline constexpr uint64_t kMaxSliceComparisons = uint64_t{1} << 26;

// The first pair of slices that overlap, in the order a pairwise scan by
// index meets them: second is the smallest index that overlaps an earlier
// slice, first the smallest index it overlaps. nullopt when none overlap.
// Sweeps along one dimension and narrows by a second: slices that partition
// one dimension, or form a 2-D grid, cost O(n log n) and larger grids far less
// than the n^2 / 2 pairs, which only contrived sets (many slices long along
// every dimension) approach. Such a set, from an untrusted index, must not
// hang a reader: past max_comparisons comparisons this gives up with a
// ResourceExhausted error.
// REQUIRES: every slice is valid for full.
using SlicePair = std::pair<size_t, size_t>;
Result<std::optional<SlicePair>> FindOverlappingSlices(
    const std::vector<TensorSlice>& slices, const TensorShape& full,
    uint64_t max_comparisons = kMaxSliceComparisons);

// Scatters the slice's elements (src) into the full tensor (dst).
// REQUIRES: slice is valid for full; element_size > 0.
void CopySliceIntoFull(const char* src, const TensorSlice& slice,
                       const TensorShape& full, size_t element_size,
                       char* dst);

// Gathers the slice's elements out of the full tensor (src) into dst.
void CopySliceOutOfFull(const char* src, const TensorSlice& slice,
                        const TensorShape& full, size_t element_size,
                        char* dst);

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_SLICE_COPY_H_
