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

// types.proto's names, indexed by the enum value.
constexpr const char* kEnumNames[] = {
    "DT_INVALID",         "DT_FLOAT",         "DT_DOUBLE",
    "DT_INT32",           "DT_UINT8",         "DT_INT16",
    "DT_INT8",            "DT_STRING",        "DT_COMPLEX64",
    "DT_INT64",           "DT_BOOL",          "DT_QINT8",
    "DT_QUINT8",          "DT_QINT32",        "DT_BFLOAT16",
    "DT_QINT16",          "DT_QUINT16",       "DT_UINT16",
    "DT_COMPLEX128",      "DT_HALF",          "DT_RESOURCE",
    "DT_VARIANT",         "DT_UINT32",        "DT_UINT64",
    "DT_FLOAT8_E5M2",     "DT_FLOAT8_E4M3FN", "DT_FLOAT8_E4M3FNUZ",
    "DT_FLOAT8_E4M3B11FNUZ", "DT_FLOAT8_E5M2FNUZ", "DT_INT4",
    "DT_UINT4",           "DT_INT2",          "DT_UINT2",
    "DT_FLOAT4_E2M1FN",
};
static_assert(sizeof(kEnumNames) / sizeof(kEnumNames[0]) == kNumTypes);

}  // namespace

size_t DataTypeSize(DataType dtype) {
  auto v = static_cast<int32_t>(dtype);
  return v > 0 && v < kNumTypes ? kTypes[v].size : 0;
}

const char* DataTypeName(DataType dtype) {
  auto v = static_cast<int32_t>(dtype);
  return v > 0 && v < kNumTypes ? kTypes[v].name : nullptr;
}

const char* DataTypeEnumName(DataType dtype) {
  auto v = static_cast<int32_t>(dtype);
  return v > 0 && v < kNumTypes ? kEnumNames[v] : kEnumNames[0];
}

bool IsStorableDataType(int32_t value) {
  return value > 0 && value < kNumTypes &&
         value != static_cast<int32_t>(DataType::kResource);
}

}  // namespace trackpoint
