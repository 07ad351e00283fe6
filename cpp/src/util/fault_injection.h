// Fault injection into the POSIX files of util/file.h, for tests: a full or
// failing disk, failing fsyncs and renames. The string files of
// string_file.h are never affected.
#ifndef TRACKPOINT_UTIL_FAULT_INJECTION_H_
#define TRACKPOINT_UTIL_FAULT_INJECTION_H_

#include <cstddef>
#include <cstdint>

namespace trackpoint {

// A process-wide hook that makes the POSIX files above fail the way a full or
// failing disk does. Once `after_bytes` more bytes have been written through
// NewWritableFile files (counted from the call, all files together):
//   kWriteNoSpace / kWriteIoError: the write that crosses the budget writes
//     the bytes below it, then fails with ENOSPC / EIO, and so does every
//     later write;
//   kSyncIoError: every fsync of a WritableFile fails with EIO;
//   kDirSyncIoError: every SyncDir fails with EIO;
//   kRenameIoError: every RenameFile fails with EIO.
// kNone (or a new call) disarms it. The string-backed files are not
// affected. Thread safety: may be called from any thread; files see the
// change at their next write, sync or rename.
enum class IoFault {
  kNone,
  kWriteNoSpace,
  kWriteIoError,
  kSyncIoError,
  kDirSyncIoError,
  kRenameIoError,
};
void SetIoFaultForTesting(IoFault fault, uint64_t after_bytes);

namespace fault_injection {

// The hooks util/file.cc calls; each is one atomic load while nothing
// is injected.
// Before writing n bytes: how many of them may reach the file; *fail_errno
// is set to the errno to fail with after those (0: none).
size_t AllowWrite(size_t n, int* fail_errno);
// True when `fault` is injected and its byte budget is spent.
bool Armed(IoFault fault);

}  // namespace fault_injection
}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_FAULT_INJECTION_H_
