// A decompressor for raw-format Snappy (the block format LevelDB-style tables
// use for compression type 1), written from the format description. There is
// no compressor: trackpoint never writes compressed blocks.
#ifndef TRACKPOINT_TABLE_SNAPPY_H_
#define TRACKPOINT_TABLE_SNAPPY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trackpoint/status.h"

namespace trackpoint {
namespace table {

// The uncompressed length a Snappy stream announces in its preamble;
// DataLoss if the preamble is malformed. The stream itself is not checked.
Result<uint64_t> SnappyUncompressedLength(std::string_view compressed);

// Decompresses a whole raw Snappy stream. Every malformed input is DataLoss:
// a bad preamble, a claimed length above max_length or above what
// compressed.size() bytes can expand to (checked before anything is
// allocated), truncated elements, copies reaching before the start of the
// output, and output longer or shorter than the preamble says.
// Thread safety: a pure function.
Result<std::string> SnappyUncompress(std::string_view compressed,
                                     size_t max_length);

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_SNAPPY_H_
