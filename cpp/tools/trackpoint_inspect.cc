// trackpoint-inspect: lists, prints and verifies the tensors of a checkpoint
// from C++, with no Python in the process.
//
//   trackpoint-inspect PATH                 every key: dtype, shape, bytes
//   trackpoint-inspect PATH --tensor KEY    one tensor's values
//   trackpoint-inspect PATH --verify        read every tensor, check its CRC
//
// PATH is a checkpoint prefix or a directory (its latest checkpoint).
// Exit status: 0 success, 1 verification found corrupt tensors, 2 a usage
// error or a checkpoint that cannot be opened / a key that does not exist.
#include <cinttypes>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "trackpoint/checkpoint_reader.h"

namespace {

using trackpoint::CheckpointReader;
using trackpoint::DataType;
using trackpoint::DataTypeName;
using trackpoint::DataTypeSize;
using trackpoint::TensorInfo;

constexpr char kUsage[] =
    "usage: trackpoint-inspect PATH [--tensor KEY] [--verify]\n"
    "  PATH           a checkpoint prefix, or a directory (latest checkpoint)\n"
    "  --tensor KEY   print the values of one tensor\n"
    "  --verify       read every tensor and check its CRC32C\n";

std::string ShapeString(const trackpoint::TensorShape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.dims.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape.dims[i]);
  }
  return out + "]";
}

// A string tensor element as a quoted literal, non-printable bytes escaped.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

float HalfToFloat(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    value = mantissa ? NAN : INFINITY;
  } else {
    value = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  }
  return sign ? -value : value;
}

float Bfloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

template <typename T>
T Load(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// One element of a fixed-size tensor as text; raw hex for types without a
// C++ equivalent (float8, int4, ...).
std::string Element(DataType dtype, const char* p) {
  char buf[64];
  switch (dtype) {
    case DataType::kFloat:
      std::snprintf(buf, sizeof(buf), "%.9g", Load<float>(p));
      break;
    case DataType::kDouble:
      std::snprintf(buf, sizeof(buf), "%.17g", Load<double>(p));
      break;
    case DataType::kHalf:
      std::snprintf(buf, sizeof(buf), "%.5g", HalfToFloat(Load<uint16_t>(p)));
      break;
    case DataType::kBfloat16:
      std::snprintf(buf, sizeof(buf), "%.4g",
                    Bfloat16ToFloat(Load<uint16_t>(p)));
      break;
    case DataType::kComplex64: {
      auto c = Load<std::complex<float>>(p);
      std::snprintf(buf, sizeof(buf), "(%.9g%+.9gj)", c.real(), c.imag());
      break;
    }
    case DataType::kComplex128: {
      auto c = Load<std::complex<double>>(p);
      std::snprintf(buf, sizeof(buf), "(%.17g%+.17gj)", c.real(), c.imag());
      break;
    }
    case DataType::kBool:
      return Load<uint8_t>(p) ? "true" : "false";
    case DataType::kInt8:
    case DataType::kQint8:
      return std::to_string(Load<int8_t>(p));
    case DataType::kUint8:
    case DataType::kQuint8:
      return std::to_string(Load<uint8_t>(p));
    case DataType::kInt16:
    case DataType::kQint16:
      return std::to_string(Load<int16_t>(p));
    case DataType::kUint16:
    case DataType::kQuint16:
      return std::to_string(Load<uint16_t>(p));
    case DataType::kInt32:
    case DataType::kQint32:
      return std::to_string(Load<int32_t>(p));
    case DataType::kUint32:
      return std::to_string(Load<uint32_t>(p));
    case DataType::kInt64:
      return std::to_string(Load<int64_t>(p));
    case DataType::kUint64:
      return std::to_string(Load<uint64_t>(p));
    default: {
      std::string hex = "0x";
      for (size_t i = 0; i < DataTypeSize(dtype); ++i) {
        std::snprintf(buf, sizeof(buf), "%02x",
                      static_cast<unsigned char>(p[i]));
        hex += buf;
      }
      return hex;
    }
  }
  return buf;
}

int List(const CheckpointReader& reader) {
  uint64_t total = 0;
  std::printf("# %s\n", reader.prefix().c_str());
  for (const std::string& key : reader.Keys()) {
    auto info = reader.GetTensorInfo(key);
    if (!info.ok()) {
      std::cerr << "trackpoint-inspect: " << info.status().ToString() << "\n";
      return 2;
    }
    const uint64_t bytes =
        info->nbytes != 0
            ? info->nbytes
            : static_cast<uint64_t>(reader.bundle().Find(key)->size);
    total += bytes;
    std::printf("%s\t%s\t%s\t%" PRIu64 "\n", key.c_str(),
                DataTypeName(info->dtype), ShapeString(info->shape).c_str(),
                bytes);
  }
  std::printf("# %zu tensors, %" PRIu64 " bytes\n", reader.Keys().size(),
              total);
  return 0;
}

int PrintTensor(const CheckpointReader& reader, const std::string& key) {
  auto info = reader.GetTensorInfo(key);
  if (!info.ok()) {
    std::cerr << "trackpoint-inspect: " << info.status().message() << "\n";
    return 2;
  }
  std::printf("tensor: %s (%s) %s\n", key.c_str(), DataTypeName(info->dtype),
              ShapeString(info->shape).c_str());
  std::vector<std::string> elements;
  if (info->dtype == DataType::kString) {
    auto strings = reader.ReadStringTensor(key);
    if (!strings.ok()) {
      std::cerr << "trackpoint-inspect: " << strings.status().ToString()
                << "\n";
      return 2;
    }
    for (const std::string& s : *strings) elements.push_back(Quote(s));
  } else {
    if (info->nbytes == 0 && info->num_elements != 0) {
      std::cerr << "trackpoint-inspect: cannot print "
                << DataTypeName(info->dtype) << " tensors\n";
      return 2;
    }
    std::vector<char> bytes(info->nbytes);
    auto status = reader.ReadTensor(key, bytes.data(), bytes.size());
    if (!status.ok()) {
      std::cerr << "trackpoint-inspect: " << status.ToString() << "\n";
      return 2;
    }
    const size_t width = DataTypeSize(info->dtype);
    for (size_t i = 0; i < bytes.size(); i += width) {
      elements.push_back(Element(info->dtype, bytes.data() + i));
    }
  }
  // Row-major, one innermost row per line.
  const size_t row = info->shape.dims.empty() || info->shape.dims.back() == 0
                         ? 1
                         : static_cast<size_t>(info->shape.dims.back());
  for (size_t i = 0; i < elements.size(); ++i) {
    std::fputs(elements[i].c_str(), stdout);
    std::fputc((i + 1) % row == 0 ? '\n' : ' ', stdout);
  }
  return 0;
}

int Verify(const CheckpointReader& reader) {
  int bad = 0;
  uint64_t bytes = 0;
  const std::vector<std::string> keys = reader.Keys();
  for (const std::string& key : keys) {
    auto info = reader.GetTensorInfo(key);
    trackpoint::Status status = info.status();
    if (status.ok() && info->dtype == DataType::kString) {
      status = reader.ReadStringTensor(key).status();
    } else if (status.ok()) {
      std::vector<char> buffer(info->nbytes);
      status = reader.ReadTensor(key, buffer.data(), buffer.size());
      bytes += info->nbytes;
    }
    if (!status.ok()) {
      ++bad;
      std::printf("BAD %s: %s\n", key.c_str(), status.ToString().c_str());
    }
  }
  if (bad != 0) {
    std::printf("%d of %zu tensors are corrupt in %s\n", bad, keys.size(),
                reader.prefix().c_str());
    return 1;
  }
  std::printf("OK %zu tensors (%" PRIu64 " bytes of fixed-size data) in %s\n",
              keys.size(), bytes, reader.prefix().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, tensor;
  bool verify = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--verify") {
      verify = true;
    } else if (arg == "--tensor" && i + 1 < argc) {
      tensor = argv[++i];
    } else if (arg.rfind("--", 0) == 0 || !path.empty()) {
      std::fprintf(stderr, "trackpoint-inspect: unexpected argument '%s'\n%s",
                   arg.c_str(), kUsage);
      return 2;
    } else {
      path = arg;
    }
  }
  if (path.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  auto reader = CheckpointReader::Open(path);
  if (!reader.ok()) {
    if (verify && reader.status().code() == trackpoint::StatusCode::kDataLoss) {
      std::printf("BAD index: %s\n", reader.status().ToString().c_str());
      return 1;
    }
    std::cerr << "trackpoint-inspect: " << reader.status().message() << "\n";
    return 2;
  }
  if (verify) return Verify(**reader);
  if (!tensor.empty()) return PrintTensor(**reader, tensor);
  return List(**reader);
}
