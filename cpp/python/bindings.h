// One Bind* function per area; module.cc calls them all. (The test-only
// module trackpoint._core_testing is in testing/, with its own Bind*.) The binding files
// hold declarations and one-line adapters only: logic lives in cpp/src.
#ifndef TRACKPOINT_PYTHON_BINDINGS_H_
#define TRACKPOINT_PYTHON_BINDINGS_H_

#include <nanobind/nanobind.h>

#include "trackpoint/status.h"

namespace trackpoint::python {

void BindStatus(nanobind::module_& m);
void BindCrc32c(nanobind::module_& m);
void BindBundle(nanobind::module_& m);
void BindGraph(nanobind::module_& m);
void BindStaging(nanobind::module_& m);
void BindDistributed(nanobind::module_& m);

// The name of the capsule _core exposes as _io_fault_hook (bind_status.cc).
inline constexpr const char kIoFaultHookName[] = "trackpoint._core.io_fault_hook";

// The one place a Status becomes a Python exception (bind_status.cc).
// REQUIRES: !status.ok().
[[noreturn]] void RaiseStatus(const Status& status);
inline void ThrowIfError(const Status& status) {
  if (!status.ok()) RaiseStatus(status);
}
template <typename T>
T ValueOrThrow(Result<T> result) {
  if (!result.ok()) RaiseStatus(result.status());
  return std::move(result).value();
}

}  // namespace trackpoint::python

#endif  // TRACKPOINT_PYTHON_BINDINGS_H_
