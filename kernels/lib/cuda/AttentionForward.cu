//===- AttentionForward.cu - CUDA bitfield flash attention, forward -------===//
//
// One block of 4 warps per (query tile, head, key split), handed out
// heaviest query tile first. It walks its row's non-skipped key tiles (the
// plan's CSR list, or one split's share of it): S = Q K^T on tensor cores
// into shared memory, each warp then runs the online-softmax step of
// OnlineSoftmax.h over its 16 rows (the mask through attend() on Partial
// tiles), writes P as bf16 and accumulates O += P V in registers, rescaled
// row by row. With several splits every split writes its normalised O and
// LSE and a second kernel folds them with mergeLse in split order.
//
//===----------------------------------------------------------------------===//

#include "AttentionDevice.cuh"

#include <algorithm>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using namespace mllm::kernels::cuda::dev;

namespace {

/// Shared-memory layout (byte offsets) of the forward block.
template <int D>
struct FwdLayout {
  static constexpr size_t kTileBytes = 64 * ldH<D>() * sizeof(bf16);
  static constexpr size_t q = 0;
  static constexpr size_t k = q + align128(kTileBytes);
  static constexpr size_t v = k + align128(kTileBytes);
  static constexpr size_t s = v + align128(kTileBytes);
  static constexpr size_t p = s + align128(64 * kLdS * sizeof(float));
  static constexpr size_t stats = p + align128(64 * kLdP * sizeof(bf16));
  static constexpr size_t tables = stats + align128(3 * 64 * sizeof(float));
  static constexpr size_t qTok = tables + align128(512 * sizeof(float));
  static constexpr size_t kTok = qTok + align128(sizeof(TileTokens));
  static constexpr size_t bytes = kTok + align128(sizeof(TileTokens));
  // The epilogue stages O (64 x (D + 4) floats) where K and V were.
  static_assert(v - k == align128(kTileBytes) &&
                    64 * (D + 4) * sizeof(float) <= 2 * kTileBytes,
                "O staging must fit the K and V tiles");
};

template <int D>
__global__ void __launch_bounds__(128)
    forwardKernel(Plan p, Heads h, const bf16 *q, const bf16 *k, const bf16 *v,
                  bf16 *o, float *lse, float *oPart, float *lsePart,
                  int splits) {
  using L = FwdLayout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *qs = reinterpret_cast<bf16 *>(smem + L::q);
  bf16 *ks = reinterpret_cast<bf16 *>(smem + L::k);
  bf16 *vs = reinterpret_cast<bf16 *>(smem + L::v);
  float *s = reinterpret_cast<float *>(smem + L::s);
  bf16 *pr = reinterpret_cast<bf16 *>(smem + L::p);
  float *rowMax = reinterpret_cast<float *>(smem + L::stats);
  float *rowSum = rowMax + 64, *rowAlpha = rowSum + 64;
  float *rowTable = reinterpret_cast<float *>(smem + L::tables);
  TileTokens &qt = *reinterpret_cast<TileTokens *>(smem + L::qTok);
  TileTokens &kt = *reinterpret_cast<TileTokens *>(smem + L::kTok);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = p.rowOrder[blockIdx.x / h.heads];
  const int head = blockIdx.x % h.heads, kvHead = head / h.group;
  const int split = blockIdx.y;
  const int64_t q0 = row * kM;
  const float slope = h.slopes ? h.slopes[head] : 0.0f;

  loadTile<D>(qs, q, q0, p.qLen, head, h.heads);
  loadTokens(qt, p.q, q0, kM);
  fillIndexTables(rowTable, rowTable + 256);
  if (threadIdx.x < 64) {
    rowMax[threadIdx.x] = negativeInfinity<float>();
    rowSum[threadIdx.x] = 0.0f;
  }
  __syncthreads();

  FragC rowOf, acc[D / 16];
  wmma::load_matrix_sync(rowOf, rowTable, 16, wmma::mem_row_major);
  for (FragC &a : acc)
    wmma::fill_fragment(a, 0.0f);

  const int32_t begin = p.rowStart[row];
  const int64_t count = p.rowStart[row + 1] - begin;
  const int32_t lo = begin + static_cast<int32_t>(count * split / splits);
  const int32_t hi = begin + static_cast<int32_t>(count * (split + 1) / splits);
  for (int32_t idx = lo; idx < hi; ++idx) {
    const int64_t col = p.rowCols[idx], k0 = col * kN;
    const bool partial = p.classes[row * p.colTiles + col] ==
                         static_cast<uint8_t>(TileClass::Partial);
    loadTile<D>(ks, k, k0, p.kLen, kvHead, h.kvHeads);
    loadTile<D>(vs, v, k0, p.kLen, kvHead, h.kvHeads);
    loadTokens(kt, p.k, k0, kN);
    __syncthreads();

    for (int tj = 0; tj < kN / 16; ++tj)
      dotTile<D>(qs, ks, s, kLdS, warp, tj);
    __syncwarp();
    for (int rr = 0; rr < 16; ++rr) {
      const int i = 16 * warp + rr;
      float s0 = maskedScore(s[i * kLdS + lane], i, lane, partial, qt, kt,
                             p.policy, h.scale, slope);
      float s1 = maskedScore(s[i * kLdS + lane + 32], i, lane + 32, partial, qt,
                             kt, p.policy, h.scale, slope);
      SoftmaxStep<float> step = softmaxStep(rowMax[i], warpMax(fmaxf(s0, s1)));
      float p0 = softmaxProb(s0, step.max), p1 = softmaxProb(s1, step.max);
      float sum = warpSum(p0 + p1);
      if (lane == 0) {
        rowMax[i] = step.max;
        rowSum[i] = rowSum[i] * step.alpha + sum;
        rowAlpha[i] = step.alpha;
      }
      pr[i * kLdP + lane] = __float2bfloat16(p0);
      pr[i * kLdP + lane + 32] = __float2bfloat16(p1);
    }
    __syncwarp();

    for (FragC &a : acc)
      for (int e = 0; e < a.num_elements; ++e)
        a.x[e] *= rowAlpha[16 * warp + static_cast<int>(rowOf.x[e])];
    for (int kk = 0; kk < kN; kk += 16) {
      FragA a;
      wmma::load_matrix_sync(a, pr + 16 * warp * kLdP + kk, kLdP);
      for (int f = 0; f < D / 16; ++f) {
        FragB b;
        wmma::load_matrix_sync(b, vs + kk * ldH<D>() + 16 * f, ldH<D>());
        wmma::mma_sync(acc[f], a, b, acc[f]);
      }
    }
    __syncthreads(); // K, V and the tokens are overwritten next
  }

  float *stage = reinterpret_cast<float *>(smem + L::k);
  constexpr int kLdO = D + 4;
  for (int f = 0; f < D / 16; ++f)
    wmma::store_matrix_sync(stage + 16 * warp * kLdO + 16 * f, acc[f], kLdO,
                            wmma::mem_row_major);
  __syncthreads();
  for (int e = threadIdx.x; e < 64 * D; e += blockDim.x) {
    const int i = e / D, d = e % D;
    const int64_t qi = q0 + i;
    if (qi >= p.qLen)
      continue;
    float value = stage[i * kLdO + d] * softmaxNormalizer(rowSum[i]);
    if (splits == 1)
      o[(qi * h.heads + head) * D + d] = __float2bfloat16(value);
    else
      oPart[((split * p.qLen + qi) * h.heads + head) * D + d] = value;
  }
  if (threadIdx.x < 64 && q0 + threadIdx.x < p.qLen) {
    const int64_t qi = q0 + threadIdx.x;
    float l = softmaxLse(rowMax[threadIdx.x], rowSum[threadIdx.x]);
    if (splits == 1)
      lse[head * p.qLen + qi] = l;
    else
      lsePart[(split * h.heads + head) * p.qLen + qi] = l;
  }
}

/// One warp per (query, head): folds the splits in order (deterministic).
template <int D>
__global__ void mergeKernel(int64_t qLen, int heads, int splits,
                            const float *oPart, const float *lsePart, bf16 *o,
                            float *lse) {
  const int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (w >= qLen * heads)
    return;
  const int64_t qi = w / heads;
  const int head = static_cast<int>(w % heads);
  constexpr int kPer = D / 32;
  float acc[kPer], l = lsePart[head * qLen + qi];
  for (int e = 0; e < kPer; ++e)
    acc[e] = oPart[(qi * heads + head) * D + lane + 32 * e];
  for (int j = 1; j < splits; ++j) {
    LseMerge<float> m = mergeLse(l, lsePart[(j * heads + head) * qLen + qi]);
    const float *oj = oPart + ((j * qLen + qi) * heads + head) * D;
    for (int e = 0; e < kPer; ++e)
      acc[e] = m.wa * acc[e] + m.wb * oj[lane + 32 * e];
    l = m.lse;
  }
  for (int e = 0; e < kPer; ++e)
    o[(qi * heads + head) * D + lane + 32 * e] = __float2bfloat16(acc[e]);
  if (lane == 0)
    lse[head * qLen + qi] = l;
}

/// The staged forward kernel of head size D.
template <int D>
Status launchStaged(const AttentionPlan &plan, const AttentionHeads &heads,
                    const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o,
                    float *lse, float *oPart, float *lsePart, int splits,
                    cudaStream_t stream) {
  using L = FwdLayout<D>;
  MLLM_STATUS_TRY(checkSharedMemory(
      L::bytes, "the staged attention forward at head dim " + std::to_string(D),
      ""));
  MLLM_CUDA_TRY(cudaFuncSetAttribute(
      forwardKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      static_cast<int>(L::bytes)));
  dim3 grid(static_cast<unsigned>(plan.rowTiles * heads.heads),
            static_cast<unsigned>(splits));
  forwardKernel<D><<<grid, 128, L::bytes, stream>>>(
      view(plan), view(heads), q, k, v, o, lse, oPart, lsePart, splits);
  MLLM_CUDA_LAUNCHED();
  return Status();
}

/// `options.kernel`'s forward, then with several splits the merge.
template <int D>
Status launchForward(const AttentionPlan &plan, const AttentionHeads &heads,
                     const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o,
                     float *lse, int splits, const AttentionOptions &options) {
  cudaStream_t stream = options.stream;
  auto forward = [&](float *oPart, float *lsePart) {
    if (options.kernel == AttentionKernel::Registers)
      return launchForwardRegisters(plan, heads, q, k, v, o, lse, oPart,
                                    lsePart, splits, stream);
    return launchStaged<D>(plan, heads, q, k, v, o, lse, oPart, lsePart, splits,
                           stream);
  };
  if (splits == 1)
    return forward(nullptr, nullptr);
  float *oPart = nullptr, *lsePart = nullptr;
  const size_t rows = size_t(splits) * plan.qLen * heads.heads;
  MLLM_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void **>(&oPart),
                                rows * (D + 1) * sizeof(float), stream));
  lsePart = oPart + rows * D;
  Status status = forward(oPart, lsePart);
  cudaError_t launched = cudaSuccess;
  if (status.ok()) {
    const int64_t threads = plan.qLen * heads.heads * 32;
    mergeKernel<D>
        <<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(
            plan.qLen, static_cast<int>(heads.heads), splits, oPart, lsePart, o,
            lse);
    launched = cudaGetLastError();
  }
  MLLM_CUDA_TRY(cudaFreeAsync(oPart, stream));
  if (!status.ok())
    return status;
  MLLM_CUDA_TRY(launched);
  return Status();
}

} // namespace

Status cuda::attentionForward(const AttentionPlan &plan,
                              const AttentionHeads &heads, const bf16 *q,
                              const bf16 *k, const bf16 *v, bf16 *o, float *lse,
                              const AttentionOptions &options) {
  std::string bad = checkAttentionHeads(heads);
  if (!bad.empty())
    return Status::error("attentionForward: " + bad);
  if (plan.rowTiles == 0)
    return Status();
  int splits = options.splits > 0 ? options.splits : autoSplits(plan, heads);
  if (heads.headDim == 64)
    return launchForward<64>(plan, heads, q, k, v, o, lse, splits, options);
  return launchForward<128>(plan, heads, q, k, v, o, lse, splits, options);
}
