// MergeBundles. What it writes:
//
// P.data-<j>-of-<M>: part data files, renamed (never copied or rewritten).
//   j numbers the distinct data files in first-seen order: parts in the
//   order given, and within a part its entries in key order (slice keys,
//   which start with 00, first), as TensorFlow numbers them.
// P.index: a table (table/table_builder.h) whose first key is "" holding
//   BundleHeaderProto {num_shards: M, endianness and version of the parts},
//   then every entry of every part in key order, re-serialized canonically,
//   with shard_id replaced by the new number of its data file. A
//   partitioned tensor's full entry {dtype, full shape, slices} appears once,
//   its slices concatenated in part order; its slice entries are ordinary
//   entries and move like any other.
//
// Commit order: write P.index.tempstate<random> and fsync it; only then,
// when nothing is left that can fail for lack of space, delete an existing
// P.index, sync the directory, rename the data files and the index, sync
// the directory. A merge that fails before the delete leaves a checkpoint
// already at P as it was.
#include "bundle/merge.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "bundle/slice_copy.h"
#include "bundle/slice_key.h"
#include "proto/bundle_proto.h"
#include "table/table_builder.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_writer.h"
#include "util/file.h"

namespace trackpoint {
namespace {

std::string Describe(std::string_view key) {
  std::string name;
  TensorSlice slice;
  if (IsSliceKey(key) && DecodeTensorNameSlice(key, &name, &slice)) {
    return "slice " + SliceSpecString(slice) + " of '" + name + "'";
  }
  return "'" + std::string(key) + "'";
}

std::string ShapeString(const TensorShape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.dims.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape.dims[i]);
  }
  return out + "]";
}

// The merged index while it is being assembled.
struct MergedIndex {
  BundleHeader header;
  std::string first_part;  // fixes byte order and version
  std::string version_bytes;
  std::map<std::string, BundleEntry> entries;
  std::vector<std::string> data_files;  // old names, by new shard id
  std::map<std::string, int32_t> data_file_ids;

  int32_t DataFileId(const std::string& old_name) {
    auto [it, inserted] = data_file_ids.emplace(
        old_name, static_cast<int32_t>(data_files.size()));
    if (inserted) data_files.push_back(old_name);
    return it->second;
  }
};

// Every entry of a part, slice entries included, in key order.
Result<std::vector<std::pair<std::string, const BundleEntry*>>> AllEntries(
    const BundleReader& part) {
  std::vector<std::pair<std::string, const BundleEntry*>> all;
  for (std::string& key : part.Keys()) {
    const BundleEntry* entry = part.Find(key);
    for (const TensorSlice& slice : entry->slices) {
      std::string slice_key = EncodeTensorNameSlice(key, slice);
      const BundleEntry* stored = part.Find(slice_key);
      if (stored == nullptr) {
        return DataLossError("slice " + SliceSpecString(slice) + " of '" + key +
                             "' is listed but not stored in " + part.prefix());
      }
      all.emplace_back(std::move(slice_key), stored);
    }
    all.emplace_back(std::move(key), entry);
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return all;
}

Status AddPart(const BundleReader& part, MergedIndex* merged) {
  const BundleHeader& header = part.header();
  const std::string version = SerializeVersionDef(header.version);
  if (merged->first_part.empty()) {
    merged->first_part = part.prefix();
    merged->header.endianness = header.endianness;
    merged->header.version = header.version;
    merged->version_bytes = version;
  } else if (header.endianness != merged->header.endianness) {
    return FailedPreconditionError("cannot merge " + part.prefix() + " with " +
                                   merged->first_part +
                                   ": they were written in different byte "
                                   "orders");
  } else if (version != merged->version_bytes) {
    return FailedPreconditionError("cannot merge " + part.prefix() + " with " +
                                   merged->first_part +
                                   ": their bundle versions differ");
  }
  TP_ASSIGN_OR_RETURN(auto entries, AllEntries(part));
  for (const auto& [key, entry] : entries) {
    auto it = merged->entries.find(key);
    if (it != merged->entries.end()) {
      BundleEntry& existing = it->second;
      if (existing.slices.empty() || entry->slices.empty()) {
        return FailedPreconditionError("tensor " + Describe(key) +
                                       " is in more than one part (again in " +
                                       part.prefix() + ")");
      }
      if (existing.dtype != entry->dtype || !(existing.shape == entry->shape)) {
        return FailedPreconditionError(
            "partitioned tensor " + Describe(key) + " is " +
            DataTypeName(existing.dtype) + ShapeString(existing.shape) +
            " in an earlier part but " + DataTypeName(entry->dtype) +
            ShapeString(entry->shape) + " in " + part.prefix());
      }
      existing.slices.insert(existing.slices.end(), entry->slices.begin(),
                             entry->slices.end());
      continue;
    }
    BundleEntry copy = *entry;
    // A full entry's shard_id means nothing; TensorFlow still renumbers it.
    if (copy.shard_id >= 0 && copy.shard_id < header.num_shards) {
      copy.shard_id = merged->DataFileId(
          DataFilename(part.prefix(), copy.shard_id, header.num_shards));
    } else {
      copy.shard_id = 0;
    }
    merged->entries.emplace(key, std::move(copy));
  }
  return OkStatus();
}

// The slices of every partitioned tensor must tile it exactly.
Status CheckSlices(const MergedIndex& merged) {
  for (const auto& [key, entry] : merged.entries) {
    if (entry.slices.empty()) continue;
    int64_t total = 0;
    TP_RETURN_IF_ERROR(ValidateShape(entry.shape, &total));
    Result<std::optional<SlicePair>> overlap =
        FindOverlappingSlices(entry.slices, entry.shape);
    if (!overlap.ok()) return overlap.status().Annotate("'" + key + "'");
    if (const std::optional<SlicePair>& pair = *overlap) {
      return FailedPreconditionError(
          "slices " + SliceSpecString(entry.slices[pair->first]) + " and " +
          SliceSpecString(entry.slices[pair->second]) + " of '" + key +
          "' overlap");
    }
    int64_t covered = 0;
    for (const TensorSlice& slice : entry.slices) {
      int64_t n = 1;
      for (int64_t d : SliceShape(slice, entry.shape).dims) n *= d;
      covered += n;
    }
    if (covered != total) {
      return FailedPreconditionError("the slices of '" + key + "' cover " +
                                     std::to_string(covered) + " of its " +
                                     std::to_string(total) + " elements");
    }
  }
  return OkStatus();
}

// Writes the merged index under a temporary name next to P.index (fsynced
// when sync) and returns that name; on failure nothing is left.
Result<std::string> WriteIndexTemp(const MergedIndex& merged,
                                   const std::string& prefix, bool sync) {
  const std::string temp_name =
      IndexFilename(prefix) + ".tempstate" + std::to_string(RandomU64());
  TP_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                      NewWritableFile(temp_name));
  BundleHeader header = merged.header;
  header.num_shards = static_cast<int32_t>(merged.data_files.size());
  table::TableBuilder builder(file.get());
  Status s = builder.Add("", SerializeBundleHeader(header));
  for (const auto& [key, entry] : merged.entries) {
    if (!s.ok()) break;
    s = builder.Add(key, SerializeBundleEntry(entry));
  }
  if (s.ok()) s = builder.Finish();
  if (s.ok() && sync) s = file->Sync();
  Status closed = file->Close();
  if (s.ok()) s = closed;
  if (!s.ok()) {
    DeleteFile(temp_name);
    return s;
  }
  return temp_name;
}

Status Commit(const MergedIndex& merged, const std::string& prefix, bool sync) {
  const std::string dir = Dirname(prefix);
  TP_RETURN_IF_ERROR(CreateDirs(dir).Annotate("merging into " + prefix));
  Result<std::string> temp_index = WriteIndexTemp(merged, prefix, sync);
  if (!temp_index.ok()) {
    return temp_index.status().Annotate("merging into " + prefix);
  }
  // No reader may pair an old index with new data files, nor the new index
  // with old ones: each step is durable (with sync) before the next, as in
  // BundleWriter::Finish. The old index goes first only when a data file
  // takes an existing name; a crash after it went leaves the new index
  // complete at its temporary name.
  const std::string index_name = IndexFilename(prefix);
  const int num_files = static_cast<int>(merged.data_files.size());
  bool replaces_data = false;
  for (int i = 0; i < num_files; ++i) {
    replaces_data =
        replaces_data || FileExists(DataFilename(prefix, i, num_files));
  }
  Status s;
  if (replaces_data && FileExists(index_name)) {
    if (sync) s = SyncDir(dir);  // the temporary index's name is durable
    if (s.ok()) s = DeleteFile(index_name);
    if (s.ok() && sync) s = SyncDir(dir);
  }
  size_t moved = 0;
  while (s.ok() && moved < merged.data_files.size()) {
    s = RenameFile(merged.data_files[moved],
                   DataFilename(prefix, static_cast<int>(moved), num_files));
    if (s.ok()) ++moved;
  }
  if (s.ok() && sync) s = SyncDir(dir);
  bool index_renamed = false;
  if (s.ok()) {
    s = RenameFile(*temp_index, index_name);
    index_renamed = s.ok();
  }
  if (s.ok() && sync) s = SyncDir(dir);
  if (!s.ok() && !index_renamed) DeleteFile(*temp_index);
  if (!s.ok() && !index_renamed) {
    // Give the parts their data files back, so that nothing half-merged
    // stays under the final names.
    for (size_t i = 0; i < moved; ++i) {
      RenameFile(DataFilename(prefix, static_cast<int>(i), num_files),
                 merged.data_files[i]);
    }
  }
  return s.Annotate("merging into " + prefix);
}

}  // namespace

Status MergeBundles(const std::vector<std::string>& part_prefixes,
                    const std::string& prefix, const MergeOptions& options) {
  if (part_prefixes.empty()) {
    return InvalidArgumentError("no bundles to merge into " + prefix);
  }
  MergedIndex merged;
  std::vector<std::pair<std::string, int32_t>> parts;  // prefix, num_shards
  for (const std::string& part_prefix : part_prefixes) {
    if (part_prefix == prefix) {
      return InvalidArgumentError("cannot merge bundle " + prefix +
                                  " into itself");
    }
    TP_ASSIGN_OR_RETURN(std::unique_ptr<BundleReader> part,
                        BundleReader::Open(part_prefix));
    TP_RETURN_IF_ERROR(AddPart(*part, &merged));
    parts.emplace_back(part_prefix, part->header().num_shards);
  }
  if (options.check_slices) TP_RETURN_IF_ERROR(CheckSlices(merged));
  if (merged.data_files.empty() && parts[0].second > 0) {
    // No entries at all: keep one (empty) data file, as a writer would.
    merged.DataFileId(DataFilename(parts[0].first, 0, parts[0].second));
  }
  TP_RETURN_IF_ERROR(Commit(merged, prefix, options.sync));
  if (options.delete_inputs) {
    for (const auto& [part_prefix, num_shards] : parts) {
      DeleteFile(IndexFilename(part_prefix));
      for (int i = 0; i < num_shards; ++i) {
        const std::string name = DataFilename(part_prefix, i, num_shards);
        if (!merged.data_file_ids.count(name)) DeleteFile(name);
      }
    }
  }
  return OkStatus();
}

}  // namespace trackpoint
