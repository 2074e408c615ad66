//===- TileMap.h - Token layouts, dense masks and tile maps -----*- C++ -*-===//
//
// Host-side helpers around the bitfield predicate: a token layout (words +
// segments), the dense S x S reference mask (tests only), the compressed
// (query tile x key tile) map the attention kernels read, and per-query-tile
// workloads (non-skipped key tiles) that the CP balancer distributes.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_TILEMAP_H
#define MLLM_KERNELS_TILEMAP_H

#include "mllm/kernels/TileSummary.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mllm {
namespace kernels {

/// One sequence: a word per token and, optionally, a segment per token
/// (empty means every token is in sample 0, item 0). Positions are indices.
struct TokenLayout {
  std::vector<uint64_t> words;
  std::vector<uint32_t> segments;

  int64_t size() const { return static_cast<int64_t>(words.size()); }
  uint32_t segment(int64_t i) const {
    return segments.empty() ? 0 : segments[i];
  }
  bool attend(MaskPolicy policy, int64_t q, int64_t k) const {
    return kernels::attend(policy, words[q], segment(q), q, words[k],
                           segment(k), k);
  }
};

/// Row-major S x S mask, 1 = q may attend to k. O(S^2): tests only.
std::vector<uint8_t> buildDenseMask(const TokenLayout &layout,
                                    MaskPolicy policy);

/// Queries per tile row x keys per tile column (the kernel's BLOCK_M x
/// BLOCK_N). Rows are also the CP balancing block.
struct TileShape {
  int64_t rows = 128;
  int64_t cols = 32;
};

/// Summaries of consecutive tiles of `width` tokens (the last may be short).
std::vector<TileSummary> summarizeTiles(const TokenLayout &layout,
                                        int64_t width);

class TileMap {
public:
  TileMap() = default;
  TileMap(int64_t rowTiles, int64_t colTiles, TileShape shape)
      : rowTiles(rowTiles), colTiles(colTiles), shape(shape),
        classes(static_cast<std::size_t>(rowTiles * colTiles)) {}

  int64_t numRowTiles() const { return rowTiles; }
  int64_t numColTiles() const { return colTiles; }
  TileShape tileShape() const { return shape; }
  TileClass at(int64_t row, int64_t col) const {
    return static_cast<TileClass>(classes[row * colTiles + col]);
  }
  void set(int64_t row, int64_t col, TileClass c) {
    classes[row * colTiles + col] = static_cast<uint8_t>(c);
  }
  /// int8 per tile, row-major: the layout the kernels read (0/1/2).
  const uint8_t *data() const { return classes.data(); }
  /// Non-skipped tiles per row: the paper's block workload W_b.
  std::vector<int64_t> rowWorkloads() const;

private:
  int64_t rowTiles = 0, colTiles = 0;
  TileShape shape;
  std::vector<uint8_t> classes;
};

/// Classify every tile from per-tile summaries: O(S + tiles).
TileMap buildTileMap(const TokenLayout &layout, MaskPolicy policy,
                     TileShape shape = {});

/// The same numbers as buildTileMap(...).rowWorkloads() without visiting
/// every tile: key tiles of one pattern are grouped into runs and each run
/// is split into zones (before / inside the window / overlapping / after the
/// query tile) where the classification cannot change, so the cost is
/// O(row tiles x runs) rather than O(tiles).
std::vector<int64_t> blockWorkloads(const TokenLayout &layout,
                                    MaskPolicy policy, TileShape shape = {});

} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_TILEMAP_H
