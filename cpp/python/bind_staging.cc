// Host staging (cpp/src/staging): whether CUDA can be used, the process-wide
// staging of each device and its pool geometry, and DLPack descriptions.
// (Backends, pools and bandwidth probes for tests and bench/staging.py are in
// the test module, testing/bind_staging_testing.cc.)
// "Device pointers" are plain integers: a CUDA address (torch's
// tensor.data_ptr()), a host address for the fake device (a numpy array's
// ctypes.data). Nothing checks them: this is not a public API.
// The device_* functions use the process-wide staging of a device named by
// kind and index (staging/device_registry.h), as the bundle bindings do;
// dlpack_describe tells trackpoint/adapters/dlpack.py where a DLPack
// array's memory is.
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <cstring>
#include <string>

#include "bindings.h"
#include "staging/cuda_backend.h"
#include "staging/device_registry.h"
#include "staging/pipeline.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace trackpoint::python {
namespace {

using staging::DeviceBackend;
using staging::StagingPool;

using InBytes = nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig,
                            nb::device::cpu>;
using OutBytes = nb::ndarray<uint8_t, nb::ndim<1>, nb::c_contig,
                             nb::device::cpu>;

std::shared_ptr<staging::DeviceStaging> SharedStaging(const std::string& kind,
                                                      int index) {
  auto staging = [&] {
    nb::gil_scoped_release release;
    return staging::SharedDeviceStaging(kind, index);
  }();
  return ValueOrThrow(std::move(staging));
}

// out.size() bytes at device_ptr, staged into out.
void DeviceToHost(const std::string& kind, int index, uintptr_t device_ptr,
                  OutBytes out) {
  auto staging = SharedStaging(kind, index);
  char* dst = reinterpret_cast<char*>(out.data());
  nb::gil_scoped_release release;
  ThrowIfError(staging::StageToHost(
      *staging->backend, *staging->pool,
      reinterpret_cast<const void*>(device_ptr), out.size(),
      [&](const char* chunk, size_t len) {
        std::memcpy(dst, chunk, len);
        dst += len;
        return OkStatus();
      }));
}

// data, staged to device_ptr.
void HostToDevice(const std::string& kind, int index, uintptr_t device_ptr,
                  InBytes data) {
  auto staging = SharedStaging(kind, index);
  const char* src = reinterpret_cast<const char*>(data.data());
  nb::gil_scoped_release release;
  ThrowIfError(staging::StageToDevice(
      *staging->backend, *staging->pool, reinterpret_cast<void*>(device_ptr),
      data.size(), [&](char* chunk, size_t offset, size_t len) {
        std::memcpy(chunk, src + offset, len);
        return OkStatus();
      }));
}

// (data pointer, DLPack device type, device id, dtype code, bits, lanes,
//  shape, strides in elements) of anything with __dlpack__.
nb::tuple DescribeDlpack(nb::ndarray<nb::ro> a) {
  nb::list shape, strides;
  for (size_t i = 0; i < a.ndim(); ++i) {
    shape.append(static_cast<int64_t>(a.shape(i)));
    strides.append(a.stride(i));
  }
  const nb::dlpack::dtype dt = a.dtype();
  return nb::make_tuple(reinterpret_cast<uintptr_t>(a.data()),
                        a.device_type(), a.device_id(),
                        static_cast<int>(dt.code), static_cast<int>(dt.bits),
                        static_cast<int>(dt.lanes), shape, strides);
}

}  // namespace

void BindStaging(nb::module_& m) {
  m.def(
      "cuda_available",
      [] {
        nb::gil_scoped_release release;
        return staging::CudaBackend::CheckAvailable().ok();
      },
      "Whether the CUDA runtime (libcudart, loaded at run time) and a GPU "
      "can be used for staging.");
  m.def(
      "cuda_unavailable_reason",
      [] {
        nb::gil_scoped_release release;
        return staging::CudaBackend::CheckAvailable().message();
      },
      "Why cuda_available() is False ('' when it is True).");
  m.def("device_to_host", &DeviceToHost, "kind"_a, "index"_a, "device_ptr"_a,
        "out"_a,
        "Stages out.size bytes at device_ptr on device (kind, index) into "
        "the flat uint8 array out, through the device's shared pool.");
  m.def("host_to_device", &HostToDevice, "kind"_a, "index"_a, "device_ptr"_a,
        "data"_a,
        "Stages the flat uint8 array data to device_ptr on device (kind, "
        "index), through the device's shared pool.");
  m.def(
      "set_device_staging_pool",
      [](size_t num_buffers, size_t buffer_bytes) {
        ThrowIfError(
            staging::SetSharedPoolGeometry({num_buffers, buffer_bytes}));
      },
      "num_buffers"_a, "buffer_bytes"_a,
      "The pinned buffers each device's shared pool gets from now on "
      "(existing pools are dropped once idle).");
  m.def(
      "device_staging_pool",
      [] {
        const staging::PoolGeometry g = staging::SharedPoolGeometry();
        return nb::make_tuple(g.num_buffers, g.buffer_bytes);
      },
      "(num_buffers, buffer_bytes) of the shared pools made from now on.");
  m.def("dlpack_describe", &DescribeDlpack, "array"_a,
        "(data_ptr, device_type, device_id, dtype_code, bits, lanes, shape, "
        "strides) of a DLPack-capable array (strides in elements).");
}

}  // namespace trackpoint::python
