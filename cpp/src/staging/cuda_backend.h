// CudaBackend: DeviceBackend over the CUDA runtime, which is loaded with
// dlopen the first time it is needed. Building trackpoint needs no CUDA
// toolkit and running it needs no GPU: without libcudart, Load() returns an
// Unavailable error and everything else in trackpoint works as before.
//
// The runtime is looked for under the sonames libcudart.so,
// libcudart.so.12, libcudart.so.13 and libcudart.so.11.0, through the usual
// dynamic-linker search; a runtime already loaded by the process (PyTorch's,
// for instance) is found by its soname and shared.
#ifndef TRACKPOINT_STAGING_CUDA_BACKEND_H_
#define TRACKPOINT_STAGING_CUDA_BACKEND_H_

#include <memory>
#include <string>

#include "staging/device_backend.h"

namespace trackpoint::staging {

// The runtime entry points, resolved once (cuda_backend.cc).
struct CudaApi;

// Thread safety: as DeviceBackend (every method from any thread). Methods
// that create or allocate make the backend's device current on the calling
// thread for the call and then restore the thread's previous device.
// Streams are ordinary (blocking) CUDA streams, so their copies start after
// work already queued on the legacy default stream, which is where PyTorch
// runs unless told otherwise; work on other streams must be synchronized by
// the caller before staging.
class CudaBackend final : public DeviceBackend {
 public:
  // A backend for CUDA device `device`. Errors: Unavailable "CUDA runtime
  // not available: <dlerror ...>" when no libcudart can be loaded (a later
  // call tries again), Unavailable when the runtime finds no usable device,
  // InvalidArgument when `device` is out of range.
  static Result<std::unique_ptr<DeviceBackend>> Load(int device);

  // OK when the runtime loads and reports at least one device; otherwise
  // why not (the same error Load(0) would return).
  static Status CheckAvailable();

  const char* name() const override { return name_.c_str(); }
  int device() const { return device_; }

  Result<void*> AllocatePinned(size_t n) override;
  void FreePinned(void* p) override;
  Result<void*> AllocateDevice(size_t n) override;
  void FreeDevice(void* p) override;
  Result<Stream> CreateStream() override;
  void DestroyStream(Stream stream) override;
  Status SynchronizeStream(Stream stream) override;
  Result<Event> CreateEvent() override;
  void DestroyEvent(Event event) override;
  Status RecordEvent(Event event, Stream stream) override;
  Status SynchronizeEvent(Event event) override;
  Status CopyToHostAsync(void* host, const void* device, size_t n,
                         Stream stream) override;
  Status CopyToDeviceAsync(void* device, const void* host, size_t n,
                           Stream stream) override;

 private:
  CudaBackend(const CudaApi* api, int device);

  // A Status for a failed runtime call (OK when err is 0).
  Status Check(int err, const char* call) const;

  const CudaApi* api_;
  const int device_;
  const std::string name_;
};

}  // namespace trackpoint::staging

#endif  // TRACKPOINT_STAGING_CUDA_BACKEND_H_
