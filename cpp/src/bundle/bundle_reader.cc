#include "trackpoint/bundle_reader.h"

#include <algorithm>
#include <cstring>

#include "bundle/slice_copy.h"
#include "bundle/slice_key.h"
#include "bundle/string_tensor.h"
#include "bundle/variant_tensor.h"
#include "proto/bundle_proto.h"
#include "staging/pipeline.h"
#include "table/table.h"
#include "trackpoint/bundle_writer.h"
#include "trackpoint/crc32c.h"
#include "util/file.h"
#include "util/parallel.h"

namespace trackpoint {
namespace {

// Payloads at least this large are read and checksummed in chunks of this
// size on several threads.
constexpr size_t kReadChunk = size_t{8} << 20;

bool HostIsBigEndian() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 0;
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// DataLoss unless entry's payload [offset, offset + size) lies in file.
Status ExtentInFile(const std::string& what, const BundleEntry& entry,
                    const RandomAccessFile& file) {
  const uint64_t offset = static_cast<uint64_t>(entry.offset);
  const uint64_t size = static_cast<uint64_t>(entry.size);
  if (offset > file.size() || size > file.size() - offset) {
    return DataLossError(what + " claims " + std::to_string(size) +
                         " bytes at offset " + std::to_string(offset) +
                         " of " + file.name() + ", which has " +
                         std::to_string(file.size()) +
                         " (file truncated or index corrupt)");
  }
  return OkStatus();
}

// Reverses the bytes of every `width`-byte word in data[0, n).
void SwapWords(char* data, size_t n, size_t width) {
  for (size_t i = 0; i + width <= n; i += width) {
    std::reverse(data + i, data + i + width);
  }
}

// The width of the words to byte-swap when reading a tensor of this type
// written on a host of the other byte order; 0 when it cannot be converted.
size_t SwapWidth(DataType dtype) {
  switch (dtype) {
    case DataType::kComplex64: return 4;
    case DataType::kComplex128: return 8;
    case DataType::kFloat8E5m2:
    case DataType::kFloat8E4m3fn:
    case DataType::kFloat8E4m3fnuz:
    case DataType::kFloat8E4m3b11fnuz:
    case DataType::kFloat8E5m2fnuz:
    case DataType::kInt4:
    case DataType::kUint4:
    case DataType::kInt2:
    case DataType::kUint2:
    case DataType::kFloat4E2m1fn:
      return 0;  // TensorFlow refuses these across byte orders too
    default: return DataTypeSize(dtype);
  }
}

// TensorShape::DebugString: "[2,3]", "[]" for a scalar.
std::string ShapeDebugString(const TensorShape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.dims.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape.dims[i]);
  }
  return out + "]";
}

}  // namespace

BundleReader::BundleReader(std::string prefix) : prefix_(std::move(prefix)) {}
BundleReader::~BundleReader() = default;

Result<std::unique_ptr<BundleReader>> BundleReader::Open(
    const std::string& prefix) {
  std::unique_ptr<BundleReader> reader(new BundleReader(prefix));
  TP_RETURN_IF_ERROR(reader->LoadIndex());
  return reader;
}

Status BundleReader::LoadIndex() {
  const std::string index_name = IndexFilename(prefix_);
  Result<std::unique_ptr<RandomAccessFile>> file =
      NewRandomAccessFile(index_name);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kNotFound) {
      return NotFoundError("checkpoint not found: " + index_name +
                           " does not exist");
    }
    return file.status();
  }
  TP_ASSIGN_OR_RETURN(
      std::unique_ptr<table::Table> table,
      table::Table::Open(std::shared_ptr<const RandomAccessFile>(
          std::move(file).value())));
  std::unique_ptr<table::Iterator> it = table->NewIterator();
  it->SeekToFirst();
  if (!it->Valid() || !it->key().empty()) {
    TP_RETURN_IF_ERROR(it->status());
    return DataLossError(index_name +
                         " has no bundle header (first key is not empty)");
  }
  TP_ASSIGN_OR_RETURN(header_, ParseBundleHeader(it->value()));
  const VersionDef& v = header_.version;
  if (v.producer < 0 || v.min_consumer > kBundleVersionConsumer ||
      std::count(v.bad_consumers.begin(), v.bad_consumers.end(),
                  kBundleVersionConsumer)) {
    return DataLossError(index_name + ": bundle version (producer " +
                         std::to_string(v.producer) + ", min consumer " +
                         std::to_string(v.min_consumer) +
                         ") cannot be read by this reader");
  }
  if (header_.num_shards < 0) {
    return DataLossError(index_name + ": negative num_shards in header");
  }
  for (it->Next(); it->Valid(); it->Next()) {
    std::string key(it->key());
    // Find() searches a sorted array; unsorted or repeated keys (a data
    // block listed twice) are damage.
    if (key.empty() || (!entries_.empty() && key <= entries_.back().first)) {
      return DataLossError(index_name + ": keys out of order at entry " +
                           Describe(key));
    }
    Result<BundleEntry> entry = ParseBundleEntry(it->value());
    if (!entry.ok()) {
      return entry.status().Annotate(index_name + ": entry " + Describe(key));
    }
    TP_RETURN_IF_ERROR(CheckEntry(key, *entry));
    entries_.emplace_back(std::move(key), std::move(entry).value());
  }
  TP_RETURN_IF_ERROR(it->status());
  return OkStatus();
}

// Checks what can be checked without the data files, so that every later
// size computation is safe.
Status BundleReader::CheckEntry(const std::string& key,
                                const BundleEntry& entry) const {
  const std::string what = IndexFilename(prefix_) + ": entry " + Describe(key);
  if (!IsStorableDataType(static_cast<int32_t>(entry.dtype))) {
    return DataLossError(what + " has invalid dtype " +
                         std::to_string(static_cast<int32_t>(entry.dtype)));
  }
  // Shapes and slices were checked as arguments would be; in a file they
  // are corruption.
  int64_t num_elements = 0;
  Status shape = ValidateShape(entry.shape, &num_elements);
  if (!shape.ok()) return DataLossError(what + ": " + shape.message());
  if (!entry.slices.empty()) {
    for (const TensorSlice& slice : entry.slices) {
      Status valid = ValidateSlice(slice, entry.shape);
      if (!valid.ok()) return DataLossError(what + ": " + valid.message());
    }
    return OkStatus();
  }
  if (entry.shard_id < 0 || entry.shard_id >= header_.num_shards) {
    return DataLossError(what + " names data shard " +
                         std::to_string(entry.shard_id) + " of " +
                         std::to_string(header_.num_shards));
  }
  if (entry.offset < 0 || entry.size < 0) {
    return DataLossError(what + " has a negative offset or size");
  }
  const size_t element_size = DataTypeSize(entry.dtype);
  if (element_size != 0) {
    // size / element_size == num_elements exactly (a product could wrap).
    if (entry.size % static_cast<int64_t>(element_size) != 0 ||
        entry.size / static_cast<int64_t>(element_size) != num_elements) {
      return DataLossError(what + " has size " + std::to_string(entry.size) +
                           ", expected " + std::to_string(num_elements) +
                           " elements of " + std::to_string(element_size) +
                           " bytes");
    }
  } else if (entry.dtype == DataType::kString &&
             (entry.size < 4 || entry.size - 4 < num_elements)) {
    return DataLossError(what + " is too small for " +
                         std::to_string(num_elements) + " strings");
  }
  return OkStatus();
}

std::string BundleReader::Describe(std::string_view key) const {
  if (!IsSliceKey(key)) return "'" + std::string(key) + "'";
  std::string name;
  TensorSlice slice;
  if (DecodeTensorNameSlice(key, &name, &slice)) {
    return "slice " + SliceSpecString(slice) + " of '" + name + "'";
  }
  return "(undecodable slice key)";
}

std::vector<std::string> BundleReader::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(entries_.size());
  for (const Entry& e : entries_) {
    if (!IsSliceKey(e.first)) keys.push_back(e.first);
  }
  return keys;
}

const BundleEntry* BundleReader::Find(std::string_view key) const {
  auto it = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const Entry& e, std::string_view k) { return e.first < k; });
  if (it == entries_.end() || it->first != key) return nullptr;
  return &it->second;
}

Result<const BundleEntry*> BundleReader::Lookup(std::string_view key) const {
  const BundleEntry* entry = Find(key);
  if (entry == nullptr) {
    // TensorFlow's words ("Key <key> not found in checkpoint"), and the file.
    return NotFoundError("Key " + std::string(key) +
                         " not found in checkpoint " + prefix_);
  }
  return entry;
}

Result<const RandomAccessFile*> BundleReader::DataFile(int32_t shard_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto& file = data_files_[shard_id];
  if (!file) {
    const std::string name = DataFilename(prefix_, shard_id, header_.num_shards);
    Result<std::unique_ptr<RandomAccessFile>> opened = NewRandomAccessFile(name);
    if (!opened.ok()) {
      data_files_.erase(shard_id);
      if (opened.status().code() == StatusCode::kNotFound) {
        return NotFoundError("data file " + name + " of checkpoint " +
                             prefix_ + " is missing");
      }
      return opened.status();
    }
    file = std::move(opened).value();
  }
  return static_cast<const RandomAccessFile*>(file.get());
}

void BundleReader::CloseDataFiles() {
  std::lock_guard<std::mutex> lock(mu_);
  data_files_.clear();
}

Status BundleReader::ReadPayload(const std::string& what,
                                 const BundleEntry& entry, char* dst) const {
  TP_ASSIGN_OR_RETURN(const RandomAccessFile* file, DataFile(entry.shard_id));
  TP_RETURN_IF_ERROR(
      file->Read(static_cast<uint64_t>(entry.offset),
                 static_cast<size_t>(entry.size), dst)
          .Annotate("reading " + what));
  return VerifyAndConvert(
      what, entry, crc32c::Value(dst, static_cast<size_t>(entry.size)), dst);
}

Status BundleReader::CheckCrc(const std::string& what,
                              const BundleEntry& entry,
                              uint32_t actual) const {
  const uint32_t expected = crc32c::Unmask(entry.crc32c);
  if (actual != expected) {
    return DataLossError("checksum mismatch for " + what + " in " +
                         DataFilename(prefix_, entry.shard_id,
                                      header_.num_shards) +
                         " at offset " + std::to_string(entry.offset) +
                         ": stored " + Hex32(expected) + ", computed " +
                         Hex32(actual) + " (data corrupted)");
  }
  return OkStatus();
}

Status BundleReader::VerifyAndConvert(const std::string& what,
                                      const BundleEntry& entry,
                                      uint32_t actual, char* dst) const {
  TP_RETURN_IF_ERROR(CheckCrc(what, entry, actual));
  const bool swap =
      (header_.endianness == Endianness::kBig) != HostIsBigEndian();
  if (swap) {
    const size_t width = SwapWidth(entry.dtype);
    if (width == 0) {
      return UnimplementedError(what + ": cannot convert " +
                                DataTypeName(entry.dtype) +
                                " data across byte orders");
    }
    if (width > 1) SwapWords(dst, static_cast<size_t>(entry.size), width);
  }
  return OkStatus();
}

Status BundleReader::CheckFixedSize(std::string_view key,
                                    const BundleEntry& entry,
                                    size_t nbytes) const {
  const size_t element_size = DataTypeSize(entry.dtype);
  if (element_size == 0) {
    return InvalidArgumentError(
        Describe(key) + " in " + prefix_ + " is a " +
        DataTypeName(entry.dtype) + " tensor, not a fixed-size one");
  }
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(entry.shape, &num_elements));
  if (static_cast<uint64_t>(num_elements) * element_size != nbytes) {
    return InvalidArgumentError(
        "buffer of " + std::to_string(nbytes) + " bytes given for " +
        Describe(key) + ", which has " +
        std::to_string(num_elements * element_size));
  }
  return OkStatus();
}

Status BundleReader::ReadTensor(std::string_view key, void* dst,
                                size_t nbytes) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, Lookup(key));
  TP_RETURN_IF_ERROR(CheckFixedSize(key, *entry, nbytes));
  char* out = static_cast<char*>(dst);
  if (!entry->slices.empty()) return ReadSliced(key, *entry, out);
  return ReadPayload("tensor " + Describe(key), *entry, out);
}

Status BundleReader::ReadTensorToDevice(std::string_view key, void* device_dst,
                                        size_t nbytes,
                                        staging::DeviceBackend& backend,
                                        staging::StagingPool& pool) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, Lookup(key));
  TP_RETURN_IF_ERROR(CheckFixedSize(key, *entry, nbytes));
  const std::string what = "tensor " + Describe(key);
  const std::string context = "staging " + what + " of " + prefix_ + " to " +
                              backend.name();
  const bool swap =
      (header_.endianness == Endianness::kBig) != HostIsBigEndian();
  if (!entry->slices.empty() || swap) {
    // Assembled (or byte-swapped) and verified on the host, then copied.
    TP_RETURN_IF_ERROR(CheckStored(key));  // before sizing a buffer by it
    std::vector<char> host(nbytes);
    TP_RETURN_IF_ERROR(ReadTensor(key, host.data(), nbytes));
    return staging::StageToDevice(backend, pool, device_dst, nbytes,
                                  [&](char* chunk, size_t offset, size_t len) {
                                    std::memcpy(chunk, host.data() + offset,
                                                len);
                                    return OkStatus();
                                  })
        .Annotate(context);
  }
  TP_ASSIGN_OR_RETURN(const RandomAccessFile* file, DataFile(entry->shard_id));
  TP_RETURN_IF_ERROR(ExtentInFile(what, *entry, *file));
  // The pipeline asks for the chunks in order, so the CRC extends in order.
  uint32_t crc = 0;
  TP_RETURN_IF_ERROR(
      staging::StageToDevice(
          backend, pool, device_dst, nbytes,
          [&](char* chunk, size_t offset, size_t len) {
            TP_RETURN_IF_ERROR(
                file->Read(static_cast<uint64_t>(entry->offset) + offset, len,
                           chunk)
                    .Annotate("reading " + what));
            crc = crc32c::Extend(crc, chunk, len);
            return OkStatus();
          })
          .Annotate(context));
  return CheckCrc(what, *entry, crc);
}

Status BundleReader::CheckStored(std::string_view key) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, Lookup(key));
  const std::string what = "tensor " + Describe(key) + " of " + prefix_;
  if (entry->slices.empty()) {
    TP_ASSIGN_OR_RETURN(const RandomAccessFile* file,
                        DataFile(entry->shard_id));
    return ExtentInFile(what, *entry, *file);
  }
  int64_t total = 0;
  TP_RETURN_IF_ERROR(ValidateShape(entry->shape, &total));
  uint64_t stored = 0;  // elements in the slices, at most 2^63 * slices
  for (const TensorSlice& slice : entry->slices) {
    const std::string part_what = "slice " + SliceSpecString(slice) + " of " +
                                  what;
    const BundleEntry* part = Find(EncodeTensorNameSlice(key, slice));
    if (part == nullptr) return DataLossError(part_what + " is not stored");
    if (part->dtype != entry->dtype || !part->slices.empty() ||
        !(part->shape == SliceShape(slice, entry->shape))) {
      return DataLossError(part_what + " has a dtype or shape that disagrees "
                           "with its slice");
    }
    // The part's size was checked against its element count at Open, and
    // is checked against its file here, so `elements` is bounded by it.
    TP_ASSIGN_OR_RETURN(const RandomAccessFile* file,
                        DataFile(part->shard_id));
    TP_RETURN_IF_ERROR(ExtentInFile(part_what, *part, *file));
    int64_t elements = 0;
    TP_RETURN_IF_ERROR(ValidateShape(part->shape, &elements));
    stored += static_cast<uint64_t>(elements);
    if (stored >= static_cast<uint64_t>(total)) return OkStatus();
  }
  if (stored < static_cast<uint64_t>(total)) {
    return DataLossError(what + " has " + std::to_string(total) +
                         " elements but its slices only " +
                         std::to_string(stored));
  }
  return OkStatus();
}

Status BundleReader::ReadSliced(std::string_view key, const BundleEntry& entry,
                                char* dst) const {
  const size_t element_size = DataTypeSize(entry.dtype);
  int64_t total = 0;
  TP_RETURN_IF_ERROR(ValidateShape(entry.shape, &total));
  // Slices that do not overlap and add up to the element count cover the
  // tensor exactly.
  int64_t covered = 0;
  Result<std::optional<SlicePair>> overlap =
      FindOverlappingSlices(entry.slices, entry.shape);
  if (!overlap.ok()) {
    return overlap.status().Annotate("'" + std::string(key) + "' in " + prefix_);
  }
  if (const std::optional<SlicePair>& pair = *overlap) {
    return DataLossError("slices " +
                         SliceSpecString(entry.slices[pair->first]) + " and " +
                         SliceSpecString(entry.slices[pair->second]) + " of '" +
                         std::string(key) + "' in " + prefix_ + " overlap");
  }
  std::vector<char> scratch;
  for (const TensorSlice& slice : entry.slices) {
    const std::string what = "slice " + SliceSpecString(slice) + " of '" +
                             std::string(key) + "'";
    const BundleEntry* part = Find(EncodeTensorNameSlice(key, slice));
    if (part == nullptr) {
      return DataLossError(what + " is listed but not stored in " + prefix_);
    }
    if (part->dtype != entry.dtype || !part->slices.empty() ||
        !(part->shape == SliceShape(slice, entry.shape))) {
      return DataLossError(what + " in " + prefix_ +
                           " has a dtype or shape that disagrees with its "
                           "slice");
    }
    // The slice's size is checked against its file before it sizes a buffer.
    TP_ASSIGN_OR_RETURN(const RandomAccessFile* file, DataFile(part->shard_id));
    TP_RETURN_IF_ERROR(ExtentInFile(what, *part, *file));
    scratch.resize(static_cast<size_t>(part->size));
    TP_RETURN_IF_ERROR(ReadPayload(what, *part, scratch.data()));
    CopySliceIntoFull(scratch.data(), slice, entry.shape, element_size, dst);
    covered += part->size / static_cast<int64_t>(element_size);
  }
  if (covered != total) {
    return DataLossError("the slices of '" + std::string(key) + "' in " +
                         prefix_ + " cover " + std::to_string(covered) +
                         " of its " + std::to_string(total) + " elements");
  }
  return OkStatus();
}

Status BundleReader::ReadTensors(const std::vector<TensorRead>& reads,
                                 int num_threads) const {
  // Plain tensors become chunks read in parallel; partitioned ones are read
  // whole (their slices are separate payloads already).
  struct Chunk {
    size_t read;
    uint64_t offset;  // within the payload
    size_t size;
  };
  std::vector<const BundleEntry*> entries(reads.size(), nullptr);
  std::vector<Status> errors(reads.size());
  std::vector<Chunk> chunks;
  std::vector<size_t> first_chunk(reads.size());
  for (size_t i = 0; i < reads.size(); ++i) {
    first_chunk[i] = chunks.size();
    Result<const BundleEntry*> entry = Lookup(reads[i].key);
    if (!entry.ok()) {
      errors[i] = entry.status();
      continue;
    }
    entries[i] = *entry;
    const size_t element_size = DataTypeSize((*entry)->dtype);
    int64_t num_elements = 0;
    errors[i] = ValidateShape((*entry)->shape, &num_elements);
    if (errors[i].ok() &&
        (element_size == 0 ||
         static_cast<uint64_t>(num_elements) * element_size != reads[i].nbytes)) {
      errors[i] = InvalidArgumentError(
          "buffer of " + std::to_string(reads[i].nbytes) + " bytes given for " +
          Describe(reads[i].key) + " (a " + DataTypeName((*entry)->dtype) +
          " tensor of " + std::to_string(num_elements) + " elements)");
    }
    if (!errors[i].ok()) continue;
    const size_t size = reads[i].nbytes;
    if (!(*entry)->slices.empty() || size <= kReadChunk) {
      chunks.push_back({i, 0, size});
      continue;
    }
    for (uint64_t off = 0; off < size; off += kReadChunk) {
      chunks.push_back({i, off, std::min<size_t>(kReadChunk, size - off)});
    }
  }
  std::vector<uint32_t> chunk_crcs(chunks.size(), 0);
  std::vector<Status> chunk_errors(chunks.size());
  ParallelFor(chunks.size(), num_threads > 0 ? num_threads : DefaultIoThreads(),
              [&](size_t c) {
                const Chunk& chunk = chunks[c];
                const TensorRead& r = reads[chunk.read];
                const BundleEntry& e = *entries[chunk.read];
                char* dst = static_cast<char*>(r.dst);
                if (!e.slices.empty()) {
                  chunk_errors[c] = ReadSliced(r.key, e, dst);
                  return;
                }
                if (chunk.size == r.nbytes) {  // one chunk: the whole payload
                  chunk_errors[c] =
                      ReadPayload("tensor " + Describe(r.key), e, dst);
                  return;
                }
                Result<const RandomAccessFile*> file = DataFile(e.shard_id);
                if (!file.ok()) {
                  chunk_errors[c] = file.status();
                  return;
                }
                chunk_errors[c] =
                    (*file)
                        ->Read(static_cast<uint64_t>(e.offset) + chunk.offset,
                               chunk.size, dst + chunk.offset)
                        .Annotate("reading tensor " + Describe(r.key));
                if (chunk_errors[c].ok()) {
                  chunk_crcs[c] = crc32c::Value(dst + chunk.offset, chunk.size);
                }
              });
  // Chunked payloads: combine the chunk CRCs in order, then check and swap.
  for (size_t c = 0; c < chunks.size(); ++c) {
    const size_t i = chunks[c].read;
    if (!chunk_errors[c].ok() && errors[i].ok()) errors[i] = chunk_errors[c];
  }
  for (size_t i = 0; i < reads.size(); ++i) {
    if (!errors[i].ok() || entries[i] == nullptr) continue;
    const size_t begin = first_chunk[i];
    const size_t end = i + 1 < reads.size() ? first_chunk[i + 1] : chunks.size();
    if (end - begin <= 1) continue;  // verified by ReadPayload / ReadSliced
    uint32_t crc = chunk_crcs[begin];
    for (size_t c = begin + 1; c < end; ++c) {
      crc = crc32c::Combine(crc, chunk_crcs[c], chunks[c].size);
    }
    errors[i] = VerifyAndConvert("tensor " + Describe(reads[i].key),
                                 *entries[i], crc,
                                 static_cast<char*>(reads[i].dst));
  }
  for (const Status& s : errors) TP_RETURN_IF_ERROR(s);
  return OkStatus();
}

Result<std::string> BundleReader::ReadWholePayload(
    std::string_view key, const BundleEntry& entry, DataType dtype,
    const std::string& what) const {
  if (entry.dtype != dtype) {
    return InvalidArgumentError(what + " in " + prefix_ + " is " +
                                DataTypeName(entry.dtype) + ", not " +
                                DataTypeName(dtype));
  }
  if (!entry.slices.empty()) {
    return UnimplementedError(what + " in " + prefix_ + ": partitioned " +
                              DataTypeName(dtype) +
                              " tensors are not supported");
  }
  TP_ASSIGN_OR_RETURN(const RandomAccessFile* file, DataFile(entry.shard_id));
  // Check the extent against the file before sizing a buffer by it.
  if (static_cast<uint64_t>(entry.offset) > file->size() ||
      static_cast<uint64_t>(entry.size) >
          file->size() - static_cast<uint64_t>(entry.offset)) {
    return DataLossError(what + ": extent past the end of " + file->name() +
                         " (file truncated?)");
  }
  std::string payload(static_cast<size_t>(entry.size), '\0');
  TP_RETURN_IF_ERROR(file->Read(static_cast<uint64_t>(entry.offset),
                                payload.size(), payload.data()));
  return payload;
}

Result<std::vector<std::string>> BundleReader::ReadStringTensor(
    std::string_view key) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, Lookup(key));
  const std::string what = "tensor " + Describe(key);
  TP_ASSIGN_OR_RETURN(std::string payload,
                      ReadWholePayload(key, *entry, DataType::kString, what));
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(entry->shape, &num_elements));
  return DecodeStringTensor(
      payload, static_cast<uint64_t>(num_elements),
      crc32c::Unmask(entry->crc32c), header_.endianness == Endianness::kBig,
      what + " in " + DataFilename(prefix_, entry->shard_id, header_.num_shards));
}

Result<std::vector<std::string>> BundleReader::ReadVariantTensor(
    std::string_view key) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, Lookup(key));
  const std::string what = "tensor " + Describe(key);
  TP_ASSIGN_OR_RETURN(std::string payload,
                      ReadWholePayload(key, *entry, DataType::kVariant, what));
  int64_t num_elements = 0;
  TP_RETURN_IF_ERROR(ValidateShape(entry->shape, &num_elements));
  return DecodeVariantTensor(
      payload, static_cast<uint64_t>(num_elements),
      crc32c::Unmask(entry->crc32c), header_.endianness == Endianness::kBig,
      what + " in " + DataFilename(prefix_, entry->shard_id, header_.num_shards));
}

std::string BundleReader::DebugString() const {
  // As TensorFlow's BundleReader::DebugString: every index entry in key
  // order, the stored slices of a partitioned tensor under their own slice
  // keys and shapes, its full entry left out.
  std::string out;
  for (const Entry& e : entries_) {
    if (!e.second.slices.empty()) continue;
    out += e.first + " (" + DataTypeEnumName(e.second.dtype) + ") " +
           ShapeDebugString(e.second.shape) + "\n";
  }
  return out;
}

}  // namespace trackpoint
