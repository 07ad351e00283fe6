// Wire encoding of the messages stored in a tensor bundle's .index:
// BundleHeaderProto, BundleEntryProto and the messages they contain.
//
// Serialize* produce TensorFlow's canonical bytes (fields in ascending
// number order, proto3 defaults left out), so a bundle written here is
// byte-identical to one written by TensorFlow. Parse* accept anything a
// protobuf parser would for these messages (unknown fields, packed or
// unpacked repeated scalars, repeated occurrences of a field) and report
// malformed input as DataLoss naming the message and field.
#ifndef TRACKPOINT_PROTO_BUNDLE_PROTO_H_
#define TRACKPOINT_PROTO_BUNDLE_PROTO_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {

// The most dimensions a tensor may have (TensorFlow's limit).
constexpr int kMaxTensorRank = 254;

std::string SerializeBundleHeader(const BundleHeader& header);
Result<BundleHeader> ParseBundleHeader(std::string_view data);

std::string SerializeBundleEntry(const BundleEntry& entry);
// Does not validate the shape or slices; see ValidateShape/ValidateSlice.
Result<BundleEntry> ParseBundleEntry(std::string_view data);

std::string SerializeTensorShape(const TensorShape& shape);
// A shape with unknown_rank set cannot be represented: DataLoss.
Result<TensorShape> ParseTensorShape(std::string_view data);

std::string SerializeTensorSlice(const TensorSlice& slice);
Result<TensorSlice> ParseTensorSlice(std::string_view data);

std::string SerializeVersionDef(const VersionDef& version);
Result<VersionDef> ParseVersionDef(std::string_view data);

// OK if shape is fully defined and usable: at most kMaxTensorRank dims, every
// size >= 0, and the element count fits in int64 (multiplied out in dimension
// order, as TensorFlow does). Sets *num_elements (1 for a scalar) if it is not
// null. Errors are InvalidArgument; a reader that found the shape in a file
// should report them as DataLoss.
Status ValidateShape(const TensorShape& shape, int64_t* num_elements);

// OK if slice has one extent per dimension of full and each extent lies
// inside its dimension: either the full extent (start 0, length kFullExtent)
// or start >= 0, length >= 0, start + length <= size. Errors are
// InvalidArgument.
Status ValidateSlice(const TensorSlice& slice, const TensorShape& full);

}  // namespace trackpoint

#endif  // TRACKPOINT_PROTO_BUNDLE_PROTO_H_
