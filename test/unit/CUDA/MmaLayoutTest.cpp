//===- MmaLayoutTest.cpp - The register-tile kernels' lane maps on the CPU ===//
//
// The register-tile attention kernels (AttentionKernel::Registers) address
// their operands through MmaLayout.h. Here a warp's ldmatrix .x4 (plain and
// .trans) and mma.sync m16n8k16 are emulated on the CPU as the PTX ISA
// defines them ("Warp-level matrix load instruction: ldmatrix", "Matrix
// Fragments for mma.m16n8k16 with floating point type"), independently of
// MmaLayout.h, and the kernels' compositions of them are checked against
// plain matrix products: S = A B^T over a whole head dimension (Q K^T,
// K Q^T, V dO^T, dO V^T) and O += P V from accumulators repacked as A
// operands (P V, P^T dO, dS^T Q, dS K). Small integers keep every product
// exact, so each check is an equality.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/MmaLayout.h"

#include "gtest/gtest.h"

#include <array>
#include <functional>
#include <random>
#include <set>
#include <vector>

using namespace mllm::kernels::cuda;

namespace {

/// A row-major tile in "shared memory" (values stand for bf16).
struct Tile {
  int rows, cols;
  std::vector<float> v;
  float at(int r, int c) const {
    EXPECT_TRUE(r >= 0 && r < rows && c >= 0 && c < cols) << r << "," << c;
    return r >= 0 && r < rows && c >= 0 && c < cols ? v[r * cols + c] : 0.0f;
  }
};

Tile randomTile(int rows, int cols, std::mt19937 &rng) {
  std::uniform_int_distribution<int> dist(-3, 3);
  Tile t{rows, cols, std::vector<float>(size_t(rows) * cols)};
  for (float &x : t.v)
    x = static_cast<float>(dist(rng));
  return t;
}

using Pair = std::array<float, 2>;   // one 32-bit register: two bf16
using Regs4 = std::array<Pair, 4>;   // a lane's ldmatrix .x4 result
using Warp4 = std::array<Regs4, 32>; // ... for every lane
using Acc = std::array<std::array<float, 4>, 32>; // an m16n8 accumulator

/// ldmatrix .x4 per the PTX ISA: lanes 8j..8j+7 give the addresses of
/// rows 0..7 of matrix j (8 consecutive elements each); every lane l gets
/// in register j elements (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of matrix j,
/// or with .trans (2(l%4), l/4) and (2(l%4)+1, l/4).
Warp4 ldmatrixX4(const Tile &tile, const std::function<mma::Coord(int)> &addr,
                 bool trans) {
  auto element = [&](int j, int r, int c) {
    mma::Coord a = addr(8 * j + r);
    EXPECT_EQ(a.col % 8, 0) << "rows must start 16-byte aligned";
    return tile.at(a.row, a.col + c);
  };
  Warp4 out;
  for (int l = 0; l < 32; ++l)
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < 2; ++i)
        out[l][j][i] = trans ? element(j, 2 * (l % 4) + i, l / 4)
                             : element(j, l / 4, 2 * (l % 4) + i);
  return out;
}

/// d = a b + d for mma.sync.m16n8k16 (.row.col), per the PTX fragment
/// layouts, g = l/4 and t = l%4: A a0 (g, 2t..), a1 (g+8, 2t..), a2 (g,
/// 2t+8..), a3 (g+8, 2t+8..); B b0 (2t.., g), b1 (2t+8.., g); C c0, c1
/// (g, 2t), (g, 2t+1), c2, c3 the same on row g+8.
void mmaM16N8K16(Acc &d, const std::array<std::array<Pair, 4>, 32> &a,
                 const std::array<std::array<Pair, 2>, 32> &b) {
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 2; ++i) {
      A[g][2 * t + i] = a[l][0][i];
      A[g + 8][2 * t + i] = a[l][1][i];
      A[g][2 * t + 8 + i] = a[l][2][i];
      A[g + 8][2 * t + 8 + i] = a[l][3][i];
      B[2 * t + i][g] = b[l][0][i];
      B[2 * t + 8 + i][g] = b[l][1][i];
      C[g][2 * t + i] = d[l][i];
      C[g + 8][2 * t + i] = d[l][2 + i];
    }
  }
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 8; ++c)
      for (int k = 0; k < 16; ++k)
        C[r][c] += A[r][k] * B[k][c];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 2; ++i) {
      d[l][i] = C[g][2 * t + i];
      d[l][2 + i] = C[g + 8][2 * t + i];
    }
  }
}

/// Registers 2 * half and 2 * half + 1 of an x4 load as a B operand.
std::array<std::array<Pair, 2>, 32> bHalf(const Warp4 &w, int half) {
  std::array<std::array<Pair, 2>, 32> b;
  for (int l = 0; l < 32; ++l)
    b[l] = {w[l][2 * half], w[l][2 * half + 1]};
  return b;
}

/// A warp's 16 x 64 score tile as the kernels hold it: eight accumulators.
using ScoreTile = std::array<Acc, 8>;

/// dotRows after loadA: rows [row0, row0 + 16) of `a` times every row of
/// `b` (64 rows), over the whole depth, as the kernels compute S = Q K^T.
ScoreTile dotRows(const Tile &a, int row0, const Tile &b) {
  ScoreTile s{};
  for (int kc = 0; kc < a.cols / 16; ++kc) {
    Warp4 af = ldmatrixX4(
        a,
        [&](int lane) {
          mma::Coord c = mma::aOperandRow(lane);
          return mma::Coord{row0 + c.row, 16 * kc + c.col};
        },
        false);
    for (int np = 0; np < 4; ++np) {
      Warp4 bf = ldmatrixX4(
          b,
          [&](int lane) {
            mma::Coord c = mma::bPairFromNRows(lane);
            return mma::Coord{16 * np + c.row, 16 * kc + c.col};
          },
          false);
      mmaM16N8K16(s[2 * np], af, bHalf(bf, 0));
      mmaM16N8K16(s[2 * np + 1], af, bHalf(bf, 1));
    }
  }
  return s;
}

/// The value of output element (row, col) of a tile of accumulators.
float accAt(const std::vector<Acc> &acc, int row, int col) {
  for (int l = 0; l < 32; ++l)
    for (int e = 0; e < 4; ++e) {
      mma::Coord at = mma::accElement(l, e);
      if (at.row == row && 8 * (col / 8) + at.col == col)
        return acc[col / 8][l][e];
    }
  ADD_FAILURE() << "no lane holds " << row << "," << col;
  return 0.0f;
}

TEST(MmaLayout, AccumulatorElementsCoverTheTileOnce) {
  std::set<std::pair<int, int>> seen;
  for (int l = 0; l < 32; ++l)
    for (int e = 0; e < 4; ++e) {
      mma::Coord at = mma::accElement(l, e);
      EXPECT_TRUE(seen.insert({at.row, at.col}).second);
      // The forward's row reductions shuffle over lane ^ 1 and lane ^ 2:
      // the four lanes of a quad hold the same rows.
      for (int x : {1, 2, 3})
        EXPECT_EQ(mma::accElement(l ^ x, e).row, at.row);
      // Elements 0, 1 (and 2, 3) are one row's adjacent columns: one
      // 32-bit bf16 pair, or one float2, per store.
      EXPECT_EQ(at.col % 2, e % 2);
      EXPECT_EQ(mma::accElement(l, e ^ 1).row, at.row);
    }
  EXPECT_EQ(seen.size(), 128u);
}

TEST(MmaLayout, ScoresAreRowsTimesRows) {
  std::mt19937 rng(3);
  for (int d : {64, 128}) {
    Tile a = randomTile(64, d, rng), b = randomTile(64, d, rng);
    for (int warp = 0; warp < 4; ++warp) {
      SCOPED_TRACE(testing::Message() << "d " << d << " warp " << warp);
      ScoreTile s = dotRows(a, 16 * warp, b);
      std::vector<Acc> tiles(s.begin(), s.end());
      for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 64; ++j) {
          float want = 0.0f;
          for (int k = 0; k < d; ++k)
            want += a.at(16 * warp + i, k) * b.at(j, k);
          ASSERT_EQ(accAt(tiles, i, j), want) << i << "," << j;
        }
    }
  }
}

TEST(MmaLayout, RepackedScoresTimesRowsOfB) {
  std::mt19937 rng(4);
  for (int d : {64, 128}) {
    SCOPED_TRACE(testing::Message() << "d " << d);
    // P: a warp's 16 x 64 scores as accumulators (as after the softmax).
    Tile p = randomTile(16, 64, rng), v = randomTile(64, d, rng);
    ScoreTile s{};
    for (int nt = 0; nt < 8; ++nt)
      for (int l = 0; l < 32; ++l)
        for (int e = 0; e < 4; ++e) {
          mma::Coord at = mma::accElement(l, e);
          s[nt][l][e] = p.at(at.row, 8 * nt + at.col);
        }
    std::vector<Acc> out(d / 8, Acc{});
    for (int kk = 0; kk < 4; ++kk) {
      // packChunk: A register r is the pair chunkSource(kk, r).
      std::array<std::array<Pair, 4>, 32> a;
      for (int l = 0; l < 32; ++l)
        for (int r = 0; r < 4; ++r) {
          mma::AccPair src = mma::chunkSource(kk, r);
          a[l][r] = {s[src.tile][l][src.element],
                     s[src.tile][l][src.element + 1]};
        }
      // accumulateChunk: B from rows [16 kk, +16) of v, transposed.
      for (int dp = 0; dp < d / 16; ++dp) {
        Warp4 bf = ldmatrixX4(
            v,
            [&](int lane) {
              mma::Coord c = mma::bPairFromKRows(lane);
              return mma::Coord{16 * kk + c.row, 16 * dp + c.col};
            },
            true);
        mmaM16N8K16(out[2 * dp], a, bHalf(bf, 0));
        mmaM16N8K16(out[2 * dp + 1], a, bHalf(bf, 1));
      }
    }
    for (int i = 0; i < 16; ++i)
      for (int c = 0; c < d; ++c) {
        float want = 0.0f;
        for (int k = 0; k < 64; ++k)
          want += p.at(i, k) * v.at(k, c);
        ASSERT_EQ(accAt(out, i, c), want) << i << "," << c;
      }
  }
}

} // namespace
