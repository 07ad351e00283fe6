// The payload of a DT_STRING tensor in a data file:
//
//   len(s_0) ... len(s_{n-1})   varint64 each
//   length_checksum             u32, writer's byte order: masked CRC32C of the
//                               lengths (below)
//   s_0 || s_1 || ... || s_{n-1}
//
// The entry's CRC32C is one running CRC over: each length as a 4-byte
// integer in the writer's byte order (8 bytes if it exceeds 2^32-1), then the
// 4 stored checksum bytes, then the string bytes. (It does not cover the
// varint bytes.)
#ifndef TRACKPOINT_BUNDLE_STRING_TENSOR_H_
#define TRACKPOINT_BUNDLE_STRING_TENSOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/status.h"

namespace trackpoint {

// Appends the payload of elements to *out; returns the entry's (unmasked)
// CRC32C. Little-endian writer.
uint32_t EncodeStringTensor(const std::vector<std::string_view>& elements,
                            std::string* out);

// Decodes a payload of num_elements strings and checks both checksums
// against the entry's unmasked crc. big_endian: the writer's byte order.
// `what` names the tensor and file for error messages.
Result<std::vector<std::string>> DecodeStringTensor(std::string_view payload,
                                                    uint64_t num_elements,
                                                    uint32_t expected_crc,
                                                    bool big_endian,
                                                    const std::string& what);

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_STRING_TENSOR_H_
