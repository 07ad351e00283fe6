#include "staging/staging_pool.h"

#include <cassert>
#include <string>
#include <utility>

namespace trackpoint::staging {

StagingPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      data_(std::exchange(other.data_, nullptr)) {}

StagingPool::Lease& StagingPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

size_t StagingPool::Lease::size() const {
  return pool_ != nullptr ? pool_->buffer_bytes() : 0;
}

void StagingPool::Lease::Release() {
  if (data_ != nullptr) pool_->Return(data_);
  pool_ = nullptr;
  data_ = nullptr;
}

Result<std::unique_ptr<StagingPool>> StagingPool::Create(DeviceBackend& backend,
                                                         size_t num_buffers,
                                                         size_t buffer_bytes) {
  if (num_buffers == 0 || buffer_bytes == 0) {
    return InvalidArgumentError(
        "a staging pool needs at least one buffer of at least one byte (got " +
        std::to_string(num_buffers) + " x " + std::to_string(buffer_bytes) +
        " bytes)");
  }
  std::unique_ptr<StagingPool> pool(new StagingPool(backend, buffer_bytes));
  pool->buffers_.reserve(num_buffers);
  pool->free_.reserve(num_buffers);
  for (size_t i = 0; i < num_buffers; ++i) {
    Result<PinnedBuffer> buffer = PinnedBuffer::Allocate(backend, buffer_bytes);
    if (!buffer.ok()) {
      return buffer.status().Annotate("staging pool: pinned buffer " +
                                      std::to_string(i + 1) + " of " +
                                      std::to_string(num_buffers));
    }
    pool->free_.push_back(buffer->data());
    pool->buffers_.push_back(std::move(buffer).value());
  }
  return pool;
}

StagingPool::~StagingPool() {
  assert(free_.size() == buffers_.size() && "a Lease outlived its pool");
}

StagingPool::Lease StagingPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  returned_.wait(lock, [&] { return !free_.empty(); });
  char* data = free_.back();
  free_.pop_back();
  return Lease(this, data);
}

StagingPool::Lease StagingPool::TryAcquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) return Lease();
  char* data = free_.back();
  free_.pop_back();
  return Lease(this, data);
}

size_t StagingPool::num_free() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_.size();
}

void StagingPool::Return(char* data) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(data);
  }
  returned_.notify_one();
}

}  // namespace trackpoint::staging
