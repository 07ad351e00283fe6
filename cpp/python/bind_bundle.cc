// BundleReader / BundleWriter. Tensors cross as flat uint8 numpy arrays: the
// Python side owns dtype and shape handling (trackpoint/bundle.py), so these
// adapters only move bytes, with the GIL released. A tensor in device memory
// crosses as a (pointer, nbytes, kind, index) tuple (trackpoint/_device.py)
// and is staged through its device's shared pool (staging/device_registry.h).
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "bindings.h"
#include "bundle/v1_reader.h"
#include "proto/bundle_proto.h"
#include "staging/device_registry.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_writer.h"

namespace nb = nanobind;

namespace trackpoint::python {
namespace {

using InBytes = nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig,
                            nb::device::cpu>;
using OutBytes = nb::ndarray<uint8_t, nb::ndim<1>, nb::c_contig,
                             nb::device::cpu>;

TensorShape ToShape(const std::vector<int64_t>& dims) { return {dims}; }

// (pointer, nbytes, kind, index): a tensor in device memory.
struct DeviceRef {
  uintptr_t ptr;
  size_t nbytes;
  std::string kind;
  int index;
};

DeviceRef ToDeviceRef(nb::handle h) {
  auto [ptr, nbytes, kind, index] =
      nb::cast<std::tuple<uintptr_t, size_t, std::string, int>>(h);
  return {ptr, nbytes, std::move(kind), index};
}

// The shared staging of ref's device, or an exception "<what> <device>:
// <why>" (what names the tensor).
std::shared_ptr<staging::DeviceStaging> StagingFor(const DeviceRef& ref,
                                                   const std::string& what) {
  auto staging = staging::SharedDeviceStaging(ref.kind, ref.index);
  if (!staging.ok()) {
    RaiseStatus(staging.status().Annotate(
        what + " " + staging::DeviceName(ref.kind, ref.index)));
  }
  return std::move(staging).value();
}

TensorSlice ToSlice(const std::vector<std::tuple<int64_t, int64_t>>& extents) {
  TensorSlice slice;
  for (const auto& [start, length] : extents) {
    slice.extents.push_back({start, length});
  }
  return slice;
}

nb::tuple EntryTuple(const BundleEntry& e) {
  nb::list slices;
  for (const TensorSlice& s : e.slices) {
    nb::list extents;
    for (const SliceExtent& x : s.extents) {
      extents.append(nb::make_tuple(x.start, x.length));
    }
    slices.append(extents);
  }
  return nb::make_tuple(static_cast<int>(e.dtype), e.shape.dims, e.shard_id,
                        e.offset, e.size, e.crc32c, slices);
}

// A V1 tensor as BundleReader.entry describes a bundle's: (dtype, dims, 0,
// 0, bytes of a fixed-size tensor or 0, 0, []); its slices are read
// transparently.
nb::tuple V1EntryTuple(const V1Tensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape.dims) n *= d;
  const int64_t size = n * static_cast<int64_t>(DataTypeSize(t.dtype));
  return nb::make_tuple(static_cast<int>(t.dtype), t.shape.dims, 0, 0, size, 0,
                        nb::list());
}

nb::list BytesList(const std::vector<std::string>& items) {
  nb::list out;
  for (const std::string& s : items) out.append(nb::bytes(s.data(), s.size()));
  return out;
}

}  // namespace

void BindBundle(nb::module_& m) {
  nb::class_<BundleReader>(m, "BundleReader")
      .def_static(
          "open",
          [](const std::string& prefix) {
            nb::gil_scoped_release release;
            return ValueOrThrow(BundleReader::Open(prefix));
          },
          nb::arg("prefix"))
      .def_prop_ro("prefix", &BundleReader::prefix)
      .def_prop_ro("num_shards",
                   [](const BundleReader& r) { return r.header().num_shards; })
      .def_prop_ro("big_endian",
                   [](const BundleReader& r) {
                     return r.header().endianness == Endianness::kBig;
                   })
      .def("keys", &BundleReader::Keys)
      .def("close_data_files", &BundleReader::CloseDataFiles)
      .def("has_key",
           [](const BundleReader& r, const std::string& key) {
             return r.Find(key) != nullptr;
           })
      // (dtype, dims, shard_id, offset, size, masked crc32c,
      //  [[(start, length), ...] per slice])
      .def("entry",
           [](const BundleReader& r, const std::string& key) {
             return EntryTuple(*ValueOrThrow(r.Lookup(key)));
           })
      // DataLoss unless the bytes key's entry claims lie in its data files;
      // called before a buffer is sized by the entry's shape.
      .def("check_stored",
           [](const BundleReader& r, const std::string& key) {
             nb::gil_scoped_release release;
             ThrowIfError(r.CheckStored(key));
           })
      .def("read_into",
           [](const BundleReader& r, const std::string& key, OutBytes out) {
             nb::gil_scoped_release release;
             ThrowIfError(r.ReadTensor(key, out.data(), out.size()));
           })
      // Many tensors, each into its own flat uint8 array, in parallel;
      // then those whose destination is a device tuple, staged one by one.
      .def("read_many",
           [](const BundleReader& r, const nb::list& requests, int threads) {
             std::vector<BundleReader::TensorRead> reads;
             std::vector<std::pair<std::string, DeviceRef>> device_reads;
             reads.reserve(requests.size());
             for (nb::handle h : requests) {
               nb::tuple t = nb::cast<nb::tuple>(h);
               std::string key = nb::cast<std::string>(t[0]);
               if (nb::isinstance<nb::tuple>(t[1])) {
                 device_reads.emplace_back(std::move(key), ToDeviceRef(t[1]));
                 continue;
               }
               OutBytes out = nb::cast<OutBytes>(t[1]);
               reads.push_back({std::move(key), out.data(), out.size()});
             }
             nb::gil_scoped_release release;
             ThrowIfError(r.ReadTensors(reads, threads));
             for (const auto& [key, ref] : device_reads) {
               auto staging =
                   StagingFor(ref, "cannot restore tensor '" + key + "' into");
               ThrowIfError(r.ReadTensorToDevice(
                   key, reinterpret_cast<void*>(ref.ptr), ref.nbytes,
                   *staging->backend, *staging->pool));
             }
           },
           nb::arg("requests"), nb::arg("threads") = 0)
      .def("entries",
           [](const BundleReader& r, const std::vector<std::string>& keys) {
             nb::list out;
             for (const std::string& key : keys) {
               out.append(EntryTuple(*ValueOrThrow(r.Lookup(key))));
             }
             return out;
           })
      .def("read_strings",
           [](const BundleReader& r, const std::string& key) {
             std::vector<std::string> strings;
             {
               nb::gil_scoped_release release;
               strings = ValueOrThrow(r.ReadStringTensor(key));
             }
             return BytesList(strings);
           })
      // The serialized VariantTensorDataProto of each element.
      .def("read_variants",
           [](const BundleReader& r, const std::string& key) {
             std::vector<std::string> elements;
             {
               nb::gil_scoped_release release;
               elements = ValueOrThrow(r.ReadVariantTensor(key));
             }
             return BytesList(elements);
           })
      .def("debug_string", [](const BundleReader& r) {
        std::string text = r.DebugString();
        return nb::bytes(text.data(), text.size());
      });

  // The same methods as BundleReader, over a V1-format checkpoint file.
  nb::class_<V1Reader>(m, "V1Reader")
      .def_static(
          "open",
          [](const std::string& path) {
            nb::gil_scoped_release release;
            return ValueOrThrow(V1Reader::Open(path));
          },
          nb::arg("path"))
      .def_prop_ro("prefix", &V1Reader::path)
      .def_prop_ro("num_shards", [](const V1Reader&) { return 1; })
      .def_prop_ro("big_endian", [](const V1Reader&) { return false; })
      .def("keys", &V1Reader::Keys)
      .def("has_key",
           [](const V1Reader& r, const std::string& key) {
             return r.Find(key) != nullptr;
           })
      .def("entry",
           [](const V1Reader& r, const std::string& key) {
             return V1EntryTuple(*ValueOrThrow(r.Lookup(key)));
           })
      .def("entries",
           [](const V1Reader& r, const std::vector<std::string>& keys) {
             nb::list out;
             for (const std::string& key : keys) {
               out.append(V1EntryTuple(*ValueOrThrow(r.Lookup(key))));
             }
             return out;
           })
      .def("check_stored",
           [](const V1Reader& r, const std::string& key) {
             ValueOrThrow(r.Lookup(key));
           })
      .def("read_into",
           [](const V1Reader& r, const std::string& key, OutBytes out) {
             nb::gil_scoped_release release;
             ThrowIfError(r.ReadTensor(key, out.data(), out.size()));
           })
      .def("read_many",
           [](const V1Reader& r, const nb::list& requests, int threads) {
             std::vector<std::pair<std::string, OutBytes>> reads;
             for (nb::handle h : requests) {
               nb::tuple t = nb::cast<nb::tuple>(h);
               std::string key = nb::cast<std::string>(t[0]);
               if (nb::isinstance<nb::tuple>(t[1])) {
                 ThrowIfError(UnimplementedError(
                     "cannot restore tensor '" + key + "' of the V1 checkpoint " +
                     r.path() + " into device memory"));
               }
               reads.emplace_back(std::move(key), nb::cast<OutBytes>(t[1]));
             }
             nb::gil_scoped_release release;
             for (auto& [key, out] : reads) {
               ThrowIfError(r.ReadTensor(key, out.data(), out.size()));
             }
           },
           nb::arg("requests"), nb::arg("threads") = 0)
      .def("read_strings",
           [](const V1Reader& r, const std::string& key) {
             std::vector<std::string> strings;
             {
               nb::gil_scoped_release release;
               strings = ValueOrThrow(r.ReadStringTensor(key));
             }
             return BytesList(strings);
           })
      .def("read_variants",
           [](const V1Reader& r, const std::string& key) {
             ThrowIfError(UnimplementedError("variant tensors of V1 checkpoints "
                                             "are not supported"));
             return nb::list();
           })
      .def("debug_string", [](const V1Reader& r) {
        std::string text = r.DebugString();
        return nb::bytes(text.data(), text.size());
      });

  nb::class_<BundleWriter>(m, "BundleWriter")
      .def_static(
          "open",
          [](const std::string& prefix, int num_shards, int64_t data_alignment,
             bool sync) {
            BundleWriterOptions options;
            options.num_shards = num_shards;
            options.data_alignment = data_alignment;
            options.sync = sync;
            nb::gil_scoped_release release;
            return ValueOrThrow(BundleWriter::Open(prefix, options));
          },
          nb::arg("prefix"), nb::arg("num_shards") = 1,
          nb::arg("data_alignment") = 1, nb::arg("sync") = true)
      .def("add",
           [](BundleWriter& w, const std::string& key, int dtype,
              const std::vector<int64_t>& dims, InBytes data, int shard) {
             nb::gil_scoped_release release;
             ThrowIfError(w.Add(key, static_cast<DataType>(dtype),
                                ToShape(dims), data.data(), data.size(),
                                shard));
           },
           nb::arg("key"), nb::arg("dtype"), nb::arg("shape"), nb::arg("data"),
           nb::arg("shard") = 0)
      .def("add_strings",
           [](BundleWriter& w, const std::string& key,
              const std::vector<int64_t>& dims, const nb::list& elements,
              int shard) {
             std::vector<std::string_view> views;
             views.reserve(elements.size());
             for (nb::handle h : elements) {
               nb::bytes b = nb::cast<nb::bytes>(h);
               views.emplace_back(b.c_str(), b.size());
             }
             nb::gil_scoped_release release;
             ThrowIfError(w.AddString(key, ToShape(dims), views, shard));
           },
           nb::arg("key"), nb::arg("shape"), nb::arg("elements"),
           nb::arg("shard") = 0)
      .def("add_slice",
           [](BundleWriter& w, const std::string& key,
              const std::vector<int64_t>& full_dims,
              const std::vector<std::tuple<int64_t, int64_t>>& extents,
              int dtype, InBytes data, int shard) {
             nb::gil_scoped_release release;
             ThrowIfError(w.AddSlice(key, ToShape(full_dims), ToSlice(extents),
                                     static_cast<DataType>(dtype), data.data(),
                                     data.size(), shard));
           },
           nb::arg("key"), nb::arg("full_shape"), nb::arg("extents"),
           nb::arg("dtype"), nb::arg("data"), nb::arg("shard") = 0)
      // Many tensors in one call, the GIL released once for all the writes:
      // (key, dtype, shape, flat uint8 array or list of bytes or device
      // tuple, shard) each.
      .def("add_batch",
           [](BundleWriter& w, const nb::list& tensors) {
             struct Item {
               std::string key;
               int dtype;
               std::vector<int64_t> dims;
               InBytes data;
               std::vector<std::string_view> strings;
               int shard;
               std::optional<DeviceRef> device;
             };
             std::vector<Item> items;
             items.reserve(tensors.size());
             nb::list keep_alive;  // the bytes objects behind string views
             for (nb::handle h : tensors) {
               nb::tuple t = nb::cast<nb::tuple>(h);
               Item item{nb::cast<std::string>(t[0]), nb::cast<int>(t[1]),
                         nb::cast<std::vector<int64_t>>(t[2]), {}, {},
                         nb::cast<int>(t[4])};
               if (nb::isinstance<nb::tuple>(t[3])) {
                 item.device = ToDeviceRef(t[3]);
               } else if (nb::isinstance<nb::list>(t[3])) {
                 for (nb::handle e : nb::cast<nb::list>(t[3])) {
                   nb::bytes b = nb::cast<nb::bytes>(e);
                   item.strings.emplace_back(b.c_str(), b.size());
                   keep_alive.append(b);
                 }
               } else {
                 item.data = nb::cast<InBytes>(t[3]);
               }
               items.push_back(std::move(item));
             }
             nb::gil_scoped_release release;
             for (const Item& item : items) {
               TensorShape shape = ToShape(item.dims);
               if (item.device) {
                 const DeviceRef& ref = *item.device;
                 auto staging = StagingFor(
                     ref, "cannot save tensor '" + item.key + "' from");
                 ThrowIfError(w.AddFromDevice(
                     item.key, static_cast<DataType>(item.dtype), shape,
                     reinterpret_cast<const void*>(ref.ptr), ref.nbytes,
                     *staging->backend, *staging->pool, item.shard));
                 continue;
               }
               ThrowIfError(item.dtype == static_cast<int>(DataType::kString)
                                ? w.AddString(item.key, shape, item.strings,
                                              item.shard)
                                : w.Add(item.key, static_cast<DataType>(item.dtype),
                                        shape, item.data.data(),
                                        item.data.size(), item.shard));
             }
           })
      .def("finish", [](BundleWriter& w) {
        nb::gil_scoped_release release;
        ThrowIfError(w.Finish());
      });
}

}  // namespace trackpoint::python
