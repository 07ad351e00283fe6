// Raw Snappy, as read here:
//
//   preamble      varint32   uncompressed length
//   element*      until the input ends; the low 2 bits of the tag byte pick
//                 the kind:
//     literal     tag & 3 == 0; n = tag >> 2
//                   n < 60:  length = n + 1
//                   n >= 60: length - 1 is in the next n - 59 bytes (LE)
//                 followed by `length` bytes copied to the output
//     copy-1      tag & 3 == 1; length = 4 + ((tag >> 2) & 7)
//                 offset = ((tag >> 5) << 8) | next byte   (11 bits)
//     copy-2      tag & 3 == 2; length = 1 + (tag >> 2); offset = next 2 bytes
//     LE copy-4      tag & 3 == 3; length = 1 + (tag >> 2); offset = next 4
//     bytes LE
//
// A copy repeats `length` bytes starting `offset` bytes back from the end of
// the output so far; offset < length means the copy overlaps its own output
// (a run). The output must come out exactly as long as the preamble says.
#include "table/snappy.h"

#include <cstring>

#include "util/coding.h"

namespace trackpoint {
namespace table {
namespace {

// The most output n bytes of elements can produce: a copy-2 element turns 3
// bytes into at most 64, and no element does better.
uint64_t MaxExpansion(uint64_t n) { return (n * 64 + 2) / 3; }

Status Malformed(const std::string& what) {
  return DataLossError("malformed snappy data: " + what);
}

uint32_t LoadLE(const char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return v;
}

}  // namespace

Result<uint64_t> SnappyUncompressedLength(std::string_view compressed) {
  uint32_t length;
  if (GetVarint32Ptr(compressed.data(), compressed.data() + compressed.size(),
                     &length) == nullptr) {
    return Malformed("bad length preamble");
  }
  return uint64_t{length};
}

Result<std::string> SnappyUncompress(std::string_view compressed,
                                     size_t max_length) {
  const char* p = compressed.data();
  const char* const limit = p + compressed.size();
  uint32_t length;
  p = GetVarint32Ptr(p, limit, &length);
  if (p == nullptr) return Malformed("bad length preamble");
  if (length > max_length) {
    return Malformed("uncompressed length " + std::to_string(length) +
                     " exceeds the limit of " + std::to_string(max_length) +
                     " bytes");
  }
  if (length > MaxExpansion(static_cast<uint64_t>(limit - p))) {
    return Malformed("uncompressed length " + std::to_string(length) +
                     " is more than " + std::to_string(limit - p) +
                     " compressed bytes can hold");
  }

  std::string out(length, '\0');
  char* const dst = out.data();
  size_t op = 0;  // bytes of output produced so far
  while (p < limit) {
    const auto tag = static_cast<unsigned char>(*p++);
    const size_t avail = static_cast<size_t>(limit - p);
    if ((tag & 3) == 0) {
      uint64_t len = tag >> 2;
      if (len >= 60) {
        const int extra = static_cast<int>(len) - 59;
        if (avail < static_cast<size_t>(extra)) {
          return Malformed("truncated literal length");
        }
        len = LoadLE(p, extra);
        p += extra;
      }
      len += 1;
      if (len > static_cast<uint64_t>(limit - p)) {
        return Malformed("literal of " + std::to_string(len) +
                         " bytes runs past the end of the input");
      }
      if (len > length - op) {
        return Malformed("literal runs past the uncompressed length " +
                         std::to_string(length));
      }
      std::memcpy(dst + op, p, len);
      p += len;
      op += len;
      continue;
    }

    size_t len;
    size_t offset;
    switch (tag & 3) {
      case 1:
        if (avail < 1) return Malformed("truncated copy");
        len = 4 + ((tag >> 2) & 7);
        offset = (size_t{tag} >> 5) << 8 | static_cast<unsigned char>(*p);
        p += 1;
        break;
      case 2:
        if (avail < 2) return Malformed("truncated copy");
        len = 1 + (tag >> 2);
        offset = LoadLE(p, 2);
        p += 2;
        break;
      default:
        if (avail < 4) return Malformed("truncated copy");
        len = 1 + (tag >> 2);
        offset = LoadLE(p, 4);
        p += 4;
        break;
    }
    if (offset == 0 || offset > op) {
      return Malformed("copy offset " + std::to_string(offset) + " at output " +
                       std::to_string(op) + " reaches before the start");
    }
    if (len > length - op) {
      return Malformed("copy runs past the uncompressed length " +
                       std::to_string(length));
    }
    const char* src = dst + op - offset;
    if (offset >= len) {
      std::memcpy(dst + op, src, len);
    } else {
      for (size_t i = 0; i < len; ++i) dst[op + i] = src[i];  // overlapping
    }
    op += len;
  }
  if (op != length) {
    return Malformed("output ends after " + std::to_string(op) +
                     " bytes, the preamble says " + std::to_string(length));
  }
  return out;
}

}  // namespace table
}  // namespace trackpoint
