#include "bundle/v1_reader.h"

#include <cstring>

#include "bundle/slice_copy.h"
#include "bundle/slice_key.h"
#include "proto/bundle_proto.h"
#include "proto/tensor_proto.h"
#include "proto/wire.h"
#include "table/table.h"
#include "util/file.h"

namespace trackpoint {
namespace {

constexpr char kSlices[] = "SavedTensorSlices";
constexpr char kMeta[] = "SavedTensorSliceMeta";
constexpr char kSliceMeta[] = "SavedSliceMeta";
constexpr char kSaved[] = "SavedSlice";

// One SavedSliceMeta: (name, tensor).
Status ParseSliceMeta(std::string_view data, std::string* name,
                      V1Tensor* tensor) {
  ProtoReader r(data);
  while (r.Next()) {
    std::string_view bytes;
    switch (r.field()) {
      case 1:
        if (!r.ReadBytes(&bytes)) return FieldError(kSliceMeta, "name", r);
        *name = std::string(bytes);
        break;
      case 2: {
        if (!r.ReadBytes(&bytes)) return FieldError(kSliceMeta, "shape", r);
        TP_ASSIGN_OR_RETURN(tensor->shape, ParseTensorShape(bytes));
        break;
      }
      case 3: {
        int32_t v;
        if (!r.ReadInt32(&v)) return FieldError(kSliceMeta, "type", r);
        tensor->dtype = static_cast<DataType>(v);
        break;
      }
      case 4: {
        if (!r.ReadBytes(&bytes)) return FieldError(kSliceMeta, "slice", r);
        TP_ASSIGN_OR_RETURN(TensorSlice slice, ParseTensorSlice(bytes));
        tensor->slices.push_back(std::move(slice));
        break;
      }
      default:
        break;
    }
  }
  return EndStatus(kSliceMeta, r);
}

// The field `field` (a message) of a message, or empty if absent.
Result<std::string_view> SubMessage(std::string_view data, uint32_t field,
                                    const char* message, const char* name) {
  std::string_view out;
  ProtoReader r(data);
  while (r.Next()) {
    if (r.field() == field && !r.ReadBytes(&out)) {
      return FieldError(message, name, r);
    }
  }
  TP_RETURN_IF_ERROR(EndStatus(message, r));
  return out;
}

bool IsFull(const TensorSlice& slice) {
  for (const SliceExtent& e : slice.extents) {
    if (e.start != 0 || e.length != SliceExtent::kFullExtent) return false;
  }
  return true;
}

std::string ShapeDebugString(const TensorShape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.dims.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape.dims[i]);
  }
  return out + "]";
}

}  // namespace

V1Reader::V1Reader(std::string path, std::unique_ptr<table::Table> table)
    : path_(std::move(path)), table_(std::move(table)) {}
V1Reader::~V1Reader() = default;

Result<std::unique_ptr<V1Reader>> V1Reader::Open(const std::string& path) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file,
                      NewRandomAccessFile(path));
  Result<std::unique_ptr<table::Table>> table = table::Table::Open(
      std::shared_ptr<const RandomAccessFile>(std::move(file)));
  if (!table.ok()) {
    return DataLossError(path + " is not a V1 checkpoint: " +
                         table.status().message());
  }
  std::unique_ptr<V1Reader> reader(
      new V1Reader(path, std::move(table).value()));
  TP_RETURN_IF_ERROR(reader->LoadMeta());
  return reader;
}

Status V1Reader::LoadMeta() {
  const std::string what = path_ + " is not a V1 checkpoint";
  std::unique_ptr<table::Iterator> it = table_->NewIterator();
  it->SeekToFirst();
  TP_RETURN_IF_ERROR(it->status());
  if (!it->Valid() || !it->key().empty()) {
    return DataLossError(what + " (no metadata entry under the empty key)");
  }
  const std::string value(it->value());
  Result<std::string_view> meta = SubMessage(value, 1, kSlices, "meta");
  if (!meta.ok()) return DataLossError(what + ": " + meta.status().message());
  if (meta->empty()) return DataLossError(what + " (its first entry has no meta)");
  ProtoReader r(*meta);
  while (r.Next()) {
    if (r.field() != 1) continue;
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return FieldError(kMeta, "tensor", r);
    std::string name;
    V1Tensor tensor;
    TP_RETURN_IF_ERROR(ParseSliceMeta(bytes, &name, &tensor)
                           .Annotate(path_ + ": " + Where(kMeta, "tensor")));
    int64_t num_elements = 0;
    Status shape = ValidateShape(tensor.shape, &num_elements);
    if (!shape.ok()) {
      return DataLossError(path_ + ": tensor '" + name + "': " + shape.message());
    }
    if (!IsStorableDataType(static_cast<int32_t>(tensor.dtype))) {
      return DataLossError(path_ + ": tensor '" + name + "' has invalid dtype " +
                           std::to_string(static_cast<int32_t>(tensor.dtype)));
    }
    // Each slice is kept as written: its key was encoded from it.
    for (const TensorSlice& slice : tensor.slices) {
      Status valid = ValidateSlice(slice, tensor.shape);
      if (!valid.ok()) {
        return DataLossError(path_ + ": tensor '" + name + "': " + valid.message());
      }
    }
    if (!tensors_.emplace(name, std::move(tensor)).second) {
      return DataLossError(path_ + ": tensor '" + name + "' listed twice");
    }
  }
  return EndStatus(kMeta, r).Annotate(path_);
}

std::vector<std::string> V1Reader::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(tensors_.size());
  for (const auto& [name, _] : tensors_) keys.push_back(name);
  return keys;
}

const V1Tensor* V1Reader::Find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<const V1Tensor*> V1Reader::Lookup(std::string_view name) const {
  const V1Tensor* tensor = Find(name);
  if (tensor == nullptr) {
    // TensorFlow's words ("<name> not found in checkpoint file"), and the file.
    return NotFoundError("Key " + std::string(name) +
                         " not found in checkpoint file " + path_);
  }
  return tensor;
}

Result<std::string> V1Reader::SliceData(const std::string& name,
                                        const TensorSlice& slice) const {
  const std::string key = EncodeTensorNameSlice(name, slice);
  const std::string what = "slice " + SliceSpecString(slice) + " of tensor '" +
                           name + "' in " + path_;
  std::unique_ptr<table::Iterator> it = table_->NewIterator();
  it->Seek(key);
  TP_RETURN_IF_ERROR(it->status());
  if (!it->Valid() || it->key() != key) {
    return DataLossError(what + " is listed but not stored");
  }
  const std::string value(it->value());
  TP_ASSIGN_OR_RETURN(std::string_view saved,
                      SubMessage(value, 2, kSlices, "data"));
  TP_ASSIGN_OR_RETURN(std::string_view data,
                      SubMessage(saved, 3, kSaved, "data"));
  return std::string(data);
}

Status V1Reader::ReadTensor(std::string_view name, void* dst,
                            size_t nbytes) const {
  TP_ASSIGN_OR_RETURN(const V1Tensor* tensor, Lookup(name));
  const size_t element_size = DataTypeSize(tensor->dtype);
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(tensor->shape, &num_elements));
  const std::string what = "tensor '" + std::string(name) + "' in " + path_;
  if (element_size == 0) {
    return InvalidArgumentError(what + " is " + DataTypeName(tensor->dtype) +
                                ", not a fixed-size type");
  }
  if (nbytes != static_cast<size_t>(num_elements) * element_size) {
    return InvalidArgumentError(what + " holds " +
                                std::to_string(num_elements * element_size) +
                                " bytes, the buffer " + std::to_string(nbytes));
  }
  // The slices must cover the tensor exactly once.
  int64_t covered = 0;
  for (const TensorSlice& slice : tensor->slices) {
    int64_t n = 0;
    TP_RETURN_IF_ERROR(ValidateShape(SliceShape(slice, tensor->shape), &n));
    covered += n;
  }
  if (covered != num_elements) {
    return DataLossError(what + ": its slices hold " + std::to_string(covered) +
                         " of " + std::to_string(num_elements) + " elements");
  }
  TP_ASSIGN_OR_RETURN(auto overlap,
                      FindOverlappingSlices(tensor->slices, tensor->shape));
  if (overlap) return DataLossError(what + ": two of its slices overlap");
  const std::string key(name);
  for (const TensorSlice& slice : tensor->slices) {
    TP_ASSIGN_OR_RETURN(std::string proto, SliceData(key, slice));
    int64_t n = 0;
    TP_RETURN_IF_ERROR(ValidateShape(SliceShape(slice, tensor->shape), &n));
    if (IsFull(slice)) {
      TP_RETURN_IF_ERROR(DecodeTensorProtoValues(proto, tensor->dtype, n,
                                                 static_cast<char*>(dst))
                             .Annotate(what));
      continue;
    }
    std::string part(static_cast<size_t>(n) * element_size, '\0');
    TP_RETURN_IF_ERROR(
        DecodeTensorProtoValues(proto, tensor->dtype, n, part.data())
            .Annotate("slice " + SliceSpecString(slice) + " of " + what));
    CopySliceIntoFull(part.data(), slice, tensor->shape, element_size,
                      static_cast<char*>(dst));
  }
  return OkStatus();
}

Result<std::vector<std::string>> V1Reader::ReadStringTensor(
    std::string_view name) const {
  TP_ASSIGN_OR_RETURN(const V1Tensor* tensor, Lookup(name));
  const std::string what = "tensor '" + std::string(name) + "' in " + path_;
  if (tensor->dtype != DataType::kString) {
    return InvalidArgumentError(what + " is " + DataTypeName(tensor->dtype) +
                                ", not string");
  }
  if (tensor->slices.size() != 1 || !IsFull(tensor->slices[0])) {
    return UnimplementedError(what + ": partitioned string tensors are not supported");
  }
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(tensor->shape, &num_elements));
  TP_ASSIGN_OR_RETURN(std::string proto,
                      SliceData(std::string(name), tensor->slices[0]));
  Result<std::vector<std::string>> strings =
      DecodeTensorProtoStrings(proto, static_cast<size_t>(num_elements));
  if (!strings.ok()) return strings.status().Annotate(what);
  return strings;
}

std::string V1Reader::DebugString() const {
  std::string out;
  for (const auto& [name, tensor] : tensors_) {
    out += name + " (" + DataTypeEnumName(tensor.dtype) + ") " +
           ShapeDebugString(tensor.shape);
    if (tensor.slices.size() > 1) {
      out += ", " + std::to_string(tensor.slices.size()) + " slices";
    }
    out += "\n";
  }
  return out;
}

}  // namespace trackpoint
