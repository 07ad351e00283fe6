#include "staging/pipeline.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace trackpoint::staging {
namespace {

// A pool buffer and the event that marks its copy complete.
struct Slot {
  StagingPool::Lease buffer;
  ScopedEvent copied;
};

// The buffers one transfer of num_chunks chunks uses: one, waiting for it
// if the pool is empty, then as many as are free right now (at most one per
// chunk). Never waiting for a second buffer while holding one keeps two
// transfers sharing a pool from deadlocking each other.
Result<std::vector<Slot>> TakeSlots(DeviceBackend& backend, StagingPool& pool,
                                    size_t num_chunks) {
  const size_t wanted = std::min(num_chunks, pool.num_buffers());
  std::vector<Slot> slots;
  slots.reserve(wanted);
  StagingPool::Lease buffer = pool.Acquire();
  while (buffer) {
    TP_ASSIGN_OR_RETURN(ScopedEvent copied, ScopedEvent::Create(backend));
    slots.push_back(Slot{std::move(buffer), std::move(copied)});
    if (slots.size() == wanted) break;
    buffer = pool.TryAcquire();
  }
  return slots;
}

Status CheckArguments(const DeviceBackend& backend, const StagingPool& pool,
                      const void* device, size_t n) {
  if (&pool.backend() != &backend) {
    return InvalidArgumentError(
        std::string("staging pool belongs to backend ") +
        pool.backend().name() + ", not to " + backend.name());
  }
  if (device == nullptr && n > 0) {
    return InvalidArgumentError("null device pointer for " + std::to_string(n) +
                                " bytes");
  }
  return OkStatus();
}

// Where a copy error happened, for its message.
std::string ChunkContext(const char* direction, size_t chunk, size_t num_chunks,
                         size_t offset, size_t len) {
  return std::string("staging ") + direction + ", chunk " +
         std::to_string(chunk + 1) + " of " + std::to_string(num_chunks) +
         " (bytes " + std::to_string(offset) + ".." +
         std::to_string(offset + len) + ")";
}

}  // namespace

Status StageToHost(DeviceBackend& backend, StagingPool& pool,
                   const void* device_src, size_t n, const HostSink& sink) {
  TP_RETURN_IF_ERROR(CheckArguments(backend, pool, device_src, n));
  if (n == 0) return OkStatus();
  const char* src = static_cast<const char*>(device_src);
  const size_t chunk = pool.buffer_bytes();
  const size_t num_chunks = n / chunk + (n % chunk != 0 ? 1 : 0);
  auto len_of = [&](size_t i) { return std::min(chunk, n - i * chunk); };

  // Declared before the stream: the stream's destructor waits for its
  // copies, and only then are the buffers given back.
  TP_ASSIGN_OR_RETURN(std::vector<Slot> slots,
                      TakeSlots(backend, pool, num_chunks));
  TP_ASSIGN_OR_RETURN(ScopedStream stream, ScopedStream::Create(backend));
  const size_t depth = slots.size();

  size_t issued = 0;  // chunks whose copy is enqueued
  for (size_t i = 0; i < num_chunks; ++i) {
    // Every buffer but those of chunks < i is free or busy with a copy:
    // keep them all busy.
    for (; issued < num_chunks && issued < i + depth; ++issued) {
      Slot& slot = slots[issued % depth];
      const size_t offset = issued * chunk;
      Status status = backend.CopyToHostAsync(slot.buffer.data(), src + offset,
                                              len_of(issued), stream.get());
      if (status.ok()) {
        status = backend.RecordEvent(slot.copied.get(), stream.get());
      }
      if (!status.ok()) {
        return status.Annotate(ChunkContext(
            "device to host", issued, num_chunks, offset, len_of(issued)));
      }
    }
    Slot& slot = slots[i % depth];
    Status status = backend.SynchronizeEvent(slot.copied.get());
    if (!status.ok()) {
      return status.Annotate(
          ChunkContext("device to host", i, num_chunks, i * chunk, len_of(i)));
    }
    TP_RETURN_IF_ERROR(sink(slot.buffer.data(), len_of(i)));
  }
  return OkStatus();  // every copy was waited for
}

Status StageToDevice(DeviceBackend& backend, StagingPool& pool,
                     void* device_dst, size_t n, const HostSource& source) {
  TP_RETURN_IF_ERROR(CheckArguments(backend, pool, device_dst, n));
  if (n == 0) return OkStatus();
  char* dst = static_cast<char*>(device_dst);
  const size_t chunk = pool.buffer_bytes();
  const size_t num_chunks = n / chunk + (n % chunk != 0 ? 1 : 0);
  auto len_of = [&](size_t i) { return std::min(chunk, n - i * chunk); };

  TP_ASSIGN_OR_RETURN(std::vector<Slot> slots,
                      TakeSlots(backend, pool, num_chunks));
  TP_ASSIGN_OR_RETURN(ScopedStream stream, ScopedStream::Create(backend));
  const size_t depth = slots.size();

  for (size_t i = 0; i < num_chunks; ++i) {
    Slot& slot = slots[i % depth];
    if (i >= depth) {
      // The buffer's previous chunk must be on the device before the buffer
      // is refilled.
      const size_t prev = i - depth;
      Status status = backend.SynchronizeEvent(slot.copied.get());
      if (!status.ok()) {
        return status.Annotate(ChunkContext("host to device", prev, num_chunks,
                                            prev * chunk, len_of(prev)));
      }
    }
    const size_t offset = i * chunk;
    TP_RETURN_IF_ERROR(source(slot.buffer.data(), offset, len_of(i)));
    Status status = backend.CopyToDeviceAsync(dst + offset, slot.buffer.data(),
                                              len_of(i), stream.get());
    if (status.ok()) {
      status = backend.RecordEvent(slot.copied.get(), stream.get());
    }
    if (!status.ok()) {
      return status.Annotate(
          ChunkContext("host to device", i, num_chunks, offset, len_of(i)));
    }
  }
  // Wait for the copies still in flight, oldest first, so that an error
  // names its chunk.
  for (size_t i = num_chunks - std::min(depth, num_chunks); i < num_chunks;
       ++i) {
    Status status = backend.SynchronizeEvent(slots[i % depth].copied.get());
    if (!status.ok()) {
      return status.Annotate(
          ChunkContext("host to device", i, num_chunks, i * chunk, len_of(i)));
    }
  }
  return OkStatus();
}

}  // namespace trackpoint::staging
