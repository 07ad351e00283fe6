// ParallelFor: runs fn(i) for i in [0, n) on up to num_threads threads
// (the calling thread included), each taking the next index as it finishes
// one. Threads are created per call: callers use it for work measured in
// milliseconds or more (many tensors, large payloads), where that cost is
// noise.
#ifndef TRACKPOINT_UTIL_PARALLEL_H_
#define TRACKPOINT_UTIL_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace trackpoint {

// The number of threads I/O work should use by default: the hardware's
// concurrency, at least 2 (reads overlap with each other even on one core)
// and at most 8.
inline int DefaultIoThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(n, 2u, 8u));
}

template <typename Fn>
void ParallelFor(size_t n, int num_threads, Fn fn) {
  const size_t threads = std::min<size_t>(n, std::max(num_threads, 1));
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
}

}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_PARALLEL_H_
