// OrderedCode: encodings whose bytewise (memcmp) order matches the order of
// the encoded values, so a sequence of them can serve as a sortable key.
// Tensor bundles use it only for slice keys (bundle/slice_key.h).
//
//   unsigned number u: one byte n = length of u's minimal big-endian form
//     (0 for u = 0, at most 8), then those n bytes.
//     0 -> 00, 1 -> 01 01, 256 -> 02 01 00
//   string s: s with each 00 written as 00 FF and each FF as FF 00, then the
//     terminator 00 01.
//   signed number v: 1..10 bytes. Positive numbers start with the bit 1,
//     negative ones with 0. After that sign bit come L-1 bits equal to it
//     and one bit different from it (the header, continuing into the second
//     byte for L >= 8), then v in two's complement, sign-extended to fill
//     the L bytes. L is the fewest bytes that hold the header and v.
//     0 -> 80, 11 -> 8B, 63 -> BF, -1 -> 7F, -64 -> 40, 64 -> C0 40
#ifndef TRACKPOINT_BUNDLE_ORDERED_CODE_H_
#define TRACKPOINT_BUNDLE_ORDERED_CODE_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace trackpoint {
namespace ordered_code {

void WriteNumIncreasing(std::string* dst, uint64_t value);
void WriteString(std::string* dst, std::string_view value);
void WriteSignedNumIncreasing(std::string* dst, int64_t value);

// Each decodes one value from the front of *src and removes its bytes.
// Returns false on malformed or truncated input (then *src and the output
// are unspecified). The output pointer may be null to skip the value.
bool ReadNumIncreasing(std::string_view* src, uint64_t* value);
bool ReadString(std::string_view* src, std::string* value);
bool ReadSignedNumIncreasing(std::string_view* src, int64_t* value);

}  // namespace ordered_code
}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_ORDERED_CODE_H_
