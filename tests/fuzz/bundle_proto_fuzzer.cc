// Fuzz target for the protobuf wire codec of the bundle messages. The first
// byte picks the message (BundleEntryProto, BundleHeaderProto,
// TensorShapeProto, TensorSliceProto, VersionDef, or a raw field walk); the
// rest is its serialized bytes.
//
// Checked beyond "no crash": whatever parses serializes back to bytes that
// parse to the same value; a valid entry's shape and slices go through the
// checks and the slice arithmetic the reader does (SliceShape, SlicesOverlap,
// copying a slice in and out of a small tensor).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bundle/slice_copy.h"
#include "proto/bundle_proto.h"
#include "proto/wire.h"

namespace {

using namespace trackpoint;  // NOLINT: a fuzz target, not library code

void Check(bool condition) {
  if (!condition) std::abort();
}

bool SameVersion(const VersionDef& a, const VersionDef& b) {
  return a.producer == b.producer && a.min_consumer == b.min_consumer &&
         a.bad_consumers == b.bad_consumers;
}

bool SameEntry(const BundleEntry& a, const BundleEntry& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.shard_id == b.shard_id &&
         a.offset == b.offset && a.size == b.size && a.crc32c == b.crc32c &&
         a.slices == b.slices;
}

// What the reader does with a parsed entry's shape and slices.
void ExerciseSlices(const BundleEntry& entry) {
  int64_t elements = 0;
  if (!ValidateShape(entry.shape, &elements).ok()) return;
  std::vector<const TensorSlice*> valid;
  for (const TensorSlice& slice : entry.slices) {
    if (ValidateSlice(slice, entry.shape).ok()) valid.push_back(&slice);
  }
  for (size_t i = 0; i < valid.size() && i < 32; ++i) {
    const TensorShape part = SliceShape(*valid[i], entry.shape);
    int64_t part_elements = 0;
    Check(ValidateShape(part, &part_elements).ok());
    Check(part_elements <= elements);
    for (size_t j = 0; j < i; ++j) {
      Check(SlicesOverlap(*valid[i], *valid[j], entry.shape) ==
            SlicesOverlap(*valid[j], *valid[i], entry.shape));
    }
    if (elements > 0 && elements <= 4096) {
      std::vector<char> full(static_cast<size_t>(elements) * 2, 1);
      std::vector<char> piece(static_cast<size_t>(part_elements) * 2 + 1, 2);
      CopySliceOutOfFull(full.data(), *valid[i], entry.shape, 2, piece.data());
      CopySliceIntoFull(piece.data(), *valid[i], entry.shape, 2, full.data());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  switch (data[0] % 6) {
    case 0: {
      auto entry = ParseBundleEntry(bytes);
      if (!entry.ok()) return 0;
      auto again = ParseBundleEntry(SerializeBundleEntry(*entry));
      Check(again.ok() && SameEntry(*entry, *again));
      ExerciseSlices(*entry);
      break;
    }
    case 1: {
      auto header = ParseBundleHeader(bytes);
      if (!header.ok()) return 0;
      auto again = ParseBundleHeader(SerializeBundleHeader(*header));
      Check(again.ok() && again->num_shards == header->num_shards &&
            again->endianness == header->endianness &&
            SameVersion(again->version, header->version));
      break;
    }
    case 2: {
      auto shape = ParseTensorShape(bytes);
      if (!shape.ok()) return 0;
      auto again = ParseTensorShape(SerializeTensorShape(*shape));
      Check(again.ok() && *again == *shape);
      (void)ValidateShape(*shape, nullptr);
      break;
    }
    case 3: {
      auto slice = ParseTensorSlice(bytes);
      if (!slice.ok()) return 0;
      auto again = ParseTensorSlice(SerializeTensorSlice(*slice));
      Check(again.ok() && *again == *slice);
      break;
    }
    case 4: {
      auto version = ParseVersionDef(bytes);
      if (!version.ok()) return 0;
      auto again = ParseVersionDef(SerializeVersionDef(*version));
      Check(again.ok() && SameVersion(*again, *version));
      break;
    }
    default: {
      // A raw walk, reading each field as its wire type says.
      ProtoReader r(bytes);
      while (r.Next()) {
        const size_t before = r.position();
        if (r.field() % 2 == 0) {
          Check(r.Skip() || !r.ok());
        }
        Check(r.position() >= before);
      }
      break;
    }
  }
  return 0;
}
