#include "trackpoint/types.h"

namespace trackpoint {
namespace {

struct TypeInfo {
  const char* name;
  size_t size;
};

// Indexed by the enum value.
constexpr TypeInfo kTypes[] = {
    {nullptr, 0},          {"float32", 4},     {"float64", 8},
    {"int32", 4},          {"uint8", 1},       {"int16", 2},
    {"int8", 1},           {"string", 0},      {"complex64", 8},
    {"int64", 8},          {"bool", 1},        {"qint8", 1},
    {"quint8", 1},         {"qint32", 4},      {"bfloat16", 2},
    {"qint16", 2},         {"quint16", 2},     {"uint16", 2},
    {"complex128", 16},    {"float16", 2},     {"resource", 0},
    {"variant", 0},        {"uint32", 4},      {"uint64", 8},
    {"float8_e5m2", 1},    {"float8_e4m3fn", 1}, {"float8_e4m3fnuz", 1},
    {"float8_e4m3b11fnuz", 1}, {"float8_e5m2fnuz", 1}, {"int4", 1},
    {"uint4", 1},          {"int2", 1},        {"uint2", 1},
    {"float4_e2m1fn", 1},
};
constexpr int32_t kNumTypes = sizeof(kTypes) / sizeof(kTypes[0]);

}  // namespace

size_t DataTypeSize(DataType dtype) {
  auto v = static_cast<int32_t>(dtype);
  return v > 0 && v < kNumTypes ? kTypes[v].size : 0;
}

const char* DataTypeName(DataType dtype) {
  auto v = static_cast<int32_t>(dtype);
  return v > 0 && v < kNumTypes ? kTypes[v].name : nullptr;
}

bool IsStorableDataType(int32_t value) {
  return value > 0 && value < kNumTypes &&
         value != static_cast<int32_t>(DataType::kResource);
}

}  // namespace trackpoint
