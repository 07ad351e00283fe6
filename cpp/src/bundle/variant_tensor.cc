#include "bundle/variant_tensor.h"

#include "trackpoint/crc32c.h"
#include "util/coding.h"

namespace trackpoint {
namespace {

uint32_t ExtendWithLength(uint32_t crc, uint64_t len, bool big_endian) {
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    int shift = 8 * (big_endian ? 7 - i : i);
    buf[i] = static_cast<char>(len >> shift);
  }
  return crc32c::Extend(crc, buf, 8);
}

}  // namespace

uint32_t EncodeVariantTensor(const std::vector<std::string_view>& elements,
                             std::string* out) {
  uint32_t crc = 0;
  for (std::string_view element : elements) {
    PutVarint64(out, element.size());
    crc = ExtendWithLength(crc, element.size(), /*big_endian=*/false);
    out->append(element);
    crc = crc32c::Extend(crc, element.data(), element.size());
    char checksum[4];
    EncodeFixed32(checksum, crc32c::Mask(crc));
    out->append(checksum, 4);
    crc = crc32c::Extend(crc, checksum, 4);
  }
  return crc;
}

Result<std::vector<std::string>> DecodeVariantTensor(std::string_view payload,
                                                     uint64_t num_elements,
                                                     uint32_t expected_crc,
                                                     bool big_endian,
                                                     const std::string& what) {
  // Every element takes at least 5 bytes (a varint and its checksum): this
  // bounds the count before anything is allocated for it.
  if (num_elements > payload.size() / 5) {
    return DataLossError(what + ": variant tensor of " +
                         std::to_string(num_elements) +
                         " elements cannot fit " +
                         std::to_string(payload.size()) + " bytes");
  }
  std::vector<std::string> elements;
  elements.reserve(num_elements);
  std::string_view in = payload;
  uint32_t crc = 0;
  for (uint64_t i = 0; i < num_elements; ++i) {
    const std::string element_what =
        what + ": variant element " + std::to_string(i);
    uint64_t len = 0;
    if (!GetVarint64(&in, &len)) {
      return DataLossError(element_what + " has a bad length");
    }
    if (len > in.size() || in.size() - len < 4) {
      return DataLossError(element_what + " of " + std::to_string(len) +
                           " bytes runs past the end of the payload");
    }
    crc = ExtendWithLength(crc, len, big_endian);
    crc = crc32c::Extend(crc, in.data(), len);
    elements.emplace_back(in.substr(0, len));
    in.remove_prefix(len);
    uint32_t stored = DecodeFixed32(in.data());
    if (big_endian) stored = __builtin_bswap32(stored);
    if (crc32c::Unmask(stored) != crc) {
      return DataLossError(element_what + ": checksum does not match "
                                          "(data corrupted)");
    }
    crc = crc32c::Extend(crc, in.data(), 4);
    in.remove_prefix(4);
  }
  if (!in.empty()) {
    return DataLossError(what + ": " + std::to_string(in.size()) +
                         " bytes after the last variant element");
  }
  if (crc != expected_crc) {
    return DataLossError(what + ": checksum does not match (data corrupted)");
  }
  return elements;
}

}  // namespace trackpoint
