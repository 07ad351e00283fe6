// Slice keys and slice spec strings; the layouts are described in
// slice_key.h.
#include "bundle/slice_key.h"

#include <charconv>
#include <cstdint>

#include "bundle/ordered_code.h"

namespace trackpoint {
namespace {

// Parses all of text as a decimal int64 (optional leading '-').
bool ParseInt64(std::string_view text, int64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

Status SpecError(std::string_view spec, std::string_view why) {
  return InvalidArgumentError("invalid slice spec \"" + std::string(spec) +
                              "\": " + std::string(why));
}

}  // namespace

std::string EncodeTensorNameSlice(std::string_view name,
                                  const TensorSlice& slice) {
  std::string key;
  ordered_code::WriteNumIncreasing(&key, 0);
  ordered_code::WriteString(&key, name);
  ordered_code::WriteNumIncreasing(&key, slice.extents.size());
  for (const SliceExtent& e : slice.extents) {
    if (e.length == SliceExtent::kFullExtent) {
      ordered_code::WriteSignedNumIncreasing(&key, 0);
      ordered_code::WriteSignedNumIncreasing(&key, SliceExtent::kFullExtent);
    } else {
      ordered_code::WriteSignedNumIncreasing(&key, e.start);
      ordered_code::WriteSignedNumIncreasing(&key, e.length);
    }
  }
  return key;
}

bool DecodeTensorNameSlice(std::string_view key, std::string* name,
                           TensorSlice* slice) {
  uint64_t marker, rank;
  if (!ordered_code::ReadNumIncreasing(&key, &marker) || marker != 0 ||
      !ordered_code::ReadString(&key, name) ||
      !ordered_code::ReadNumIncreasing(&key, &rank)) {
    return false;
  }
  // Each extent takes at least two bytes: reject an impossible rank before
  // it sizes anything.
  if (rank > key.size() / 2) return false;
  slice->extents.clear();
  for (uint64_t d = 0; d < rank; ++d) {
    SliceExtent e;
    if (!ordered_code::ReadSignedNumIncreasing(&key, &e.start) ||
        !ordered_code::ReadSignedNumIncreasing(&key, &e.length)) {
      return false;
    }
    if (e.length == SliceExtent::kFullExtent) e.start = 0;
    slice->extents.push_back(e);
  }
  return key.empty();
}

Result<TensorSlice> ParseSliceSpec(std::string_view spec) {
  TensorSlice slice;
  if (spec.empty()) return slice;
  std::string_view rest = spec;
  for (;;) {
    const size_t colon = rest.find(':');
    const std::string_view part = rest.substr(0, colon);
    SliceExtent e;
    if (part != "-") {
      const size_t comma = part.find(',');
      if (comma == std::string_view::npos ||
          !ParseInt64(part.substr(0, comma), &e.start) ||
          !ParseInt64(part.substr(comma + 1), &e.length)) {
        return SpecError(spec, "expected \"start,length\" or \"-\", got \"" +
                                   std::string(part) + "\"");
      }
      if (e.start < 0 || e.length < 0) {
        return SpecError(spec, "start and length must be >= 0 in \"" +
                                   std::string(part) + "\"");
      }
    }
    slice.extents.push_back(e);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return slice;
}

std::string SliceSpecString(const TensorSlice& slice) {
  std::string out;
  for (size_t d = 0; d < slice.extents.size(); ++d) {
    const SliceExtent& e = slice.extents[d];
    if (d > 0) out += ':';
    if (e.length == SliceExtent::kFullExtent) {
      out += '-';
    } else {
      out += std::to_string(e.start);
      out += ',';
      out += std::to_string(e.length);
    }
  }
  return out;
}

}  // namespace trackpoint
