// StagingPool: a fixed set of equal-sized pinned host buffers, allocated once
// through a DeviceBackend and lent out, one Lease per buffer, to the staging
// pipelines of successive (or concurrent) saves and restores. Pinning memory
// is slow (it maps and locks pages), so a process keeps one pool and reuses
// it instead of pinning per tensor.
#ifndef TRACKPOINT_STAGING_STAGING_POOL_H_
#define TRACKPOINT_STAGING_STAGING_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "staging/device_backend.h"

namespace trackpoint::staging {

// Thread safety: Acquire, TryAcquire and the accessors may be called from
// several threads at once; one Lease must not be used by two threads at once.
class StagingPool {
 public:
  // One borrowed buffer, given back to the pool when the Lease is destroyed
  // or Release()d. Empty (false) when default-constructed or moved from.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Release(); }

    explicit operator bool() const { return data_ != nullptr; }
    char* data() const { return data_; }
    // The pool's buffer_bytes() (0 when empty).
    size_t size() const;
    // REQUIRES: no copy into or out of the buffer is still running.
    void Release();

   private:
    friend class StagingPool;
    Lease(StagingPool* pool, char* data) : pool_(pool), data_(data) {}
    StagingPool* pool_ = nullptr;
    char* data_ = nullptr;
  };

  // Pins num_buffers buffers of buffer_bytes each. Errors: InvalidArgument
  // for zero buffers or zero bytes; the backend's error (everything pinned
  // so far is freed) when pinning fails.
  // REQUIRES: backend outlives the pool.
  static Result<std::unique_ptr<StagingPool>> Create(DeviceBackend& backend,
                                                     size_t num_buffers,
                                                     size_t buffer_bytes);
  // Frees the buffers. REQUIRES: every Lease has been released.
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // Waits until a buffer is free and lends it.
  Lease Acquire();
  // Lends a free buffer, or returns an empty Lease at once when none is.
  Lease TryAcquire();

  DeviceBackend& backend() const { return backend_; }
  size_t num_buffers() const { return buffers_.size(); }
  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t num_free() const;

 private:
  StagingPool(DeviceBackend& backend, size_t buffer_bytes)
      : backend_(backend), buffer_bytes_(buffer_bytes) {}
  void Return(char* data);

  DeviceBackend& backend_;
  const size_t buffer_bytes_;
  std::vector<PinnedBuffer> buffers_;  // owns the memory

  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::vector<char*> free_;  // guarded by mu_
};

}  // namespace trackpoint::staging

#endif  // TRACKPOINT_STAGING_STAGING_POOL_H_
