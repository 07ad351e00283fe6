// OrderedCode; the byte layouts are described in ordered_code.h.
#include "bundle/ordered_code.h"

namespace trackpoint {
namespace ordered_code {
namespace {

// In a string, 00 and FF are escape bytes, always followed by a second byte:
// 00 FF is a 00 byte, FF 00 is an FF byte, 00 01 ends the string.
constexpr unsigned char kEscapeNul = 0x00;
constexpr unsigned char kEscapeFF = 0xFF;
constexpr unsigned char kNulSuffix = 0xFF;
constexpr unsigned char kFFSuffix = 0x00;
constexpr unsigned char kEndSuffix = 0x01;

// For a signed number of L bytes (index L), what to XOR into its first and
// second byte to turn the sign-extended big-endian value into header + value
// (and back). Index 0 is unused.
constexpr unsigned char kHeader0[11] = {0,    0x80, 0xC0, 0xE0, 0xF0, 0xF8,
                                        0xFC, 0xFE, 0xFF, 0xFF, 0xFF};
constexpr unsigned char kHeader1[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xC0};

constexpr int kMaxSignedLength = 10;

unsigned char Byte(std::string_view s, size_t i) {
  return static_cast<unsigned char>(s[i]);
}

int LeadingOnes(unsigned char c) {
  int n = 0;
  while (n < 8 && (c & (0x80 >> n)) != 0) ++n;
  return n;
}

// Number of significant bits in x (0 for 0).
int BitWidth(uint64_t x) {
  int n = 0;
  while (x != 0) {
    x >>= 1;
    ++n;
  }
  return n;
}

}  // namespace

void WriteNumIncreasing(std::string* dst, uint64_t value) {
  unsigned char buf[9];
  int n = 0;
  for (uint64_t v = value; v != 0; v >>= 8) ++n;
  buf[0] = static_cast<unsigned char>(n);
  for (int i = 0; i < n; ++i) {
    buf[n - i] = static_cast<unsigned char>(value >> (8 * i));
  }
  dst->append(reinterpret_cast<const char*>(buf), n + 1);
}

bool ReadNumIncreasing(std::string_view* src, uint64_t* value) {
  if (src->empty()) return false;
  const size_t n = Byte(*src, 0);
  if (n > 8 || src->size() < n + 1) return false;
  uint64_t v = 0;
  for (size_t i = 1; i <= n; ++i) v = (v << 8) | Byte(*src, i);
  if (value != nullptr) *value = v;
  src->remove_prefix(n + 1);
  return true;
}

void WriteString(std::string* dst, std::string_view value) {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    dst->push_back(ch);
    if (c == kEscapeNul) {
      dst->push_back(static_cast<char>(kNulSuffix));
    } else if (c == kEscapeFF) {
      dst->push_back(static_cast<char>(kFFSuffix));
    }
  }
  dst->push_back(static_cast<char>(kEscapeNul));
  dst->push_back(static_cast<char>(kEndSuffix));
}

bool ReadString(std::string_view* src, std::string* value) {
  if (value != nullptr) value->clear();
  size_t i = 0;
  for (;;) {
    if (i >= src->size()) return false;  // no terminator
    const unsigned char c = Byte(*src, i);
    if (c != kEscapeNul && c != kEscapeFF) {
      if (value != nullptr) value->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (i + 1 >= src->size()) return false;
    const unsigned char next = Byte(*src, i + 1);
    if (c == kEscapeNul && next == kEndSuffix) {
      src->remove_prefix(i + 2);
      return true;
    }
    if (c == kEscapeNul && next == kNulSuffix) {
      if (value != nullptr) value->push_back('\0');
    } else if (c == kEscapeFF && next == kFFSuffix) {
      if (value != nullptr) value->push_back(static_cast<char>(0xFF));
    } else {
      return false;  // an escape byte not followed by a valid second byte
    }
    i += 2;
  }
}

void WriteSignedNumIncreasing(std::string* dst, int64_t value) {
  const uint64_t u = static_cast<uint64_t>(value);
  const uint64_t magnitude_bits = value < 0 ? ~u : u;
  const int length = BitWidth(magnitude_bits) / 7 + 1;
  // The value as a 10-byte big-endian two's-complement number.
  unsigned char buf[kMaxSignedLength];
  const unsigned char fill = value < 0 ? 0xFF : 0x00;
  buf[0] = buf[1] = fill;
  for (int i = 0; i < 8; ++i) {
    buf[kMaxSignedLength - 1 - i] = static_cast<unsigned char>(u >> (8 * i));
  }
  unsigned char* p = buf + (kMaxSignedLength - length);
  p[0] ^= kHeader0[length];
  if (length >= 2) p[1] ^= kHeader1[length];
  dst->append(reinterpret_cast<const char*>(p), length);
}

bool ReadSignedNumIncreasing(std::string_view* src, int64_t* value) {
  if (src->empty()) return false;
  // Negative numbers are the bitwise complement of the positive layout.
  const unsigned char invert = (Byte(*src, 0) & 0x80) ? 0x00 : 0xFF;
  int length = LeadingOnes(Byte(*src, 0) ^ invert);
  if (length == 8) {
    if (src->size() < 2) return false;
    length += LeadingOnes(Byte(*src, 1) ^ invert);
    if (length > kMaxSignedLength) return false;
  }
  if (src->size() < static_cast<size_t>(length)) return false;
  unsigned char buf[kMaxSignedLength];
  for (int i = 0; i < length; ++i) buf[i] = Byte(*src, i);
  buf[0] ^= kHeader0[length];
  if (length >= 2) buf[1] ^= kHeader1[length];
  // Now buf holds the value sign-extended to `length` bytes. Only the
  // 10-byte form has room for more than 64 bits: the extra ones must be
  // copies of the sign.
  if (length == kMaxSignedLength &&
      (buf[1] != invert || (buf[2] & 0x80) != (invert & 0x80))) {
    return false;
  }
  uint64_t u = invert ? ~uint64_t{0} : 0;
  for (int i = 0; i < length; ++i) u = (u << 8) | buf[i];
  if (value != nullptr) *value = static_cast<int64_t>(u);
  src->remove_prefix(length);
  return true;
}

}  // namespace ordered_code
}  // namespace trackpoint
