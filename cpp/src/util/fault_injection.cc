#include "util/fault_injection.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>

namespace trackpoint {
namespace {

struct FaultState {
  std::mutex mu;
  IoFault fault = IoFault::kNone;
  uint64_t budget = 0;  // bytes still written normally
};
FaultState& Faults() {
  static FaultState* const state = new FaultState;
  return *state;
}
std::atomic<bool> g_fault_set{false};  // the fast path: nothing injected

}  // namespace

namespace fault_injection {

size_t AllowWrite(size_t n, int* fail_errno) {
  *fail_errno = 0;
  if (!g_fault_set.load(std::memory_order_acquire)) return n;
  FaultState& f = Faults();
  std::lock_guard<std::mutex> lock(f.mu);
  size_t allowed = n;
  const bool write_fault =
      f.fault == IoFault::kWriteNoSpace || f.fault == IoFault::kWriteIoError;
  if (write_fault && n > f.budget) {
    allowed = static_cast<size_t>(f.budget);
    *fail_errno = f.fault == IoFault::kWriteNoSpace ? ENOSPC : EIO;
  }
  f.budget -= std::min<uint64_t>(f.budget, allowed);
  return allowed;
}

bool Armed(IoFault fault) {
  if (!g_fault_set.load(std::memory_order_acquire)) return false;
  FaultState& f = Faults();
  std::lock_guard<std::mutex> lock(f.mu);
  return f.fault == fault && f.budget == 0;
}

}  // namespace fault_injection

void SetIoFaultForTesting(IoFault fault, uint64_t after_bytes) {
  FaultState& f = Faults();
  std::lock_guard<std::mutex> lock(f.mu);
  f.fault = fault;
  f.budget = after_bytes;
  g_fault_set.store(fault != IoFault::kNone, std::memory_order_release);
}

}  // namespace trackpoint
