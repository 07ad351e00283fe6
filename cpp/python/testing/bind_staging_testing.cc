// The staging surface for tests and bench/staging.py: a fake or CUDA
// backend, a pinned pool, whole-buffer transfers through the pipelines, and
// bandwidth probes (benchmark loops with the GIL released). Objects made here
// live in this module's copy of the core; pass them only to its functions.
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include <chrono>
#include <cstring>
#include <string>

#include "bindings.h"
#include "staging/cuda_backend.h"
#include "staging/fake_backend.h"
#include "staging/pipeline.h"
#include "staging/staging_pool.h"
#include "testing/testing.h"
#include "trackpoint/crc32c.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace trackpoint::python {
namespace {

using staging::DeviceBackend;
using staging::StagingPool;

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

void BindStagingTesting(nb::module_& m) {
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
