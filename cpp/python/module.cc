#include "bindings.h"

NB_MODULE(_core, m) {
  m.doc() = "trackpoint's C++ core. Use the trackpoint package, not this module.";
  trackpoint::python::BindStatus(m);
  trackpoint::python::BindCrc32c(m);
  trackpoint::python::BindBundle(m);
  trackpoint::python::BindGraph(m);
  trackpoint::python::BindStaging(m);
  trackpoint::python::BindDistributed(m);
}
