#include "staging/staging_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "staging/fake_backend.h"

namespace trackpoint::staging {
namespace {

std::unique_ptr<StagingPool> MakePool(DeviceBackend& backend, size_t k,
                                      size_t bytes) {
  Result<std::unique_ptr<StagingPool>> pool =
      StagingPool::Create(backend, k, bytes);
  EXPECT_TRUE(pool.ok()) << pool.status().ToString();
  return pool.ok() ? std::move(pool).value() : nullptr;
}

TEST(StagingPoolTest, RejectsEmptyPools) {
  FakeDeviceBackend backend;
  EXPECT_EQ(StagingPool::Create(backend, 0, 64).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StagingPool::Create(backend, 2, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.live_pinned_allocations(), 0u);
}

TEST(StagingPoolTest, PinsOnceAndFreesOnDestruction) {
  FakeDeviceBackend backend;
  {
    auto pool = MakePool(backend, 3, 1024);
    ASSERT_NE(pool, nullptr);
    EXPECT_EQ(backend.live_pinned_allocations(), 3u);
    EXPECT_EQ(pool->num_buffers(), 3u);
    EXPECT_EQ(pool->buffer_bytes(), 1024u);
    EXPECT_EQ(&pool->backend(), &backend);
    for (int round = 0; round < 5; ++round) {
      StagingPool::Lease lease = pool->Acquire();
      EXPECT_EQ(lease.size(), 1024u);
    }
    EXPECT_EQ(backend.live_pinned_allocations(), 3u);
  }
  EXPECT_EQ(backend.live_pinned_allocations(), 0u);
}

TEST(StagingPoolTest, FailedPinningFreesWhatWasPinned) {
  FakeBackendOptions options;
  options.max_pinned_bytes = 2500;
  FakeDeviceBackend backend(options);
  Result<std::unique_ptr<StagingPool>> pool =
      StagingPool::Create(backend, 4, 1000);
  EXPECT_EQ(pool.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(pool.status().message().find("pinned buffer 3 of 4"),
            std::string::npos)
      << pool.status().ToString();
  EXPECT_EQ(backend.live_pinned_allocations(), 0u);
}

TEST(StagingPoolTest, LendsEachBufferOnce) {
  FakeDeviceBackend backend;
  auto pool = MakePool(backend, 3, 64);
  std::vector<StagingPool::Lease> leases;
  std::set<char*> seen;
  for (int i = 0; i < 3; ++i) {
    StagingPool::Lease lease = pool->TryAcquire();
    ASSERT_TRUE(lease);
    seen.insert(lease.data());
    leases.push_back(std::move(lease));
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(pool->num_free(), 0u);
  StagingPool::Lease none = pool->TryAcquire();
  EXPECT_FALSE(none);
  EXPECT_EQ(none.size(), 0u);

  leases[1].Release();
  EXPECT_FALSE(leases[1]);
  EXPECT_EQ(pool->num_free(), 1u);
  StagingPool::Lease again = pool->TryAcquire();
  ASSERT_TRUE(again);
  EXPECT_EQ(seen.count(again.data()), 1u);  // the same memory, reused

  // Move-assigning over a lease gives its old buffer back.
  leases[0] = std::move(again);
  EXPECT_FALSE(again);
  EXPECT_EQ(pool->num_free(), 1u);
  leases.clear();
  EXPECT_EQ(pool->num_free(), 3u);
}

TEST(StagingPoolTest, AcquireWaitsForARelease) {
  FakeDeviceBackend backend;
  auto pool = MakePool(backend, 1, 64);
  StagingPool::Lease held = pool->Acquire();
  char* const held_data = held.data();
  std::atomic<bool> got{false};
  char* got_data = nullptr;
  std::thread waiter([&] {
    StagingPool::Lease lease = pool->Acquire();
    got_data = lease.data();
    got = true;
  });
  // The waiter cannot get a buffer until this thread gives its one back,
  // whatever the scheduling.
  EXPECT_FALSE(got.load());
  held.Release();
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(got_data, held_data);
  EXPECT_EQ(pool->num_free(), 1u);
}

TEST(StagingPoolTest, ManyThreadsShareThePool) {
  FakeDeviceBackend backend;
  auto pool = MakePool(backend, 2, 16);
  std::atomic<int> in_use{0};
  std::atomic<int> max_in_use{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        StagingPool::Lease lease = pool->Acquire();
        const int now = ++in_use;
        int seen = max_in_use.load();
        while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
        }
        lease.data()[0] = static_cast<char>(t);
        --in_use;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(max_in_use.load(), 2);
  EXPECT_EQ(pool->num_free(), 2u);
}

}  // namespace
}  // namespace trackpoint::staging
