// Status -> Python exception. The exception classes live in
// trackpoint/errors.py (so they can also derive from Python's builtins);
// this file only picks the class for a code.
#include <nanobind/stl/string.h>

#include "bindings.h"
#include "util/fault_injection.h"

namespace nb = nanobind;

namespace trackpoint::python {
namespace {

const char* ExceptionName(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return "InvalidArgumentError";
    case StatusCode::kNotFound: return "NotFoundError";
    case StatusCode::kAlreadyExists: return "AlreadyExistsError";
    case StatusCode::kPermissionDenied: return "PermissionDeniedError";
    case StatusCode::kResourceExhausted: return "ResourceExhaustedError";
    case StatusCode::kFailedPrecondition: return "FailedPreconditionError";
    case StatusCode::kOutOfRange: return "OutOfRangeError";
    case StatusCode::kUnimplemented: return "UnimplementedError";
    case StatusCode::kUnavailable: return "UnavailableError";
    case StatusCode::kDataLoss: return "DataLossError";
    default: return "InternalError";
  }
}

}  // namespace

void RaiseStatus(const Status& status) {
  nb::gil_scoped_acquire gil;
  nb::object cls = nb::module_::import_("trackpoint.errors")
                       .attr(ExceptionName(status.code()));
  PyErr_SetString(cls.ptr(), status.message().c_str());
  throw nb::python_error();
}

void BindStatus(nb::module_& m) {
  // The fault-injection switch of this module's copy of the file layer, for
  // the test module (testing/bind_testing.cc), which links its own copy of
  // the core: a capsule holding SetIoFaultForTesting's address.
  m.attr("_io_fault_hook") = nb::capsule(
      reinterpret_cast<const void*>(&SetIoFaultForTesting), kIoFaultHookName);
}

}  // namespace trackpoint::python
