#include "bundle/slice_copy.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

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

}  // namespace
}  // namespace trackpoint
