// One Bind* function per area; module.cc calls them all. The binding files
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
void BindTesting(nanobind::module_& m);  // private test hooks

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
