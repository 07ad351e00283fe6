// Host staging (cpp/src/staging): whether CUDA can be used, and a small
// surface for tests and bench/staging.py: a fake or CUDA backend, a pinned
// pool, whole-buffer transfers through the pipelines, and bandwidth probes.
// "Device pointers" are plain integers: a CUDA address for the CUDA backend
// (torch's tensor.data_ptr()), a host address for the fake one (a numpy
// array's ctypes.data). Nothing checks them: this is not a public API.
// The device_* functions use the process-wide staging of a device named by
// kind and index (staging/device_registry.h), as the bundle bindings do;
// dlpack_describe tells trackpoint/adapters/dlpack.py where a DLPack
// array's memory is.
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include <chrono>
#include <cstring>
#include <string>

#include "bindings.h"
#include "staging/cuda_backend.h"
#include "staging/device_registry.h"
#include "staging/fake_backend.h"
#include "staging/pipeline.h"
#include "staging/staging_pool.h"
#include "trackpoint/crc32c.h"

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

const void* DevicePtr(uintptr_t p) { return reinterpret_cast<const void*>(p); }

std::unique_ptr<DeviceBackend> MakeBackend(const std::string& kind,
                                           int device) {
  if (kind == "fake") return std::make_unique<staging::FakeDeviceBackend>();
  if (kind != "cuda") {
    throw nb::value_error(
        ("unknown staging backend '" + kind + "' (expected 'fake' or 'cuda')")
            .c_str());
  }
  auto backend = [&] {
    nb::gil_scoped_release release;
    return staging::CudaBackend::Load(device);
  }();
  return ValueOrThrow(std::move(backend));
}

std::unique_ptr<DeviceBackend> MakeFakeBackend(int64_t copy_delay_us,
                                               int64_t fail_after_copies,
                                               bool fail_at_enqueue) {
  staging::FakeBackendOptions options;
  options.copy_delay = std::chrono::microseconds(copy_delay_us);
  options.fail_after_copies = fail_after_copies;
  options.fail_at_enqueue = fail_at_enqueue;
  return std::make_unique<staging::FakeDeviceBackend>(std::move(options));
}

std::unique_ptr<StagingPool> MakePool(DeviceBackend& backend,
                                      size_t num_buffers, size_t buffer_bytes) {
  auto pool = [&] {
    nb::gil_scoped_release release;
    return StagingPool::Create(backend, num_buffers, buffer_bytes);
  }();
  return ValueOrThrow(std::move(pool));
}

nb::bytes StageToBytes(DeviceBackend& backend, StagingPool& pool,
                       uintptr_t device_ptr, size_t nbytes) {
  if (nbytes > static_cast<size_t>(PY_SSIZE_T_MAX)) {
    throw nb::value_error("nbytes too large");
  }
  nb::object out = nb::steal(
      PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(nbytes)));
  if (!out.is_valid()) throw nb::python_error();
  char* dst = PyBytes_AS_STRING(out.ptr());  // not shared until returned
  Status status;
  {
    nb::gil_scoped_release release;
    status = staging::StageToHost(backend, pool, DevicePtr(device_ptr), nbytes,
                                  [&](const char* chunk, size_t len) {
                                    std::memcpy(dst, chunk, len);
                                    dst += len;
                                    return OkStatus();
                                  });
  }
  ThrowIfError(status);
  return nb::borrow<nb::bytes>(out);
}

void StageFromBytes(DeviceBackend& backend, StagingPool& pool,
                    uintptr_t device_ptr, const nb::bytes& data) {
  const char* src = data.c_str();
  const size_t n = data.size();
  Status status;
  {
    nb::gil_scoped_release release;
    status = staging::StageToDevice(
        backend, pool, reinterpret_cast<void*>(device_ptr), n,
        [&](char* chunk, size_t offset, size_t len) {
          std::memcpy(chunk, src + offset, len);
          return OkStatus();
        });
  }
  ThrowIfError(status);
}

// GB/s of `repeats` back-to-back runs of fn (which returns a Status), with
// the GIL released.
template <typename Fn>
double Bandwidth(size_t nbytes, int repeats, Fn fn) {
  if (repeats < 1) throw nb::value_error("repeats must be at least 1");
  Status status;
  std::chrono::duration<double> elapsed{};
  {
    nb::gil_scoped_release release;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats && status.ok(); ++i) status = fn();
    elapsed = std::chrono::steady_clock::now() - start;
  }
  ThrowIfError(status);
  return static_cast<double>(nbytes) * repeats / elapsed.count() / 1e9;
}

double D2hBandwidth(DeviceBackend& backend, StagingPool& pool,
                    uintptr_t device_ptr, size_t nbytes, int repeats,
                    bool crc) {
  uint32_t sum = 0;
  return Bandwidth(nbytes, repeats, [&] {
    return staging::StageToHost(backend, pool, DevicePtr(device_ptr), nbytes,
                                [&](const char* chunk, size_t len) {
                                  if (crc)
                                    sum = crc32c::Extend(sum, chunk, len);
                                  return OkStatus();
                                });
  });
}

double PlainPinnedCopyBandwidth(DeviceBackend& backend, uintptr_t device_ptr,
                                size_t nbytes, int repeats, bool crc) {
  auto setup = [&] {
    nb::gil_scoped_release release;
    return staging::PinnedBuffer::Allocate(backend, nbytes);
  }();
  staging::PinnedBuffer pinned = ValueOrThrow(std::move(setup));
  staging::ScopedStream stream =
      ValueOrThrow(staging::ScopedStream::Create(backend));
  uint32_t sum = 0;
  return Bandwidth(nbytes, repeats, [&] {
    TP_RETURN_IF_ERROR(backend.CopyToHostAsync(
        pinned.data(), DevicePtr(device_ptr), nbytes, stream.get()));
    TP_RETURN_IF_ERROR(backend.SynchronizeStream(stream.get()));
    if (crc) sum = crc32c::Value(pinned.data(), nbytes);
    return OkStatus();
  });
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

  nb::class_<DeviceBackend>(m, "StagingBackend",
                            "A staging device backend (make_backend()).")
      .def_prop_ro("name", [](const DeviceBackend& b) { return b.name(); })
      .def(
          "allocate_device",
          [](DeviceBackend& b, size_t nbytes) {
            Result<void*> p = [&] {
              nb::gil_scoped_release release;
              return b.AllocateDevice(nbytes);
            }();
            return reinterpret_cast<uintptr_t>(ValueOrThrow(std::move(p)));
          },
          "nbytes"_a,
          "The address of nbytes of device memory (for benchmarks and "
          "tests); free it with free_device.")
      .def(
          "free_device",
          [](DeviceBackend& b, uintptr_t ptr) {
            b.FreeDevice(reinterpret_cast<void*>(ptr));
          },
          "ptr"_a, "Frees memory from allocate_device.");
  nb::class_<StagingPool>(m, "StagingPool",
                          "Pinned host buffers for staging (make_pool()).")
      .def_prop_ro("backend", &StagingPool::backend,
                   nb::rv_policy::reference_internal)
      .def_prop_ro("num_buffers", &StagingPool::num_buffers)
      .def_prop_ro("buffer_bytes", &StagingPool::buffer_bytes)
      .def_prop_ro("num_free", &StagingPool::num_free);

  m.def("make_backend", &MakeBackend, "kind"_a, "device"_a = 0,
        "'fake' (CPU memory posing as a device, for tests) or 'cuda' (device "
        "`device`; UnavailableError without a CUDA runtime or GPU).");
  m.def("make_fake_backend", &MakeFakeBackend, "copy_delay_us"_a = 0,
        "fail_after_copies"_a = -1, "fail_at_enqueue"_a = false,
        "A fake backend whose copies are slowed down or fail on purpose.");
  m.def("make_pool", &MakePool, "backend"_a, "num_buffers"_a, "buffer_bytes"_a,
        nb::keep_alive<0, 1>(),
        "Pins num_buffers buffers of buffer_bytes each through backend.");
  m.def("stage_to_bytes", &StageToBytes, "backend"_a, "pool"_a, "device_ptr"_a,
        "nbytes"_a,
        "nbytes of device memory at device_ptr, staged through the pool.");
  m.def("stage_from_bytes", &StageFromBytes, "backend"_a, "pool"_a,
        "device_ptr"_a, "data"_a,
        "Copies data to device memory at device_ptr through the pool.");
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
  m.def("d2h_bandwidth", &D2hBandwidth, "backend"_a, "pool"_a, "device_ptr"_a,
        "nbytes"_a, "repeats"_a, "crc"_a = false,
        "GB/s of `repeats` device-to-host stagings of nbytes through the "
        "pipeline (the sink computes CRC-32C of each chunk when crc).");
  m.def("plain_pinned_copy_bandwidth", &PlainPinnedCopyBandwidth, "backend"_a,
        "device_ptr"_a, "nbytes"_a, "repeats"_a, "crc"_a = false,
        "GB/s of `repeats` single copies of nbytes into one pinned buffer "
        "(then CRC-32C of it when crc): the baseline for d2h_bandwidth.");
}

}  // namespace trackpoint::python
