// The values of a TensorProto (tensorflow/core/framework/tensor.proto), as
// the V1 checkpoint format stores a saved slice's elements. Only the value
// fields are read; dtype and shape come from the checkpoint's metadata.
//
// TensorProto fields holding values (all repeated; numeric ones packed or
// not, protobuf readers take both):
//   22 tensor_content  bytes       the elements' raw little-endian bytes
//   2a float_val       fixed32     float
//   31 double_val      fixed64     double
//   38 int_val         varint      int32, int16, int8, uint8, uint16, qint*
//   42 string_val      bytes       string (one field per element)
//   4d scomplex_val    fixed32     complex64, real and imaginary in turn
//   50 int64_val       varint      int64
//   58 bool_val        varint      bool
//   61 dcomplex_val    fixed64     complex128, real and imaginary in turn
//   68 half_val        varint      float16, bfloat16 (the 16 bits)
//   80 01 uint32_val   varint      uint32
//   88 01 uint64_val   varint      uint64
#ifndef TRACKPOINT_PROTO_TENSOR_PROTO_H_
#define TRACKPOINT_PROTO_TENSOR_PROTO_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/status.h"
#include "trackpoint/types.h"

namespace trackpoint {

// Decodes exactly num_elements values of a fixed-size dtype into dst (which
// holds num_elements * DataTypeSize(dtype) bytes, little-endian). DataLoss
// when the proto is malformed or holds another number of values;
// Unimplemented for dtypes this reader does not decode.
Status DecodeTensorProtoValues(std::string_view proto, DataType dtype,
                               size_t num_elements, char* dst);

// The string_val elements of a DT_STRING TensorProto (exactly num_elements).
Result<std::vector<std::string>> DecodeTensorProtoStrings(
    std::string_view proto, size_t num_elements);

}  // namespace trackpoint

#endif  // TRACKPOINT_PROTO_TENSOR_PROTO_H_
