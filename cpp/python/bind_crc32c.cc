// crc32c(), crc32c_combine() and friends: thin adapters over
// trackpoint/crc32c.h.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.h"
#include "trackpoint/crc32c.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace trackpoint::python {
namespace {

// Releasing and retaking the GIL costs about as much as the CRC of a few KiB
// (hashlib likewise keeps it below 2 KiB), so small buffers keep it.
constexpr size_t kReleaseGilBytes = 16 << 10;

constexpr crc32c::Impl kAllImpls[] = {
    crc32c::Impl::kPortable, crc32c::Impl::kSse42, crc32c::Impl::kAvx512,
    crc32c::Impl::kArm64};

// A contiguous buffer exported by any object with the buffer protocol
// (bytes, bytearray, memoryview, numpy arrays, ...), released on scope exit.
class ContiguousBuffer {
 public:
  explicit ContiguousBuffer(nb::handle obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_C_CONTIGUOUS) != 0) {
      throw nb::python_error();
    }
  }
  ~ContiguousBuffer() { PyBuffer_Release(&view_); }
  ContiguousBuffer(const ContiguousBuffer&) = delete;
  ContiguousBuffer& operator=(const ContiguousBuffer&) = delete;

  const void* data() const { return view_.buf; }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_;
};

std::string ImplNames(const std::vector<crc32c::Impl>& impls) {
  std::string names;
  for (crc32c::Impl impl : impls) {
    if (!names.empty()) names += ", ";
    names += crc32c::ImplName(impl);
  }
  return names;
}

crc32c::Impl ImplFromName(std::string_view name) {
  static const std::vector<crc32c::Impl> available = crc32c::AvailableImpls();
  for (crc32c::Impl impl : kAllImpls) {
    if (name != crc32c::ImplName(impl)) continue;
    for (crc32c::Impl a : available) {
      if (a == impl) return impl;
    }
    throw nb::value_error(("crc32c implementation '" + std::string(name) +
                           "' is not available on this CPU (available: " +
                           ImplNames(available) + ")")
                              .c_str());
  }
  throw nb::value_error(
      ("unknown crc32c implementation '" + std::string(name) +
       "' (expected one of: " +
       ImplNames({std::begin(kAllImpls), std::end(kAllImpls)}) + ")")
          .c_str());
}

uint32_t Crc32c(nb::handle data, uint32_t crc,
                std::optional<std::string_view> impl) {
  const std::optional<crc32c::Impl> chosen =
      impl ? std::optional(ImplFromName(*impl)) : std::nullopt;
  ContiguousBuffer buffer(data);
  auto run = [&] {
    return chosen
               ? crc32c::ExtendWith(*chosen, crc, buffer.data(), buffer.size())
               : crc32c::Extend(crc, buffer.data(), buffer.size());
  };
  if (buffer.size() < kReleaseGilBytes) return run();
  nb::gil_scoped_release release;
  return run();
}

std::vector<std::string> Crc32cImpls() {
  std::vector<std::string> names;
  for (crc32c::Impl impl : crc32c::AvailableImpls()) {
    names.emplace_back(crc32c::ImplName(impl));
  }
  return names;
}

}  // namespace

void BindCrc32c(nb::module_& m) {
  m.def("crc32c", &Crc32c, "data"_a, "crc"_a = 0, "impl"_a = nb::none(),
        "CRC-32C of a C-contiguous buffer (bytes, bytearray, memoryview, "
        "numpy array, ...), continuing from ``crc`` (the CRC of "
        "the bytes before it). ``impl`` forces one implementation by name "
        "(see crc32c_impls()); ValueError if unknown or unavailable.\n\n"
        ">>> crc32c(b'123456789')\n3808858755");
  m.def("crc32c_impls", &Crc32cImpls,
        "Names of the CRC-32C implementations this CPU can run, portable "
        "first.");
  m.def(
      "crc32c_active_impl",
      [] { return std::string(crc32c::ImplName(crc32c::ActiveImpl())); },
      "Name of the implementation crc32c() uses by default.");
  m.def("crc32c_mask", &crc32c::Mask, "crc"_a,
        "TensorFlow's masked form of a CRC, as stored in checkpoints.");
  m.def("crc32c_unmask", &crc32c::Unmask, "masked"_a,
        "Inverse of crc32c_mask().");
  m.def("crc32c_combine", &crc32c::Combine, "crc_a"_a, "crc_b"_a, "len_b"_a,
        "CRC of a + b from crc32c(a), crc32c(b) and len(b), without the "
        "bytes.");
}

}  // namespace trackpoint::python
