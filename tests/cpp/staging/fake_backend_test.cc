#include "staging/fake_backend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace trackpoint::staging {
namespace {

using std::chrono::seconds;

std::vector<char> Pattern(size_t n, int seed) {
  std::vector<char> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<char>(i * 31 + seed);
  return bytes;
}

// A one-shot gate a copy hook can wait on, with a timeout so that a broken
// test fails instead of hanging.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(FakeBackendTest, PinnedAllocationsAreCounted) {
  FakeDeviceBackend backend;
  EXPECT_STREQ(backend.name(), "fake");
  Result<void*> a = backend.AllocatePinned(100);
  Result<void*> b = backend.AllocatePinned(200);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(backend.live_pinned_allocations(), 2u);
  backend.FreePinned(*a);
  backend.FreePinned(nullptr);
  EXPECT_EQ(backend.live_pinned_allocations(), 1u);
  backend.FreePinned(*b);
  EXPECT_EQ(backend.live_pinned_allocations(), 0u);
}

TEST(FakeBackendTest, PinnedLimitIsResourceExhausted) {
  FakeBackendOptions options;
  options.max_pinned_bytes = 1000;
  FakeDeviceBackend backend(options);
  Result<void*> a = backend.AllocatePinned(600);
  ASSERT_TRUE(a.ok());
  Result<void*> b = backend.AllocatePinned(600);
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  backend.FreePinned(*a);
  Result<void*> c = backend.AllocatePinned(1000);
  ASSERT_TRUE(c.ok());
  backend.FreePinned(*c);
}

TEST(FakeBackendTest, RoundTripThroughPinnedMemory) {
  FakeDeviceBackend backend;
  const std::vector<char> source = Pattern(4096, 7);
  std::vector<char> device(4096, 0);
  PinnedBuffer pinned =
      std::move(PinnedBuffer::Allocate(backend, 4096)).value();
  ScopedStream stream = std::move(ScopedStream::Create(backend)).value();
  ScopedEvent done = std::move(ScopedEvent::Create(backend)).value();

  std::memcpy(pinned.data(), source.data(), source.size());
  ASSERT_TRUE(
      backend
          .CopyToDeviceAsync(device.data(), pinned.data(), 4096, stream.get())
          .ok());
  ASSERT_TRUE(backend.SynchronizeStream(stream.get()).ok());
  EXPECT_EQ(device, source);

  std::memset(pinned.data(), 0, 4096);
  ASSERT_TRUE(
      backend.CopyToHostAsync(pinned.data(), device.data(), 4096, stream.get())
          .ok());
  ASSERT_TRUE(backend.RecordEvent(done.get(), stream.get()).ok());
  ASSERT_TRUE(backend.SynchronizeEvent(done.get()).ok());
  EXPECT_EQ(std::memcmp(pinned.data(), source.data(), 4096), 0);
  EXPECT_EQ(backend.copies_enqueued(), 2);
}

TEST(FakeBackendTest, CopiesAreAsynchronousAndInOrder) {
  Gate release;
  std::mutex mu;
  std::vector<int64_t> started;
  FakeBackendOptions options;
  options.on_copy = [&](const FakeCopyTrace& t) {
    if (t.phase != FakeCopyTrace::Phase::kStart) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      started.push_back(t.index);
    }
    if (t.index == 0) {
      EXPECT_TRUE(release.Wait());
    }
  };
  FakeDeviceBackend backend(options);
  PinnedBuffer pinned = std::move(PinnedBuffer::Allocate(backend, 64)).value();
  ScopedStream stream = std::move(ScopedStream::Create(backend)).value();
  std::vector<char> device = Pattern(64, 1);
  std::memset(pinned.data(), 0, 64);

  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        backend.CopyToHostAsync(pinned.data(), device.data(), 64, stream.get())
            .ok());
  }
  // The first copy is held by its hook: nothing has been copied yet.
  EXPECT_EQ(pinned.data()[1], 0);
  release.Open();
  ASSERT_TRUE(backend.SynchronizeStream(stream.get()).ok());
  EXPECT_EQ(std::memcmp(pinned.data(), device.data(), 64), 0);
  EXPECT_EQ(started, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(FakeBackendTest, UnrecordedEventIsComplete) {
  FakeDeviceBackend backend;
  ScopedEvent event = std::move(ScopedEvent::Create(backend)).value();
  EXPECT_TRUE(backend.SynchronizeEvent(event.get()).ok());
}

TEST(FakeBackendTest, InjectedFailureShowsAtSynchronization) {
  FakeBackendOptions options;
  options.fail_after_copies = 2;
  FakeDeviceBackend backend(options);
  PinnedBuffer pinned = std::move(PinnedBuffer::Allocate(backend, 4)).value();
  ScopedStream stream = std::move(ScopedStream::Create(backend)).value();
  ScopedEvent before = std::move(ScopedEvent::Create(backend)).value();
  ScopedEvent after = std::move(ScopedEvent::Create(backend)).value();
  std::vector<char> device(16, 'x');
  std::memset(pinned.data(), 0, 4);

  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(backend
                    .CopyToHostAsync(pinned.data(), device.data() + 4 * i, 1,
                                     stream.get())
                    .ok());
  }
  ASSERT_TRUE(backend.RecordEvent(before.get(), stream.get()).ok());
  // Enqueued fine; fails when it runs, and the next copy is skipped.
  ASSERT_TRUE(
      backend.CopyToHostAsync(pinned.data() + 1, device.data(), 1, stream.get())
          .ok());
  ASSERT_TRUE(
      backend.CopyToHostAsync(pinned.data() + 2, device.data(), 1, stream.get())
          .ok());
  ASSERT_TRUE(backend.RecordEvent(after.get(), stream.get()).ok());

  EXPECT_TRUE(backend.SynchronizeEvent(before.get()).ok());
  Status status = backend.SynchronizeEvent(after.get());
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_NE(status.message().find("injected copy failure (copy #2)"),
            std::string::npos)
      << status.ToString();
  EXPECT_EQ(backend.SynchronizeStream(stream.get()).code(),
            StatusCode::kInternal);
  EXPECT_EQ(pinned.data()[0], 'x');
  EXPECT_EQ(pinned.data()[1], 0);
  EXPECT_EQ(pinned.data()[2], 0);
}

TEST(FakeBackendTest, InjectedFailureAtEnqueue) {
  FakeBackendOptions options;
  options.fail_after_copies = 0;
  options.fail_at_enqueue = true;
  FakeDeviceBackend backend(options);
  PinnedBuffer pinned = std::move(PinnedBuffer::Allocate(backend, 4)).value();
  ScopedStream stream = std::move(ScopedStream::Create(backend)).value();
  char device[4] = {1, 2, 3, 4};
  Status status =
      backend.CopyToHostAsync(pinned.data(), device, 4, stream.get());
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_TRUE(backend.SynchronizeStream(stream.get()).ok());
}

TEST(FakeBackendTest, RejectsUnpinnedHostMemory) {
  FakeDeviceBackend backend;
  PinnedBuffer pinned = std::move(PinnedBuffer::Allocate(backend, 8)).value();
  ScopedStream stream = std::move(ScopedStream::Create(backend)).value();
  char device[16] = {};
  char unpinned[8];
  EXPECT_EQ(backend.CopyToHostAsync(unpinned, device, 8, stream.get()).code(),
            StatusCode::kInvalidArgument);
  // Past the end of the pinned buffer.
  EXPECT_EQ(backend.CopyToHostAsync(pinned.data() + 4, device, 8, stream.get())
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      backend.CopyToHostAsync(pinned.data() + 4, device, 4, stream.get()).ok());
  EXPECT_TRUE(backend.SynchronizeStream(stream.get()).ok());
}

TEST(FakeBackendTest, UnknownHandlesAreErrors) {
  FakeDeviceBackend backend;
  FakeDeviceBackend other;
  ScopedStream stream = std::move(ScopedStream::Create(other)).value();
  ScopedEvent event = std::move(ScopedEvent::Create(other)).value();
  EXPECT_EQ(backend.SynchronizeStream(stream.get()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.SynchronizeEvent(event.get()).code(),
            StatusCode::kInvalidArgument);
}

TEST(FakeBackendTest, ScopedHandlesAreReleased) {
  FakeDeviceBackend backend;
  {
    ScopedStream stream = std::move(ScopedStream::Create(backend)).value();
    ScopedEvent event = std::move(ScopedEvent::Create(backend)).value();
    Result<void*> device = backend.AllocateDevice(32);
    ASSERT_TRUE(device.ok());
    EXPECT_EQ(backend.live_streams(), 1u);
    EXPECT_EQ(backend.live_events(), 1u);
    EXPECT_EQ(backend.live_device_allocations(), 1u);
    backend.FreeDevice(*device);
  }
  EXPECT_EQ(backend.live_streams(), 0u);
  EXPECT_EQ(backend.live_events(), 0u);
  EXPECT_EQ(backend.live_device_allocations(), 0u);
}

TEST(FakeBackendTest, DestroyingTheBackendFinishesQueuedWork) {
  std::vector<char> device = Pattern(256, 3);
  std::vector<char> copied(256, 0);
  {
    FakeBackendOptions options;
    options.copy_delay = std::chrono::milliseconds(1);
    FakeDeviceBackend backend(options);
    Result<void*> pinned = backend.AllocatePinned(256);
    Result<Stream> stream = backend.CreateStream();
    ASSERT_TRUE(pinned.ok() && stream.ok());
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(
          backend.CopyToHostAsync(*pinned, device.data(), 256, *stream).ok());
    }
    ASSERT_TRUE(backend.SynchronizeStream(*stream).ok());
    std::memcpy(copied.data(), *pinned, 256);
    // Stream and pinned memory left for the destructor.
    ASSERT_TRUE(
        backend.CopyToHostAsync(*pinned, device.data(), 256, *stream).ok());
  }
  EXPECT_EQ(copied, device);
}

}  // namespace
}  // namespace trackpoint::staging
