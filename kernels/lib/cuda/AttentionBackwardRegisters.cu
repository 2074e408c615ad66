//===- AttentionBackwardRegisters.cu - Register-tile attention backward ---===//
//
// AttentionKernel::Registers: passes 2 and 3 of the backward
// (AttentionBackward.cu; delta comes from there) on mma.sync, with the
// score-sized tiles in registers. The walk, the order of every sum and so
// the results' reproducibility are the staged kernels':
//
//   - dK/dV: one block of 4 warps per (key tile, kv head), each warp owning
//     16 keys of dK and dV in accumulators. Per (query tile, head) of its
//     list, Q and dO (with the rows' LSE and delta) are double-buffered by
//     cp.async; the warp computes S^T = K Q^T and dP^T = V dO^T, turns them
//     into P^T and dS^T in place, and feeds them as A operands to
//     dV += P^T dO and dK += dS^T Q.
//   - dQ: one block of 4 warps per (query tile, head), each warp owning 16
//     query rows with their Q and dO fragments in registers; K and V tiles
//     are double-buffered; S and dP become P and dS in place and
//     dQ += dS K.
//
//===----------------------------------------------------------------------===//

#include "AttentionRegisters.cuh"

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using namespace mllm::kernels::cuda::dev;

namespace {

/// Shared memory of both passes: two fixed tiles (K and V in dK/dV, Q and
/// dO in dQ), two stages of the two streamed tiles, two stages of the
/// streamed rows' LSE and delta (dK/dV), the fixed tile's tokens and two
/// stages of the streamed tokens.
template <int D>
struct RegisterBwdLayout {
  static constexpr size_t kTileBytes = align128(64 * ldH<D>() * sizeof(bf16));
  static constexpr size_t kTokBytes = align128(sizeof(TileTokens));
  static constexpr size_t kRowBytes = align128(2 * 64 * sizeof(float));
  static constexpr size_t a = 0;
  static constexpr size_t b = a + kTileBytes;
  static constexpr size_t x = b + kTileBytes;
  static constexpr size_t y = x + 2 * kTileBytes;
  static constexpr size_t rows = y + 2 * kTileBytes;
  static constexpr size_t fixedTok = rows + 2 * kRowBytes;
  static constexpr size_t tok = fixedTok + kTokBytes;
  static constexpr size_t bytes = tok + 2 * kTokBytes;
};

template <int D>
struct Carved {
  bf16 *a, *b;
  unsigned char *base;
  __device__ bf16 *x(int stage) const {
    using L = RegisterBwdLayout<D>;
    return reinterpret_cast<bf16 *>(base + L::x + stage * L::kTileBytes);
  }
  __device__ bf16 *y(int stage) const {
    using L = RegisterBwdLayout<D>;
    return reinterpret_cast<bf16 *>(base + L::y + stage * L::kTileBytes);
  }
  __device__ float *rows(int stage) const {
    using L = RegisterBwdLayout<D>;
    return reinterpret_cast<float *>(base + L::rows + stage * L::kRowBytes);
  }
  __device__ TileTokens &fixedTokens() const {
    return *reinterpret_cast<TileTokens *>(base +
                                           RegisterBwdLayout<D>::fixedTok);
  }
  __device__ TileTokens &tokens(int stage) const {
    using L = RegisterBwdLayout<D>;
    return *reinterpret_cast<TileTokens *>(base + L::tok +
                                           stage * L::kTokBytes);
  }
};

template <int D>
__device__ Carved<D> carve(unsigned char *smem) {
  using L = RegisterBwdLayout<D>;
  return {reinterpret_cast<bf16 *>(smem + L::a),
          reinterpret_cast<bf16 *>(smem + L::b), smem};
}

/// P of one (query, key) pair from its raw dot product, as the staged
/// kernels' gradPair: masked pairs and rows that saw nothing get P = 0
/// (and so dS = 0).
__device__ inline float probability(float dot, bool masked, float scale,
                                    float slope, int64_t qPos, int64_t kPos,
                                    float lse) {
  return masked || lse == negativeInfinity<float>()
             ? 0.0f
             : softmaxProb(scaledScore(dot, scale, slope, qPos, kPos), lse);
}

template <int D>
__global__ void __launch_bounds__(128)
    dkdvRegisterKernel(Plan p, Heads h, const bf16 *q, const bf16 *k,
                       const bf16 *v, const float *lse, const float *delta,
                       const bf16 *dO, bf16 *dk, bf16 *dv) {
  extern __shared__ __align__(128) unsigned char smem[];
  const Carved<D> m = carve<D>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t col = p.colOrder[blockIdx.x / h.kvHeads];
  const int kvHead = blockIdx.x % h.kvHeads;
  const int64_t k0 = col * kN;
  const int32_t first = p.colStart[col];
  const int32_t units = (p.colStart[col + 1] - first) * h.group;
  const bool alibi = h.slopes != nullptr;

  // Unit u: query tile colRows[first + u / group], head u % group of the
  // kv head's group (the staged kernel's order).
  auto rowOf = [&](int32_t u) { return p.colRows[first + u / h.group]; };
  auto partialAt = [&](int32_t u) {
    return p.classes[rowOf(u) * p.colTiles + col] ==
           static_cast<uint8_t>(TileClass::Partial);
  };
  auto issue = [&](int32_t u, int stage) {
    const int64_t q0 = rowOf(u) * kM;
    const int head = kvHead * h.group + u % h.group;
    loadTileAsync<D>(m.x(stage), q, q0, p.qLen, head, h.heads);
    loadTileAsync<D>(m.y(stage), dO, q0, p.qLen, head, h.heads);
    loadRowStatsAsync(m.rows(stage), lse, delta, head, q0, p.qLen);
    if (partialAt(u) || alibi)
      loadTokensAsync(m.tokens(stage), p.q, q0, kM);
    cpAsyncCommit();
  };

  const TileTokens &kt = m.fixedTokens();
  if (units > 0) { // K, V and their tokens join unit 0's group
    loadTileAsync<D>(m.a, k, k0, p.kLen, kvHead, h.kvHeads);
    loadTileAsync<D>(m.b, v, k0, p.kLen, kvHead, h.kvHeads);
    loadTokensAsync(m.fixedTokens(), p.k, k0, kN);
    issue(0, 0);
  }

  float dK[D / 8][4], dV[D / 8][4];
  clear(dK);
  clear(dV);
  for (int32_t u = 0; u < units; ++u) {
    const int stage = u & 1;
    if (u + 1 < units) {
      issue(u + 1, stage ^ 1);
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const bf16 *qs = m.x(stage), *dos = m.y(stage);
    const float *rowLse = m.rows(stage), *rowDelta = rowLse + 64;
    const TileTokens &qt = m.tokens(stage);
    const int head = kvHead * h.group + u % h.group;
    const float slope = alibi ? h.slopes[head] : 0.0f;
    const bool partial = partialAt(u);

    // S^T = K Q^T (16 keys x 64 queries per warp), then P^T in place; then
    // dP^T = V dO^T and dS^T in place. One product at a time keeps the
    // live accumulators within the register budget.
    float s[8][4], dp[8][4];
    dotTiles<D>(s, m.a, 16 * warp, qs, lane);
    // Element e of tile nt: key j (row), query i (column).
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const mma::Coord at = mma::accElement(lane, e);
        const int j = 16 * warp + at.row, i = 8 * nt + at.col;
        const bool masked =
            j >= kt.count ||
            (partial && !attend(p.policy, qt.word[i], qt.seg[i], qt.pos[i],
                                kt.word[j], kt.seg[j], kt.pos[j]));
        s[nt][e] = probability(s[nt][e], masked, h.scale, slope,
                               slope != 0.0f ? qt.pos[i] : 0,
                               slope != 0.0f ? kt.pos[j] : 0, rowLse[i]);
      }
    dotTiles<D>(dp, m.b, 16 * warp, dos, lane);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dp[nt][e] =
            softmaxGrad(s[nt][e], dp[nt][e],
                        rowDelta[8 * nt + mma::accElement(lane, e).col]);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t a[4];
      packChunk(a, s, kk);
      accumulateChunk<D>(dV, a, kk, dos, lane);
      packChunk(a, dp, kk);
      accumulateChunk<D>(dK, a, kk, qs, lane);
    }
    __syncthreads(); // this stage is loaded again two units on
  }
  storeRows<D>(dK, h.scale, dk, k0, p.kLen, kvHead, h.kvHeads, warp, lane);
  storeRows<D>(dV, 1.0f, dv, k0, p.kLen, kvHead, h.kvHeads, warp, lane);
}

template <int D>
__global__ void __launch_bounds__(128)
    dqRegisterKernel(Plan p, Heads h, const bf16 *q, const bf16 *k,
                     const bf16 *v, const float *lse, const float *delta,
                     const bf16 *dO, bf16 *dq) {
  extern __shared__ __align__(128) unsigned char smem[];
  const Carved<D> m = carve<D>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = p.rowOrder[blockIdx.x / h.heads];
  const int head = blockIdx.x % h.heads, kvHead = head / h.group;
  const int64_t q0 = row * kM;
  const float slope = h.slopes ? h.slopes[head] : 0.0f;
  const int32_t lo = p.rowStart[row], hi = p.rowStart[row + 1];

  auto partialAt = [&](int32_t idx) {
    return p.classes[row * p.colTiles + p.rowCols[idx]] ==
           static_cast<uint8_t>(TileClass::Partial);
  };
  auto issue = [&](int32_t idx, int stage) {
    const int64_t k0 = p.rowCols[idx] * kN;
    loadTileAsync<D>(m.x(stage), k, k0, p.kLen, kvHead, h.kvHeads);
    loadTileAsync<D>(m.y(stage), v, k0, p.kLen, kvHead, h.kvHeads);
    if (partialAt(idx) || slope != 0.0f)
      loadTokensAsync(m.tokens(stage), p.k, k0, kN);
    cpAsyncCommit();
  };

  const TileTokens &qt = m.fixedTokens();
  if (lo < hi) { // Q, dO and their tokens join lo's group
    loadTileAsync<D>(m.a, q, q0, p.qLen, head, h.heads);
    loadTileAsync<D>(m.b, dO, q0, p.qLen, head, h.heads);
    loadTokensAsync(m.fixedTokens(), p.q, q0, kM);
    issue(lo, 0);
  }
  // This lane's two rows (accElement 0 and 2: r = 0 and r = 1).
  float rowLse[2], rowDelta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t qi = q0 + 16 * warp + mma::accElement(lane, 2 * r).row;
    const bool in = qi < p.qLen;
    rowLse[r] = in ? lse[head * p.qLen + qi] : negativeInfinity<float>();
    rowDelta[r] = in ? delta[head * p.qLen + qi] : 0.0f;
  }

  float dQ[D / 8][4];
  clear(dQ);
  uint32_t qf[D / 16][4], of[D / 16][4];
  for (int32_t idx = lo; idx < hi; ++idx) {
    const int stage = (idx - lo) & 1;
    if (idx + 1 < hi) {
      issue(idx + 1, stage ^ 1);
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    if (idx == lo) {
#pragma unroll
      for (int kc = 0; kc < D / 16; ++kc) {
        loadA<D>(qf[kc], m.a, 16 * warp, kc, lane);
        loadA<D>(of[kc], m.b, 16 * warp, kc, lane);
      }
    }
    const bf16 *ks = m.x(stage), *vs = m.y(stage);
    const TileTokens &kt = m.tokens(stage);
    const bool partial = partialAt(idx);
    const int kCount = static_cast<int>(tileExtent(p.kLen, kN, p.rowCols[idx]));

    // S = Q K^T, then P in place; then dP = dO V^T and dS in place.
    float s[8][4], dp[8][4];
    clear(s);
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      dotRows<D>(s, qf[kc], kc, ks, lane);
    }
    // Element e of tile nt: query i (row), key j (column).
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const mma::Coord at = mma::accElement(lane, e);
        const int i = 16 * warp + at.row, j = 8 * nt + at.col;
        const bool masked =
            j >= kCount ||
            (partial && !attend(p.policy, qt.word[i], qt.seg[i], qt.pos[i],
                                kt.word[j], kt.seg[j], kt.pos[j]));
        s[nt][e] = probability(s[nt][e], masked, h.scale, slope,
                               slope != 0.0f ? qt.pos[i] : 0,
                               slope != 0.0f ? kt.pos[j] : 0, rowLse[e >> 1]);
      }
    clear(dp);
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc)
      dotRows<D>(dp, of[kc], kc, vs, lane);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dp[nt][e] = softmaxGrad(s[nt][e], dp[nt][e], rowDelta[e >> 1]);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t a[4];
      packChunk(a, dp, kk);
      accumulateChunk<D>(dQ, a, kk, ks, lane);
    }
    __syncthreads(); // this stage is loaded again two tiles on
  }
  storeRows<D>(dQ, h.scale, dq, q0, p.qLen, head, h.heads, warp, lane);
}

template <int D>
Status launch(const AttentionPlan &plan, const AttentionHeads &heads,
              const bf16 *q, const bf16 *k, const bf16 *v, const float *lse,
              const float *delta, const bf16 *dO, bf16 *dq, bf16 *dk, bf16 *dv,
              cudaStream_t stream) {
  constexpr int kBytes = static_cast<int>(RegisterBwdLayout<D>::bytes);
  MLLM_STATUS_TRY(checkSharedMemory(
      kBytes,
      "the register-tile attention backward at head dim " + std::to_string(D),
      D == 128 ? "GPUs of compute capability 8.0 and 9.0 (A100, H100, "
                 "H200) give enough; head dim 64 needs less"
               : ""));
  MLLM_CUDA_TRY(cudaFuncSetAttribute(
      dkdvRegisterKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      kBytes));
  MLLM_CUDA_TRY(cudaFuncSetAttribute(
      dqRegisterKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      kBytes));
  const Plan pv = view(plan);
  const Heads hv = view(heads);
  if (plan.colTiles > 0) {
    dkdvRegisterKernel<D>
        <<<static_cast<unsigned>(plan.colTiles * heads.kvHeads), 128, kBytes,
           stream>>>(pv, hv, q, k, v, lse, delta, dO, dk, dv);
    MLLM_CUDA_LAUNCHED();
  }
  if (plan.rowTiles > 0) {
    dqRegisterKernel<D>
        <<<static_cast<unsigned>(plan.rowTiles * heads.heads), 128, kBytes,
           stream>>>(pv, hv, q, k, v, lse, delta, dO, dq);
    MLLM_CUDA_LAUNCHED();
  }
  return Status();
}

} // namespace

Status dev::launchBackwardRegisters(const AttentionPlan &plan,
                                    const AttentionHeads &heads, const bf16 *q,
                                    const bf16 *k, const bf16 *v,
                                    const float *lse, const float *delta,
                                    const bf16 *dO, bf16 *dq, bf16 *dk,
                                    bf16 *dv, cudaStream_t stream) {
  if (heads.headDim == 64)
    return launch<64>(plan, heads, q, k, v, lse, delta, dO, dq, dk, dv, stream);
  return launch<128>(plan, heads, q, k, v, lse, delta, dO, dq, dk, dv, stream);
}
