#include "bundle/slice_copy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bundle/slice_key.h"
#include "bundle/slice_reader.h"
#include "test_util.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/bundle_writer.h"

namespace trackpoint {
namespace {

TensorSlice Slice(std::vector<SliceExtent> extents) { return {extents}; }

TEST(SliceCopyTest, ScattersRowsOfAMatrix) {
  TensorShape full{{4, 3}};
  TensorSlice rows = Slice({{1, 2}, {0, SliceExtent::kFullExtent}});
  EXPECT_EQ(SliceShape(rows, full).dims, (std::vector<int64_t>{2, 3}));
  std::vector<int32_t> part = {1, 2, 3, 4, 5, 6};
  std::vector<int32_t> dst(12, 0);
  CopySliceIntoFull(reinterpret_cast<const char*>(part.data()), rows, full, 4,
                    reinterpret_cast<char*>(dst.data()));
  EXPECT_EQ(dst, (std::vector<int32_t>{0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0}));
}

TEST(SliceCopyTest, GatherInvertsScatterIn3D) {
  TensorShape full{{3, 4, 5}};
  std::vector<int16_t> tensor(60);
  std::iota(tensor.begin(), tensor.end(), 0);
  TensorSlice s = Slice({{1, 2}, {1, 3}, {2, 2}});
  std::vector<int16_t> part(12);
  CopySliceOutOfFull(reinterpret_cast<const char*>(tensor.data()), s, full, 2,
                     reinterpret_cast<char*>(part.data()));
  // Element [i][j][k] of the slice is tensor[1+i][1+j][2+k].
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k)
        EXPECT_EQ(part[(i * 3 + j) * 2 + k], (1 + i) * 20 + (1 + j) * 5 + 2 + k);
  std::vector<int16_t> back(60, -1);
  CopySliceIntoFull(reinterpret_cast<const char*>(part.data()), s, full, 2,
                    reinterpret_cast<char*>(back.data()));
  for (int i = 0; i < 60; ++i) {
    int a = i / 20, b = (i / 5) % 4, c = i % 5;
    bool inside = a >= 1 && a < 3 && b >= 1 && b < 4 && c >= 2 && c < 4;
    EXPECT_EQ(back[i], inside ? tensor[i] : -1) << i;
  }
}

TEST(SliceCopyTest, EmptySlicesCopyNothingAndOverlapIsDetected) {
  TensorShape full{{4, 0}};
  std::vector<char> dst(1, 7);
  CopySliceIntoFull(nullptr, Slice({{0, 2}, {0, SliceExtent::kFullExtent}}),
                    full, 4, dst.data());
  EXPECT_EQ(dst[0], 7);

  TensorShape m{{10, 4}};
  EXPECT_TRUE(SlicesOverlap(Slice({{0, 5}, {0, 4}}), Slice({{4, 3}, {0, 4}}), m));
  EXPECT_FALSE(SlicesOverlap(Slice({{0, 4}, {0, 4}}), Slice({{4, 3}, {0, 4}}), m));
  EXPECT_TRUE(SlicesOverlap(
      Slice({{0, SliceExtent::kFullExtent}, {0, 1}}), Slice({{9, 1}, {0, 4}}), m));
}

// The pair a scan of every pair by index finds, as FindOverlappingSlices
// promises to report it.
std::optional<std::pair<size_t, size_t>> PairwiseOverlap(
    const std::vector<TensorSlice>& slices, const TensorShape& full) {
  for (size_t i = 0; i < slices.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (SlicesOverlap(slices[j], slices[i], full)) {
        return std::make_pair(j, i);
      }
    }
  }
  return std::nullopt;
}

int64_t Uniform(std::mt19937& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// A random extent of a dimension of the given size: sometimes full,
// sometimes empty.
SliceExtent RandomExtent(std::mt19937& rng, int64_t size) {
  if (Uniform(rng, 0, 5) == 0) return {0, SliceExtent::kFullExtent};
  const int64_t start = Uniform(rng, 0, size);
  return {start, Uniform(rng, 0, size - start)};
}

// The cells of a random grid over full, in random order, some left out; a
// cell that spans a whole dimension is sometimes written as a full extent.
std::vector<TensorSlice> RandomTiling(std::mt19937& rng,
                                      const TensorShape& full) {
  std::vector<TensorSlice> cells = {TensorSlice{}};
  for (int64_t size : full.dims) {
    std::vector<int64_t> cuts = {0, size};
    for (int64_t k = Uniform(rng, 0, 4); k > 0 && size > 0; --k) {
      cuts.push_back(Uniform(rng, 0, size));
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    if (cuts.size() == 1) cuts.push_back(0);  // a dimension of size 0
    std::vector<TensorSlice> next;
    for (const TensorSlice& cell : cells) {
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        TensorSlice longer = cell;
        const bool whole = cuts[c] == 0 && cuts[c + 1] == size;
        longer.extents.push_back(
            whole && Uniform(rng, 0, 1) == 0
                ? SliceExtent{0, SliceExtent::kFullExtent}
                : SliceExtent{cuts[c], cuts[c + 1] - cuts[c]});
        next.push_back(std::move(longer));
      }
    }
    cells = std::move(next);
  }
  std::vector<TensorSlice> kept;
  for (TensorSlice& cell : cells) {
    if (Uniform(rng, 0, 4) != 0) kept.push_back(std::move(cell));
  }
  std::shuffle(kept.begin(), kept.end(), rng);
  return kept;
}

TensorShape RandomShape(std::mt19937& rng) {
  TensorShape full;
  for (int64_t rank = Uniform(rng, 1, 3); rank > 0; --rank) {
    full.dims.push_back(Uniform(rng, 0, 9) == 0 ? 0 : Uniform(rng, 1, 7));
  }
  return full;
}

// FindOverlappingSlices' answer, which must not be an error.
std::optional<SlicePair> Overlap(const std::vector<TensorSlice>& slices,
                                 const TensorShape& full) {
  Result<std::optional<SlicePair>> got = FindOverlappingSlices(slices, full);
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  return got.ok() ? *got : std::nullopt;
}

void ExpectSameAsPairwise(const std::vector<TensorSlice>& slices,
                          const TensorShape& full, int trial) {
  const auto want = PairwiseOverlap(slices, full);
  const auto got = Overlap(slices, full);
  ASSERT_EQ(got.has_value(), want.has_value()) << "trial " << trial;
  if (want) {
    EXPECT_EQ(*got, *want) << "trial " << trial;
  }
}

TEST(FindOverlappingSlicesTest, AgreesWithPairwiseOnTilings) {
  std::mt19937 rng(20240611);
  int overlapping = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const TensorShape full = RandomShape(rng);
    std::vector<TensorSlice> slices = RandomTiling(rng, full);
    ASSERT_FALSE(PairwiseOverlap(slices, full).has_value());
    ExpectSameAsPairwise(slices, full, trial);
    // One more slice anywhere in the list, usually overlapping a cell.
    TensorSlice extra;
    for (int64_t size : full.dims) {
      extra.extents.push_back(RandomExtent(rng, size));
    }
    slices.insert(slices.begin() + Uniform(rng, 0, slices.size()), extra);
    if (PairwiseOverlap(slices, full)) ++overlapping;
    ExpectSameAsPairwise(slices, full, trial);
  }
  EXPECT_GT(overlapping, 1000);  // the injected slices do test something
}

TEST(FindOverlappingSlicesTest, AgreesWithPairwiseOnRandomSlices) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    const TensorShape full = RandomShape(rng);
    std::vector<TensorSlice> slices(Uniform(rng, 0, 12));
    for (TensorSlice& s : slices) {
      for (int64_t size : full.dims) {
        s.extents.push_back(RandomExtent(rng, size));
      }
    }
    ExpectSameAsPairwise(slices, full, trial);
  }
}

TEST(FindOverlappingSlicesTest, EdgeCases) {
  const TensorShape scalar{};
  EXPECT_FALSE(Overlap({}, scalar).has_value());
  EXPECT_FALSE(Overlap({TensorSlice{}}, scalar).has_value());
  EXPECT_EQ(Overlap({TensorSlice{}, TensorSlice{}}, scalar),
            std::make_pair(size_t{0}, size_t{1}));
  // Empty slices: as SlicesOverlap has it, one strictly inside another's
  // span shares an element with it, one at its edge does not.
  const TensorShape row{{10}};
  EXPECT_FALSE(Overlap(
                   {Slice({{0, 4}}), Slice({{4, 0}}), Slice({{4, 0}}),
                    Slice({{0, 0}}), Slice({{4, 6}})},
                   row)
                   .has_value());
  EXPECT_EQ(Overlap(
                {Slice({{4, 6}}), Slice({{0, 4}}), Slice({{2, 0}})}, row),
            std::make_pair(size_t{1}, size_t{2}));
}

// A 1-D tensor in 200,000 one-element slices: a sweep along it compares
// nothing, where all pairs would be 2 * 10^10 comparisons.
TEST(FindOverlappingSlicesTest, ManySlicesOfOneDimension) {
  constexpr int64_t kSlices = 200000;
  const TensorShape full{{kSlices}};
  std::vector<TensorSlice> slices;
  for (int64_t i = 0; i < kSlices; ++i) slices.push_back(Slice({{i, 1}}));
  std::shuffle(slices.begin(), slices.end(), std::mt19937(1));
  EXPECT_FALSE(Overlap(slices, full).has_value());
  slices.push_back(slices[12345]);
  EXPECT_EQ(Overlap(slices, full),
            std::make_pair(size_t{12345}, size_t{kSlices}));
}

// A 400 x 500 grid of 2 x 2 slices.
TEST(FindOverlappingSlicesTest, ManySlicesInAGrid) {
  const TensorShape full{{800, 1000}};
  std::vector<TensorSlice> slices;
  for (int64_t r = 0; r < 400; ++r) {
    for (int64_t c = 0; c < 500; ++c) {
      slices.push_back(Slice({{2 * r, 2}, {2 * c, 2}}));
    }
  }
  std::shuffle(slices.begin(), slices.end(), std::mt19937(2));
  EXPECT_FALSE(Overlap(slices, full).has_value());
  // A slice across the corner of four cells overlaps each of them.
  const TensorSlice corner = Slice({{399, 2}, {499, 2}});
  size_t first = slices.size();
  for (size_t i = 0; i < slices.size() && first == slices.size(); ++i) {
    if (SlicesOverlap(slices[i], corner, full)) first = i;
  }
  slices.push_back(corner);
  EXPECT_EQ(Overlap(slices, full),
            std::make_pair(first, slices.size() - 1));
  slices.pop_back();
  slices.push_back(slices[777]);
  EXPECT_EQ(Overlap(slices, full),
            std::make_pair(size_t{777}, slices.size() - 1));
}

// Slices that overlap are found at once; a disjoint layout whose check
// costs more than the budget (a staircase, long along both dimensions) is
// refused rather than checked.
TEST(FindOverlappingSlicesTest, GivesUpPastItsBudget) {
  const TensorShape full{{200, 200}};
  std::vector<TensorSlice> slices;
  for (int64_t i = 0; i < 60; ++i) {
    slices.push_back(Slice({{i, 100}, {59 - i, 100}}));  // all meet at [59, 100)
  }
  Result<std::optional<SlicePair>> within = FindOverlappingSlices(slices, full);
  ASSERT_TRUE(within.ok());
  EXPECT_EQ(*within, std::make_pair(size_t{0}, size_t{1}));

  std::vector<TensorSlice> staircase;  // disjoint, but long along both
  for (int64_t i = 0; i < 100; ++i) {
    staircase.push_back(Slice({{i, 1}, {0, 100 - i}}));
    staircase.push_back(Slice({{0, 100 - i}, {100 + i, 1}}));
  }
  const TensorShape wide{{100, 200}};
  ASSERT_TRUE(FindOverlappingSlices(staircase, wide).ok());
  Result<std::optional<SlicePair>> over =
      FindOverlappingSlices(staircase, wide, /*max_comparisons=*/10);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(testing::Contains(over.status(),
                                "checking 200 slices for overlaps took more "
                                "than 10 comparisons"))
      << over.status().ToString();
}

// The callers: a bundle written as 10,000 slices in random order reads back
// whole and by region; one more slice over four others is refused with the
// pair a pairwise scan names.
TEST(FindOverlappingSlicesTest, BundleOfManySlicesReadsBack) {
  using testing::Contains;
  testing::ScratchDir dir;
  const std::string prefix = dir.Join("ckpt");
  const TensorShape full{{200, 300}};
  std::vector<TensorSlice> slices;
  for (int64_t r = 0; r < 100; ++r) {
    for (int64_t c = 0; c < 100; ++c) {
      slices.push_back(Slice({{2 * r, 2}, {3 * c, 3}}));
    }
  }
  std::shuffle(slices.begin(), slices.end(), std::mt19937(3));
  auto writer = BundleWriter::Open(prefix);
  ASSERT_TRUE(writer.ok());
  // Element [r][c] holds r * 300 + c.
  auto elements = [](const TensorSlice& s) {
    std::vector<int32_t> out;
    for (int64_t r = 0; r < s.extents[0].length; ++r) {
      for (int64_t c = 0; c < s.extents[1].length; ++c) {
        out.push_back(static_cast<int32_t>((s.extents[0].start + r) * 300 +
                                           s.extents[1].start + c));
      }
    }
    return out;
  };
  for (const std::string key : {"t", "bad"}) {
    for (const TensorSlice& s : slices) {
      const std::vector<int32_t> data = elements(s);
      ASSERT_TRUE((*writer)->AddSlice(key, full, s, DataType::kInt32,
                                      data.data(), data.size() * 4)
                      .ok());
    }
  }
  const TensorSlice corner = Slice({{99, 2}, {149, 2}});
  const std::vector<int32_t> corner_data = elements(corner);
  ASSERT_TRUE((*writer)->AddSlice("bad", full, corner, DataType::kInt32,
                                  corner_data.data(), corner_data.size() * 4)
                  .ok());
  ASSERT_TRUE((*writer)->Finish().ok());

  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<int32_t> out(200 * 300, -1);
  Status s = (*reader)->ReadTensor("t", out.data(), out.size() * 4);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<int32_t> want(200 * 300);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(out, want);

  // Rows [90, 110): they hold the extra slice of "bad".
  const TensorSlice region = Slice({{90, 20}, {0, SliceExtent::kFullExtent}});
  std::vector<int32_t> part(20 * 300, -1);
  s = ReadRegion(**reader, "t", region, part.data(), part.size() * 4);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(part, std::vector<int32_t>(want.begin() + 90 * 300,
                                       want.begin() + 110 * 300));

  size_t first = slices.size();
  for (size_t i = 0; i < slices.size() && first == slices.size(); ++i) {
    if (SlicesOverlap(slices[i], corner, full)) first = i;
  }
  s = (*reader)->ReadTensor("bad", out.data(), out.size() * 4);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "slices " + SliceSpecString(slices[first]) +
                              " and " + SliceSpecString(corner) +
                              " of 'bad' in " + prefix + " overlap"))
      << s.ToString();
  s = ReadRegion(**reader, "bad", region, part.data(), part.size() * 4);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(s, "slice " + SliceSpecString(corner) +
                              " of 'bad' in " + prefix +
                              " overlaps another stored slice"))
      << s.ToString();
}

}  // namespace
}  // namespace trackpoint
