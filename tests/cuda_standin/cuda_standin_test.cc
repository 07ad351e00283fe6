// CudaBackend against the CUDA runtime stand-in (cudart_standin.cc): the
// real backend code (dlopen, symbol binding, device selection, error codes)
// and the staging pipeline over it, on a machine without a GPU. CMake runs
// this program with the stand-in's folder first in LD_LIBRARY_PATH (ctest
// staging.cuda_standin*); run any other way, its tests fail.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "staging/cuda_backend.h"
#include "staging/device_registry.h"
#include "staging/pipeline.h"
#include "staging/staging_pool.h"
#include "test_util.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_writer.h"
#include "trackpoint/crc32c.h"

namespace trackpoint::staging {
namespace {

constexpr int kLaunchFailure = 719;  // cudaErrorLaunchFailure
constexpr int kInvalidValue = 1;     // cudaErrorInvalidValue
constexpr int kMemoryAllocation = 2;
constexpr size_t kChunk = 4096;      // the pool's buffer size in these tests

// The stand-in's control functions, from the libcudart.so CudaBackend
// loaded.
class Standin {
 public:
  Standin() {
    void* library = dlopen("libcudart.so", RTLD_NOW | RTLD_NOLOAD);
    if (library == nullptr) return;
    violations_ = reinterpret_cast<int (*)(char*, size_t)>(
        dlsym(library, "cudart_standin_violations"));
    reset_ = reinterpret_cast<void (*)()>(dlsym(library, "cudart_standin_reset"));
    fail_copy_ = reinterpret_cast<void (*)(int, int, int)>(
        dlsym(library, "cudart_standin_fail_copy"));
    fail_alloc_ = reinterpret_cast<void (*)(int)>(
        dlsym(library, "cudart_standin_fail_alloc"));
    counter_ = reinterpret_cast<long long (*)(const char*)>(
        dlsym(library, "cudart_standin_counter"));
    get_device_ =
        reinterpret_cast<int (*)(int*)>(dlsym(library, "cudaGetDevice"));
  }
  bool loaded() const { return violations_ != nullptr && counter_ != nullptr; }

  void Reset() { reset_(); }
  void FailCopy(int nth, int error, bool at_enqueue) {
    fail_copy_(nth, error, at_enqueue ? 1 : 0);
  }
  void FailAlloc(int error) { fail_alloc_(error); }
  long long Counter(const char* name) { return counter_(name); }
  int CurrentDevice() {
    int device = -1;
    get_device_(&device);
    return device;
  }
  // "" when no CUDA rule was broken, else the first breach.
  std::string FirstViolation() {
    char first[512] = "";
    return violations_(first, sizeof(first)) == 0 ? "" : first;
  }

 private:
  int (*violations_)(char*, size_t) = nullptr;
  void (*reset_)() = nullptr;
  void (*fail_copy_)(int, int, int) = nullptr;
  void (*fail_alloc_)(int) = nullptr;
  long long (*counter_)(const char*) = nullptr;
  int (*get_device_)(int*) = nullptr;
};

class CudaStandinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<DeviceBackend>> backend = CudaBackend::Load(0);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString()
                              << " (run through ctest, which puts the "
                                 "stand-in first in LD_LIBRARY_PATH)";
    backend_ = std::move(backend).value();
    standin_ = Standin();  // now that the runtime is loaded
    ASSERT_TRUE(standin_.loaded())
        << "CudaBackend loaded a libcudart.so that is not the stand-in";
    standin_.Reset();
    pinned_before_ = standin_.Counter("live_pinned");
  }
  void TearDown() override {
    if (standin_.loaded()) EXPECT_EQ(standin_.FirstViolation(), "");
  }

  // Device memory of n bytes holding `bytes` (or zeros), freed with the test.
  void* DeviceCopyOf(const std::vector<char>& bytes) {
    Result<void*> p = backend_->AllocateDevice(std::max<size_t>(bytes.size(), 1));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return nullptr;
    std::memcpy(*p, bytes.data(), bytes.size());  // the stand-in's memory is the host's
    device_.emplace_back(*p, [this](void* q) { backend_->FreeDevice(q); });
    return *p;
  }

  std::unique_ptr<StagingPool> Pool(DeviceBackend& backend, size_t buffers) {
    return std::move(StagingPool::Create(backend, buffers, kChunk)).value();
  }

  Standin standin_;
  long long pinned_before_ = 0;  // pinned allocations other tests keep
  std::unique_ptr<DeviceBackend> backend_;
  std::vector<std::unique_ptr<void, std::function<void(void*)>>> device_;
};

std::vector<char> Sink(DeviceBackend& backend, StagingPool& pool,
                       const void* device, size_t n, Status* status) {
  std::vector<char> out;
  *status = StageToHost(backend, pool, device, n,
                        [&](const char* chunk, size_t len) {
                          out.insert(out.end(), chunk, chunk + len);
                          return OkStatus();
                        });
  return out;
}

TEST_F(CudaStandinTest, PipelineCopiesOverlapAndKeepCudasRules) {
  auto pool = Pool(*backend_, 3);
  for (size_t n : {size_t{1}, kChunk - 1, kChunk, 10 * kChunk + 7}) {
    SCOPED_TRACE(n);
    const std::vector<char> bytes = testing::PseudoRandomBytes(n, 7);
    void* source = DeviceCopyOf(bytes);
    Status status;
    EXPECT_TRUE(Sink(*backend_, *pool, source, n, &status) == bytes);
    ASSERT_TRUE(status.ok()) << status.ToString();

    void* target = DeviceCopyOf(std::vector<char>(n, 0));
    status = StageToDevice(*backend_, *pool, target, n,
                           [&](char* chunk, size_t offset, size_t len) {
                             std::memcpy(chunk, bytes.data() + offset, len);
                             return OkStatus();
                           });
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(std::memcmp(target, bytes.data(), n), 0);
  }
  // 2 x (1 + 1 + 1 + 11) chunks, each a cudaMemcpyAsync; three buffers kept
  // three copies in flight at once.
  EXPECT_EQ(standin_.Counter("copies"), 28);
  EXPECT_EQ(standin_.Counter("bytes"), 2 * (1 + kChunk - 1 + kChunk + 10 * kChunk + 7));
  EXPECT_EQ(standin_.Counter("max_in_flight"), 3);
  EXPECT_EQ(standin_.Counter("live_pinned") - pinned_before_, 3);
  EXPECT_EQ(pool->num_free(), 3u);
}

TEST_F(CudaStandinTest, SecondDeviceLeavesTheCallersDeviceAlone) {
  Result<std::unique_ptr<DeviceBackend>> one = CudaBackend::Load(1);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_STREQ((*one)->name(), "cuda:1");
  ASSERT_EQ(standin_.CurrentDevice(), 0);
  auto pool = Pool(**one, 2);  // pinned through device 1
  Result<void*> memory = (*one)->AllocateDevice(5 * kChunk);
  ASSERT_TRUE(memory.ok());
  const std::vector<char> bytes = testing::PseudoRandomBytes(5 * kChunk, 3);
  std::memcpy(*memory, bytes.data(), bytes.size());
  Status status;
  // The stand-in counts a violation if a copy's stream and memory are on
  // different devices: stream and events must be made on device 1 too.
  EXPECT_TRUE(Sink(**one, *pool, *memory, bytes.size(), &status) == bytes);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(standin_.CurrentDevice(), 0);
  EXPECT_GT(standin_.Counter("set_device_calls"), 0);
  (*one)->FreeDevice(*memory);
  EXPECT_EQ(CudaBackend::Load(2).status().message(),
            "CUDA device 2 does not exist (the runtime reports 2)");
}

TEST_F(CudaStandinTest, AsynchronousCopyFailureNamesItsChunk) {
  auto pool = Pool(*backend_, 3);
  const std::vector<char> bytes = testing::PseudoRandomBytes(5 * kChunk, 1);
  void* source = DeviceCopyOf(bytes);
  standin_.FailCopy(3, kLaunchFailure, /*at_enqueue=*/false);
  Status status;
  Sink(*backend_, *pool, source, bytes.size(), &status);
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_TRUE(testing::Contains(
      status, "cudaEventSynchronize failed: unspecified launch failure "
              "(CUDA error 719)"))
      << status.ToString();
  EXPECT_TRUE(testing::Contains(status, "chunk 3 of 5")) << status.ToString();
  EXPECT_EQ(pool->num_free(), 3u);  // every buffer back, no copy left running
}

TEST_F(CudaStandinTest, EnqueueFailureNamesItsChunk) {
  auto pool = Pool(*backend_, 2);
  void* target = DeviceCopyOf(std::vector<char>(3 * kChunk, 0));
  standin_.FailCopy(2, kInvalidValue, /*at_enqueue=*/true);
  Status status = StageToDevice(*backend_, *pool, target, 3 * kChunk,
                                [](char* chunk, size_t, size_t len) {
                                  std::memset(chunk, 1, len);
                                  return OkStatus();
                                });
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(testing::Contains(
      status, "cudaMemcpyAsync (host to device) failed: invalid argument"))
      << status.ToString();
  EXPECT_TRUE(testing::Contains(status, "chunk 2 of 3")) << status.ToString();
}

TEST_F(CudaStandinTest, HostMemoryPassedAsDeviceMemoryIsRefused) {
  auto pool = Pool(*backend_, 2);
  std::vector<char> host(100, 1);
  Status status;
  Sink(*backend_, *pool, host.data(), host.size(), &status);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(testing::Contains(
      status, "cudaMemcpyAsync (device to host) failed: invalid argument"))
      << status.ToString();
}

TEST_F(CudaStandinTest, PinningFailureIsResourceExhausted) {
  standin_.FailAlloc(kMemoryAllocation);
  Result<std::unique_ptr<StagingPool>> pool =
      StagingPool::Create(*backend_, 2, kChunk);
  EXPECT_EQ(pool.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(testing::Contains(
      pool.status(), "cudaMallocHost failed: out of memory (CUDA error 2)"))
      << pool.status().ToString();
  EXPECT_TRUE(testing::Contains(pool.status(), "pinning 4096 bytes"));
  EXPECT_EQ(standin_.Counter("live_pinned"), pinned_before_);  // none kept
}

// A GPU tensor saved into a checkpoint and read back into device memory,
// through the process-wide staging of device 0, as the Python bindings do.
TEST_F(CudaStandinTest, BundleRoundTripThroughTheSharedStaging) {
  ASSERT_TRUE(SetSharedPoolGeometry({3, kChunk}).ok());
  Result<std::shared_ptr<DeviceStaging>> shared = SharedDeviceStaging("cuda", 0);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  DeviceBackend& backend = *(*shared)->backend;
  StagingPool& pool = *(*shared)->pool;

  const std::vector<char> bytes = testing::PseudoRandomBytes(7 * kChunk + 12, 5);
  Result<void*> source = backend.AllocateDevice(bytes.size());
  Result<void*> target = backend.AllocateDevice(bytes.size());
  ASSERT_TRUE(source.ok() && target.ok());
  std::memcpy(*source, bytes.data(), bytes.size());
  std::memset(*target, 0, bytes.size());

  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  BundleWriterOptions options;
  options.sync = false;
  auto writer = BundleWriter::Open(prefix, options);
  ASSERT_TRUE(writer.ok());
  const TensorShape shape{{static_cast<int64_t>(bytes.size() / 4)}};
  Status status = (*writer)->AddFromDevice("w", DataType::kFloat, shape, *source,
                                           bytes.size(), backend, pool);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE((*writer)->Finish().ok());

  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<char> host(bytes.size());
  ASSERT_TRUE((*reader)->ReadTensor("w", host.data(), host.size()).ok());
  EXPECT_TRUE(host == bytes);
  status = (*reader)->ReadTensorToDevice("w", *target, bytes.size(), backend, pool);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(std::memcmp(*target, bytes.data(), bytes.size()), 0);
  backend.FreeDevice(*source);
  backend.FreeDevice(*target);
  ASSERT_TRUE(SetSharedPoolGeometry(PoolGeometry{}).ok());
}

// Run with CUDART_STANDIN_DEVICES=0 (ctest staging.cuda_standin.no_device):
// the runtime loads but has no device.
TEST(CudaStandinNoDeviceTest, SaysThereIsNoDevice) {
  Status available = CudaBackend::CheckAvailable();
  EXPECT_EQ(available.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(testing::Contains(available, "no usable CUDA device (runtime "))
      << available.ToString();
  EXPECT_TRUE(testing::Contains(
      available,
      "cudaGetDeviceCount failed: no CUDA-capable device is detected "
      "(CUDA error 100)"))
      << available.ToString();
  EXPECT_EQ(CudaBackend::Load(0).status().message(), available.message());
  EXPECT_EQ(SharedDeviceStaging("cuda", 0).status().message(), available.message());
}

}  // namespace
}  // namespace trackpoint::staging
