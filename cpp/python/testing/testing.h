// trackpoint._core_testing: bindings for the tests and benchmarks only, built
// with -DTRACKPOINT_BUILD_PYTHON_TESTING=ON and never shipped in the wheel.
// One Bind* per area; testing/module.cc calls them all.
#ifndef TRACKPOINT_PYTHON_TESTING_TESTING_H_
#define TRACKPOINT_PYTHON_TESTING_TESTING_H_

#include <nanobind/nanobind.h>

namespace trackpoint::python {

// I/O faults in _core's file layer, hand-made index files, Status mapping.
void BindTesting(nanobind::module_& m);
// Staging backends, pools, transfers and bandwidth probes.
void BindStagingTesting(nanobind::module_& m);

}  // namespace trackpoint::python

#endif  // TRACKPOINT_PYTHON_TESTING_TESTING_H_
