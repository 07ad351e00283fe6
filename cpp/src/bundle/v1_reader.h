// V1Reader: reads a checkpoint in TensorFlow's old V1 format
// (tf.compat.v1.train.Saver(write_version=SaverDef.V1)): one file, a table
// (the same SSTable layout as a bundle's .index, table/table.h) whose values
// are SavedTensorSlices protos (tensorflow/core/protobuf/saved_tensor_slice.proto):
//
//   key ""                   SavedTensorSlices.meta: every tensor's
//                            name, shape, dtype and the slices it was
//                            saved as
//   key EncodeTensorNameSlice(name, slice)   (bundle/slice_key.h)
//                            SavedTensorSlices.data: one saved slice, its
//                            elements in a TensorProto (proto/tensor_proto.h)
//
// SavedTensorSlices        0a meta SavedTensorSliceMeta, 12 data SavedSlice
// SavedTensorSliceMeta     0a tensor SavedSliceMeta (repeated),
//                          12 versions VersionDef
// SavedSliceMeta           0a name, 12 shape TensorShapeProto, 18 type enum,
//                          22 slice TensorSliceProto (repeated)
// SavedSlice               0a name, 12 slice TensorSliceProto,
//                          1a data TensorProto
//
// V1 files carry no checksums of their own beyond the table's block CRCs.
#ifndef TRACKPOINT_BUNDLE_V1_READER_H_
#define TRACKPOINT_BUNDLE_V1_READER_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {
namespace table {
class Table;
}

// What the metadata records for one tensor.
struct V1Tensor {
  DataType dtype = DataType::kInvalid;
  TensorShape shape;
  std::vector<TensorSlice> slices;  // as saved; one full slice if unpartitioned
};

// Thread safety: after Open, every const method may be called from several
// threads at once.
class V1Reader {
 public:
  // Errors: NotFound if path does not exist; DataLoss if it is not a V1
  // checkpoint (not a table, or no SavedTensorSliceMeta under key "").
  static Result<std::unique_ptr<V1Reader>> Open(const std::string& path);
  ~V1Reader();
  V1Reader(const V1Reader&) = delete;
  V1Reader& operator=(const V1Reader&) = delete;

  const std::string& path() const { return path_; }
  // Tensor names, sorted.
  std::vector<std::string> Keys() const;
  // nullptr when there is no such tensor.
  const V1Tensor* Find(std::string_view name) const;
  // Like Find, but NotFound "Key <name> not found in checkpoint file <path>".
  Result<const V1Tensor*> Lookup(std::string_view name) const;

  // Reads a fixed-size tensor (assembled from its slices) into dst, which
  // holds exactly its bytes, little-endian.
  Status ReadTensor(std::string_view name, void* dst, size_t nbytes) const;
  // Reads an unpartitioned string tensor, row-major.
  Result<std::vector<std::string>> ReadStringTensor(std::string_view name) const;

  // "<name> (DT_FLOAT) [2,3]\n" per tensor, in name order, with ", N slices"
  // before the newline for a tensor saved in N > 1 slices (TensorFlow's
  // TensorSliceReader::DebugString, which prints its own hash order).
  std::string DebugString() const;

 private:
  V1Reader(std::string path, std::unique_ptr<table::Table> table);
  Status LoadMeta();
  // The TensorProto bytes of one saved slice.
  Result<std::string> SliceData(const std::string& name,
                                const TensorSlice& slice) const;

  std::string path_;
  std::unique_ptr<table::Table> table_;
  std::map<std::string, V1Tensor, std::less<>> tensors_;
};

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_V1_READER_H_
