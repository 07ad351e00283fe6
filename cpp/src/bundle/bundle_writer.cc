// Writes a tensor bundle. The bytes it produces:
//
// P.data-<shard>-of-<num_shards>: payloads back to back in the order they are
//   added (zero padding between them when data_alignment > 1). A fixed-size
//   tensor's payload is its elements, row-major, host byte order; a string
//   tensor's is laid out as in string_tensor.h.
// P.index: a table (table/table_builder.h) whose first key is "" holding the
//   BundleHeaderProto {num_shards, endianness, version {producer 1}}, then
//   one BundleEntryProto per key in byte order: {dtype, shape, shard_id,
//   offset, size, masked crc32c of the payload} or, for a partitioned
//   tensor, {dtype, full shape, slices} with each slice stored as an ordinary
//   entry under EncodeTensorNameSlice(key, slice).
#include "trackpoint/bundle_writer.h"

#include <algorithm>
#include <cstdio>

#include "bundle/slice_copy.h"
#include "bundle/slice_key.h"
#include "bundle/string_tensor.h"
#include "proto/bundle_proto.h"
#include "staging/pipeline.h"
#include "table/table_builder.h"
#include "trackpoint/crc32c.h"
#include "util/file.h"
#include "util/parallel.h"

namespace trackpoint {
namespace {

// Tensors are checksummed and written in pieces of this size: large enough
// to bypass the file's buffer, small enough to stay in cache between the two.
constexpr size_t kWriteChunk = size_t{2} << 20;
// Host tensors at least this large are written by several threads at once.
constexpr size_t kParallelWriteMin = size_t{8} << 20;

std::string TempName(const std::string& final_name) {
  return final_name + ".tempstate" + std::to_string(RandomU64());
}

bool HostIsBigEndian() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 0;
}

}  // namespace

std::string DataFilename(const std::string& prefix, int shard, int num_shards) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), ".data-%05d-of-%05d", shard, num_shards);
  return prefix + buf;
}

std::string IndexFilename(const std::string& prefix) {
  return prefix + ".index";
}

BundleWriter::BundleWriter(std::string prefix,
                           const BundleWriterOptions& options)
    : prefix_(std::move(prefix)), options_(options) {}

BundleWriter::~BundleWriter() {
  if (!finished_) DeleteTempFiles();
}

Result<std::unique_ptr<BundleWriter>> BundleWriter::Open(
    const std::string& prefix, const BundleWriterOptions& options) {
  if (prefix.empty()) return InvalidArgumentError("empty checkpoint prefix");
  if (options.num_shards < 1 || options.num_shards > 99999) {
    return InvalidArgumentError("num_shards must be in [1, 99999], got " +
                                std::to_string(options.num_shards));
  }
  if (options.data_alignment < 1) {
    return InvalidArgumentError("data_alignment must be at least 1");
  }
  TP_RETURN_IF_ERROR(CreateDirs(Dirname(prefix)));
  std::unique_ptr<BundleWriter> writer(new BundleWriter(prefix, options));
  writer->shards_.resize(options.num_shards);
  for (int i = 0; i < options.num_shards; ++i) {
    Shard& shard = writer->shards_[i];
    shard.final_name = DataFilename(prefix, i, options.num_shards);
    shard.temp_name = TempName(shard.final_name);
    TP_ASSIGN_OR_RETURN(shard.file, NewWritableFile(shard.temp_name));
  }
  return writer;
}

Status BundleWriter::CheckNewKey(std::string_view key, int shard) {
  TP_RETURN_IF_ERROR(status_);
  if (finished_) return FailedPreconditionError("bundle already finished");
  if (key.empty()) return InvalidArgumentError("tensor key must not be empty");
  if (IsSliceKey(key)) {
    return InvalidArgumentError("tensor key must not start with a NUL byte");
  }
  if (shard < 0 || shard >= options_.num_shards) {
    return InvalidArgumentError("shard " + std::to_string(shard) +
                                " out of range for " +
                                std::to_string(options_.num_shards) +
                                " shards (key '" + std::string(key) + "')");
  }
  return OkStatus();
}

Status BundleWriter::BeginPayload(Shard& shard, int64_t* offset) {
  const int64_t align = options_.data_alignment;
  if (align > 1 && shard.size % align != 0) {
    std::string pad(static_cast<size_t>(align - shard.size % align), '\0');
    status_ = shard.file->Append(pad);
    TP_RETURN_IF_ERROR(status_);
    shard.size += static_cast<int64_t>(pad.size());
  }
  *offset = shard.size;
  return OkStatus();
}

Status BundleWriter::AddEntry(std::string key, BundleEntry entry) {
  auto [it, inserted] = entries_.emplace(std::move(key), std::move(entry));
  if (!inserted) {
    status_ = InvalidArgumentError("duplicate tensor key '" + it->first +
                                   "' in bundle " + prefix_);
  }
  return status_;
}

Status BundleWriter::Add(std::string_view key, DataType dtype,
                         const TensorShape& shape, const void* data,
                         size_t nbytes, int shard_id) {
  TP_RETURN_IF_ERROR(CheckNewKey(key, shard_id));
  return AppendFixed(std::string(key), dtype, shape, data, nbytes, shard_id);
}

Status BundleWriter::AddFromDevice(std::string_view key, DataType dtype,
                                   const TensorShape& shape,
                                   const void* device_ptr, size_t nbytes,
                                   staging::DeviceBackend& backend,
                                   staging::StagingPool& pool, int shard_id) {
  TP_RETURN_IF_ERROR(CheckNewKey(key, shard_id));
  std::string name(key);
  return AppendPayload(
      std::move(name), dtype, shape, nbytes, shard_id,
      [&](const ChunkSink& sink) {
        return staging::StageToHost(backend, pool, device_ptr, nbytes, sink)
            .Annotate("staging tensor '" + std::string(key) + "' from " +
                      backend.name());
      });
}

Status BundleWriter::AppendFixed(std::string key, DataType dtype,
                                 const TensorShape& shape, const void* data,
                                 size_t nbytes, int shard_id) {
  const char* bytes = static_cast<const char*>(data);
  if (nbytes >= kParallelWriteMin) {
    // Large tensors: pieces checksummed and written on several threads, each
    // at its own offset; their CRCs combined in order.
    return AppendPayload(std::move(key), dtype, shape, nbytes, shard_id,
                         /*produce=*/{}, bytes);
  }
  auto produce = [&](const ChunkSink& sink) {
    for (size_t done = 0; done < nbytes;) {
      const size_t n = std::min(kWriteChunk, nbytes - done);
      TP_RETURN_IF_ERROR(sink(bytes + done, n));
      done += n;
    }
    return OkStatus();
  };
  return AppendPayload(std::move(key), dtype, shape, nbytes, shard_id,
                       produce);
}

Status BundleWriter::AppendPayload(
    std::string key, DataType dtype, const TensorShape& shape, size_t nbytes,
    int shard_id, const std::function<Status(const ChunkSink&)>& produce,
    const char* host_data) {
  if (entries_.count(key)) {
    return InvalidArgumentError("duplicate tensor key '" + key + "'");
  }
  const size_t element_size = DataTypeSize(dtype);
  if (element_size == 0) {
    return InvalidArgumentError("key '" + key +
                                "': dtype has no fixed element size; use "
                                "AddString for strings");
  }
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(shape, &num_elements));
  if (static_cast<uint64_t>(num_elements) * element_size != nbytes) {
    return InvalidArgumentError(
        "key '" + key + "': " + std::to_string(nbytes) + " bytes given for " +
        std::to_string(num_elements) + " elements of " +
        std::to_string(element_size) + " bytes");
  }
  Shard& shard = shards_[shard_id];
  BundleEntry entry;
  entry.dtype = dtype;
  entry.shape = shape;
  entry.shard_id = shard_id;
  TP_RETURN_IF_ERROR(BeginPayload(shard, &entry.offset));
  entry.size = static_cast<int64_t>(nbytes);
  // One pass over the tensor: each chunk is checksummed while it is in cache,
  // then written.
  uint32_t crc = 0;
  size_t written = 0;
  if (host_data != nullptr) {
    const size_t pieces = (nbytes + kWriteChunk - 1) / kWriteChunk;
    std::vector<uint32_t> crcs(pieces);
    status_ = shard.file->AppendInPieces(
        std::string_view(host_data, nbytes), kWriteChunk, DefaultIoThreads(),
        [&](size_t i, std::string_view piece) {
          crcs[i] = crc32c::Value(piece.data(), piece.size());
        });
    if (status_.ok()) {
      crc = crcs[0];
      for (size_t i = 1; i < pieces; ++i) {
        crc = crc32c::Combine(crc, crcs[i],
                              std::min(kWriteChunk, nbytes - i * kWriteChunk));
      }
      written = nbytes;
    }
  } else {
    status_ = produce([&](const char* chunk, size_t len) {
      crc = crc32c::Extend(crc, chunk, len);
      TP_RETURN_IF_ERROR(shard.file->Append(std::string_view(chunk, len)));
      written += len;
      return OkStatus();
    });
  }
  if (status_.ok() && written != nbytes) {
    status_ = InternalError("key '" + key + "': " + std::to_string(written) +
                            " of " + std::to_string(nbytes) +
                            " bytes produced");
  }
  // Part of the payload may be in the file: the bundle is lost (sticky).
  TP_RETURN_IF_ERROR(status_);
  entry.crc32c = crc32c::Mask(crc);
  shard.size += entry.size;
  return AddEntry(std::move(key), std::move(entry));
}

Status BundleWriter::AddString(std::string_view key, const TensorShape& shape,
                               const std::vector<std::string_view>& elements,
                               int shard_id) {
  TP_RETURN_IF_ERROR(CheckNewKey(key, shard_id));
  if (entries_.count(key)) {
    return InvalidArgumentError("duplicate tensor key '" + std::string(key) +
                                "'");
  }
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(shape, &num_elements));
  if (static_cast<uint64_t>(num_elements) != elements.size()) {
    return InvalidArgumentError(
        "key '" + std::string(key) + "': " + std::to_string(elements.size()) +
        " strings given for " + std::to_string(num_elements) + " elements");
  }
  std::string payload;
  uint32_t crc = EncodeStringTensor(elements, &payload);
  Shard& shard = shards_[shard_id];
  BundleEntry entry;
  entry.dtype = DataType::kString;
  entry.shape = shape;
  entry.shard_id = shard_id;
  TP_RETURN_IF_ERROR(BeginPayload(shard, &entry.offset));
  entry.size = static_cast<int64_t>(payload.size());
  entry.crc32c = crc32c::Mask(crc);
  status_ = shard.file->Append(payload);
  TP_RETURN_IF_ERROR(status_);
  shard.size += entry.size;
  return AddEntry(std::string(key), std::move(entry));
}

Status BundleWriter::AddSlice(std::string_view key,
                              const TensorShape& full_shape,
                              const TensorSlice& slice, DataType dtype,
                              const void* data, size_t nbytes, int shard_id) {
  TP_RETURN_IF_ERROR(CheckNewKey(key, shard_id));
  int64_t full_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(full_shape, &full_elements));
  TP_RETURN_IF_ERROR(ValidateSlice(slice, full_shape));
  TensorShape slice_shape = SliceShape(slice, full_shape);
  if (slice_shape == full_shape) {
    // A slice covering everything is stored as a plain tensor.
    return AppendFixed(std::string(key), dtype, full_shape, data, nbytes,
                       shard_id);
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    BundleEntry full;
    full.dtype = dtype;
    full.shape = full_shape;
    it = entries_.emplace(std::string(key), std::move(full)).first;
  } else if (it->second.slices.empty() || it->second.dtype != dtype ||
             !(it->second.shape == full_shape)) {
    return InvalidArgumentError(
        "key '" + std::string(key) +
        "': slice disagrees with the tensor already added under that key");
  }
  Status s = AppendFixed(EncodeTensorNameSlice(key, slice), dtype,
                         slice_shape, data, nbytes, shard_id);
  if (!s.ok()) {
    if (it->second.slices.empty()) entries_.erase(it);
    return s.Annotate("slice " + SliceSpecString(slice) + " of '" +
                      std::string(key) + "'");
  }
  it->second.slices.push_back(slice);
  return OkStatus();
}

Status BundleWriter::WriteIndex() {
  index_temp_name_ = TempName(IndexFilename(prefix_));
  TP_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                      NewWritableFile(index_temp_name_));
  BundleHeader header;
  header.num_shards = options_.num_shards;
  header.endianness = HostIsBigEndian() ? Endianness::kBig : Endianness::kLittle;
  header.version.producer = kBundleVersionProducer;
  header.version.min_consumer = kBundleVersionMinConsumer;

  table::TableBuilder builder(file.get());
  Status s = builder.Add("", SerializeBundleHeader(header));
  for (const auto& [key, entry] : entries_) {
    if (!s.ok()) break;
    s = builder.Add(key, SerializeBundleEntry(entry));
  }
  if (s.ok()) s = builder.Finish();
  if (s.ok() && options_.sync) s = file->Sync();
  Status closed = file->Close();
  if (s.ok()) s = closed;
  return s;
}

Status BundleWriter::Finish() {
  if (finished_) return FailedPreconditionError("bundle already finished");
  // First every new file is completed under its temporary name (and made
  // durable with sync): whatever fails for lack of space or an I/O error
  // fails here, while a bundle already at this prefix is untouched.
  for (Shard& shard : shards_) {
    if (!status_.ok()) break;
    if (options_.sync) status_ = shard.file->Sync();
    Status closed = shard.file->Close();
    if (status_.ok()) status_ = closed;
  }
  if (status_.ok()) status_ = WriteIndex();
  // Then the files are moved into place, each step made durable before the
  // next (with sync), so that a crash leaves one of these states:
  //   1. the old bundle (if any), untouched, plus the new files under
  //      temporary names;
  //   2. only when a new data file takes the name of an existing one (an
  //      overwrite with the same number of shards): no P.index; each data
  //      file the old or the new one; the new index, complete and durable,
  //      at P.index.tempstate<N> (`trackpoint verify P` reports this
  //      "interrupted overwrite");
  //   3. the new bundle.
  // An old index goes before any data file it names is replaced, so no
  // reader ever pairs it with new data files; the new index comes last,
  // after the data renames are durable, so no reader pairs it with old ones.
  // The format names data files by prefix and shard count alone, so such an
  // overwrite cannot avoid state 2; otherwise the new index replaces the old
  // one in one rename.
  const std::string dir = Dirname(prefix_);
  const std::string index_name = IndexFilename(prefix_);
  bool replaces_data = false;
  for (const Shard& shard : shards_) {
    replaces_data = replaces_data || FileExists(shard.final_name);
  }
  if (status_.ok() && replaces_data && FileExists(index_name)) {
    // The new files' names are durable before the old index goes.
    if (options_.sync) status_ = SyncDir(dir);
    if (status_.ok()) status_ = DeleteFile(index_name);
    if (status_.ok() && options_.sync) status_ = SyncDir(dir);
  }
  for (Shard& shard : shards_) {
    if (!status_.ok()) break;
    status_ = RenameFile(shard.temp_name, shard.final_name);
    if (status_.ok()) shard.temp_name = shard.final_name;
  }
  if (status_.ok() && options_.sync) status_ = SyncDir(dir);
  if (status_.ok()) {
    status_ = RenameFile(index_temp_name_, index_name);
    if (status_.ok()) index_temp_name_ = index_name;
  }
  if (status_.ok() && options_.sync) status_ = SyncDir(dir);
  if (!status_.ok()) {
    DeleteTempFiles();
    return status_;
  }
  finished_ = true;
  return OkStatus();
}

void BundleWriter::DeleteTempFiles() {
  // A file already renamed into place has its final name as temp name: a
  // failed bundle leaves no file behind, its index (renamed but perhaps not
  // durable) going before its data files. Names are forgotten once deleted,
  // so dropping a failed writer later spares a bundle written since at the
  // same prefix (a retried save).
  if (!index_temp_name_.empty()) DeleteFile(index_temp_name_);
  index_temp_name_.clear();
  for (Shard& shard : shards_) {
    if (shard.file) shard.file->Close();
    if (!shard.temp_name.empty()) DeleteFile(shard.temp_name);
    shard.temp_name.clear();
  }
}

}  // namespace trackpoint
