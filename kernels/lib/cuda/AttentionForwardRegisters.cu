//===- AttentionForwardRegisters.cu - Register-tile attention forward -----===//
//
// AttentionKernel::Registers: the forward on mma.sync with the scores kept
// in registers. Same block shape, plan walk, split-KV and outputs as the
// staged kernel (AttentionForward.cu); what differs is where the data lives:
//
//   - each warp owns 16 query rows; its Q fragments are loaded once;
//   - K and V tiles are double-buffered in shared memory with cp.async, so
//     the next non-skipped tile streams in while this one is computed;
//   - S = Q K^T lands in mma accumulators; the mask, ALiBi and the online
//     softmax step of OnlineSoftmax.h run on them in place (a row spans the
//     four lanes of a quad: two shuffles per reduction), and the
//     probabilities, packed to bf16, are the A operand of O += P V;
//   - row sums stay per lane until the end (the rescale factor is the same
//     on the four lanes of a row), then one quad sum.
//
//===----------------------------------------------------------------------===//

#include "AttentionRegisters.cuh"

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using namespace mllm::kernels::cuda::dev;

namespace {

/// Shared-memory layout (byte offsets): Q, two stages of K and V, the query
/// tokens and two stages of key tokens.
template <int D>
struct RegisterFwdLayout {
  static constexpr size_t kTileBytes = align128(64 * ldH<D>() * sizeof(bf16));
  static constexpr size_t kTokBytes = align128(sizeof(TileTokens));
  static constexpr size_t q = 0;
  static constexpr size_t k = q + kTileBytes;
  static constexpr size_t v = k + 2 * kTileBytes;
  static constexpr size_t qTok = v + 2 * kTileBytes;
  static constexpr size_t kTok = qTok + kTokBytes;
  static constexpr size_t bytes = kTok + 2 * kTokBytes;
};

template <int D>
__global__ void __launch_bounds__(128)
    forwardRegisterKernel(Plan p, Heads h, const bf16 *q, const bf16 *k,
                          const bf16 *v, bf16 *o, float *lse, float *oPart,
                          float *lsePart, int splits) {
  using L = RegisterFwdLayout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *qs = reinterpret_cast<bf16 *>(smem + L::q);
  TileTokens &qt = *reinterpret_cast<TileTokens *>(smem + L::qTok);
  auto kTile = [&](int stage) {
    return reinterpret_cast<bf16 *>(smem + L::k + stage * L::kTileBytes);
  };
  auto vTile = [&](int stage) {
    return reinterpret_cast<bf16 *>(smem + L::v + stage * L::kTileBytes);
  };
  auto kTokens = [&](int stage) -> TileTokens & {
    return *reinterpret_cast<TileTokens *>(smem + L::kTok +
                                           stage * L::kTokBytes);
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = p.rowOrder[blockIdx.x / h.heads];
  const int head = blockIdx.x % h.heads, kvHead = head / h.group;
  const int split = blockIdx.y;
  const int64_t q0 = row * kM;
  const float slope = h.slopes ? h.slopes[head] : 0.0f;

  const int32_t begin = p.rowStart[row];
  const int64_t count = p.rowStart[row + 1] - begin;
  const int32_t lo = begin + static_cast<int32_t>(count * split / splits);
  const int32_t hi = begin + static_cast<int32_t>(count * (split + 1) / splits);

  auto partialAt = [&](int32_t idx) {
    return p.classes[row * p.colTiles + p.rowCols[idx]] ==
           static_cast<uint8_t>(TileClass::Partial);
  };
  // K, V (and the key tokens when the tile needs them) of list entry `idx`
  // into `stage`, as one cp.async group.
  auto issue = [&](int32_t idx, int stage) {
    const int64_t k0 = p.rowCols[idx] * kN;
    loadTileAsync<D>(kTile(stage), k, k0, p.kLen, kvHead, h.kvHeads);
    loadTileAsync<D>(vTile(stage), v, k0, p.kLen, kvHead, h.kvHeads);
    if (partialAt(idx) || slope != 0.0f)
      loadTokensAsync(kTokens(stage), p.k, k0, kN);
    cpAsyncCommit();
  };

  if (lo < hi) { // Q and its tokens join lo's group
    loadTileAsync<D>(qs, q, q0, p.qLen, head, h.heads);
    loadTokensAsync(qt, p.q, q0, kM);
    issue(lo, 0);
  }

  float rowMax[2] = {negativeInfinity<float>(), negativeInfinity<float>()};
  float rowSum[2] = {0.0f, 0.0f};
  float acc[D / 8][4];
  clear(acc);
  uint32_t qf[D / 16][4];

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
      for (int kc = 0; kc < D / 16; ++kc)
        loadA<D>(qf[kc], qs, 16 * warp, kc, lane);
    }
    const bf16 *ks = kTile(stage), *vs = vTile(stage);
    const TileTokens &kt = kTokens(stage);
    const bool partial = partialAt(idx);
    const int kCount = static_cast<int>(tileExtent(p.kLen, kN, p.rowCols[idx]));

    // S = Q K^T: 16 rows x 64 keys per warp, eight 16 x 8 accumulators.
    float s[8][4];
    clear(s);
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc)
      dotRows<D>(s, qf[kc], kc, ks, lane);

    // Scale, mask (ragged keys, attend() on Partial tiles) and ALiBi; rows
    // past the queries are computed but never written.
    const bool plain = !partial && kCount == kN && slope == 0.0f;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (plain) {
          s[nt][e] = scaledScore(s[nt][e], h.scale, 0.0f, 0, 0);
          continue;
        }
        const mma::Coord at = mma::accElement(lane, e);
        const int i = 16 * warp + at.row, j = 8 * nt + at.col;
        const bool masked =
            j >= kCount ||
            (partial && !attend(p.policy, qt.word[i], qt.seg[i], qt.pos[i],
                                kt.word[j], kt.seg[j], kt.pos[j]));
        s[nt][e] = masked ? negativeInfinity<float>()
                          : scaledScore(s[nt][e], h.scale, slope,
                                        slope != 0.0f ? qt.pos[i] : 0,
                                        slope != 0.0f ? kt.pos[j] : 0);
      }

    // The online-softmax step on the lane's two rows (accElement 0 and 2:
    // r = 0 and r = 1), each spread over the four lanes of a quad.
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = negativeInfinity<float>();
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
        mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const SoftmaxStep<float> step = softmaxStep(rowMax[r], mx);
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const float pr = softmaxProb(s[nt][2 * r + c], step.max);
          s[nt][2 * r + c] = pr;
          sum += pr;
        }
      rowMax[r] = step.max;
      rowSum[r] = rowSum[r] * step.alpha + sum;
      alpha[r] = step.alpha;
    }
#pragma unroll
    for (int f = 0; f < D / 8; ++f) {
      acc[f][0] *= alpha[0];
      acc[f][1] *= alpha[0];
      acc[f][2] *= alpha[1];
      acc[f][3] *= alpha[1];
    }

    // O += P V: the accumulators of keys [16 kk, 16 kk + 16) are the A
    // fragment of chunk kk once packed to bf16.
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t a[4];
      packChunk(a, s, kk);
      accumulateChunk<D>(acc, a, kk, vs, lane);
    }
    __syncthreads(); // this stage is loaded again two tiles on
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rowSum[r] += __shfl_xor_sync(0xffffffffu, rowSum[r], 1);
    rowSum[r] += __shfl_xor_sync(0xffffffffu, rowSum[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const mma::Coord at = mma::accElement(lane, 2 * r);
    const int64_t qi = q0 + 16 * warp + at.row;
    if (qi >= p.qLen)
      continue;
    const float norm = softmaxNormalizer(rowSum[r]);
#pragma unroll
    for (int f = 0; f < D / 8; ++f) {
      const int d = 8 * f + at.col;
      const float x0 = acc[f][2 * r] * norm, x1 = acc[f][2 * r + 1] * norm;
      if (splits == 1)
        *reinterpret_cast<__nv_bfloat162 *>(o + (qi * h.heads + head) * D + d) =
            __floats2bfloat162_rn(x0, x1);
      else
        *reinterpret_cast<float2 *>(
            oPart + ((split * p.qLen + qi) * h.heads + head) * D + d) =
            make_float2(x0, x1);
    }
    if (at.col == 0) { // one lane of the row's quad
      const float l = softmaxLse(rowMax[r], rowSum[r]);
      if (splits == 1)
        lse[head * p.qLen + qi] = l;
      else
        lsePart[(split * h.heads + head) * p.qLen + qi] = l;
    }
  }
}

template <int D>
Status launch(const AttentionPlan &plan, const AttentionHeads &heads,
              const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o, float *lse,
              float *oPart, float *lsePart, int splits, cudaStream_t stream) {
  using L = RegisterFwdLayout<D>;
  MLLM_STATUS_TRY(checkSharedMemory(
      L::bytes,
      "the register-tile attention forward at head dim " + std::to_string(D),
      ""));
  MLLM_CUDA_TRY(cudaFuncSetAttribute(
      forwardRegisterKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      static_cast<int>(L::bytes)));
  dim3 grid(static_cast<unsigned>(plan.rowTiles * heads.heads),
            static_cast<unsigned>(splits));
  forwardRegisterKernel<D><<<grid, 128, L::bytes, stream>>>(
      view(plan), view(heads), q, k, v, o, lse, oPart, lsePart, splits);
  MLLM_CUDA_LAUNCHED();
  return Status();
}

} // namespace

Status dev::launchForwardRegisters(const AttentionPlan &plan,
                                   const AttentionHeads &heads, const bf16 *q,
                                   const bf16 *k, const bf16 *v, bf16 *o,
                                   float *lse, float *oPart, float *lsePart,
                                   int splits, cudaStream_t stream) {
  if (heads.headDim == 64)
    return launch<64>(plan, heads, q, k, v, o, lse, oPart, lsePart, splits,
                      stream);
  return launch<128>(plan, heads, q, k, v, o, lse, oPart, lsePart, splits,
                     stream);
}
