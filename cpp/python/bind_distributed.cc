// Multi-process checkpoints: merging per-process part bundles and reading
// regions of partitioned tensors (trackpoint/distributed/). Regions cross
// as (start, length) per dimension and flat uint8 numpy arrays, as in
// bind_bundle.cc.
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "bundle/merge.h"
#include "bundle/slice_reader.h"
#include "trackpoint/bundle_reader.h"

namespace nb = nanobind;

namespace trackpoint::python {
namespace {

using OutBytes =
    nb::ndarray<uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

TensorSlice ToSlice(const std::vector<std::tuple<int64_t, int64_t>>& extents) {
  TensorSlice slice;
  for (const auto& [start, length] : extents) {
    slice.extents.push_back({start, length});
  }
  return slice;
}

}  // namespace

void BindDistributed(nb::module_& m) {
  m.def(
      "merge_bundles",
      [](const std::vector<std::string>& parts, const std::string& prefix,
         bool sync, bool delete_inputs, bool check_slices) {
        MergeOptions options;
        options.sync = sync;
        options.delete_inputs = delete_inputs;
        options.check_slices = check_slices;
        nb::gil_scoped_release release;
        ThrowIfError(MergeBundles(parts, prefix, options));
      },
      nb::arg("parts"), nb::arg("prefix"), nb::arg("sync") = true,
      nb::arg("delete_inputs") = true, nb::arg("check_slices") = true,
      "Merges part bundles into one checkpoint (data files are moved).");

  m.def(
      "read_region",
      [](const BundleReader& reader, const std::string& key,
         const std::vector<std::tuple<int64_t, int64_t>>& extents,
         OutBytes out) {
        TensorSlice region = ToSlice(extents);
        nb::gil_scoped_release release;
        ThrowIfError(ReadRegion(reader, key, region, out.data(), out.size()));
      },
      nb::arg("reader"), nb::arg("key"), nb::arg("extents"), nb::arg("out"),
      "Reads a box of a tensor ((start, length) per dimension) into out.");
}

}  // namespace trackpoint::python
