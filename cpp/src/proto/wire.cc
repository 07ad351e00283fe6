// Protocol-buffer wire format; the byte layout is described in wire.h.
#include "proto/wire.h"

#include <cassert>
#include <utility>

#include "util/coding.h"

namespace trackpoint {
namespace {

const char* WireTypeName(WireType type) {
  switch (type) {
    case WireType::kVarint:
      return "varint";
    case WireType::kFixed64:
      return "fixed64";
    case WireType::kLengthDelimited:
      return "length-delimited";
    case WireType::kStartGroup:
      return "start-group";
    case WireType::kEndGroup:
      return "end-group";
    case WireType::kFixed32:
      return "fixed32";
  }
  return "invalid";
}

}  // namespace

// ---- ProtoWriter ------------------------------------------------------------

void ProtoWriter::WriteTag(uint32_t field, WireType type) {
  assert(field >= 1 && field <= kMaxFieldNumber);
  PutVarint32(dst_, (field << 3) | static_cast<uint32_t>(type));
}

void ProtoWriter::WriteVarint(uint32_t field, uint64_t value) {
  WriteTag(field, WireType::kVarint);
  PutVarint64(dst_, value);
}

void ProtoWriter::WriteInt32(uint32_t field, int32_t value) {
  WriteInt64(field, value);
}

void ProtoWriter::WriteInt64(uint32_t field, int64_t value) {
  WriteVarint(field, static_cast<uint64_t>(value));
}

void ProtoWriter::WriteBool(uint32_t field, bool value) {
  WriteVarint(field, value ? 1 : 0);
}

void ProtoWriter::WriteFixed32(uint32_t field, uint32_t value) {
  WriteTag(field, WireType::kFixed32);
  PutFixed32(dst_, value);
}

void ProtoWriter::WriteFixed64(uint32_t field, uint64_t value) {
  WriteTag(field, WireType::kFixed64);
  PutFixed64(dst_, value);
}

void ProtoWriter::WriteBytes(uint32_t field, std::string_view value) {
  WriteTag(field, WireType::kLengthDelimited);
  PutVarint64(dst_, value.size());
  dst_->append(value.data(), value.size());
}

void ProtoWriter::WritePackedInt32(uint32_t field,
                                   const std::vector<int32_t>& values) {
  if (values.empty()) return;
  std::string payload;
  for (int32_t v : values) {
    PutVarint64(&payload, static_cast<uint64_t>(int64_t{v}));
  }
  WriteBytes(field, payload);
}

// ---- ProtoReader ------------------------------------------------------------

bool ProtoReader::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  value_pending_ = false;
  return false;
}

bool ProtoReader::ConsumeVarint(uint64_t* value) {
  const char* begin = input_.data() + pos_;
  const char* limit = input_.data() + input_.size();
  const char* end = GetVarint64Ptr(begin, limit, value);
  if (end == nullptr) {
    return Fail("truncated or over-long varint at offset " +
                std::to_string(pos_));
  }
  pos_ += static_cast<size_t>(end - begin);
  return true;
}

bool ProtoReader::Next() {
  if (!ok()) return false;
  if (value_pending_ && !Skip()) return false;
  if (pos_ >= input_.size()) return false;
  const size_t tag_offset = pos_;
  uint64_t tag;
  if (!ConsumeVarint(&tag)) return false;
  const uint64_t field = tag >> 3;
  const uint64_t type = tag & 7;
  if (field == 0 || field > kMaxFieldNumber) {
    return Fail("invalid field number " + std::to_string(field) +
                " at offset " + std::to_string(tag_offset));
  }
  if (type > 5) {
    return Fail("invalid wire type " + std::to_string(type) + " for field " +
                std::to_string(field) + " at offset " +
                std::to_string(tag_offset));
  }
  field_ = static_cast<uint32_t>(field);
  wire_type_ = static_cast<WireType>(type);
  value_pending_ = true;
  return true;
}

bool ProtoReader::CheckValue(WireType expected) {
  if (!ok()) return false;
  if (!value_pending_) return Fail("no field value to read");
  if (wire_type_ != expected) {
    return Fail("field " + std::to_string(field_) + " has wire type " +
                WireTypeName(wire_type_) + ", expected " +
                WireTypeName(expected));
  }
  value_pending_ = false;
  return true;
}

bool ProtoReader::ReadVarint(uint64_t* value) {
  return CheckValue(WireType::kVarint) && ConsumeVarint(value);
}

bool ProtoReader::ReadInt32(int32_t* value) {
  uint64_t v;
  if (!ReadVarint(&v)) return false;
  *value = static_cast<int32_t>(static_cast<uint32_t>(v));
  return true;
}

bool ProtoReader::ReadInt64(int64_t* value) {
  uint64_t v;
  if (!ReadVarint(&v)) return false;
  *value = static_cast<int64_t>(v);
  return true;
}

bool ProtoReader::ReadBool(bool* value) {
  uint64_t v;
  if (!ReadVarint(&v)) return false;
  *value = v != 0;
  return true;
}

bool ProtoReader::ReadFixed32(uint32_t* value) {
  if (!CheckValue(WireType::kFixed32)) return false;
  if (input_.size() - pos_ < 4) {
    return Fail("truncated fixed32 at offset " + std::to_string(pos_));
  }
  *value = DecodeFixed32(input_.data() + pos_);
  pos_ += 4;
  return true;
}

bool ProtoReader::ReadFixed64(uint64_t* value) {
  if (!CheckValue(WireType::kFixed64)) return false;
  if (input_.size() - pos_ < 8) {
    return Fail("truncated fixed64 at offset " + std::to_string(pos_));
  }
  *value = DecodeFixed64(input_.data() + pos_);
  pos_ += 8;
  return true;
}

bool ProtoReader::ReadBytes(std::string_view* value) {
  if (!CheckValue(WireType::kLengthDelimited)) return false;
  const size_t length_offset = pos_;
  uint64_t length;
  if (!ConsumeVarint(&length)) return false;
  const size_t remaining = input_.size() - pos_;
  if (length > remaining) {
    return Fail("length " + std::to_string(length) + " at offset " +
                std::to_string(length_offset) + " exceeds the " +
                std::to_string(remaining) + " remaining bytes");
  }
  *value = input_.substr(pos_, static_cast<size_t>(length));
  pos_ += static_cast<size_t>(length);
  return true;
}

bool ProtoReader::Skip() {
  if (!ok()) return false;
  if (!value_pending_) return Fail("no field value to skip");
  switch (wire_type_) {
    case WireType::kVarint: {
      uint64_t v;
      return ReadVarint(&v);
    }
    case WireType::kFixed64: {
      uint64_t v;
      return ReadFixed64(&v);
    }
    case WireType::kLengthDelimited: {
      std::string_view v;
      return ReadBytes(&v);
    }
    case WireType::kFixed32: {
      uint32_t v;
      return ReadFixed32(&v);
    }
    case WireType::kStartGroup:
    case WireType::kEndGroup:
      break;
  }
  return Fail("field " + std::to_string(field_) +
              " uses a group wire type, which is not supported");
}

Status FieldError(const char* message, const char* field,
                  const ProtoReader& r) {
  return DataLossError(std::string("malformed ") + message + "." + field +
                       ": " + r.error());
}

Status EndStatus(const char* message, const ProtoReader& r) {
  if (r.ok()) return OkStatus();
  return DataLossError(std::string("malformed ") + message + ": " + r.error());
}

std::string Where(const char* message, const char* field) {
  return std::string("in ") + message + "." + field;
}

}  // namespace trackpoint
