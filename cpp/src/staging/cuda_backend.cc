#include "staging/cuda_backend.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace trackpoint::staging {

// The CUDA runtime functions this backend uses, declared here rather than
// taken from cuda_runtime.h: handles are opaque pointers, cudaError_t and
// cudaMemcpyKind are C enums passed as int.
struct CudaApi {
  using Error = int;
  Error (*MallocHost)(void** ptr, size_t size);
  Error (*FreeHost)(void* ptr);
  Error (*Malloc)(void** ptr, size_t size);
  Error (*Free)(void* ptr);
  Error (*MemcpyAsync)(void* dst, const void* src, size_t count, int kind,
                       void* stream);
  Error (*StreamCreate)(void** stream);
  Error (*StreamDestroy)(void* stream);
  Error (*StreamSynchronize)(void* stream);
  Error (*EventCreateWithFlags)(void** event, unsigned int flags);
  Error (*EventRecord)(void* event, void* stream);
  Error (*EventSynchronize)(void* event);
  Error (*EventDestroy)(void* event);
  Error (*SetDevice)(int device);
  Error (*GetDevice)(int* device);
  Error (*GetDeviceCount)(int* count);
  const char* (*GetErrorString)(Error error);
  std::string library;  // the file loaded, for messages
};

namespace {

// Values from driver_types.h.
constexpr int kSuccess = 0;
constexpr int kErrorInvalidValue = 1;
constexpr int kErrorMemoryAllocation = 2;
constexpr int kErrorInsufficientDriver = 35;
constexpr int kErrorDevicesUnavailable = 46;
constexpr int kErrorNoDevice = 100;
constexpr int kMemcpyHostToDevice = 1;
constexpr int kMemcpyDeviceToHost = 2;
constexpr unsigned int kEventDisableTiming = 0x02;

constexpr const char* kSonames[] = {"libcudart.so", "libcudart.so.12",
                                    "libcudart.so.13", "libcudart.so.11.0"};

template <typename Fn>
bool Bind(void* library, const char* symbol, Fn*& fn) {
  fn = reinterpret_cast<Fn*>(dlsym(library, symbol));
  return fn != nullptr;
}

Status ResolveAll(void* library, const char* soname, CudaApi& api) {
  struct Entry {
    const char* symbol;
    bool bound;
  };
  const Entry entries[] = {
      {"cudaMallocHost", Bind(library, "cudaMallocHost", api.MallocHost)},
      {"cudaFreeHost", Bind(library, "cudaFreeHost", api.FreeHost)},
      {"cudaMalloc", Bind(library, "cudaMalloc", api.Malloc)},
      {"cudaFree", Bind(library, "cudaFree", api.Free)},
      {"cudaMemcpyAsync", Bind(library, "cudaMemcpyAsync", api.MemcpyAsync)},
      {"cudaStreamCreate", Bind(library, "cudaStreamCreate", api.StreamCreate)},
      {"cudaStreamDestroy",
       Bind(library, "cudaStreamDestroy", api.StreamDestroy)},
      {"cudaStreamSynchronize",
       Bind(library, "cudaStreamSynchronize", api.StreamSynchronize)},
      {"cudaEventCreateWithFlags",
       Bind(library, "cudaEventCreateWithFlags", api.EventCreateWithFlags)},
      {"cudaEventRecord", Bind(library, "cudaEventRecord", api.EventRecord)},
      {"cudaEventSynchronize",
       Bind(library, "cudaEventSynchronize", api.EventSynchronize)},
      {"cudaEventDestroy", Bind(library, "cudaEventDestroy", api.EventDestroy)},
      {"cudaSetDevice", Bind(library, "cudaSetDevice", api.SetDevice)},
      {"cudaGetDevice", Bind(library, "cudaGetDevice", api.GetDevice)},
      {"cudaGetDeviceCount",
       Bind(library, "cudaGetDeviceCount", api.GetDeviceCount)},
      {"cudaGetErrorString",
       Bind(library, "cudaGetErrorString", api.GetErrorString)},
  };
  for (const Entry& e : entries) {
    if (!e.bound) {
      return UnavailableError(std::string("CUDA runtime not available: ") +
                              soname + " has no " + e.symbol);
    }
  }
  return OkStatus();
}

// The runtime, loaded on the first successful call and kept for the life of
// the process (never dlclose'd: streams and pinned memory may outlive any
// one backend). A failed attempt is not cached, so a process that loads a
// runtime later (importing torch, say) can still succeed.
Result<const CudaApi*> LoadApi() {
  static std::mutex mu;
  static std::unique_ptr<CudaApi> loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (loaded != nullptr) return static_cast<const CudaApi*>(loaded.get());

  // A runtime the process already has (PyTorch's, say) comes first, so that
  // trackpoint shares it instead of loading a second one.
  void* library = nullptr;
  const char* soname = nullptr;
  for (const char* name : kSonames) {
    library = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (library != nullptr) {
      soname = name;
      break;
    }
  }
  std::string errors;
  for (const char* name : kSonames) {
    if (library != nullptr) break;
    library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (library != nullptr) {
      soname = name;
      break;
    }
    const char* error = dlerror();
    if (!errors.empty()) errors += "; ";
    errors += error != nullptr ? error : std::string(name) + ": not found";
  }
  if (library == nullptr) {
    return UnavailableError("CUDA runtime not available: " + errors);
  }

  auto api = std::make_unique<CudaApi>();
  Status status = ResolveAll(library, soname, *api);
  if (!status.ok()) {
    dlclose(library);
    return status;
  }
  Dl_info info;
  const bool found =
      dladdr(reinterpret_cast<void*>(api->GetErrorString), &info) != 0 &&
      info.dli_fname != nullptr;
  api->library = found ? info.dli_fname : soname;
  loaded = std::move(api);
  return static_cast<const CudaApi*>(loaded.get());
}

Status CudaStatus(const CudaApi& api, int err, const char* call) {
  if (err == kSuccess) return OkStatus();
  const char* text = api.GetErrorString(err);
  const std::string message = std::string(call) + " failed: " +
                              (text != nullptr ? text : "unknown error") +
                              " (CUDA error " + std::to_string(err) + ")";
  switch (err) {
    case kErrorInvalidValue:
      return InvalidArgumentError(message);
    case kErrorMemoryAllocation:
      return ResourceExhaustedError(message);
    case kErrorInsufficientDriver:
    case kErrorDevicesUnavailable:
    case kErrorNoDevice:
      return UnavailableError(message);
    default:
      return InternalError(message);
  }
}

Result<int> DeviceCount(const CudaApi& api) {
  int count = 0;
  Status status =
      CudaStatus(api, api.GetDeviceCount(&count), "cudaGetDeviceCount");
  const std::string context =
      "no usable CUDA device (runtime " + api.library + ")";
  if (!status.ok()) return status.Annotate(context);
  if (count <= 0)
    return UnavailableError(context + ": the runtime reports none");
  return count;
}

// Makes `device` current on this thread for its lifetime, then restores the
// thread's previous device.
class CurrentDevice {
 public:
  CurrentDevice(const CudaApi& api, int device) : api_(api) {
    int previous = 0;
    status_ = CudaStatus(api, api.GetDevice(&previous), "cudaGetDevice");
    if (status_.ok() && previous != device) {
      status_ = CudaStatus(api, api.SetDevice(device), "cudaSetDevice");
      if (status_.ok()) previous_ = previous;
    }
  }
  ~CurrentDevice() {
    if (previous_ >= 0) api_.SetDevice(previous_);
  }
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

  const Status& status() const { return status_; }

 private:
  const CudaApi& api_;
  Status status_;
  int previous_ = -1;  // the device to restore; -1: nothing to restore
};

void* Raw(Stream stream) { return reinterpret_cast<void*>(stream); }
void* Raw(Event event) { return reinterpret_cast<void*>(event); }

}  // namespace

Result<std::unique_ptr<DeviceBackend>> CudaBackend::Load(int device) {
  TP_ASSIGN_OR_RETURN(const CudaApi* api, LoadApi());
  TP_ASSIGN_OR_RETURN(int count, DeviceCount(*api));
  if (device < 0 || device >= count) {
    return InvalidArgumentError("CUDA device " + std::to_string(device) +
                                " does not exist (the runtime reports " +
                                std::to_string(count) + ")");
  }
  return std::unique_ptr<DeviceBackend>(new CudaBackend(api, device));
}

Status CudaBackend::CheckAvailable() {
  TP_ASSIGN_OR_RETURN(const CudaApi* api, LoadApi());
  return DeviceCount(*api).status();
}

CudaBackend::CudaBackend(const CudaApi* api, int device)
    : api_(api), device_(device), name_("cuda:" + std::to_string(device)) {}

Status CudaBackend::Check(int err, const char* call) const {
  return CudaStatus(*api_, err, call);
}

Result<void*> CudaBackend::AllocatePinned(size_t n) {
  CurrentDevice current(*api_, device_);
  TP_RETURN_IF_ERROR(current.status());
  void* p = nullptr;
  TP_RETURN_IF_ERROR(Check(api_->MallocHost(&p, n), "cudaMallocHost")
                         .Annotate("pinning " + std::to_string(n) + " bytes"));
  return p;
}

void CudaBackend::FreePinned(void* p) {
  if (p != nullptr) api_->FreeHost(p);
}

Result<void*> CudaBackend::AllocateDevice(size_t n) {
  CurrentDevice current(*api_, device_);
  TP_RETURN_IF_ERROR(current.status());
  void* p = nullptr;
  TP_RETURN_IF_ERROR(Check(api_->Malloc(&p, n), "cudaMalloc"));
  return p;
}

void CudaBackend::FreeDevice(void* p) {
  if (p == nullptr) return;
  CurrentDevice current(*api_, device_);
  api_->Free(p);
}

Result<Stream> CudaBackend::CreateStream() {
  CurrentDevice current(*api_, device_);
  TP_RETURN_IF_ERROR(current.status());
  void* stream = nullptr;
  TP_RETURN_IF_ERROR(Check(api_->StreamCreate(&stream), "cudaStreamCreate"));
  return reinterpret_cast<Stream>(stream);
}

void CudaBackend::DestroyStream(Stream stream) {
  if (stream != nullptr) api_->StreamDestroy(Raw(stream));
}

Status CudaBackend::SynchronizeStream(Stream stream) {
  return Check(api_->StreamSynchronize(Raw(stream)), "cudaStreamSynchronize");
}

Result<Event> CudaBackend::CreateEvent() {
  CurrentDevice current(*api_, device_);
  TP_RETURN_IF_ERROR(current.status());
  void* event = nullptr;
  TP_RETURN_IF_ERROR(
      Check(api_->EventCreateWithFlags(&event, kEventDisableTiming),
            "cudaEventCreateWithFlags"));
  return reinterpret_cast<Event>(event);
}

void CudaBackend::DestroyEvent(Event event) {
  if (event != nullptr) api_->EventDestroy(Raw(event));
}

Status CudaBackend::RecordEvent(Event event, Stream stream) {
  return Check(api_->EventRecord(Raw(event), Raw(stream)), "cudaEventRecord");
}

Status CudaBackend::SynchronizeEvent(Event event) {
  return Check(api_->EventSynchronize(Raw(event)), "cudaEventSynchronize");
}

Status CudaBackend::CopyToHostAsync(void* host, const void* device, size_t n,
                                    Stream stream) {
  return Check(
      api_->MemcpyAsync(host, device, n, kMemcpyDeviceToHost, Raw(stream)),
      "cudaMemcpyAsync (device to host)");
}

Status CudaBackend::CopyToDeviceAsync(void* device, const void* host, size_t n,
                                      Stream stream) {
  return Check(
      api_->MemcpyAsync(device, host, n, kMemcpyHostToDevice, Raw(stream)),
      "cudaMemcpyAsync (host to device)");
}

}  // namespace trackpoint::staging
