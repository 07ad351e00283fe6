#include "staging/cuda_backend.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "staging/pipeline.h"
#include "staging/staging_pool.h"
#include "trackpoint/crc32c.h"

namespace trackpoint::staging {
namespace {

// A backend for device 0, or skips the test when this machine has no CUDA
// runtime or no GPU.
#define TP_CUDA_BACKEND_OR_SKIP(var)                                      \
  Result<std::unique_ptr<DeviceBackend>> var##_or = CudaBackend::Load(0); \
  if (!var##_or.ok()) {                                                   \
    GTEST_SKIP() << var##_or.status().ToString();                         \
  }                                                                       \
  std::unique_ptr<DeviceBackend> var = std::move(var##_or).value()

std::vector<char> Pattern(size_t n) {
  std::vector<char> bytes(n);
  uint32_t x = 88172645u;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    bytes[i] = static_cast<char>(x);
  }
  return bytes;
}

// Holds device memory for the length of a test.
class DeviceMemory {
 public:
  DeviceMemory(DeviceBackend& backend, size_t n) : backend_(backend) {
    Result<void*> p = backend.AllocateDevice(n);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (p.ok()) data_ = *p;
  }
  ~DeviceMemory() { backend_.FreeDevice(data_); }
  void* data() const { return data_; }

 private:
  DeviceBackend& backend_;
  void* data_ = nullptr;
};

TEST(CudaBackendTest, UnavailableRuntimeIsAClearError) {
  Status available = CudaBackend::CheckAvailable();
  if (available.ok()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_EQ(available.code(), StatusCode::kUnavailable);
  const std::string& message = available.message();
  const bool no_runtime =
      message.rfind("CUDA runtime not available: ", 0) == 0 &&
      message.find("libcudart") != std::string::npos;
  const bool no_device = message.rfind("no usable CUDA device", 0) == 0;
  EXPECT_TRUE(no_runtime || no_device) << message;
  // A runtime that loads must have every function the backend binds (a
  // real libcudart without a GPU or driver gets as far as "no usable CUDA
  // device"): a missing one means a wrong symbol name here.
  EXPECT_EQ(message.find(" has no cuda"), std::string::npos) << message;
  // Load says the same, every time it is asked.
  for (int i = 0; i < 2; ++i) {
    Result<std::unique_ptr<DeviceBackend>> backend = CudaBackend::Load(0);
    EXPECT_EQ(backend.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(backend.status().message(), message);
  }
}

TEST(CudaBackendTest, RejectsADeviceOutOfRange) {
  TP_CUDA_BACKEND_OR_SKIP(backend);
  EXPECT_EQ(CudaBackend::Load(-1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaBackend::Load(1 << 20).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CudaBackendTest, PipelineRoundTrip) {
  TP_CUDA_BACKEND_OR_SKIP(backend);
  EXPECT_STREQ(backend->name(), "cuda:0");
  constexpr size_t kChunk = 1 << 20;
  Result<std::unique_ptr<StagingPool>> pool =
      StagingPool::Create(*backend, 3, kChunk);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  for (size_t n : {size_t{1}, kChunk - 1, kChunk, 10 * kChunk + 7}) {
    SCOPED_TRACE(n);
    const std::vector<char> host = Pattern(n);
    DeviceMemory device(*backend, n);
    ASSERT_NE(device.data(), nullptr);

    Status up = StageToDevice(*backend, **pool, device.data(), n,
                              [&](char* chunk, size_t offset, size_t len) {
                                std::memcpy(chunk, host.data() + offset, len);
                                return OkStatus();
                              });
    ASSERT_TRUE(up.ok()) << up.ToString();

    std::vector<char> back;
    back.reserve(n);
    uint32_t crc = 0;
    Status down = StageToHost(*backend, **pool, device.data(), n,
                              [&](const char* chunk, size_t len) {
                                back.insert(back.end(), chunk, chunk + len);
                                crc = crc32c::Extend(crc, chunk, len);
                                return OkStatus();
                              });
    ASSERT_TRUE(down.ok()) << down.ToString();
    EXPECT_TRUE(back == host);
    EXPECT_EQ(crc, crc32c::Value(host.data(), n));
  }
  EXPECT_EQ((*pool)->num_free(), 3u);
}

}  // namespace
}  // namespace trackpoint::staging
