// Process-wide staging resources: one DeviceBackend and one StagingPool per
// device, created the first time a tensor on that device is saved or
// restored and then kept, since pinning host memory is slow and a process
// that saves once saves again. The Python bindings name a device by a kind
// and an index: ("cuda", 0) is CudaBackend::Load(0), ("fake", 3) a
// FakeDeviceBackend (host memory posing as a device, for tests).
#ifndef TRACKPOINT_STAGING_DEVICE_REGISTRY_H_
#define TRACKPOINT_STAGING_DEVICE_REGISTRY_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "staging/device_backend.h"
#include "staging/staging_pool.h"

namespace trackpoint::staging {

// A backend and the pool pinned through it. Members are destroyed in
// reverse order: the pool first, then its backend.
struct DeviceStaging {
  std::unique_ptr<DeviceBackend> backend;
  std::unique_ptr<StagingPool> pool;
};

// The size of the pools created from now on (4 x 16 MiB by default).
struct PoolGeometry {
  size_t num_buffers = 4;
  size_t buffer_bytes = size_t{16} << 20;
};

// The staging of device `index` of `kind` ("cuda" or "fake"), created on
// first use. Callers hold the shared_ptr for the length of a transfer.
// Errors: InvalidArgument for another kind or a negative index; the
// backend's error (Unavailable "CUDA runtime not available: ..." without a
// runtime; a later call tries again) or the pool's when pinning fails.
// Thread safety: may be called from several threads at once.
Result<std::shared_ptr<DeviceStaging>> SharedDeviceStaging(
    std::string_view kind, int index);

// Sets the geometry of pools created from now on and forgets every pool
// made so far (a caller still holding one keeps it until it lets go), so
// the next transfer pins new buffers. InvalidArgument for zero buffers or
// zero bytes. Thread safety: may be called from several threads at once.
Status SetSharedPoolGeometry(const PoolGeometry& geometry);
PoolGeometry SharedPoolGeometry();

// "cuda:0", "fake:3": how messages name a device.
std::string DeviceName(std::string_view kind, int index);

}  // namespace trackpoint::staging

#endif  // TRACKPOINT_STAGING_DEVICE_REGISTRY_H_
