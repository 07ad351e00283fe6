// BundleReader: reads a tensor bundle (checkpoint prefix P) written by
// TensorFlow or by BundleWriter.
//
// Open() reads and checks the whole index once; tensors are then read on
// demand from P.data-* files, opened when first needed. Every read checks the
// payload's CRC32C and converts a big-endian bundle to host order.
#ifndef TRACKPOINT_BUNDLE_READER_H_
#define TRACKPOINT_BUNDLE_READER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trackpoint/bundle_types.h"
#include "trackpoint/status.h"

namespace trackpoint {

class RandomAccessFile;
namespace staging {
class DeviceBackend;
class StagingPool;
}  // namespace staging

// Thread safety: after Open, every const method may be called from several
// threads at once.
class BundleReader {
 public:
  // Errors: NotFound if P.index is missing; DataLoss if it is not a valid
  // bundle index (bad magic, checksum mismatch, malformed entry, ...).
  static Result<std::unique_ptr<BundleReader>> Open(const std::string& prefix);
  ~BundleReader();
  BundleReader(const BundleReader&) = delete;
  BundleReader& operator=(const BundleReader&) = delete;

  const std::string& prefix() const { return prefix_; }
  const BundleHeader& header() const { return header_; }

  // Tensor keys in byte order; the per-slice entries of partitioned tensors
  // are not listed (their full entry is).
  std::vector<std::string> Keys() const;
  // nullptr when the bundle has no such key.
  const BundleEntry* Find(std::string_view key) const;
  // Like Find, but a NotFound error naming the key and the bundle.
  Result<const BundleEntry*> Lookup(std::string_view key) const;

  // Reads a tensor of a fixed-size dtype into dst, which must hold exactly
  // its bytes (elements * DataTypeSize). A partitioned tensor is assembled
  // from its slices, which must cover it.
  Status ReadTensor(std::string_view key, void* dst, size_t nbytes) const;
  // Like ReadTensor, into accelerator memory: the payload is read from its
  // data file in chunks of the pool's buffer size, each straight into a
  // pinned buffer, checksummed there and copied to device_dst while the
  // next chunk is read (staging/pipeline.h). The CRC32C covers the whole
  // payload, so it is verified at the end: on a mismatch device_dst holds
  // every byte, unverified, and the call fails with DataLoss naming the key
  // and the data file. A partitioned tensor, or a bundle of the other byte
  // order, is assembled and verified on the host first, then copied.
  // REQUIRES: pool was created on backend; device_dst holds nbytes that
  // nothing else uses during the call.
  Status ReadTensorToDevice(std::string_view key, void* device_dst,
                            size_t nbytes, staging::DeviceBackend& backend,
                            staging::StagingPool& pool) const;
  // Checks, before a caller allocates a buffer sized by key's shape, that
  // the bytes the index claims for it lie inside its data file(s): its own
  // extent, or for a partitioned tensor each slice's, and that the slices
  // hold at least as many elements as the tensor. DataLoss otherwise (an
  // entry claiming 10^18 elements of a small file). Opens the data files.
  Status CheckStored(std::string_view key) const;
  // One tensor for ReadTensors: its key and the buffer that receives it.
  struct TensorRead {
    std::string key;
    void* dst;
    size_t nbytes;
  };
  // Reads many fixed-size tensors at once, in parallel on num_threads
  // threads (0: a default for I/O), each straight into its buffer; large
  // payloads are split into chunks read and checksummed concurrently.
  // Returns the first error in request order; on error the contents of
  // every buffer are unspecified.
  Status ReadTensors(const std::vector<TensorRead>& reads,
                     int num_threads = 0) const;

  // Reads a string tensor: its elements in row-major order.
  Result<std::vector<std::string>> ReadStringTensor(std::string_view key) const;
  // Reads a DT_VARIANT tensor: each element's serialized
  // VariantTensorDataProto, in row-major order, every checksum verified.
  Result<std::vector<std::string>> ReadVariantTensor(
      std::string_view key) const;

  // "<key> (DT_FLOAT) [2,3]\n" per entry, as TensorFlow's reader prints it
  // (slice entries of partitioned tensors under their raw slice keys).
  std::string DebugString() const;

  // Closes the data files opened by reads so far (the index stays in
  // memory); a later read opens them again. Lets a reader kept for later
  // reads hold no file open in between.
  // REQUIRES: no read on this reader is in progress.
  void CloseDataFiles();

 private:
  using Entry = std::pair<std::string, BundleEntry>;

  explicit BundleReader(std::string prefix);
  Status LoadIndex();
  Status CheckEntry(const std::string& key, const BundleEntry& entry) const;
  // The data file of a shard, opened on first use.
  Result<const RandomAccessFile*> DataFile(int32_t shard_id) const;
  // Reads one stored (non-partitioned) payload into dst and verifies it.
  Status ReadPayload(const std::string& what, const BundleEntry& entry,
                     char* dst) const;
  // DataLoss naming the tensor and its file unless `actual` is the CRC32C
  // the index stores for entry's payload.
  Status CheckCrc(const std::string& what, const BundleEntry& entry,
                  uint32_t actual) const;
  // InvalidArgument unless key holds a fixed-size tensor of nbytes bytes.
  Status CheckFixedSize(std::string_view key, const BundleEntry& entry,
                        size_t nbytes) const;
  // Checks a payload's CRC (computed as `actual`) and converts a bundle of
  // the other byte order in place.
  Status VerifyAndConvert(const std::string& what, const BundleEntry& entry,
                          uint32_t actual, char* dst) const;
  // The stored bytes of a non-partitioned tensor of dtype, extent checked.
  Result<std::string> ReadWholePayload(std::string_view key,
                                       const BundleEntry& entry,
                                       DataType dtype,
                                       const std::string& what) const;
  Status ReadSliced(std::string_view key, const BundleEntry& entry,
                    char* dst) const;
  std::string Describe(std::string_view key) const;

  std::string prefix_;
  BundleHeader header_;
  std::vector<Entry> entries_;  // sorted by key, slice entries included
  mutable std::mutex mu_;
  mutable std::unordered_map<int32_t, std::unique_ptr<RandomAccessFile>>
      data_files_;
};

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_READER_H_
