// DeviceBackend: the few accelerator operations host staging needs (pinned
// host memory, asynchronous copies on a stream, completion events), behind
// one interface so the pipeline logic is the same for a real GPU (CudaBackend,
// the CUDA runtime loaded at run time) and for tests on a CPU
// (FakeDeviceBackend, where "device memory" is host memory).
//
// The model is CUDA's: work enqueued on one stream runs in the order it was
// enqueued; an event recorded on a stream completes when everything enqueued
// on the stream before the record has finished. A copy that fails reports its
// error either from the call that enqueues it or, later, from the
// synchronization that waits for it.
#ifndef TRACKPOINT_STAGING_DEVICE_BACKEND_H_
#define TRACKPOINT_STAGING_DEVICE_BACKEND_H_

#include <cstddef>
#include <memory>

#include "trackpoint/status.h"

namespace trackpoint::staging {

// Opaque handles; what they point to belongs to the backend that made them.
struct StreamHandle;
struct EventHandle;
using Stream = StreamHandle*;
using Event = EventHandle*;

// Thread safety: every method may be called from several threads at once.
// Work on one stream runs in enqueue order; different streams are
// independent. A handle must not be destroyed while another thread still
// uses it, and a host or device buffer must not be freed while a copy that
// touches it may still run (synchronize first).
class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // "cuda:0", "fake", ...
  virtual const char* name() const = 0;

  // Page-locked host memory, the only host memory that copies may use
  // (a real GPU copies it by DMA, asynchronously to the host CPU).
  virtual Result<void*> AllocatePinned(size_t n) = 0;
  // REQUIRES: p came from AllocatePinned (or is null); no copy uses it.
  virtual void FreePinned(void* p) = 0;

  // Device memory. The pipeline never calls these: they exist for tests and
  // benchmarks that need a device buffer to stage.
  virtual Result<void*> AllocateDevice(size_t n) = 0;
  virtual void FreeDevice(void* p) = 0;

  virtual Result<Stream> CreateStream() = 0;
  // Returns at once; work already enqueued still completes.
  virtual void DestroyStream(Stream stream) = 0;
  // Waits for everything enqueued on the stream; returns the first error of
  // that work.
  virtual Status SynchronizeStream(Stream stream) = 0;

  virtual Result<Event> CreateEvent() = 0;
  virtual void DestroyEvent(Event event) = 0;
  // The event completes once everything enqueued on stream so far is done.
  virtual Status RecordEvent(Event event, Stream stream) = 0;
  // Waits for the event's latest record (at once if never recorded);
  // returns the first error of the work it waited for.
  virtual Status SynchronizeEvent(Event event) = 0;

  // Enqueue a copy of n bytes on stream and return without waiting for it.
  // REQUIRES: host lies inside one AllocatePinned buffer; both buffers stay
  // valid and untouched until the copy is known complete.
  virtual Status CopyToHostAsync(void* host, const void* device, size_t n,
                                 Stream stream) = 0;
  virtual Status CopyToDeviceAsync(void* device, const void* host, size_t n,
                                   Stream stream) = 0;
};

// Owns a stream. On destruction it waits for the stream's work (ignoring
// its errors) before destroying it, so that once a ScopedStream is gone no
// copy it carried can still touch memory.
// Thread safety: not thread-safe; the stream itself may be shared.
class ScopedStream {
 public:
  static Result<ScopedStream> Create(DeviceBackend& backend);
  ScopedStream(ScopedStream&& other) noexcept;
  ScopedStream& operator=(ScopedStream&&) = delete;
  ScopedStream(const ScopedStream&) = delete;
  ScopedStream& operator=(const ScopedStream&) = delete;
  ~ScopedStream();

  Stream get() const { return stream_; }

 private:
  ScopedStream(DeviceBackend* backend, Stream stream)
      : backend_(backend), stream_(stream) {}
  DeviceBackend* backend_;
  Stream stream_;
};

// Owns an event, destroyed with it.
// Thread safety: not thread-safe; the event itself may be shared.
class ScopedEvent {
 public:
  static Result<ScopedEvent> Create(DeviceBackend& backend);
  ScopedEvent(ScopedEvent&& other) noexcept;
  ScopedEvent& operator=(ScopedEvent&&) = delete;
  ScopedEvent(const ScopedEvent&) = delete;
  ScopedEvent& operator=(const ScopedEvent&) = delete;
  ~ScopedEvent();

  Event get() const { return event_; }

 private:
  ScopedEvent(DeviceBackend* backend, Event event)
      : backend_(backend), event_(event) {}
  DeviceBackend* backend_;
  Event event_;
};

// Owns one pinned host allocation, freed with it.
// Thread safety: not thread-safe.
class PinnedBuffer {
 public:
  static Result<PinnedBuffer> Allocate(DeviceBackend& backend, size_t n);
  PinnedBuffer(PinnedBuffer&& other) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&&) = delete;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();

  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  PinnedBuffer(DeviceBackend* backend, char* data, size_t size)
      : backend_(backend), data_(data), size_(size) {}
  DeviceBackend* backend_;
  char* data_;
  size_t size_;
};

}  // namespace trackpoint::staging

#endif  // TRACKPOINT_STAGING_DEVICE_BACKEND_H_
