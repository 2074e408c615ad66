//===- Attention.h - CUDA flash attention over bitfield masks ---*- C++ -*-===//
//
// The GPU counterpart of cpu/Attention.h: forward and backward flash
// attention for the masks of docs/masks.md, bf16 storage with fp32
// accumulation, on tensor cores (sm_80 and up; sm_80 and sm_90 share each
// implementation for now: WMMA tiles staged through shared memory, or
// mma.sync with register-resident scores, AttentionKernel). The tile map is
// built on the device from the same host/device code the CPU kernel uses
// (TilePlan.h): Skip tiles are never loaded, Full tiles run without per-pair
// checks and Partial tiles evaluate attend() per pair with the tokens' words,
// segments and global positions. GQA, optional ALiBi, split-KV with a
// log-sum-exp merge when a call has too few (query tile, head) tasks for the
// GPU, and a backward without atomics (dK/dV key-stationary, dQ
// query-stationary), so results are bitwise reproducible. See docs/cuda.md.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_KERNELS_CUDA_ATTENTION_H
#define MLLM_KERNELS_CUDA_ATTENTION_H

#include "mllm/kernels/TileMap.h"
#include "mllm/kernels/cuda/DeviceArray.h"
#include "mllm/kernels/cuda/Status.h"

#include <cuda_bf16.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mllm {
namespace kernels {
namespace cuda {

using bf16 = __nv_bfloat16;

/// The kernels' tile (BLOCK_M x BLOCK_N): 64 queries x 64 keys. A plan's
/// map has this shape whatever the CPU side uses.
constexpr int64_t kTileRows = 64;
constexpr int64_t kTileCols = 64;

/// Which query tokens attend to which key tokens, as cpu::AttentionTokens
/// (host memory; positions are global indices into `layout`, nullptr means
/// 0..len-1). Under CP: the rank's queries, the all-gathered keys in rank
/// order.
struct AttentionTokens {
  const TokenLayout *layout = nullptr;
  MaskPolicy policy;
  const int64_t *qPos = nullptr;
  int64_t qLen = 0;
  const int64_t *kPos = nullptr;
  int64_t kLen = 0;

  static AttentionTokens whole(const TokenLayout &layout, MaskPolicy policy) {
    AttentionTokens t;
    t.layout = &layout;
    t.policy = policy;
    t.qLen = t.kLen = layout.size();
    return t;
  }
};

/// Per layer. Q, O, dO, dQ are [qLen, heads, headDim] bf16; K, V, dK, dV
/// [kLen, kvHeads, headDim] bf16; LSE [heads, qLen] fp32. Query head h
/// reads kv head h / (heads / kvHeads). Every pointer is device memory,
/// 16-byte aligned.
struct AttentionHeads {
  int64_t heads = 1, kvHeads = 1;
  /// 64 or 128.
  int64_t headDim = 64;
  float scale = 1.0f;
  /// Optional, device memory, one per query head: adds
  /// slope * (kPos - qPos) to the scaled score.
  const float *alibiSlopes = nullptr;
};

/// Which implementation of the same kernels runs (docs/cuda.md §2). Both
/// take the same plan and give the same results within rounding.
enum class AttentionKernel {
  /// WMMA tiles staged through shared memory, scores included.
  Staged,
  /// mma.sync with the scores in registers and the streamed tiles
  /// double-buffered by cp.async, forward and backward.
  Registers,
};

struct AttentionOptions {
  /// Key-range splits per (query tile, head): 0 picks them from the number
  /// of multiprocessors; 1 disables split-KV.
  int splits = 0;
  AttentionKernel kernel = AttentionKernel::Staged;
  cudaStream_t stream = nullptr;
};

/// The mask half of the kernel on the device, built once per batch and
/// shared by every head and layer. Move-only; owns device memory.
class AttentionPlan {
public:
  MaskPolicy policy;
  int64_t qLen = 0, kLen = 0, rowTiles = 0, colTiles = 0;
  /// Counts of the exact classification (host copies).
  int64_t nonSkippedTiles = 0, partialTiles = 0, maxRowWork = 0;
  /// Allowed (query, key) pairs: the useful work of a call.
  int64_t visiblePairs = 0;

  /// Device arrays: the tokens of both lists, one TileClass byte per tile
  /// (row-major, exact), per query tile its non-skipped key tiles
  /// (ascending, CSR), per key tile the query tiles reaching it
  /// (ascending), and both tile lists heaviest first.
  DeviceArray<uint64_t> qWords, kWords;
  DeviceArray<uint32_t> qSegs, kSegs;
  DeviceArray<int64_t> qPos, kPos;
  DeviceArray<uint8_t> classes;
  DeviceArray<int32_t> rowStart, rowCols, colStart, colRows, rowOrder, colOrder;
  /// prepareAttention's scratch, kept with the plan: a plan made again for
  /// the next batch then allocates nothing when it fits (cudaMalloc and
  /// cudaFree wait for the whole device, NCCL's transfers included).
  DeviceArray<TileSummary> qSum, kSum;
  DeviceArray<int32_t> rowWork, rowPartial, colWork;
  DeviceArray<int64_t> rowPairs;

  double skippedFraction() const {
    int64_t all = rowTiles * colTiles;
    return all ? 1.0 - double(nonSkippedTiles) / double(all) : 0.0;
  }
  /// The exact classes on the host (tests, benchmarks); waits for `stream`.
  Status downloadClasses(std::vector<uint8_t> &out, cudaStream_t stream) const {
    return classes.download(out, stream);
  }
};

/// Empty when usable, else why not.
std::string checkAttentionTokens(const AttentionTokens &tokens);
std::string checkAttentionHeads(const AttentionHeads &heads);

/// Uploads the token lists and classifies every tile on the device; waits
/// for `stream` (it reads the per-tile counts back to order the work). A
/// plan made again reuses its arrays where they fit: every earlier use of
/// it must be ordered before `stream` (the same stream, or an event).
Status prepareAttention(const AttentionTokens &tokens, AttentionPlan &plan,
                        cudaStream_t stream = nullptr);

/// Room in `plan` for any plan of up to `qLen` queries and `kLen` keys, so
/// that prepareAttention allocates nothing for them: for an executor whose
/// batches change the plan's size (real data, a CP share per batch) while
/// NCCL transfers are in flight, which cudaMalloc and cudaFree would wait
/// for. Call it before the plan's first use.
inline Status reserveAttention(AttentionPlan &plan, int64_t qLen,
                               int64_t kLen) {
  const size_t q = static_cast<size_t>(qLen), k = static_cast<size_t>(kLen),
               rows = static_cast<size_t>((qLen + kTileRows - 1) / kTileRows),
               cols = static_cast<size_t>((kLen + kTileCols - 1) / kTileCols);
  MLLM_STATUS_TRY(plan.qWords.reserve(q));
  MLLM_STATUS_TRY(plan.qSegs.reserve(q));
  MLLM_STATUS_TRY(plan.qPos.reserve(q));
  MLLM_STATUS_TRY(plan.kWords.reserve(k));
  MLLM_STATUS_TRY(plan.kSegs.reserve(k));
  MLLM_STATUS_TRY(plan.kPos.reserve(k));
  MLLM_STATUS_TRY(plan.classes.reserve(rows * cols));
  MLLM_STATUS_TRY(plan.rowStart.reserve(rows + 1));
  MLLM_STATUS_TRY(plan.colStart.reserve(cols + 1));
  MLLM_STATUS_TRY(plan.rowCols.reserve(rows * cols));
  MLLM_STATUS_TRY(plan.colRows.reserve(rows * cols));
  MLLM_STATUS_TRY(plan.rowOrder.reserve(rows));
  MLLM_STATUS_TRY(plan.colOrder.reserve(cols));
  MLLM_STATUS_TRY(plan.qSum.reserve(rows));
  MLLM_STATUS_TRY(plan.kSum.reserve(cols));
  MLLM_STATUS_TRY(plan.rowWork.reserve(rows));
  MLLM_STATUS_TRY(plan.rowPartial.reserve(rows));
  MLLM_STATUS_TRY(plan.colWork.reserve(cols));
  MLLM_STATUS_TRY(plan.rowPairs.reserve(rows));
  return Status();
}

/// O and LSE from Q, K, V. A query with no visible key gets O = 0 and
/// LSE = -inf. Asynchronous on options.stream.
Status attentionForward(const AttentionPlan &plan, const AttentionHeads &heads,
                        const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o,
                        float *lse, const AttentionOptions &options = {});

/// dQ, dK, dV (overwritten) from the forward's inputs, O, LSE and dO. dK and
/// dV are for the plan's key list (under CP: reduce-scatter them).
Status attentionBackward(const AttentionPlan &plan, const AttentionHeads &heads,
                         const bf16 *q, const bf16 *k, const bf16 *v,
                         const bf16 *o, const float *lse, const bf16 *dO,
                         bf16 *dq, bf16 *dk, bf16 *dv,
                         const AttentionOptions &options = {});

/// The split count attentionForward uses for `options.splits == 0`.
int autoSplits(const AttentionPlan &plan, const AttentionHeads &heads);

/// Whether the current GPU gives one block `bytes` of shared memory (its
/// opt-in limit: 99 KiB on compute capability 8.6 and 8.9, 163 KiB on 8.0,
/// 227 KiB on 9.0); else an error naming `what`, both sizes, the GPU and
/// `remedy`, rather than cudaFuncSetAttribute's "invalid argument".
Status checkSharedMemory(size_t bytes, const std::string &what,
                         const std::string &remedy);

} // namespace cuda
} // namespace kernels
} // namespace mllm

#endif // MLLM_KERNELS_CUDA_ATTENTION_H
