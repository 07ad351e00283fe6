#include "staging/device_registry.h"

#include <gtest/gtest.h>

#include "staging/cuda_backend.h"

namespace trackpoint::staging {
namespace {

TEST(DeviceRegistryTest, OneStagingPerDeviceCreatedOnFirstUse) {
  auto a = SharedDeviceStaging("fake", 0);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto again = SharedDeviceStaging("fake", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(a->get(), again->get());
  auto other = SharedDeviceStaging("fake", 1);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(a->get(), other->get());
  EXPECT_EQ(&(*a)->pool->backend(), (*a)->backend.get());
  EXPECT_STREQ((*a)->backend->name(), "fake");
  EXPECT_EQ(DeviceName("cuda", 2), "cuda:2");
}

TEST(DeviceRegistryTest, NewGeometryGivesNewPoolsAndKeepsHeldOnes) {
  const PoolGeometry before = SharedPoolGeometry();
  auto held = SharedDeviceStaging("fake", 5);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(SetSharedPoolGeometry({2, 4096}).ok());
  auto fresh = SharedDeviceStaging("fake", 5);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(held->get(), fresh->get());
  EXPECT_EQ((*fresh)->pool->num_buffers(), 2u);
  EXPECT_EQ((*fresh)->pool->buffer_bytes(), 4096u);
  EXPECT_EQ((*held)->pool->buffer_bytes(), before.buffer_bytes);  // still good
  EXPECT_EQ(SetSharedPoolGeometry({0, 4096}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SetSharedPoolGeometry({2, 0}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(SetSharedPoolGeometry(before).ok());
}

TEST(DeviceRegistryTest, BadDevicesAreErrors) {
  EXPECT_EQ(SharedDeviceStaging("tpu", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedDeviceStaging("fake", -1).status().code(),
            StatusCode::kInvalidArgument);
  // Without a usable CUDA runtime, the same reason CheckAvailable gives.
  const Status available = CudaBackend::CheckAvailable();
  auto cuda = SharedDeviceStaging("cuda", 0);
  if (available.ok()) {
    EXPECT_TRUE(cuda.ok()) << cuda.status().ToString();
  } else {
    EXPECT_EQ(cuda.status().code(), available.code());
    EXPECT_EQ(cuda.status().message(), available.message());
  }
}

}  // namespace
}  // namespace trackpoint::staging
