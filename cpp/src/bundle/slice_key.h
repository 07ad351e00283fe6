// Keys of slice entries in a bundle's .index, and slice spec strings.
//
// A partitioned tensor stores each piece under a slice key, a sequence of
// OrderedCode values (bundle/ordered_code.h):
//
//   unsigned 0                      00 (so slice keys sort before names)
//   string   tensor name            escaped bytes, then 00 01
//   unsigned rank                   e.g. 01 02
//   per dimension, outermost first:
//     signed start                  full dimension: 0  (80)
//     signed length                 full dimension: -1 (7F)
//
//   "emb", rows [4,7), all 4 columns spelled 4,3:0,4:
//     00 65 6d 62 00 01 01 02 84 83 80 84
//
// A slice spec string writes one dimension as "start,length" or "-" (the
// whole dimension), joined with ':', e.g. "4,3:-".
#ifndef TRACKPOINT_BUNDLE_SLICE_KEY_H_
#define TRACKPOINT_BUNDLE_SLICE_KEY_H_

#include <string>
#include <string_view>

#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {

std::string EncodeTensorNameSlice(std::string_view name,
                                  const TensorSlice& slice);

// Splits a slice key into the tensor name and the slice. A full dimension
// (length -1) comes back as SliceExtent{0, kFullExtent}. Returns false if key
// is not a well-formed slice key (including trailing bytes); the outputs are
// then unspecified. Extents are not checked against any shape.
bool DecodeTensorNameSlice(std::string_view key, std::string* name,
                           TensorSlice* slice);

// True for keys that start with the byte 00: slice keys. The header's key
// (empty) and tensor names are not.
inline bool IsSliceKey(std::string_view key) {
  return !key.empty() && key[0] == '\0';
}

// Parses "start,length:-:..." (decimal, start >= 0, length >= 0; "-" for a
// whole dimension). The empty string is the slice of a scalar (no extents).
// Errors are InvalidArgument.
Result<TensorSlice> ParseSliceSpec(std::string_view spec);

// The inverse of ParseSliceSpec: "4,3:-".
std::string SliceSpecString(const TensorSlice& slice);

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_SLICE_KEY_H_
