// Hooks for the Python tests: injecting I/O faults into _core's file layer,
// writing hand-made .index files that BundleWriter would never produce, and
// raising each Status code as _core does.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bindings.h"
#include "testing/testing.h"
#include "bundle/slice_key.h"
#include "proto/bundle_proto.h"
#include "table/table_builder.h"
#include "util/file.h"
#include "util/fault_injection.h"

namespace nb = nanobind;

namespace trackpoint::python {
namespace {

IoFault ParseFault(const std::string& kind) {
  if (kind == "none") return IoFault::kNone;
  if (kind == "enospc") return IoFault::kWriteNoSpace;
  if (kind == "eio") return IoFault::kWriteIoError;
  if (kind == "fsync") return IoFault::kSyncIoError;
  if (kind == "dirsync") return IoFault::kDirSyncIoError;
  if (kind == "rename") return IoFault::kRenameIoError;
  throw nb::value_error(("unknown I/O fault '" + kind +
                         "' (none, enospc, eio, fsync, dirsync, rename)")
                            .c_str());
}

using Extents = std::vector<std::tuple<int64_t, int64_t>>;

TensorSlice ToSlice(const Extents& extents) {
  TensorSlice slice;
  for (const auto& [start, length] : extents) {
    slice.extents.push_back({start, length});
  }
  return slice;
}

nb::bytes SerializeEntry(int dtype, const std::vector<int64_t>& dims,
                         int32_t shard_id, int64_t offset, int64_t size,
                         uint32_t crc32c, const std::vector<Extents>& slices) {
  BundleEntry e;
  e.dtype = static_cast<DataType>(dtype);
  e.shape.dims = dims;
  e.shard_id = shard_id;
  e.offset = offset;
  e.size = size;
  e.crc32c = crc32c;
  for (const Extents& extents : slices) e.slices.push_back(ToSlice(extents));
  const std::string out = SerializeBundleEntry(e);
  return nb::bytes(out.data(), out.size());
}

nb::bytes SerializeHeader(int32_t num_shards, int endianness,
                          int32_t producer) {
  BundleHeader h;
  h.num_shards = num_shards;
  h.endianness = static_cast<Endianness>(endianness);
  h.version.producer = producer;
  const std::string out = SerializeBundleHeader(h);
  return nb::bytes(out.data(), out.size());
}

// Writes a table of (key, value) pairs, keys strictly increasing.
Status WriteTable(const std::string& path,
                  const std::vector<std::pair<nb::bytes, nb::bytes>>& rows) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                      NewWritableFile(path));
  table::TableBuilder builder(file.get());
  for (const auto& [key, value] : rows) {
    TP_RETURN_IF_ERROR(
        builder.Add(std::string_view(key.c_str(), key.size()),
                    std::string_view(value.c_str(), value.size())));
  }
  TP_RETURN_IF_ERROR(builder.Finish());
  return file->Close();
}

// _core's SetIoFaultForTesting (its file layer is not this module's copy).
using SetIoFaultFn = void (*)(IoFault, uint64_t);
SetIoFaultFn CoreSetIoFault() {
  nb::object hook =
      nb::module_::import_("trackpoint._core").attr("_io_fault_hook");
  void* p = PyCapsule_GetPointer(hook.ptr(), kIoFaultHookName);
  if (p == nullptr) throw nb::python_error();
  return reinterpret_cast<SetIoFaultFn>(p);
}

}  // namespace

void BindTesting(nb::module_& m) {
  m.def(
      "set_io_fault",
      [](const std::string& kind, uint64_t after_bytes) {
        CoreSetIoFault()(ParseFault(kind), after_bytes);
      },
      nb::arg("kind"), nb::arg("after_bytes") = 0,
      "After `after_bytes` more bytes are written, writes fail "
      "(enospc, eio), fsyncs fail (fsync, dirsync) or renames fail (rename); "
      "'none' disarms.");
  m.def("serialize_bundle_entry", &SerializeEntry, nb::arg("dtype"),
        nb::arg("shape"), nb::arg("shard_id") = 0, nb::arg("offset") = 0,
        nb::arg("size") = 0, nb::arg("crc32c") = 0,
        nb::arg("slices") = std::vector<Extents>{});
  m.def("serialize_bundle_header", &SerializeHeader, nb::arg("num_shards"),
        nb::arg("endianness") = 0, nb::arg("producer") = 1);
  m.def(
      "slice_key",
      [](const std::string& name, const Extents& extents) {
        const std::string key = EncodeTensorNameSlice(name, ToSlice(extents));
        return nb::bytes(key.data(), key.size());
      },
      nb::arg("name"), nb::arg("extents"));
  m.def(
      "write_table",
      [](const std::string& path,
         const std::vector<std::pair<nb::bytes, nb::bytes>>& rows) {
        ThrowIfError(WriteTable(path, rows));
      },
      nb::arg("path"), nb::arg("rows"));
  m.def(
      "raise_status",
      [](int code, const std::string& message) {
        RaiseStatus(Status(static_cast<StatusCode>(code), message));
      },
      nb::arg("code"), nb::arg("message"),
      "Raises the exception _core raises for a Status with this code.");
}

}  // namespace trackpoint::python
