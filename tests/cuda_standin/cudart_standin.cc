// A stand-in for the CUDA runtime, so that CudaBackend (cpp/src/staging/
// cuda_backend.cc) runs on machines without a GPU: built as libcudart.so,
// found by CudaBackend's dlopen when its folder comes first in
// LD_LIBRARY_PATH. It exports the runtime functions CudaBackend resolves,
// with the semantics staging relies on:
//
// - "Device memory" (cudaMalloc) and pinned memory (cudaMallocHost) are host
//   memory, each allocation remembering the device current when it was made.
// - Each stream is a worker thread that runs its work in enqueue order. A
//   copy runs a little after it is enqueued (200 us by default), so a caller
//   that reads or reuses a buffer before waiting for its copy sees stale
//   bytes. An event completes when the stream reaches its latest record.
// - The current device is per host thread, 0 at first.
// - Errors come back as CUDA's codes: an invalid pointer or handle at once,
//   an injected copy failure either at once or from the next
//   synchronization, as a GPU's asynchronous faults do.
//
// It also checks the rules CUDA leaves to the caller and counts each breach
// as a "violation" (the first is kept, and each is printed to stderr):
// pageable host memory in an asynchronous copy, memory freed while a copy
// that touches it is in flight (the free is then deferred, so nothing
// crashes), a copy between a stream and memory of different devices, an
// event recorded on another device's stream, unknown handles and pointers.
//
// Control functions for tests (cudart_standin_*, below) inject failures and
// read counters. CUDART_STANDIN_DEVICES sets the number of devices
// (default 2; 0 makes cudaGetDeviceCount fail as with no GPU).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

// cudaError_t values (driver_types.h).
constexpr int kSuccess = 0;
constexpr int kInvalidValue = 1;
constexpr int kMemoryAllocation = 2;
constexpr int kNoDevice = 100;
constexpr int kInvalidDevice = 101;
constexpr int kInvalidResourceHandle = 400;
constexpr int kLaunchFailure = 719;
// cudaMemcpyKind values.
constexpr int kHostToDevice = 1;
constexpr int kDeviceToHost = 2;

struct Allocation {
  size_t size;
  int device;
  bool pinned;
  int in_flight = 0;    // copies enqueued and not yet run
  bool freed = false;   // freed while in flight: released by the last copy
};

struct Stream {
  int device;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool busy = false;      // the worker is running an item
  bool stopping = false;  // destroyed: drain the queue, then exit
  int error = kSuccess;   // the first asynchronous failure, sticky
  std::thread worker;
};

struct Event {
  int device;
  std::mutex mu;
  std::condition_variable cv;
  uint64_t recorded = 0;   // records enqueued
  uint64_t completed = 0;  // the latest record the stream reached
  int error = kSuccess;    // the stream's error when it reached it
};

// Everything but the per-stream and per-event state, under one mutex.
// Never destroyed, so that worker threads may outlive static destructors.
struct Runtime {
  std::mutex mu;
  std::map<uintptr_t, Allocation> allocations;  // by first byte
  std::set<Stream*> streams;
  std::set<Event*> events;
  std::vector<Event*> retired_events;  // destroyed with a record queued
  int violations = 0;
  std::string first_violation;
  int delay_us = 200;
  long fail_copy_in = 0;  // the copy that many copies from now fails
  int fail_copy_error = kSuccess;
  bool fail_copy_at_enqueue = false;
  int fail_alloc_error = kSuccess;  // the next allocation fails
  long long copies = 0, bytes = 0, in_flight = 0, max_in_flight = 0;
  long long set_device_calls = 0;
};

Runtime& R() {
  static Runtime* runtime = new Runtime;
  return *runtime;
}

thread_local int current_device = 0;

int DeviceCount() {
  const char* env = std::getenv("CUDART_STANDIN_DEVICES");
  return env != nullptr ? std::atoi(env) : 2;
}

// REQUIRES: R().mu held.
void Violation(const std::string& what) {
  Runtime& r = R();
  if (r.violations++ == 0) r.first_violation = what;
  std::fprintf(stderr, "cudart standin: violation: %s\n", what.c_str());
}

// The live allocation that holds [p, p + n), or null. REQUIRES: R().mu held.
Allocation* Find(const void* p, size_t n, uintptr_t* start = nullptr) {
  Runtime& r = R();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = r.allocations.upper_bound(a);
  if (it == r.allocations.begin()) return nullptr;
  --it;
  if (it->second.freed || a + n > it->first + it->second.size) return nullptr;
  if (n == 0 && a >= it->first + it->second.size) return nullptr;
  if (start != nullptr) *start = it->first;
  return &it->second;
}

std::string Hex(const void* p) {
  char text[32];
  std::snprintf(text, sizeof(text), "%p", p);
  return text;
}

int Allocate(void** ptr, size_t size, bool pinned) {
  if (ptr == nullptr) return kInvalidValue;
  Runtime& r = R();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.fail_alloc_error != kSuccess) {
    const int error = r.fail_alloc_error;
    r.fail_alloc_error = kSuccess;
    return error;
  }
  // 256-byte alignment, as cudaMalloc gives.
  void* p = std::aligned_alloc(256, (std::max<size_t>(size, 1) + 255) / 256 * 256);
  if (p == nullptr) return kMemoryAllocation;
  r.allocations[reinterpret_cast<uintptr_t>(p)] =
      Allocation{size, current_device, pinned};
  *ptr = p;
  return kSuccess;
}

int Release(void* p, bool pinned) {
  if (p == nullptr) return kSuccess;
  Runtime& r = R();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.allocations.find(reinterpret_cast<uintptr_t>(p));
  const char* call = pinned ? "cudaFreeHost" : "cudaFree";
  if (it == r.allocations.end() || it->second.freed ||
      it->second.pinned != pinned) {
    Violation(std::string(call) + " of " + Hex(p) + ", which it did not allocate");
    return kInvalidValue;
  }
  if (it->second.in_flight > 0) {
    Violation(std::string(call) + " of " + Hex(p) + " while " +
              std::to_string(it->second.in_flight) + " copies using it are in flight");
    it->second.freed = true;
    return kSuccess;
  }
  std::free(p);
  r.allocations.erase(it);
  return kSuccess;
}

// One copy in flight fewer on the allocation starting at `start`; frees it
// if it was freed meanwhile. REQUIRES: R().mu held.
void CopyDone(uintptr_t start) {
  auto it = R().allocations.find(start);
  if (it == R().allocations.end()) return;
  if (--it->second.in_flight == 0 && it->second.freed) {
    std::free(reinterpret_cast<void*>(start));
    R().allocations.erase(it);
  }
}

void RunStream(Stream* s) {
  std::unique_lock<std::mutex> lock(s->mu);
  for (;;) {
    s->cv.wait(lock, [s] { return !s->queue.empty() || s->stopping; });
    if (s->queue.empty()) return;  // stopping, and drained
    std::function<void()> item = std::move(s->queue.front());
    s->queue.pop_front();
    s->busy = true;
    lock.unlock();
    item();
    lock.lock();
    s->busy = false;
    s->cv.notify_all();
  }
}

void Enqueue(Stream* s, std::function<void()> item) {
  std::lock_guard<std::mutex> lock(s->mu);
  s->queue.push_back(std::move(item));
  s->cv.notify_all();
}

bool KnownStream(Stream* s) {
  std::lock_guard<std::mutex> lock(R().mu);
  if (R().streams.count(s) != 0) return true;
  Violation("unknown stream " + Hex(s));
  return false;
}

bool KnownEvent(Event* e) {
  std::lock_guard<std::mutex> lock(R().mu);
  if (R().events.count(e) != 0) return true;
  Violation("unknown event " + Hex(e));
  return false;
}

}  // namespace

extern "C" {

int cudaGetDeviceCount(int* count) {
  if (count == nullptr) return kInvalidValue;
  *count = std::max(DeviceCount(), 0);
  return *count > 0 ? kSuccess : kNoDevice;
}

int cudaSetDevice(int device) {
  if (device < 0 || device >= DeviceCount()) return kInvalidDevice;
  current_device = device;
  std::lock_guard<std::mutex> lock(R().mu);
  ++R().set_device_calls;
  return kSuccess;
}

int cudaGetDevice(int* device) {
  if (device == nullptr) return kInvalidValue;
  *device = current_device;
  return kSuccess;
}

const char* cudaGetErrorString(int error) {
  switch (error) {
    case kSuccess: return "no error";
    case kInvalidValue: return "invalid argument";
    case kMemoryAllocation: return "out of memory";
    case kNoDevice: return "no CUDA-capable device is detected";
    case kInvalidDevice: return "invalid device ordinal";
    case kInvalidResourceHandle: return "invalid resource handle";
    case kLaunchFailure: return "unspecified launch failure";
    default: return "unrecognized error code";
  }
}

int cudaMalloc(void** ptr, size_t size) { return Allocate(ptr, size, false); }
int cudaFree(void* ptr) { return Release(ptr, false); }
int cudaMallocHost(void** ptr, size_t size) { return Allocate(ptr, size, true); }
int cudaFreeHost(void* ptr) { return Release(ptr, true); }

int cudaStreamCreate(void** stream) {
  if (stream == nullptr) return kInvalidValue;
  auto* s = new Stream;
  s->device = current_device;
  s->worker = std::thread(RunStream, s);
  std::lock_guard<std::mutex> lock(R().mu);
  R().streams.insert(s);
  *stream = s;
  return kSuccess;
}

int cudaStreamSynchronize(void* stream) {
  auto* s = static_cast<Stream*>(stream);
  if (!KnownStream(s)) return kInvalidResourceHandle;
  std::unique_lock<std::mutex> lock(s->mu);
  s->cv.wait(lock, [s] { return s->queue.empty() && !s->busy; });
  return s->error;
}

// Work already enqueued still runs: the worker drains the queue first.
int cudaStreamDestroy(void* stream) {
  auto* s = static_cast<Stream*>(stream);
  {
    std::lock_guard<std::mutex> lock(R().mu);
    if (R().streams.erase(s) == 0) {
      Violation("cudaStreamDestroy of unknown stream " + Hex(s));
      return kInvalidResourceHandle;
    }
  }
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stopping = true;
    s->cv.notify_all();
  }
  s->worker.join();
  delete s;
  return kSuccess;
}

int cudaEventCreateWithFlags(void** event, unsigned int flags) {
  if (event == nullptr || flags > 0x0F) return kInvalidValue;
  auto* e = new Event;
  e->device = current_device;
  std::lock_guard<std::mutex> lock(R().mu);
  R().events.insert(e);
  *event = e;
  return kSuccess;
}

int cudaEventDestroy(void* event) {
  auto* e = static_cast<Event*>(event);
  std::lock_guard<std::mutex> lock(R().mu);
  if (R().events.erase(e) == 0) {
    Violation("cudaEventDestroy of unknown event " + Hex(e));
    return kInvalidResourceHandle;
  }
  std::unique_lock<std::mutex> event_lock(e->mu);
  if (e->completed < e->recorded) {
    // A record is still queued: the event is kept until the process ends.
    R().retired_events.push_back(e);
    return kSuccess;
  }
  event_lock.unlock();
  delete e;
  return kSuccess;
}

int cudaEventRecord(void* event, void* stream) {
  auto* e = static_cast<Event*>(event);
  auto* s = static_cast<Stream*>(stream);
  if (!KnownEvent(e) || !KnownStream(s)) return kInvalidResourceHandle;
  if (e->device != s->device) {
    std::lock_guard<std::mutex> lock(R().mu);
    Violation("event of device " + std::to_string(e->device) +
              " recorded on a stream of device " + std::to_string(s->device));
    return kInvalidResourceHandle;
  }
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    seq = ++e->recorded;
  }
  Enqueue(s, [e, s, seq] {
    int error;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      error = s->error;
    }
    std::lock_guard<std::mutex> lock(e->mu);
    e->completed = std::max(e->completed, seq);
    e->error = error;
    e->cv.notify_all();
  });
  return kSuccess;
}

int cudaEventSynchronize(void* event) {
  auto* e = static_cast<Event*>(event);
  if (!KnownEvent(e)) return kInvalidResourceHandle;
  std::unique_lock<std::mutex> lock(e->mu);
  const uint64_t target = e->recorded;
  e->cv.wait(lock, [e, target] { return e->completed >= target; });
  return e->completed == 0 ? kSuccess : e->error;
}

int cudaMemcpyAsync(void* dst, const void* src, size_t count, int kind,
                    void* stream) {
  auto* s = static_cast<Stream*>(stream);
  if (!KnownStream(s)) return kInvalidResourceHandle;
  if (kind != kHostToDevice && kind != kDeviceToHost) return kInvalidValue;
  const void* device = kind == kDeviceToHost ? src : dst;
  const void* host = kind == kDeviceToHost ? dst : src;

  Runtime& r = R();
  std::unique_lock<std::mutex> lock(r.mu);
  uintptr_t device_start = 0, host_start = 0;
  Allocation* d = Find(device, count, &device_start);
  if (d == nullptr || d->pinned) return kInvalidValue;  // not device memory
  Allocation* h = Find(host, count, &host_start);
  if (h == nullptr || !h->pinned) {
    Violation("cudaMemcpyAsync with pageable host memory at " + Hex(host) +
              " (" + std::to_string(count) + " bytes)");
    host_start = 0;
  }
  if (d->device != s->device) {
    Violation("copy on a stream of device " + std::to_string(s->device) +
              " touches memory of device " + std::to_string(d->device));
  }
  int fail = kSuccess;
  if (r.fail_copy_in > 0 && --r.fail_copy_in == 0) {
    if (r.fail_copy_at_enqueue) return r.fail_copy_error;
    fail = r.fail_copy_error;
  }
  ++d->in_flight;
  if (host_start != 0) ++h->in_flight;
  r.max_in_flight = std::max(r.max_in_flight, ++r.in_flight);
  const int delay_us = r.delay_us;
  lock.unlock();

  Enqueue(s, [=] {
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    if (fail == kSuccess) std::memcpy(dst, src, count);
    {
      std::lock_guard<std::mutex> state(R().mu);
      CopyDone(device_start);
      if (host_start != 0) CopyDone(host_start);
      --R().in_flight;
      ++R().copies;
      R().bytes += static_cast<long long>(count);
    }
    if (fail != kSuccess) {
      std::lock_guard<std::mutex> stream_lock(s->mu);
      if (s->error == kSuccess) s->error = fail;
    }
  });
  return kSuccess;
}

// ---- control, for tests -------------------------------------------------------

// The number of violations so far; the first one's text is copied into
// `first` (`size` bytes, NUL-terminated) when there is one.
int cudart_standin_violations(char* first, size_t size) {
  std::lock_guard<std::mutex> lock(R().mu);
  if (first != nullptr && size > 0) {
    std::snprintf(first, size, "%s", R().first_violation.c_str());
  }
  return R().violations;
}

// Forgets violations, counters and pending injections.
void cudart_standin_reset(void) {
  std::lock_guard<std::mutex> lock(R().mu);
  Runtime& r = R();
  r.violations = 0;
  r.first_violation.clear();
  r.fail_copy_in = 0;
  r.fail_alloc_error = kSuccess;
  r.copies = r.bytes = r.set_device_calls = 0;
  r.max_in_flight = r.in_flight;
}

// The nth copy enqueued from now (1: the next) fails with `error`: its
// enqueue returns it when at_enqueue, else the copy does nothing and the
// stream's next synchronization reports it.
void cudart_standin_fail_copy(int nth, int error, int at_enqueue) {
  std::lock_guard<std::mutex> lock(R().mu);
  R().fail_copy_in = nth;
  R().fail_copy_error = error;
  R().fail_copy_at_enqueue = at_enqueue != 0;
}

// The next cudaMalloc or cudaMallocHost fails with `error`.
void cudart_standin_fail_alloc(int error) {
  std::lock_guard<std::mutex> lock(R().mu);
  R().fail_alloc_error = error;
}

void cudart_standin_set_delay_us(int delay_us) {
  std::lock_guard<std::mutex> lock(R().mu);
  R().delay_us = delay_us;
}

// A counter by name: "copies", "bytes", "max_in_flight" (copies enqueued
// and not yet run, at most, since the last reset), "live_pinned" and
// "live_device" (allocations not freed), "set_device_calls"; -1 for
// another name.
long long cudart_standin_counter(const char* name) {
  std::lock_guard<std::mutex> lock(R().mu);
  const Runtime& r = R();
  const std::string n = name != nullptr ? name : "";
  if (n == "copies") return r.copies;
  if (n == "bytes") return r.bytes;
  if (n == "max_in_flight") return r.max_in_flight;
  if (n == "set_device_calls") return r.set_device_calls;
  if (n == "live_pinned" || n == "live_device") {
    const bool pinned = n == "live_pinned";
    return std::count_if(r.allocations.begin(), r.allocations.end(),
                         [pinned](const auto& a) {
                           return a.second.pinned == pinned && !a.second.freed;
                         });
  }
  return -1;
}

}  // extern "C"
