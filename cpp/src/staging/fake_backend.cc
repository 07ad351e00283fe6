#include "staging/fake_backend.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace trackpoint::staging {

// A queue of operations run in order by one worker thread. The first failed
// copy makes the stream's error sticky: later copies are skipped and every
// event recorded after it completes with that error, as a CUDA stream does
// after an asynchronous fault.
struct FakeDeviceBackend::FakeStream {
  FakeStream() : worker([this] { Run(); }) {}
  ~FakeStream() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    worker.join();
  }

  void Enqueue(std::function<void()> op) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ops.push_back(std::move(op));
    }
    work_cv.notify_one();
  }

  Status Synchronize() {
    std::unique_lock<std::mutex> lock(mu);
    idle_cv.wait(lock, [&] { return ops.empty() && !running; });
    return error;
  }

  Status Error() {
    std::lock_guard<std::mutex> lock(mu);
    return error;
  }

  void Fail(Status status) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.ok()) error = std::move(status);
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work_cv.wait(lock, [&] { return stop || !ops.empty(); });
      if (ops.empty()) return;  // stopping, and everything enqueued ran
      std::function<void()> op = std::move(ops.front());
      ops.pop_front();
      running = true;
      lock.unlock();
      op();
      lock.lock();
      running = false;
      if (ops.empty()) idle_cv.notify_all();
    }
  }

  std::mutex mu;
  std::condition_variable work_cv;  // the worker waits for ops or stop
  std::condition_variable idle_cv;  // Synchronize waits for an idle stream
  std::deque<std::function<void()>> ops;
  bool running = false;
  bool stop = false;
  Status error;
  std::thread worker;  // last: starts once the members above exist
};

// Completes when its stream reaches the latest record.
struct FakeDeviceBackend::FakeEvent {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t recorded = 0;   // records enqueued
  uint64_t completed = 0;  // the latest record its stream reached
  Status status;           // the stream's error at that point
};

FakeDeviceBackend::FakeDeviceBackend(FakeBackendOptions options)
    : options_(std::move(options)) {}

FakeDeviceBackend::~FakeDeviceBackend() {
  // Streams first: their workers may still copy into the buffers below.
  std::unordered_map<Stream, std::unique_ptr<FakeStream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.swap(streams_);
  }
  streams.clear();
}

Result<void*> FakeDeviceBackend::AllocatePinned(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > options_.max_pinned_bytes - pinned_bytes_) {
    return ResourceExhaustedError(
        "fake backend: cannot pin " + std::to_string(n) + " more bytes (" +
        std::to_string(pinned_bytes_) + " of " +
        std::to_string(options_.max_pinned_bytes) + " in use)");
  }
  // Zeroed, so that its pages are resident as pinned pages are.
  std::unique_ptr<char[]> bytes(new (std::nothrow) char[n]());
  if (bytes == nullptr) {
    return ResourceExhaustedError("fake backend: out of memory pinning " +
                                  std::to_string(n) + " bytes");
  }
  char* p = bytes.get();
  pinned_.emplace(p, Allocation{std::move(bytes), n});
  pinned_bytes_ += n;
  return static_cast<void*>(p);
}

void FakeDeviceBackend::FreePinned(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pinned_.find(static_cast<const char*>(p));
  if (it == pinned_.end()) return;
  pinned_bytes_ -= it->second.size;
  pinned_.erase(it);
}

Result<void*> FakeDeviceBackend::AllocateDevice(size_t n) {
  std::unique_ptr<char[]> bytes(new (std::nothrow) char[n]);
  if (bytes == nullptr) {
    return ResourceExhaustedError("fake backend: out of memory allocating " +
                                  std::to_string(n) + " device bytes");
  }
  void* p = bytes.get();
  std::lock_guard<std::mutex> lock(mu_);
  device_.emplace(p, Allocation{std::move(bytes), n});
  return p;
}

void FakeDeviceBackend::FreeDevice(void* p) {
  std::lock_guard<std::mutex> lock(mu_);
  device_.erase(p);
}

Result<Stream> FakeDeviceBackend::CreateStream() {
  auto stream = std::make_unique<FakeStream>();
  Stream handle = reinterpret_cast<Stream>(stream.get());
  std::lock_guard<std::mutex> lock(mu_);
  streams_.emplace(handle, std::move(stream));
  return handle;
}

void FakeDeviceBackend::DestroyStream(Stream stream) {
  std::unique_ptr<FakeStream> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream);
    if (it == streams_.end()) return;
    doomed = std::move(it->second);
    streams_.erase(it);
  }
  // Joins the worker once it has run what was enqueued.
}

Status FakeDeviceBackend::SynchronizeStream(Stream stream) {
  FakeStream* s = FindStream(stream);
  if (s == nullptr) return InvalidArgumentError("fake backend: unknown stream");
  return s->Synchronize();
}

Result<Event> FakeDeviceBackend::CreateEvent() {
  auto event = std::make_shared<FakeEvent>();
  Event handle = reinterpret_cast<Event>(event.get());
  std::lock_guard<std::mutex> lock(mu_);
  events_.emplace(handle, std::move(event));
  return handle;
}

void FakeDeviceBackend::DestroyEvent(Event event) {
  // A record still queued holds its own reference.
  std::lock_guard<std::mutex> lock(mu_);
  events_.erase(event);
}

Status FakeDeviceBackend::RecordEvent(Event event, Stream stream) {
  FakeStream* s = FindStream(stream);
  std::shared_ptr<FakeEvent> e = FindEvent(event);
  if (s == nullptr || e == nullptr) {
    return InvalidArgumentError("fake backend: unknown stream or event");
  }
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    seq = ++e->recorded;
  }
  s->Enqueue([s, e, seq] {
    Status status = s->Error();
    std::lock_guard<std::mutex> lock(e->mu);
    if (seq > e->completed) {
      e->completed = seq;
      e->status = std::move(status);
    }
    e->cv.notify_all();
  });
  return OkStatus();
}

Status FakeDeviceBackend::SynchronizeEvent(Event event) {
  std::shared_ptr<FakeEvent> e = FindEvent(event);
  if (e == nullptr) return InvalidArgumentError("fake backend: unknown event");
  std::unique_lock<std::mutex> lock(e->mu);
  const uint64_t target = e->recorded;
  e->cv.wait(lock, [&] { return e->completed >= target; });
  return e->status;
}

Status FakeDeviceBackend::CopyToHostAsync(void* host, const void* device,
                                          size_t n, Stream stream) {
  return EnqueueCopy(host, device, n, host, /*to_host=*/true, stream);
}

Status FakeDeviceBackend::CopyToDeviceAsync(void* device, const void* host,
                                            size_t n, Stream stream) {
  return EnqueueCopy(device, host, n, host, /*to_host=*/false, stream);
}

Status FakeDeviceBackend::EnqueueCopy(void* dst, const void* src, size_t n,
                                      const void* host, bool to_host,
                                      Stream stream) {
  FakeStream* s = FindStream(stream);
  if (s == nullptr) return InvalidArgumentError("fake backend: unknown stream");
  if (n > 0 && !IsPinnedRange(host, n)) {
    return InvalidArgumentError(
        "fake backend: the host side of a copy is not inside a pinned "
        "buffer of this backend");
  }
  const int64_t index = copies_enqueued_++;
  const bool inject =
      options_.fail_after_copies >= 0 && index >= options_.fail_after_copies;
  const std::string failure =
      inject ? "injected copy failure (copy #" + std::to_string(index) + ")"
             : std::string();
  if (inject && options_.fail_at_enqueue) return InternalError(failure);
  s->Enqueue([this, s, index, inject, failure, dst, src, n, to_host] {
    if (!s->Error().ok()) return;  // skipped after an earlier failure
    FakeCopyTrace trace{
        FakeCopyTrace::Phase::kStart, index, to_host, dst, src, n, true};
    if (options_.on_copy) options_.on_copy(trace);
    if (options_.copy_delay.count() > 0) {
      std::this_thread::sleep_for(options_.copy_delay);
    }
    if (inject) {
      s->Fail(InternalError(failure));
    } else if (n > 0) {
      std::memcpy(dst, src, n);
    }
    trace.phase = FakeCopyTrace::Phase::kEnd;
    trace.ok = !inject;
    if (options_.on_copy) options_.on_copy(trace);
  });
  return OkStatus();
}

bool FakeDeviceBackend::IsPinnedRange(const void* p, size_t n) const {
  const char* start = static_cast<const char*>(p);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pinned_.upper_bound(start);  // the first allocation after p
  if (it == pinned_.begin()) return false;
  --it;
  const size_t offset = static_cast<size_t>(start - it->first);
  return offset <= it->second.size && n <= it->second.size - offset;
}

FakeDeviceBackend::FakeStream* FakeDeviceBackend::FindStream(
    Stream stream) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(stream);
  return it == streams_.end() ? nullptr : it->second.get();
}

std::shared_ptr<FakeDeviceBackend::FakeEvent> FakeDeviceBackend::FindEvent(
    Event event) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = events_.find(event);
  return it == events_.end() ? nullptr : it->second;
}

size_t FakeDeviceBackend::live_pinned_allocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pinned_.size();
}

size_t FakeDeviceBackend::live_device_allocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return device_.size();
}

size_t FakeDeviceBackend::live_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

size_t FakeDeviceBackend::live_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

}  // namespace trackpoint::staging
