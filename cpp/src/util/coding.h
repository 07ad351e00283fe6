// Byte coding shared by the table, the protobuf codec and the bundle code.
//
//   fixed32 / fixed64: little-endian, whatever the host order
//   varint32 / varint64: unsigned LEB128, 7 bits a byte, low group first,
//                        high bit set on every byte but the last
//                        (at most 5 bytes for 32 bits, 10 for 64)
//
// Decoders take [p, limit) and never read at or past limit: they return
// nullptr (or false) on a truncated or over-long encoding.
#ifndef TRACKPOINT_UTIL_CODING_H_
#define TRACKPOINT_UTIL_CODING_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace trackpoint {

constexpr int kMaxVarint32Bytes = 5;
constexpr int kMaxVarint64Bytes = 10;

inline void EncodeFixed32(char* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline uint32_t DecodeFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) |
         (uint32_t{u[3]} << 24);
}
inline uint64_t DecodeFixed64(const char* p) {
  return uint64_t{DecodeFixed32(p)} | (uint64_t{DecodeFixed32(p + 4)} << 32);
}

void PutFixed32(std::string* dst, uint32_t v);
void PutFixed64(std::string* dst, uint64_t v);
void PutVarint32(std::string* dst, uint32_t v);
void PutVarint64(std::string* dst, uint64_t v);
// Writes the varint into dst (room for kMaxVarint64Bytes) and returns the
// byte past it.
char* EncodeVarint64(char* dst, uint64_t v);
int VarintLength(uint64_t v);

// Decode one varint from [p, limit); nullptr if truncated or too long.
const char* GetVarint32Ptr(const char* p, const char* limit, uint32_t* v);
const char* GetVarint64Ptr(const char* p, const char* limit, uint64_t* v);

// Consume a value from the front of *input; false on malformed input (then
// *input is unspecified).
bool GetVarint32(std::string_view* input, uint32_t* v);
bool GetVarint64(std::string_view* input, uint64_t* v);
bool GetFixed32(std::string_view* input, uint32_t* v);
// A varint32 length followed by that many bytes.
bool GetLengthPrefixed(std::string_view* input, std::string_view* result);

}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_CODING_H_
