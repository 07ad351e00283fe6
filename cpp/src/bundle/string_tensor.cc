#include "bundle/string_tensor.h"

#include "trackpoint/crc32c.h"
#include "util/coding.h"

namespace trackpoint {
namespace {

// Extends crc over a string length the way the writer's host laid it out.
uint32_t ExtendWithLength(uint32_t crc, uint64_t len, bool big_endian) {
  char buf[8];
  if (len <= 0xffffffffu) {
    for (int i = 0; i < 4; ++i) {
      int shift = 8 * (big_endian ? 3 - i : i);
      buf[i] = static_cast<char>(len >> shift);
    }
    return crc32c::Extend(crc, buf, 4);
  }
  for (int i = 0; i < 8; ++i) {
    int shift = 8 * (big_endian ? 7 - i : i);
    buf[i] = static_cast<char>(len >> shift);
  }
  return crc32c::Extend(crc, buf, 8);
}

}  // namespace

uint32_t EncodeStringTensor(const std::vector<std::string_view>& elements,
                            std::string* out) {
  uint32_t crc = 0;
  size_t total = 0;
  for (std::string_view s : elements) {
    PutVarint64(out, s.size());
    crc = ExtendWithLength(crc, s.size(), /*big_endian=*/false);
    total += s.size();
  }
  char checksum[4];
  EncodeFixed32(checksum, crc32c::Mask(crc));
  out->append(checksum, 4);
  crc = crc32c::Extend(crc, checksum, 4);
  out->reserve(out->size() + total);
  for (std::string_view s : elements) {
    out->append(s);
    crc = crc32c::Extend(crc, s.data(), s.size());
  }
  return crc;
}

Result<std::vector<std::string>> DecodeStringTensor(std::string_view payload,
                                                    uint64_t num_elements,
                                                    uint32_t expected_crc,
                                                    bool big_endian,
                                                    const std::string& what) {
  // Every element takes at least one varint byte: this bounds the count
  // before anything is allocated for it.
  if (num_elements > payload.size()) {
    return DataLossError(what + ": string tensor of " +
                         std::to_string(num_elements) + " elements cannot fit " +
                         std::to_string(payload.size()) + " bytes");
  }
  std::vector<uint64_t> lengths(num_elements);
  std::string_view in = payload;
  uint32_t crc = 0;
  uint64_t total = 0;
  for (uint64_t i = 0; i < num_elements; ++i) {
    if (!GetVarint64(&in, &lengths[i])) {
      return DataLossError(what + ": bad length of string element " +
                           std::to_string(i));
    }
    crc = ExtendWithLength(crc, lengths[i], big_endian);
    if (lengths[i] > payload.size() - total) {
      return DataLossError(what + ": string lengths exceed the payload size " +
                           std::to_string(payload.size()));
    }
    total += lengths[i];
  }
  if (in.size() < 4) {
    return DataLossError(what + ": string payload is missing its length "
                                "checksum");
  }
  uint32_t stored = DecodeFixed32(in.data());
  if (big_endian) stored = __builtin_bswap32(stored);
  if (crc32c::Unmask(stored) != crc) {
    return DataLossError(what + ": string length checksum does not match");
  }
  crc = crc32c::Extend(crc, in.data(), 4);
  in.remove_prefix(4);
  if (in.size() != total) {
    return DataLossError(what + ": string payload holds " +
                         std::to_string(in.size()) + " string bytes, lengths "
                         "say " + std::to_string(total));
  }
  std::vector<std::string> result;
  result.reserve(num_elements);
  for (uint64_t len : lengths) {
    result.emplace_back(in.substr(0, len));
    in.remove_prefix(len);
  }
  crc = crc32c::Extend(crc, payload.data() + (payload.size() - total), total);
  if (crc != expected_crc) {
    return DataLossError(what + ": checksum does not match (data corrupted)");
  }
  return result;
}

}  // namespace trackpoint
