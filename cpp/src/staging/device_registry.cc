#include "staging/device_registry.h"

#include <map>
#include <mutex>
#include <utility>

#include "staging/cuda_backend.h"
#include "staging/fake_backend.h"

namespace trackpoint::staging {
namespace {

struct Registry {
  std::mutex mu;
  PoolGeometry geometry;  // guarded by mu
  std::map<std::pair<std::string, int>, std::shared_ptr<DeviceStaging>>
      devices;  // guarded by mu
};

// Never destroyed: a CUDA backend's buffers must not be freed by static
// destructors running after the runtime itself was unloaded.
Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

Result<std::unique_ptr<DeviceBackend>> MakeBackend(std::string_view kind,
                                                   int index) {
  if (kind == "fake") {
    return std::unique_ptr<DeviceBackend>(new FakeDeviceBackend());
  }
  return CudaBackend::Load(index);
}

}  // namespace

std::string DeviceName(std::string_view kind, int index) {
  return std::string(kind) + ":" + std::to_string(index);
}

Result<std::shared_ptr<DeviceStaging>> SharedDeviceStaging(
    std::string_view kind, int index) {
  if (kind != "cuda" && kind != "fake") {
    return InvalidArgumentError("unknown device kind '" + std::string(kind) +
                                "' (expected 'cuda' or 'fake')");
  }
  if (index < 0) {
    return InvalidArgumentError("negative device index " +
                                std::to_string(index));
  }
  Registry& registry = TheRegistry();
  std::lock_guard<std::mutex> lock(registry.mu);
  std::shared_ptr<DeviceStaging>& slot =
      registry.devices[{std::string(kind), index}];
  if (slot) return slot;
  auto staging = std::make_shared<DeviceStaging>();
  Result<std::unique_ptr<DeviceBackend>> backend = MakeBackend(kind, index);
  if (!backend.ok()) {
    registry.devices.erase({std::string(kind), index});
    return backend.status();
  }
  staging->backend = std::move(backend).value();
  Result<std::unique_ptr<StagingPool>> pool =
      StagingPool::Create(*staging->backend, registry.geometry.num_buffers,
                          registry.geometry.buffer_bytes);
  if (!pool.ok()) {
    registry.devices.erase({std::string(kind), index});
    return pool.status().Annotate("pinning staging buffers for " +
                                  DeviceName(kind, index));
  }
  staging->pool = std::move(pool).value();
  slot = staging;
  return staging;
}

Status SetSharedPoolGeometry(const PoolGeometry& geometry) {
  if (geometry.num_buffers == 0 || geometry.buffer_bytes == 0) {
    return InvalidArgumentError(
        "a staging pool needs at least one buffer of at least one byte");
  }
  Registry& registry = TheRegistry();
  std::lock_guard<std::mutex> lock(registry.mu);
  registry.geometry = geometry;
  registry.devices.clear();
  return OkStatus();
}

PoolGeometry SharedPoolGeometry() {
  Registry& registry = TheRegistry();
  std::lock_guard<std::mutex> lock(registry.mu);
  return registry.geometry;
}

}  // namespace trackpoint::staging
