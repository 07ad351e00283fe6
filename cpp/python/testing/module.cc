#include "testing/testing.h"

NB_MODULE(_core_testing, m) {
  m.doc() =
      "Test and benchmark hooks of trackpoint's C++ core (not shipped; built "
      "with -DTRACKPOINT_BUILD_PYTHON_TESTING=ON).";
  trackpoint::python::BindTesting(m);
  trackpoint::python::BindStagingTesting(m);
}
