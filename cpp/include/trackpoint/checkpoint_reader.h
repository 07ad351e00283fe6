// CheckpointReader: the C++ API for programs that load tensors from a
// TensorFlow-format checkpoint (an inference server reading its weights).
//
//   #include "trackpoint/checkpoint_reader.h"
//
//   auto reader = trackpoint::CheckpointReader::Open("/models/run");  // dir
//   if (!reader.ok()) { std::cerr << reader.status().ToString(); ... }
//   for (const std::string& key : (*reader)->Keys()) { ... }
//   // Copy into a caller buffer (CRC32C checked on every read):
//   auto bias = (*reader)->ReadVector<float>("dense/bias");
//   // Or view the bytes in place, without a copy (mmap of the data file):
//   auto kernel = (*reader)->MapTensor("dense/kernel");
//   const float* w = kernel->data_as<float>();
//   // TF2 object-based checkpoints: find a variable by its object path.
//   auto key = (*reader)->ObjectKey("model/dense/kernel");
//
// Open takes a checkpoint prefix (".../ckpt-3", the part before ".index")
// or a directory, whose `checkpoint` state file names the latest one.
// Errors are values (Status, Result<T>), never exceptions: NotFound for a
// missing checkpoint or key, DataLoss for corrupt files, InvalidArgument for
// a call that does not fit the tensor.
#ifndef TRACKPOINT_CHECKPOINT_READER_H_
#define TRACKPOINT_CHECKPOINT_READER_H_

#include <complex>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_types.h"
#include "trackpoint/object_graph.h"
#include "trackpoint/status.h"
#include "trackpoint/types.h"

namespace trackpoint {

class MappedFile;

// What the index says about one tensor.
struct TensorInfo {
  DataType dtype = DataType::kInvalid;
  TensorShape shape;
  int64_t num_elements = 0;
  // Bytes ReadTensor needs: num_elements * DataTypeSize(dtype); 0 for
  // strings (read them with ReadStringTensor).
  size_t nbytes = 0;
  // Stored as slices (a TF1 partitioned variable, or a tensor split across
  // shards): ReadTensor assembles it, MapTensor cannot view it.
  bool partitioned = false;
};

// The C++ element type of a DataType, for ReadVector<T> and
// MappedTensor::data_as<T>: DataTypeOf<float>::value == DataType::kFloat.
// (bool is left out: std::vector<bool> has no contiguous storage; read bool
// tensors with ReadTensor into a bool buffer.)
template <typename T>
struct DataTypeOf;
#define TP_DATA_TYPE_OF_(T, DT)                     \
  template <>                                       \
  struct DataTypeOf<T> {                            \
    static constexpr DataType value = DataType::DT; \
  }
TP_DATA_TYPE_OF_(float, kFloat);
TP_DATA_TYPE_OF_(double, kDouble);
TP_DATA_TYPE_OF_(int8_t, kInt8);
TP_DATA_TYPE_OF_(int16_t, kInt16);
TP_DATA_TYPE_OF_(int32_t, kInt32);
TP_DATA_TYPE_OF_(int64_t, kInt64);
TP_DATA_TYPE_OF_(uint8_t, kUint8);
TP_DATA_TYPE_OF_(uint16_t, kUint16);
TP_DATA_TYPE_OF_(uint32_t, kUint32);
TP_DATA_TYPE_OF_(uint64_t, kUint64);
TP_DATA_TYPE_OF_(std::complex<float>, kComplex64);
TP_DATA_TYPE_OF_(std::complex<double>, kComplex128);
#undef TP_DATA_TYPE_OF_

// A read-only view of one tensor's bytes inside a memory-mapped data file:
// no copy, no allocation. The view keeps the mapping alive, so it may outlive
// the CheckpointReader that made it. The bytes are in the checkpoint's byte
// order, which MapTensor requires to be the host's.
//
// The data file must not be truncated or rewritten in place while a view
// exists (TensorFlow and trackpoint never do: they write new files and
// rename them).
//
// Thread safety: immutable; may be read from several threads at once.
class MappedTensor {
 public:
  MappedTensor() = default;  // an empty view

  DataType dtype() const { return dtype_; }
  const TensorShape& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  // The tensor's bytes: num_elements() * DataTypeSize(dtype()) of them.
  const void* data() const { return data_; }
  size_t size() const { return size_; }

  // Whether data() is a multiple of `alignment`. TensorFlow packs payloads
  // densely, so a tensor that follows one of an odd size may be unaligned;
  // a bundle written with BundleWriterOptions::data_alignment >= 8 never is.
  bool IsAlignedTo(size_t alignment) const {
    return alignment != 0 &&
           reinterpret_cast<uintptr_t>(data_) % alignment == 0;
  }

  // data() as elements of T, or nullptr when T is not the tensor's element
  // type (see DataTypeOf) or data() is not aligned for T (then copy it out
  // with ReadTensor instead).
  template <typename T>
  const T* data_as() const {
    if (DataTypeOf<T>::value != dtype_ || !IsAlignedTo(alignof(T))) {
      return nullptr;
    }
    return static_cast<const T*>(data_);
  }

 private:
  friend class CheckpointReader;

  std::shared_ptr<const MappedFile> file_;
  const void* data_ = nullptr;
  size_t size_ = 0;
  DataType dtype_ = DataType::kInvalid;
  TensorShape shape_;
  int64_t num_elements_ = 0;
};

struct MapOptions {
  // Compute the payload's CRC32C once, when the view is made, and fail with
  // DataLoss if it does not match the index (costs one pass over the bytes).
  bool verify_checksum = true;
};

// Thread safety: after Open, every const method may be called from several
// threads at once.
class CheckpointReader {
 public:
  // The key under which TF2 object-based checkpoints store their object
  // graph (a scalar string tensor).
  static constexpr std::string_view kObjectGraphKey = trackpoint::kObjectGraphKey;

  // `path` is a checkpoint prefix, or a directory whose `checkpoint` state
  // file names the latest checkpoint (see LatestCheckpoint). A path to the
  // prefix's ".index" file is accepted as the prefix.
  // Errors: NotFound when there is no such checkpoint; DataLoss when its
  // index is corrupt.
  static Result<std::unique_ptr<CheckpointReader>> Open(
      const std::string& path);
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  // The checkpoint prefix that was opened.
  const std::string& prefix() const { return bundle_->prefix(); }

  // Every tensor key in byte order (object graph included, slices of
  // partitioned tensors not).
  std::vector<std::string> Keys() const { return bundle_->Keys(); }
  bool HasTensor(std::string_view key) const {
    return bundle_->Find(key) != nullptr;
  }
  Result<TensorInfo> GetTensorInfo(std::string_view key) const;

  // Reads a tensor of a fixed-size dtype into dst, which holds exactly
  // GetTensorInfo(key).nbytes bytes; checks the CRC32C of what it reads.
  Status ReadTensor(std::string_view key, void* dst, size_t nbytes) const;
  // Reads a tensor whose dtype is DataTypeOf<T>::value into a new vector.
  template <typename T>
  Result<std::vector<T>> ReadVector(std::string_view key) const;
  // Reads a string tensor: its elements in row-major order.
  Result<std::vector<std::string>> ReadStringTensor(
      std::string_view key) const {
    return bundle_->ReadStringTensor(key);
  }

  // A zero-copy view of a tensor of a fixed-size dtype. Each data file is
  // mapped once, on first use. Errors: InvalidArgument for a string tensor;
  // Unimplemented for a partitioned tensor or a bundle of the other byte
  // order; DataLoss for an extent past the end of the file or (with
  // verify_checksum) a CRC mismatch.
  Result<MappedTensor> MapTensor(std::string_view key,
                                 const MapOptions& options = {}) const;

  // Whether the checkpoint has a TF2 object graph (kObjectGraphKey).
  bool HasObjectGraph() const { return HasTensor(kObjectGraphKey); }
  // The object graph, parsed on first call. NotFound for a name-based (TF1)
  // checkpoint.
  Result<const TrackableObjectGraph*> ObjectGraph() const;
  // The bundle key of an object's saved tensor, found by following child
  // edges from the root: ObjectKey("model/dense/kernel") is usually
  // "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE". Path components are
  // split on '/'; use ObjectKeyAt for local names that contain '/'.
  Result<std::string> ObjectKey(
      std::string_view path,
      std::string_view attribute = "VARIABLE_VALUE") const;
  Result<std::string> ObjectKeyAt(
      const std::vector<std::string>& local_names,
      std::string_view attribute = "VARIABLE_VALUE") const;

  // The underlying bundle, for what this class does not wrap.
  const BundleReader& bundle() const { return *bundle_; }

 private:
  explicit CheckpointReader(std::unique_ptr<BundleReader> bundle);
  Result<std::shared_ptr<const MappedFile>> MapShard(int32_t shard_id) const;

  std::unique_ptr<BundleReader> bundle_;
  mutable std::mutex mu_;
  mutable std::unordered_map<int32_t, std::shared_ptr<const MappedFile>>
      mapped_shards_;
  mutable std::optional<Result<TrackableObjectGraph>> graph_;
};

// The prefix of the latest checkpoint in `dir`, as its `checkpoint` state
// file (TensorFlow's CheckpointState, text format) names it in
// model_checkpoint_path; a relative path is taken relative to dir.
// NotFound when the state file or the checkpoint it names is missing;
// DataLoss when the state file has no model_checkpoint_path.
Result<std::string> LatestCheckpoint(const std::string& dir);

// model_checkpoint_path from the text of a `checkpoint` state file, with
// its string escapes decoded; NotFound when the field is absent, DataLoss
// when the text is malformed around it.
Result<std::string> ParseModelCheckpointPath(std::string_view state_text);

template <typename T>
Result<std::vector<T>> CheckpointReader::ReadVector(
    std::string_view key) const {
  TP_ASSIGN_OR_RETURN(TensorInfo info, GetTensorInfo(key));
  if (info.dtype != DataTypeOf<T>::value) {
    return InvalidArgumentError("tensor '" + std::string(key) + "' in " +
                                prefix() + " is " + DataTypeName(info.dtype) +
                                ", not " + DataTypeName(DataTypeOf<T>::value));
  }
  std::vector<T> out(static_cast<size_t>(info.num_elements));
  TP_RETURN_IF_ERROR(ReadTensor(key, out.data(), out.size() * sizeof(T)));
  return out;
}

}  // namespace trackpoint

#endif  // TRACKPOINT_CHECKPOINT_READER_H_
