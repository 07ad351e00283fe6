// BundleWriter: writes one tensor bundle (a checkpoint prefix P) in
// TensorFlow's format: P.data-00000-of-0000N ... and P.index.
//
// Files are written under temporary names (P.data-...tempstate<random>,
// P.index.tempstate<random>), and Finish() completes all of them, the index
// too, before it touches anything at P. Then it renames them into place:
// data shards first, the index last, so a reader that finds P.index finds a
// complete bundle. With sync (the default) every file is fsynced before its
// rename and the directory after, so a finished bundle survives a power cut.
// Writing over an existing bundle deletes its index before any data file is
// replaced: a failure while writing (a full disk, an I/O error) leaves the
// old bundle as it was, one while renaming leaves no P.index at all.
#ifndef TRACKPOINT_BUNDLE_WRITER_H_
#define TRACKPOINT_BUNDLE_WRITER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {

class WritableFile;
namespace staging {
class DeviceBackend;
class StagingPool;
}  // namespace staging

struct BundleWriterOptions {
  // Number of data files. Each Add names the shard its tensor goes to.
  int num_shards = 1;
  // Each payload starts at a multiple of this (1 = dense, as TensorFlow
  // writes). Padding bytes are zero and belong to no tensor.
  int64_t data_alignment = 1;
  // fsync data and index files before their renames, and the directory after.
  bool sync = true;
};

// Thread safety: not thread-safe; one thread adds and finishes.
class BundleWriter {
 public:
  // Creates the parent directory of prefix and the temporary data files.
  static Result<std::unique_ptr<BundleWriter>> Open(
      const std::string& prefix, const BundleWriterOptions& options = {});
  // Deletes the temporary files unless Finish() succeeded.
  ~BundleWriter();
  BundleWriter(const BundleWriter&) = delete;
  BundleWriter& operator=(const BundleWriter&) = delete;

  // Appends a tensor of a fixed-size dtype: data holds the elements in
  // row-major order, host byte order, nbytes == elements * DataTypeSize.
  // Keys must be unique and non-empty; they may come in any order.
  Status Add(std::string_view key, DataType dtype, const TensorShape& shape,
             const void* data, size_t nbytes, int shard = 0);
  // Like Add, for a tensor in accelerator memory: its nbytes bytes at
  // device_ptr are copied to the host in chunks of the pool's buffer size
  // (staging/pipeline.h), each chunk checksummed and appended to the shard
  // while the next ones are copied; the file is the same as Add would write
  // for the same bytes. A failed copy fails the bundle (the shard may hold
  // part of the payload): the error, naming the key, comes back here and
  // from Finish(), and dropping the writer deletes its files.
  // REQUIRES: pool was created on backend, both outlive the call;
  // device_ptr holds nbytes that stay unchanged, and are ready (every kernel
  // writing them has finished), during the call.
  Status AddFromDevice(std::string_view key, DataType dtype,
                       const TensorShape& shape, const void* device_ptr,
                       size_t nbytes, staging::DeviceBackend& backend,
                       staging::StagingPool& pool, int shard = 0);
  // Appends a string tensor (elements in row-major order).
  Status AddString(std::string_view key, const TensorShape& shape,
                   const std::vector<std::string_view>& elements,
                   int shard = 0);
  // Appends one slice of a partitioned tensor: data holds only the slice's
  // elements (row-major within the slice). The full entry under key records
  // every slice added for it; all must agree on dtype and full shape.
  Status AddSlice(std::string_view key, const TensorShape& full_shape,
                  const TensorSlice& slice, DataType dtype, const void* data,
                  size_t nbytes, int shard = 0);

  // Writes the index and renames every file into place. Errors from any
  // earlier call are returned here too (the first one wins).
  Status Finish();

  const std::string& prefix() const { return prefix_; }

 private:
  struct Shard {
    std::string final_name;
    std::string temp_name;
    std::unique_ptr<WritableFile> file;
    int64_t size = 0;
  };

  BundleWriter(std::string prefix, const BundleWriterOptions& options);
  Status CheckNewKey(std::string_view key, int shard);
  // Appends bytes to a shard, padding to the alignment first.
  Status BeginPayload(Shard& shard, int64_t* offset);
  Status AppendFixed(std::string key, DataType dtype, const TensorShape& shape,
                     const void* data, size_t nbytes, int shard);
  // Receives a payload's bytes in order, one chunk per call.
  using ChunkSink = std::function<Status(const char* chunk, size_t len)>;
  // Appends a fixed-size tensor of nbytes bytes, which produce passes, in
  // order, to the sink it is given; or, when host_data is given, the bytes
  // at host_data, checksummed and written in pieces on several threads.
  Status AppendPayload(std::string key, DataType dtype,
                       const TensorShape& shape, size_t nbytes, int shard,
                       const std::function<Status(const ChunkSink&)>& produce,
                       const char* host_data = nullptr);
  Status AddEntry(std::string key, BundleEntry entry);
  // Writes (and with sync, fsyncs) the index under index_temp_name_.
  Status WriteIndex();
  // Deletes every file of a failed bundle, renamed into place or not.
  void DeleteTempFiles();

  std::string prefix_;
  BundleWriterOptions options_;
  std::vector<Shard> shards_;
  // The index's temporary name once WriteIndex() has started, its final
  // name once renamed, empty after DeleteTempFiles().
  std::string index_temp_name_;
  std::map<std::string, BundleEntry, std::less<>> entries_;
  Status status_;
  bool finished_ = false;
};

// The name of data shard `shard` of `num_shards` for a prefix:
// "<prefix>.data-00000-of-00001" (at least five digits each).
std::string DataFilename(const std::string& prefix, int shard, int num_shards);
std::string IndexFilename(const std::string& prefix);

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_WRITER_H_
