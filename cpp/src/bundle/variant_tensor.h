// The payload of a DT_VARIANT tensor in a data file (TensorFlow writes, for
// instance, tf.data iterator state this way), per element in row-major order:
//
//   len          varint64: bytes of the element
//   element      len bytes: a serialized VariantTensorDataProto
//   checksum     u32, writer's byte order: mask(running CRC32C so far)
//
// The running CRC32C (starting at 0) extends, per element, over len as an
// 8-byte integer in the writer's byte order (not over the varint bytes),
// then over the element bytes; the checksum is written and the CRC extended
// over its 4 stored bytes. The entry's CRC32C is mask(final CRC).
#ifndef TRACKPOINT_BUNDLE_VARIANT_TENSOR_H_
#define TRACKPOINT_BUNDLE_VARIANT_TENSOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/status.h"

namespace trackpoint {

// Appends the payload of elements (serialized protos) to *out; returns the
// entry's (unmasked) CRC32C. Little-endian writer.
uint32_t EncodeVariantTensor(const std::vector<std::string_view>& elements,
                             std::string* out);

// Decodes a payload of num_elements variant elements, checking every
// per-element checksum and the entry's unmasked crc; the elements come back
// as the serialized protos they are (trackpoint does not interpret them).
// big_endian: the writer's byte order. `what` names the tensor and file.
Result<std::vector<std::string>> DecodeVariantTensor(std::string_view payload,
                                                     uint64_t num_elements,
                                                     uint32_t expected_crc,
                                                     bool big_endian,
                                                     const std::string& what);

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_VARIANT_TENSOR_H_
