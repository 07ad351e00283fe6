// A minimal protocol-buffer wire codec: enough to write and read the few
// messages a tensor bundle's .index holds, without depending on protobuf.
//
// A message is a sequence of fields, each a tag followed by a value:
//
//   tag:   varint  (field_number << 3) | wire_type, with
//          field_number in [1, 2^29-1]
//   value: wire type 0 (varint)            varint64; int32/int64 are
//                                          sign-extended to 64 bits first, so a
//                                          negative number takes 10 bytes
//          wire type 1 (fixed64)           8 bytes little-endian
//          wire type 2 (length-delimited)  varint length, then that many bytes
//                                          (strings, bytes, nested messages,
//                                          packed repeated scalars)
//          wire type 5 (fixed32)           4 bytes little-endian
//          wire types 3/4 (groups)         deprecated; rejected by the reader
//
// The writer emits exactly what it is told: leaving out proto3 defaults and
// ordering fields by number is the caller's job.
#ifndef TRACKPOINT_PROTO_WIRE_H_
#define TRACKPOINT_PROTO_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/status.h"

namespace trackpoint {

enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

constexpr uint32_t kMaxFieldNumber = (uint32_t{1} << 29) - 1;

// Appends fields to a string.
// Thread safety: not thread-safe; one writer per thread.
class ProtoWriter {
 public:
  // REQUIRES: dst outlives the writer.
  explicit ProtoWriter(std::string* dst) : dst_(dst) {}

  // REQUIRES (all Write*): 1 <= field <= kMaxFieldNumber.
  void WriteVarint(uint32_t field, uint64_t value);
  // int32 is sign-extended to 64 bits, as protobuf does: -1 takes 10 bytes.
  void WriteInt32(uint32_t field, int32_t value);
  void WriteInt64(uint32_t field, int64_t value);
  void WriteBool(uint32_t field, bool value);
  void WriteFixed32(uint32_t field, uint32_t value);
  void WriteFixed64(uint32_t field, uint64_t value);
  void WriteBytes(uint32_t field, std::string_view value);
  // A nested message, given as its serialized bytes (length-prefixed).
  void WriteMessage(uint32_t field, std::string_view serialized) {
    WriteBytes(field, serialized);
  }
  // A packed repeated int32: one length-delimited field holding the
  // sign-extended varints. Writes nothing for an empty list.
  void WritePackedInt32(uint32_t field, const std::vector<int32_t>& values);

 private:
  void WriteTag(uint32_t field, WireType type);

  std::string* dst_;
};

// Walks the fields of one serialized message.
//
//   ProtoReader r(bytes);
//   while (r.Next()) {
//     switch (r.field()) {
//       case 1: if (!r.ReadInt64(&x)) ...; break;
//       default: break;  // Next() skips values that were not read
//     }
//   }
//   if (!r.ok()) ... r.error() ...
//
// The first error sticks: every later call fails. Lengths from the input are
// checked against the bytes that remain before anything is read, and the
// reader never allocates.
// Thread safety: not thread-safe; one reader per thread.
class ProtoReader {
 public:
  // REQUIRES: the bytes behind input outlive the reader and every view
  // returned by ReadBytes.
  explicit ProtoReader(std::string_view input) : input_(input) {}

  // Moves to the next field, first skipping the current field's value if it
  // was not read. Returns false at the end of the input or on an error
  // (tell them apart with ok()).
  bool Next();

  // The current field. REQUIRES: the last Next() returned true.
  uint32_t field() const { return field_; }
  WireType wire_type() const { return wire_type_; }

  // Read the current field's value. Each fails (and sets the error) when the
  // wire type does not match, the value is malformed or truncated, or there
  // is no current value.
  bool ReadVarint(uint64_t* value);
  // A varint truncated to its low 32 bits, as protobuf reads int32/enum.
  bool ReadInt32(int32_t* value);
  bool ReadInt64(int64_t* value);
  bool ReadBool(bool* value);
  bool ReadFixed32(uint32_t* value);
  bool ReadFixed64(uint64_t* value);
  // Length-delimited; *value points into the input.
  bool ReadBytes(std::string_view* value);
  // Skips the current value, whatever its wire type (groups are errors).
  bool Skip();

  bool ok() const { return error_.empty(); }
  // Empty when ok(); otherwise says what was wrong and at which offset.
  const std::string& error() const { return error_; }
  // Offset of the next unread byte.
  size_t position() const { return pos_; }

 private:
  bool Fail(std::string message);
  bool CheckValue(WireType expected);
  bool ConsumeVarint(uint64_t* value);

  std::string_view input_;
  size_t pos_ = 0;
  uint32_t field_ = 0;
  WireType wire_type_ = WireType::kVarint;
  bool value_pending_ = false;  // a tag was read, its value was not
  std::string error_;
};

// Errors of message decoders built on ProtoReader, all DataLoss:
// "malformed <message>.<field>: <reader error>" for a field that did not
// decode; EndStatus is OK if the reader stopped at the end of its input, else
// "malformed <message>: <framing error>"; Where gives "in <message>.<field>"
// to prefix errors of nested decoders.
Status FieldError(const char* message, const char* field, const ProtoReader& r);
Status EndStatus(const char* message, const ProtoReader& r);
std::string Where(const char* message, const char* field);

}  // namespace trackpoint

#endif  // TRACKPOINT_PROTO_WIRE_H_
