#include "bundle/slice_copy.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
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

// A slice's [start, end) along one dimension, full extents resolved.
struct Span {
  int64_t start;
  int64_t end;
};

// The slices' spans along dimension d.
std::vector<Span> SpansAlong(const std::vector<TensorSlice>& slices, size_t d,
                             const TensorShape& full) {
  std::vector<Span> spans(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    const SliceExtent& e = slices[i].extents[d];
    spans[i] = e.length == SliceExtent::kFullExtent
                   ? Span{0, full.dims[d]}
                   : Span{e.start, e.start + e.length};
  }
  return spans;
}

// About how many SlicesOverlap calls a sweep along d makes when nothing
// overlaps: for each slice, the slices that start no later and end after
// its start.
uint64_t SweepCost(const std::vector<Span>& spans) {
  std::vector<int64_t> starts;
  std::vector<int64_t> ends;
  for (const Span& s : spans) {
    starts.push_back(s.start);
    ends.push_back(s.end);
  }
  std::sort(starts.begin(), starts.end());
  std::sort(ends.begin(), ends.end());
  uint64_t cost = 0;
  size_t started = 0;  // slices that start by `at`
  size_t ended = 0;    // slices that end by `at`: all of them started by it
  for (int64_t at : starts) {
    while (started < starts.size() && starts[started] <= at) ++started;
    while (ended < ends.size() && ends[ended] <= at) ++ended;
    cost += started - ended;
  }
  return cost;
}

// The smallest index that overlaps a smaller one, or slices.size() when none
// does; kGaveUp once *budget comparisons are spent. Visits the slices by start along one dimension (spans `along`),
// comparing each only with the slices visited before it that have not ended
// by its start there: every other one lies wholly before it. Of those, only
// the ones whose span `across` a second dimension could meet its own are
// compared. Once some overlap is known, slices at or past its larger index
// are left out.
constexpr size_t kGaveUp = SIZE_MAX;

size_t FirstOverlapping(const std::vector<TensorSlice>& slices,
                        const std::vector<Span>& along,
                        const std::vector<Span>& across,
                        const TensorShape& full, uint64_t* budget) {
  std::vector<std::pair<int64_t, size_t>> order;  // (start along, index)
  for (size_t i = 0; i < slices.size(); ++i) {
    order.emplace_back(along[i].start, i);
  }
  std::sort(order.begin(), order.end());
  int64_t longest = 0;  // across
  for (const Span& s : across) longest = std::max(longest, s.end - s.start);
  if (longest == 0) return slices.size();  // empty slices share nothing
  size_t best = slices.size();
  // The visited slices that have not ended yet: a min-heap on their end
  // along, and ordered by their start across.
  std::vector<size_t> active;
  std::set<std::pair<int64_t, size_t>> active_across;
  auto ends_later = [&](size_t a, size_t b) {
    return along[a].end > along[b].end;
  };
  for (const auto& [start, i] : order) {
    if (i >= best) continue;
    while (!active.empty() && along[active.front()].end <= start) {
      active_across.erase({across[active.front()].start, active.front()});
      std::pop_heap(active.begin(), active.end(), ends_later);
      active.pop_back();
    }
    // One that meets i across starts before i ends and ends (so starts less
    // than `longest` before) after i starts.
    auto it = active_across.lower_bound({across[i].start - longest + 1, 0});
    const auto stop = active_across.lower_bound({across[i].end, 0});
    for (; it != stop; ++it) {
      if ((*budget)-- == 0) return kGaveUp;
      const size_t j = it->second;
      if (j < best && SlicesOverlap(slices[i], slices[j], full)) {
        best = std::max(i, j);
        if (i >= best) break;
      }
    }
    if (i >= best) continue;
    active.push_back(i);
    std::push_heap(active.begin(), active.end(), ends_later);
    active_across.insert({across[i].start, i});
  }
  return best;
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

Result<std::optional<SlicePair>> FindOverlappingSlices(
    const std::vector<TensorSlice>& slices, const TensorShape& full,
    uint64_t max_comparisons) {
  const size_t n = slices.size();
  if (n < 2) return std::optional<SlicePair>();
  // Every slice of a scalar is the whole scalar.
  if (full.dims.empty()) return std::optional<SlicePair>(SlicePair{0, 1});
  // Sweep along the dimension where the fewest slices would be compared,
  // and narrow the comparisons by the next best.
  std::vector<uint64_t> cost;
  for (size_t d = 0; d < full.dims.size(); ++d) {
    cost.push_back(SweepCost(SpansAlong(slices, d, full)));
  }
  const size_t along =
      std::min_element(cost.begin(), cost.end()) - cost.begin();
  size_t across = along;
  for (size_t d = 0; d < cost.size(); ++d) {
    if (d != along && (across == along || cost[d] < cost[across])) across = d;
  }
  uint64_t budget = max_comparisons;
  const size_t second =
      FirstOverlapping(slices, SpansAlong(slices, along, full),
                       SpansAlong(slices, across, full), full, &budget);
  if (second == kGaveUp) {
    return ResourceExhaustedError(
        "checking " + std::to_string(n) + " slices for overlaps took more "
        "than " + std::to_string(max_comparisons) + " comparisons; a layout "
        "this costly is refused rather than checked");
  }
  if (second == n) return std::optional<SlicePair>();
  for (size_t first = 0; first < second; ++first) {
    if (SlicesOverlap(slices[first], slices[second], full)) {
      return std::optional<SlicePair>(SlicePair{first, second});
    }
  }
  return std::optional<SlicePair>();  // not reached: second overlaps a smaller index
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
