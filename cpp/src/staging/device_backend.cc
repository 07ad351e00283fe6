#include "staging/device_backend.h"

#include <utility>

namespace trackpoint::staging {

Result<ScopedStream> ScopedStream::Create(DeviceBackend& backend) {
  TP_ASSIGN_OR_RETURN(Stream stream, backend.CreateStream());
  return ScopedStream(&backend, stream);
}

ScopedStream::ScopedStream(ScopedStream&& other) noexcept
    : backend_(other.backend_),
      stream_(std::exchange(other.stream_, nullptr)) {}

ScopedStream::~ScopedStream() {
  if (stream_ == nullptr) return;
  // The error, if any, was (or will never be) reported by whoever owned the
  // work; here we only make sure nothing is still running.
  (void)backend_->SynchronizeStream(stream_);
  backend_->DestroyStream(stream_);
}

Result<ScopedEvent> ScopedEvent::Create(DeviceBackend& backend) {
  TP_ASSIGN_OR_RETURN(Event event, backend.CreateEvent());
  return ScopedEvent(&backend, event);
}

ScopedEvent::ScopedEvent(ScopedEvent&& other) noexcept
    : backend_(other.backend_), event_(std::exchange(other.event_, nullptr)) {}

ScopedEvent::~ScopedEvent() {
  if (event_ != nullptr) backend_->DestroyEvent(event_);
}

Result<PinnedBuffer> PinnedBuffer::Allocate(DeviceBackend& backend, size_t n) {
  TP_ASSIGN_OR_RETURN(void* data, backend.AllocatePinned(n));
  return PinnedBuffer(&backend, static_cast<char*>(data), n);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : backend_(other.backend_),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

PinnedBuffer::~PinnedBuffer() {
  if (data_ != nullptr) backend_->FreePinned(data_);
}

}  // namespace trackpoint::staging
