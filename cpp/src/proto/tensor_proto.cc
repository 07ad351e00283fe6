#include "proto/tensor_proto.h"

#include <cstring>

#include "proto/wire.h"
#include "util/coding.h"

namespace trackpoint {
namespace {

constexpr char kName[] = "TensorProto";

// How one dtype's values are stored: the field, and how each element is
// coded in it.
enum class Coding { kVarint, kFixed32, kFixed64 };
struct ValueField {
  uint32_t field;
  Coding coding;
  int per_element;  // values per element (2 for complex)
};

bool FieldFor(DataType dtype, ValueField* out) {
  switch (dtype) {
    case DataType::kFloat: *out = {5, Coding::kFixed32, 1}; return true;
    case DataType::kDouble: *out = {6, Coding::kFixed64, 1}; return true;
    case DataType::kInt32:
    case DataType::kInt16:
    case DataType::kInt8:
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kQint8:
    case DataType::kQuint8:
    case DataType::kQint16:
    case DataType::kQuint16:
    case DataType::kQint32: *out = {7, Coding::kVarint, 1}; return true;
    case DataType::kInt64: *out = {10, Coding::kVarint, 1}; return true;
    case DataType::kBool: *out = {11, Coding::kVarint, 1}; return true;
    case DataType::kComplex64: *out = {9, Coding::kFixed32, 2}; return true;
    case DataType::kComplex128: *out = {12, Coding::kFixed64, 2}; return true;
    case DataType::kHalf:
    case DataType::kBfloat16: *out = {13, Coding::kVarint, 1}; return true;
    case DataType::kUint32: *out = {16, Coding::kVarint, 1}; return true;
    case DataType::kUint64: *out = {17, Coding::kVarint, 1}; return true;
    default: return false;
  }
}

// Appends the little-endian low `width` bytes of v to the output.
class ValueSink {
 public:
  ValueSink(char* dst, size_t capacity, size_t width)
      : dst_(dst), capacity_(capacity), width_(width) {}
  bool Put(uint64_t v) {
    if (count_ == capacity_) return false;
    for (size_t i = 0; i < width_; ++i) {
      dst_[count_ * width_ + i] = static_cast<char>(v >> (8 * i));
    }
    ++count_;
    return true;
  }
  size_t count() const { return count_; }

 private:
  char* dst_;
  size_t capacity_, width_, count_ = 0;
};

// Reads one value (or, for a packed field, all of them) into sink.
Status ReadValues(ProtoReader& r, Coding coding, ValueSink& sink) {
  auto overflow = [] {
    return DataLossError("malformed TensorProto: more values than elements");
  };
  if (r.wire_type() == WireType::kLengthDelimited) {
    std::string_view packed;
    if (!r.ReadBytes(&packed)) return FieldError(kName, "values", r);
    while (!packed.empty()) {
      uint64_t v = 0;
      if (coding == Coding::kVarint) {
        if (!GetVarint64(&packed, &v)) {
          return DataLossError("malformed TensorProto: bad packed varint");
        }
      } else {
        const size_t n = coding == Coding::kFixed32 ? 4 : 8;
        if (packed.size() < n) {
          return DataLossError("malformed TensorProto: truncated packed value");
        }
        v = n == 4 ? DecodeFixed32(packed.data()) : DecodeFixed64(packed.data());
        packed.remove_prefix(n);
      }
      if (!sink.Put(v)) return overflow();
    }
    return OkStatus();
  }
  uint64_t v = 0;
  bool read = false;
  if (coding == Coding::kVarint) {
    read = r.ReadVarint(&v);
  } else if (coding == Coding::kFixed32) {
    uint32_t v32 = 0;
    read = r.ReadFixed32(&v32);
    v = v32;
  } else {
    read = r.ReadFixed64(&v);
  }
  if (!read) return FieldError(kName, "values", r);
  return sink.Put(v) ? OkStatus() : overflow();
}

}  // namespace

Status DecodeTensorProtoValues(std::string_view proto, DataType dtype,
                               size_t num_elements, char* dst) {
  ValueField vf;
  if (!FieldFor(dtype, &vf)) {
    return UnimplementedError(std::string("reading ") + DataTypeName(dtype) +
                              " tensors of V1 checkpoints is not supported");
  }
  const size_t element_size = DataTypeSize(dtype);
  const size_t values = num_elements * static_cast<size_t>(vf.per_element);
  ValueSink sink(dst, values, element_size / static_cast<size_t>(vf.per_element));
  bool content = false;
  ProtoReader r(proto);
  while (r.Next()) {
    if (r.field() == 4) {
      std::string_view bytes;
      if (!r.ReadBytes(&bytes)) return FieldError(kName, "tensor_content", r);
      if (bytes.size() != num_elements * element_size) {
        return DataLossError("TensorProto.tensor_content holds " +
                             std::to_string(bytes.size()) + " bytes, expected " +
                             std::to_string(num_elements * element_size));
      }
      std::memcpy(dst, bytes.data(), bytes.size());
      content = true;
    } else if (r.field() == vf.field) {
      TP_RETURN_IF_ERROR(ReadValues(r, vf.coding, sink));
    }
  }
  TP_RETURN_IF_ERROR(EndStatus(kName, r));
  if (content) return OkStatus();
  if (sink.count() != values) {
    return DataLossError("TensorProto holds " + std::to_string(sink.count()) +
                         " values, expected " + std::to_string(values));
  }
  return OkStatus();
}

Result<std::vector<std::string>> DecodeTensorProtoStrings(
    std::string_view proto, size_t num_elements) {
  std::vector<std::string> out;
  ProtoReader r(proto);
  while (r.Next()) {
    if (r.field() != 8) continue;
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return FieldError(kName, "string_val", r);
    if (out.size() == num_elements) {
      return DataLossError("malformed TensorProto: more strings than elements");
    }
    out.emplace_back(bytes);
  }
  TP_RETURN_IF_ERROR(EndStatus(kName, r));
  if (out.size() != num_elements) {
    return DataLossError("TensorProto holds " + std::to_string(out.size()) +
                         " strings, expected " + std::to_string(num_elements));
  }
  return out;
}

}  // namespace trackpoint
