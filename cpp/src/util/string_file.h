// In-memory files: a WritableFile appending to a string and a RandomAccessFile
// over one, so the table and bundle code is tested without a disk (and small
// files are built in memory).
#ifndef TRACKPOINT_UTIL_STRING_FILE_H_
#define TRACKPOINT_UTIL_STRING_FILE_H_

#include <memory>
#include <string>

#include "util/file.h"

namespace trackpoint {

// A WritableFile that appends into a caller-owned string (for tests and for
// building small files in memory). The string must outlive the file.
std::unique_ptr<WritableFile> NewStringWritableFile(std::string* contents,
                                                    std::string name);
// A RandomAccessFile over a copy of contents.
std::unique_ptr<RandomAccessFile> NewStringRandomAccessFile(
    std::string contents, std::string name);

}  // namespace trackpoint

#endif  // TRACKPOINT_UTIL_STRING_FILE_H_
