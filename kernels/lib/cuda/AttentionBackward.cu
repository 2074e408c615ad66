//===- AttentionBackward.cu - CUDA bitfield flash attention, backward -----===//
//
// FA2-style without atomics, as the CPU kernel (docs/attention-cpu.md §2):
//   1. delta = rowsum(dO * O) per (query, head);
//   2. key-stationary: one block of 8 warps per (key tile, kv head), key
//      tiles heaviest first. It owns dK and dV of its 64 keys (in
//      registers) and visits the query tiles that reach it in ascending
//      order and the query heads of its GQA group in ascending order:
//      S = Q K^T, P = exp(S - LSE), dP = dO V^T, dS = P * (dP - delta),
//      dV += P^T dO, dK += scale * dS^T Q;
//   3. query-stationary: one block of 4 warps per (query tile, head) owns
//      dQ of its rows and walks the row's key tiles in ascending order:
//      the same S, P, dS, then dQ += scale * dS K.
// Every output element is summed by one block in a fixed order, so results
// are bitwise reproducible. The price is recomputing QK^T and dO V^T in
// pass 3, as on the CPU.
//
//===----------------------------------------------------------------------===//

#include "AttentionDevice.cuh"

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using namespace mllm::kernels::cuda::dev;

namespace {

/// Shared memory of both passes: four bf16 [64, D] tiles (K, V and Q, dO),
/// S and dP in fp32, P and dS in bf16, the rows' LSE and delta, the tokens.
template <int D>
struct BwdLayout {
  static constexpr size_t kTileBytes = 64 * ldH<D>() * sizeof(bf16);
  static constexpr size_t k = 0;
  static constexpr size_t v = k + align128(kTileBytes);
  static constexpr size_t q = v + align128(kTileBytes);
  static constexpr size_t dO = q + align128(kTileBytes);
  static constexpr size_t s = dO + align128(kTileBytes);
  static constexpr size_t dP = s + align128(64 * kLdS * sizeof(float));
  static constexpr size_t p = dP + align128(64 * kLdS * sizeof(float));
  static constexpr size_t dS = p + align128(64 * kLdP * sizeof(bf16));
  static constexpr size_t rows = dS + align128(64 * kLdP * sizeof(bf16));
  static constexpr size_t qTok = rows + align128(2 * 64 * sizeof(float));
  static constexpr size_t kTok = qTok + align128(sizeof(TileTokens));
  static constexpr size_t bytes = kTok + align128(sizeof(TileTokens));
  // Outputs are staged (64 x (D + 4) floats) over S and dP.
  static_assert(64 * (D + 4) * sizeof(float) <= dP - s + (p - dP),
                "staging must fit S and dP");
};

struct Smem {
  bf16 *k, *v, *q, *dO, *p, *dS;
  float *s, *dP, *lse, *delta;
  TileTokens *qt, *kt;
};

template <int D>
__device__ Smem carve(unsigned char *smem) {
  using L = BwdLayout<D>;
  Smem m;
  m.k = reinterpret_cast<bf16 *>(smem + L::k);
  m.v = reinterpret_cast<bf16 *>(smem + L::v);
  m.q = reinterpret_cast<bf16 *>(smem + L::q);
  m.dO = reinterpret_cast<bf16 *>(smem + L::dO);
  m.s = reinterpret_cast<float *>(smem + L::s);
  m.dP = reinterpret_cast<float *>(smem + L::dP);
  m.p = reinterpret_cast<bf16 *>(smem + L::p);
  m.dS = reinterpret_cast<bf16 *>(smem + L::dS);
  m.lse = reinterpret_cast<float *>(smem + L::rows);
  m.delta = m.lse + 64;
  m.qt = reinterpret_cast<TileTokens *>(smem + L::qTok);
  m.kt = reinterpret_cast<TileTokens *>(smem + L::kTok);
  return m;
}

/// The rows' LSE and delta of query tile q0 (a row past the list, or one
/// that saw nothing, gets LSE = -inf: no probability, no gradient).
__device__ void loadRowStats(Smem m, const float *lse, const float *delta,
                             int head, int64_t q0, int64_t qLen) {
  for (int i = threadIdx.x; i < 64; i += blockDim.x) {
    bool in = q0 + i < qLen;
    m.lse[i] = in ? lse[head * qLen + q0 + i] : negativeInfinity<float>();
    m.delta[i] = in ? delta[head * qLen + q0 + i] : 0.0f;
  }
}

/// P and dS of pair (i, j) from S and dP in shared memory.
__device__ void gradPair(Smem m, int i, int j, bool partial, MaskPolicy policy,
                         float scale, float slope) {
  float s = maskedScore(m.s[i * kLdS + j], i, j, partial, *m.qt, *m.kt, policy,
                        scale, slope);
  float l = m.lse[i];
  float prob = l == negativeInfinity<float>() ? 0.0f : softmaxProb(s, l);
  float ds = softmaxGrad(prob, m.dP[i * kLdS + j], m.delta[i]);
  m.p[i * kLdP + j] = __float2bfloat16(prob);
  m.dS[i * kLdP + j] = __float2bfloat16(ds);
}

/// Writes a staged [64, D] fp32 tile (times `scale`) to rows [r0, r0 + 64)
/// of one head of a [len, numHeads, D] bf16 tensor.
template <int D>
__device__ void writeTile(const float *stage, float scale, bf16 *dst,
                          int64_t r0, int64_t len, int head, int numHeads) {
  for (int e = threadIdx.x; e < 64 * D; e += blockDim.x) {
    const int i = e / D, d = e % D;
    if (r0 + i < len)
      dst[((r0 + i) * numHeads + head) * D + d] =
          __float2bfloat16(stage[i * (D + 4) + d] * scale);
  }
}

__global__ void deltaKernel(int64_t qLen, int heads, int dim, const bf16 *o,
                            const bf16 *dO, float *delta) {
  const int64_t w = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (w >= qLen * heads)
    return;
  const bf16 *a = o + w * dim, *b = dO + w * dim;
  float sum = 0.0f;
  for (int d = lane; d < dim; d += 32)
    sum += __bfloat162float(a[d]) * __bfloat162float(b[d]);
  sum = warpSum(sum);
  if (lane == 0) // w = qi * heads + head
    delta[(w % heads) * qLen + w / heads] = sum;
}

template <int D>
__global__ void __launch_bounds__(256, 1)
    dkdvKernel(Plan p, Heads h, const bf16 *q, const bf16 *k, const bf16 *v,
               const float *lse, const float *delta, const bf16 *dO, bf16 *dk,
               bf16 *dv) {
  extern __shared__ __align__(128) unsigned char smem[];
  Smem m = carve<D>(smem);
  constexpr int kNF = D / 32; // output column tiles per warp
  const int warp = threadIdx.x / 32;
  const int kb = warp % 4, dh = warp / 4; // key rows 16 kb, column half dh
  const int64_t col = p.colOrder[blockIdx.x / h.kvHeads];
  const int kvHead = blockIdx.x % h.kvHeads;
  const int64_t k0 = col * kN;

  loadTile<D>(m.k, k, k0, p.kLen, kvHead, h.kvHeads);
  loadTile<D>(m.v, v, k0, p.kLen, kvHead, h.kvHeads);
  loadTokens(*m.kt, p.k, k0, kN);
  FragC dK[kNF], dV[kNF];
  for (int f = 0; f < kNF; ++f) {
    wmma::fill_fragment(dK[f], 0.0f);
    wmma::fill_fragment(dV[f], 0.0f);
  }

  for (int32_t idx = p.colStart[col]; idx < p.colStart[col + 1]; ++idx) {
    const int64_t row = p.colRows[idx], q0 = row * kM;
    const bool partial = p.classes[row * p.colTiles + col] ==
                         static_cast<uint8_t>(TileClass::Partial);
    for (int g = 0; g < h.group; ++g) {
      const int head = kvHead * h.group + g;
      const float slope = h.slopes ? h.slopes[head] : 0.0f;
      __syncthreads(); // the previous step is done with Q, dO, P, dS
      loadTile<D>(m.q, q, q0, p.qLen, head, h.heads);
      loadTile<D>(m.dO, dO, q0, p.qLen, head, h.heads);
      loadTokens(*m.qt, p.q, q0, kM);
      loadRowStats(m, lse, delta, head, q0, p.qLen);
      __syncthreads();
      for (int t = warp; t < 16; t += 8) {
        dotTile<D>(m.q, m.k, m.s, kLdS, t / 4, t % 4);
        dotTile<D>(m.dO, m.v, m.dP, kLdS, t / 4, t % 4);
      }
      __syncthreads();
      for (int e = threadIdx.x; e < kM * kN; e += blockDim.x)
        gradPair(m, e / kN, e % kN, partial, p.policy, h.scale, slope);
      __syncthreads();
      // Rows of P^T and dS^T are keys: read P and dS column-major.
      for (int kk = 0; kk < kM; kk += 16) {
        FragAT pt, dst;
        wmma::load_matrix_sync(pt, m.p + 16 * kb + kk * kLdP, kLdP);
        wmma::load_matrix_sync(dst, m.dS + 16 * kb + kk * kLdP, kLdP);
        for (int f = 0; f < kNF; ++f) {
          const int c = 16 * (dh * kNF + f);
          FragB b;
          wmma::load_matrix_sync(b, m.dO + kk * ldH<D>() + c, ldH<D>());
          wmma::mma_sync(dV[f], pt, b, dV[f]);
          wmma::load_matrix_sync(b, m.q + kk * ldH<D>() + c, ldH<D>());
          wmma::mma_sync(dK[f], dst, b, dK[f]);
        }
      }
    }
  }

  float *stage = m.s;
  for (int pass = 0; pass < 2; ++pass) {
    __syncthreads();
    for (int f = 0; f < kNF; ++f)
      wmma::store_matrix_sync(stage + 16 * kb * (D + 4) + 16 * (dh * kNF + f),
                              pass == 0 ? dK[f] : dV[f], D + 4,
                              wmma::mem_row_major);
    __syncthreads();
    writeTile<D>(stage, pass == 0 ? h.scale : 1.0f, pass == 0 ? dk : dv, k0,
                 p.kLen, kvHead, h.kvHeads);
  }
}

template <int D>
__global__ void __launch_bounds__(128)
    dqKernel(Plan p, Heads h, const bf16 *q, const bf16 *k, const bf16 *v,
             const float *lse, const float *delta, const bf16 *dO, bf16 *dq) {
  extern __shared__ __align__(128) unsigned char smem[];
  Smem m = carve<D>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = p.rowOrder[blockIdx.x / h.heads];
  const int head = blockIdx.x % h.heads, kvHead = head / h.group;
  const int64_t q0 = row * kM;
  const float slope = h.slopes ? h.slopes[head] : 0.0f;

  loadTile<D>(m.q, q, q0, p.qLen, head, h.heads);
  loadTile<D>(m.dO, dO, q0, p.qLen, head, h.heads);
  loadTokens(*m.qt, p.q, q0, kM);
  loadRowStats(m, lse, delta, head, q0, p.qLen);
  FragC dQ[D / 16];
  for (FragC &a : dQ)
    wmma::fill_fragment(a, 0.0f);

  for (int32_t idx = p.rowStart[row]; idx < p.rowStart[row + 1]; ++idx) {
    const int64_t col = p.rowCols[idx], k0 = col * kN;
    const bool partial = p.classes[row * p.colTiles + col] ==
                         static_cast<uint8_t>(TileClass::Partial);
    __syncthreads(); // the previous step is done with K and V
    loadTile<D>(m.k, k, k0, p.kLen, kvHead, h.kvHeads);
    loadTile<D>(m.v, v, k0, p.kLen, kvHead, h.kvHeads);
    loadTokens(*m.kt, p.k, k0, kN);
    __syncthreads();
    // Each warp owns query rows [16 warp, +16) of S, dP and dS.
    for (int tj = 0; tj < kN / 16; ++tj) {
      dotTile<D>(m.q, m.k, m.s, kLdS, warp, tj);
      dotTile<D>(m.dO, m.v, m.dP, kLdS, warp, tj);
    }
    __syncwarp();
    for (int e = lane; e < 16 * kN; e += 32)
      gradPair(m, 16 * warp + e / kN, e % kN, partial, p.policy, h.scale,
               slope);
    __syncwarp();
    for (int kk = 0; kk < kN; kk += 16) {
      FragA a;
      wmma::load_matrix_sync(a, m.dS + 16 * warp * kLdP + kk, kLdP);
      for (int f = 0; f < D / 16; ++f) {
        FragB b;
        wmma::load_matrix_sync(b, m.k + kk * ldH<D>() + 16 * f, ldH<D>());
        wmma::mma_sync(dQ[f], a, b, dQ[f]);
      }
    }
  }
  __syncthreads();
  for (int f = 0; f < D / 16; ++f)
    wmma::store_matrix_sync(m.s + 16 * warp * (D + 4) + 16 * f, dQ[f], D + 4,
                            wmma::mem_row_major);
  __syncthreads();
  writeTile<D>(m.s, h.scale, dq, q0, p.qLen, head, h.heads);
}

template <int D>
Status launchBackward(const AttentionPlan &plan, const AttentionHeads &heads,
                      const bf16 *q, const bf16 *k, const bf16 *v,
                      const bf16 *o, const float *lse, const bf16 *dO, bf16 *dq,
                      bf16 *dk, bf16 *dv, AttentionKernel kernel,
                      cudaStream_t stream) {
  constexpr int kBytes = static_cast<int>(BwdLayout<D>::bytes);
  // The register-tile kernels check and size their own.
  if (kernel != AttentionKernel::Registers) {
    MLLM_STATUS_TRY(checkSharedMemory(
        kBytes,
        "the staged attention backward at head dim " + std::to_string(D),
        D == 128 ? "GPUs of compute capability 8.0 and 9.0 (A100, H100, "
                   "H200) give enough; head dim 64 needs less"
                 : ""));
    MLLM_CUDA_TRY(cudaFuncSetAttribute(
        dkdvKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes));
    MLLM_CUDA_TRY(cudaFuncSetAttribute(
        dqKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes));
  }
  float *delta = nullptr;
  const int64_t rows = plan.qLen * heads.heads;
  MLLM_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void **>(&delta),
                                std::max<int64_t>(rows, 1) * sizeof(float),
                                stream));
  const Plan pv = view(plan);
  const Heads hv = view(heads);
  // Only a launch's error: a stale one of an earlier call is not ours.
  cudaError_t launched = cudaSuccess;
  if (rows > 0) {
    deltaKernel<<<static_cast<unsigned>((rows * 32 + 255) / 256), 256, 0,
                  stream>>>(plan.qLen, hv.heads, D, o, dO, delta);
    launched = cudaGetLastError();
  }
  if (kernel == AttentionKernel::Registers) {
    Status status = launched == cudaSuccess
                        ? launchBackwardRegisters(plan, heads, q, k, v, lse,
                                                  delta, dO, dq, dk, dv, stream)
                        : Status();
    MLLM_CUDA_TRY(cudaFreeAsync(delta, stream));
    MLLM_CUDA_TRY(launched);
    return status;
  }
  if (launched == cudaSuccess && plan.colTiles > 0) {
    dkdvKernel<D><<<static_cast<unsigned>(plan.colTiles * heads.kvHeads), 256,
                    kBytes, stream>>>(pv, hv, q, k, v, lse, delta, dO, dk, dv);
    launched = cudaGetLastError();
  }
  if (launched == cudaSuccess && plan.rowTiles > 0) {
    dqKernel<D><<<static_cast<unsigned>(plan.rowTiles * heads.heads), 128,
                  kBytes, stream>>>(pv, hv, q, k, v, lse, delta, dO, dq);
    launched = cudaGetLastError();
  }
  MLLM_CUDA_TRY(cudaFreeAsync(delta, stream));
  MLLM_CUDA_TRY(launched);
  return Status();
}

} // namespace

Status cuda::attentionBackward(const AttentionPlan &plan,
                               const AttentionHeads &heads, const bf16 *q,
                               const bf16 *k, const bf16 *v, const bf16 *o,
                               const float *lse, const bf16 *dO, bf16 *dq,
                               bf16 *dk, bf16 *dv,
                               const AttentionOptions &options) {
  std::string bad = checkAttentionHeads(heads);
  if (!bad.empty())
    return Status::error("attentionBackward: " + bad);
  if (heads.headDim == 64)
    return launchBackward<64>(plan, heads, q, k, v, o, lse, dO, dq, dk, dv,
                              options.kernel, options.stream);
  return launchBackward<128>(plan, heads, q, k, v, o, lse, dO, dq, dk, dv,
                             options.kernel, options.stream);
}
