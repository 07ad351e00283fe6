// Tensor element types, numbered as TensorFlow's DataType enum
// (tensorflow/core/framework/types.proto), which is what the .index stores.
#ifndef TRACKPOINT_TYPES_H_
#define TRACKPOINT_TYPES_H_

#include <cstddef>
#include <cstdint>

namespace trackpoint {

enum class DataType : int32_t {
  kInvalid = 0,
  kFloat = 1,
  kDouble = 2,
  kInt32 = 3,
  kUint8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kComplex64 = 8,
  kInt64 = 9,
  kBool = 10,
  kQint8 = 11,
  kQuint8 = 12,
  kQint32 = 13,
  kBfloat16 = 14,
  kQint16 = 15,
  kQuint16 = 16,
  kUint16 = 17,
  kComplex128 = 18,
  kHalf = 19,
  kResource = 20,
  kVariant = 21,
  kUint32 = 22,
  kUint64 = 23,
  kFloat8E5m2 = 24,
  kFloat8E4m3fn = 25,
  kFloat8E4m3fnuz = 26,
  kFloat8E4m3b11fnuz = 27,
  kFloat8E5m2fnuz = 28,
  kInt4 = 29,
  kUint4 = 30,
  kInt2 = 31,
  kUint2 = 32,
  kFloat4E2m1fn = 33,
};

// Bytes per element as stored in a bundle (sub-byte types take one byte,
// unpacked); 0 for types without a fixed size (string, variant, resource)
// and for values outside the enum.
size_t DataTypeSize(DataType dtype);

// TensorFlow's Python name ("float32", "bfloat16", "string", ...), or
// nullptr for values outside the enum.
const char* DataTypeName(DataType dtype);

// The enum's own name ("DT_FLOAT", "DT_HALF", "DT_VARIANT", ...), as
// TensorFlow prints it; "DT_INVALID" for values outside the enum.
const char* DataTypeEnumName(DataType dtype);

// True for values 1..33 except resource (20): the types a bundle can hold.
bool IsStorableDataType(int32_t value);

}  // namespace trackpoint

#endif  // TRACKPOINT_TYPES_H_
