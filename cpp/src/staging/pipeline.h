// Staging pipelines: device memory to a host consumer (save) and a host
// producer to device memory (restore), in chunks of a StagingPool's buffer
// size, with the device copies overlapped with the host work on the chunks.
//
// What runs concurrently with what. Let K be the number of pool buffers a
// call obtained (1 <= K <= the pool's size; it takes one, waiting if needed,
// then whatever more is free at that moment, at most one per chunk), and
// copy(i) the device copy of chunk i (on one stream, so copies run one after
// the other, in order, on the copy engine):
//
//   StageToHost (device -> host):   sink(i) runs on the calling thread while
//     copy(i+1) .. copy(i+K-1) are queued or running. Chunk i's buffer is
//     out of every copy's reach until sink(i) returns; then it receives
//     copy(i+K).
//
//       copy:  [c0][c1][c2][c3]   [c4] ...          (K = 3)
//       sink:      [s0  ][s1  ][s2  ][s3 ...
//
//   StageToDevice (host -> device): source(i) fills chunk i's buffer on the
//     calling thread while copy(i-K+1) .. copy(i-1) are queued or running;
//     a buffer is refilled only after its previous copy has completed.
//
//       source: [f0][f1][f2]  [f3]  ...             (K = 3)
//       copy:       [c0  ][c1  ][c2  ] ...
//
// So with copies taking D per chunk and the host work S, a transfer of C
// chunks takes about C * max(D, S) rather than C * (D + S), as long as K >= 2.
//
// Errors: the first error (a copy, the sink or source, creating a stream or
// event) stops the pipeline; before returning, the call waits for every copy
// it has enqueued, so no copy touches a buffer after it is back in the pool
// or the caller's memory after the call returns.
#ifndef TRACKPOINT_STAGING_PIPELINE_H_
#define TRACKPOINT_STAGING_PIPELINE_H_

#include <cstddef>
#include <functional>

#include "staging/device_backend.h"
#include "staging/staging_pool.h"

namespace trackpoint::staging {

// Receives the device bytes in order: host_chunk holds bytes
// [offset, offset + len) of the source, where offset is the sum of the
// earlier lens. host_chunk is valid only during the call. A non-OK status
// stops the pipeline and is returned as is.
using HostSink = std::function<Status(const char* host_chunk, size_t len)>;

// Fills host_chunk with bytes [offset, offset + len) of what goes to the
// device. A non-OK status stops the pipeline and is returned as is.
using HostSource =
    std::function<Status(char* host_chunk, size_t offset, size_t len)>;

// Copies n bytes at device_src to the host, chunk by chunk, into sink. n == 0
// calls sink never. On error the sink may have seen a prefix of the bytes.
// REQUIRES: pool was created on backend; device_src holds n bytes that stay
// unchanged (and ready: see the backend on stream ordering) during the call.
Status StageToHost(DeviceBackend& backend, StagingPool& pool,
                   const void* device_src, size_t n, const HostSink& sink);

// Copies n bytes produced by source to device_dst, chunk by chunk. Returns
// once every byte is on the device. On error the device memory may hold a
// prefix of the bytes.
// REQUIRES: pool was created on backend; device_dst holds n bytes.
Status StageToDevice(DeviceBackend& backend, StagingPool& pool,
                     void* device_dst, size_t n, const HostSource& source);

}  // namespace trackpoint::staging

#endif  // TRACKPOINT_STAGING_PIPELINE_H_
