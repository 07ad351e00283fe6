#include "bundle/slice_copy.h"

#include <cstring>
#include <vector>

namespace trackpoint {
namespace {

// Calls copy(full_offset_bytes, slice_offset_bytes, run_bytes) once per
// contiguous run of the slice (a run spans its innermost dimension).
template <typename F>
void ForEachRun(const TensorSlice& slice, const TensorShape& full,
                size_t element_size, F copy) {
  const size_t rank = full.dims.size();
  TensorShape shape = SliceShape(slice, full);
  for (int64_t d : shape.dims) {
    if (d == 0) return;
  }
  if (rank == 0) {
    copy(0, 0, element_size);
    return;
  }
  // Row-major strides of the full tensor, in elements.
  std::vector<int64_t> stride(rank, 1);
  for (size_t d = rank - 1; d > 0; --d) stride[d - 1] = stride[d] * full.dims[d];
  const size_t run = static_cast<size_t>(shape.dims[rank - 1]) * element_size;
  std::vector<int64_t> index(rank, 0);  // position inside the slice
  size_t slice_offset = 0;
  while (true) {
    int64_t full_offset = 0;
    for (size_t d = 0; d < rank; ++d) {
      const SliceExtent& e = slice.extents[d];
      full_offset += (e.start + index[d]) * stride[d];
    }
    copy(static_cast<size_t>(full_offset) * element_size, slice_offset, run);
    slice_offset += run;
    // Advance the odometer over every dimension but the innermost.
    size_t d = rank - 1;
    while (d > 0) {
      --d;
      if (++index[d] < shape.dims[d]) break;
      index[d] = 0;
      if (d == 0) return;
    }
    if (rank == 1) return;
  }
}

}  // namespace

TensorShape SliceShape(const TensorSlice& slice, const TensorShape& full) {
  TensorShape shape;
  for (size_t d = 0; d < full.dims.size(); ++d) {
    const SliceExtent& e = slice.extents[d];
    shape.dims.push_back(e.length == SliceExtent::kFullExtent ? full.dims[d]
                                                              : e.length);
  }
  return shape;
}

bool SlicesOverlap(const TensorSlice& a, const TensorSlice& b,
                   const TensorShape& full) {
  for (size_t d = 0; d < full.dims.size(); ++d) {
    const SliceExtent& x = a.extents[d];
    const SliceExtent& y = b.extents[d];
    const int64_t x_end =
        x.length == SliceExtent::kFullExtent ? full.dims[d] : x.start + x.length;
    const int64_t y_end =
        y.length == SliceExtent::kFullExtent ? full.dims[d] : y.start + y.length;
    if (x_end <= y.start || y_end <= x.start) return false;
  }
  return true;
}

void CopySliceIntoFull(const char* src, const TensorSlice& slice,
                       const TensorShape& full, size_t element_size,
                       char* dst) {
  ForEachRun(slice, full, element_size,
             [&](size_t full_off, size_t slice_off, size_t n) {
               std::memcpy(dst + full_off, src + slice_off, n);
             });
}

void CopySliceOutOfFull(const char* src, const TensorSlice& slice,
                        const TensorShape& full, size_t element_size,
                        char* dst) {
  ForEachRun(slice, full, element_size,
             [&](size_t full_off, size_t slice_off, size_t n) {
               std::memcpy(dst + slice_off, src + full_off, n);
             });
}

}  // namespace trackpoint
