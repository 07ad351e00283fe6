// FakeDeviceBackend: a DeviceBackend with no device, for testing the staging
// pipeline on a CPU. "Device memory" is ordinary host memory, so any host
// address works as a device pointer. Each stream has a worker thread that
// runs its copies (plain memcpy) in enqueue order, asynchronously to the
// caller, optionally slowed down or failing on purpose.
#ifndef TRACKPOINT_STAGING_FAKE_BACKEND_H_
#define TRACKPOINT_STAGING_FAKE_BACKEND_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "staging/device_backend.h"

namespace trackpoint::staging {

// What a copy hook sees: one call when a copy starts running on its stream's
// worker, one when it ends.
struct FakeCopyTrace {
  enum class Phase { kStart, kEnd };
  Phase phase;
  int64_t index;  // 0-based, in enqueue order over the whole backend
  bool to_host;   // device-to-host (else host-to-device)
  void* dst;
  const void* src;
  size_t n;
  bool ok;  // kEnd only: false when the copy failed on purpose
};

struct FakeBackendOptions {
  // Each copy sleeps this long on its worker before it copies.
  std::chrono::microseconds copy_delay{0};
  // The first fail_after_copies copies succeed and every later one fails
  // (Internal, "injected copy failure"); negative: none fails.
  int64_t fail_after_copies = -1;
  // Where an injected failure shows: false (the default), like an
  // asynchronous CUDA error, from the synchronization that waits for the
  // copy (the copy and every later one on its stream are skipped); true,
  // from the Copy*Async call itself.
  bool fail_at_enqueue = false;
  // AllocatePinned fails (ResourceExhausted) past this many live bytes.
  size_t max_pinned_bytes = std::numeric_limits<size_t>::max();
  // Called on the stream's worker thread at the start and end of every copy
  // that runs (not for copies skipped after a failure). It may block, which
  // stalls that stream: tests use this to prove that two things overlap.
  std::function<void(const FakeCopyTrace&)> on_copy;
};

// Thread safety: as DeviceBackend (every method from any thread). Unlike
// CUDA, DestroyStream waits for the stream's work to finish.
class FakeDeviceBackend final : public DeviceBackend {
 public:
  explicit FakeDeviceBackend(FakeBackendOptions options = {});
  ~FakeDeviceBackend() override;
  FakeDeviceBackend(const FakeDeviceBackend&) = delete;
  FakeDeviceBackend& operator=(const FakeDeviceBackend&) = delete;

  const char* name() const override { return "fake"; }
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
  // Copies whose host range is not inside one live pinned allocation fail
  // with InvalidArgument, as a check on the code under test.
  Status CopyToHostAsync(void* host, const void* device, size_t n,
                         Stream stream) override;
  Status CopyToDeviceAsync(void* device, const void* host, size_t n,
                           Stream stream) override;

  // For leak and progress checks in tests.
  int64_t copies_enqueued() const { return copies_enqueued_.load(); }
  size_t live_pinned_allocations() const;
  size_t live_device_allocations() const;
  size_t live_streams() const;
  size_t live_events() const;

 private:
  struct FakeStream;
  struct FakeEvent;

  Status EnqueueCopy(void* dst, const void* src, size_t n, const void* host,
                     bool to_host, Stream stream);
  bool IsPinnedRange(const void* p, size_t n) const;
  FakeStream* FindStream(Stream stream) const;
  std::shared_ptr<FakeEvent> FindEvent(Event event) const;

  const FakeBackendOptions options_;
  std::atomic<int64_t> copies_enqueued_{0};

  struct Allocation {
    std::unique_ptr<char[]> bytes;
    size_t size;
  };

  mutable std::mutex mu_;                     // guards everything below
  std::map<const char*, Allocation> pinned_;  // by start address
  size_t pinned_bytes_ = 0;
  std::unordered_map<void*, Allocation> device_;
  std::unordered_map<Stream, std::unique_ptr<FakeStream>> streams_;
  std::unordered_map<Event, std::shared_ptr<FakeEvent>> events_;
};

}  // namespace trackpoint::staging

#endif  // TRACKPOINT_STAGING_FAKE_BACKEND_H_
