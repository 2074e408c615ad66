//===- Attention.cpp - cuda/Attention.h on the CPU attention kernel -------===//
//
// prepareAttention builds the CPU plan at the CUDA kernels' tile (64 x 64),
// whose exact classes are what the device plan computes, and fills every
// field of the AttentionPlan as kernels/lib/cuda/AttentionPlan.cu does:
// the token lists, one class byte per tile, the per-row and per-column
// lists of non-skipped tiles, the heaviest-first orders and the counts.
//
// attentionForward/Backward rebuild the CPU plan from the plan's token
// lists (a layout holding each listed position's word and segment: the
// mask reads nothing else) and run cpu::attentionForward/Backward<float> on
// the widened bf16 inputs; O, dQ, dK, dV are rounded to bf16, LSE stays
// fp32. The split count only changes how the GPU cuts the work, so it is
// ignored here (the merged result is the same up to rounding).
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Attention.h"

#include "Twin.h"

#include "mllm/kernels/OnlineSoftmax.h"
#include "mllm/kernels/cpu/Attention.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;
using twin::checkArg;
using twin::storeBf16;
using twin::toFloat;

namespace {

std::vector<int32_t> heaviestFirst(const std::vector<int32_t> &work) {
  std::vector<int32_t> order(work.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return work[a] > work[b]; });
  return order;
}

std::vector<int32_t> exclusiveScan(const std::vector<int32_t> &counts) {
  std::vector<int32_t> start(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i)
    start[i + 1] = start[i] + counts[i];
  return start;
}

/// Word, segment and position of each entry of a position list.
void gather(const TokenLayout &layout, const int64_t *given, int64_t len,
            std::vector<uint64_t> &words, std::vector<uint32_t> &segs,
            std::vector<int64_t> &pos) {
  words.resize(len);
  segs.resize(len);
  pos.resize(len);
  for (int64_t i = 0; i < len; ++i) {
    pos[i] = given ? given[i] : i;
    words[i] = layout.words[pos[i]];
    segs[i] = layout.segment(pos[i]);
  }
}

cpu::AttentionTokens cpuTokens(const TokenLayout &layout, MaskPolicy policy,
                               const int64_t *qPos, int64_t qLen,
                               const int64_t *kPos, int64_t kLen) {
  cpu::AttentionTokens t;
  t.layout = &layout;
  t.policy = policy;
  t.tiles = {kTileRows, kTileCols};
  t.qPos = qPos;
  t.qLen = qLen;
  t.kPos = kPos;
  t.kLen = kLen;
  return t;
}

/// The CPU plan of `plan`'s token lists at the kernels' tile.
cpu::AttentionPlan cpuPlanOf(const AttentionPlan &plan) {
  TokenLayout layout;
  int64_t size = 0;
  for (int64_t i = 0; i < plan.qLen; ++i)
    size = std::max(size, plan.qPos.data()[i] + 1);
  for (int64_t i = 0; i < plan.kLen; ++i)
    size = std::max(size, plan.kPos.data()[i] + 1);
  layout.words.assign(size, 0);
  layout.segments.assign(size, 0);
  for (int64_t i = 0; i < plan.qLen; ++i) {
    layout.words[plan.qPos.data()[i]] = plan.qWords.data()[i];
    layout.segments[plan.qPos.data()[i]] = plan.qSegs.data()[i];
  }
  for (int64_t i = 0; i < plan.kLen; ++i) {
    layout.words[plan.kPos.data()[i]] = plan.kWords.data()[i];
    layout.segments[plan.kPos.data()[i]] = plan.kSegs.data()[i];
  }
  return cpu::prepareAttention(cpuTokens(layout, plan.policy, plan.qPos.data(),
                                         plan.qLen, plan.kPos.data(),
                                         plan.kLen));
}

cpu::AttentionHeads cpuHeads(const AttentionHeads &h) {
  cpu::AttentionHeads c;
  c.heads = h.heads;
  c.kvHeads = h.kvHeads;
  c.headDim = h.headDim;
  c.scale = h.scale;
  c.alibiSlopes = h.alibiSlopes;
  return c;
}

/// The CPU kernel holds OpenBLAS at one thread process-wide during a call,
/// so calls must not overlap; CUDA calls from several threads may.
std::mutex &cpuKernelMutex() {
  static std::mutex m;
  return m;
}

/// Stream, heads and every tensor of a call: present, device memory of
/// the right size, 16-byte aligned.
Status checkCall(
    const char *k, const AttentionPlan &plan, const AttentionHeads &h,
    cudaStream_t stream,
    std::initializer_list<std::pair<const char *, const void *>> queryTensors,
    std::initializer_list<std::pair<const char *, const void *>> keyTensors,
    const float *lse) {
  MLLM_STATUS_TRY(twin::checkStream(k, stream));
  const int64_t qn = plan.qLen * h.heads * h.headDim,
                kn = plan.kLen * h.kvHeads * h.headDim;
  for (const auto &t : queryTensors) {
    MLLM_STATUS_TRY(checkArg(k, t.first, t.second, qn, sizeof(bf16)));
    MLLM_STATUS_TRY(twin::checkAligned(k, t.first, t.second));
  }
  for (const auto &t : keyTensors) {
    MLLM_STATUS_TRY(checkArg(k, t.first, t.second, kn, sizeof(bf16)));
    MLLM_STATUS_TRY(twin::checkAligned(k, t.first, t.second));
  }
  MLLM_STATUS_TRY(checkArg(k, "lse", lse, plan.qLen * h.heads));
  MLLM_STATUS_TRY(
      checkArg(k, "alibiSlopes", h.alibiSlopes, h.heads, /*optional=*/true));
  return Status();
}

} // namespace

Status cuda::prepareAttention(const AttentionTokens &tokens,
                              AttentionPlan &plan, cudaStream_t stream) {
  std::string bad = checkAttentionTokens(tokens);
  if (!bad.empty())
    return Status::error("prepareAttention: " + bad);
  MLLM_STATUS_TRY(twin::checkStream("prepareAttention", stream));
  AttentionPlan &p = plan;
  // As on the GPU: the counts start again, the arrays keep their
  // allocations, reused where they fit.
  p.nonSkippedTiles = p.partialTiles = p.maxRowWork = p.visiblePairs = 0;
  p.policy = tokens.policy;
  p.qLen = tokens.qLen;
  p.kLen = tokens.kLen;
  p.rowTiles = numTiles(p.qLen, kTileRows);
  p.colTiles = numTiles(p.kLen, kTileCols);

  std::vector<uint64_t> words;
  std::vector<uint32_t> segs;
  std::vector<int64_t> pos;
  gather(*tokens.layout, tokens.qPos, tokens.qLen, words, segs, pos);
  MLLM_STATUS_TRY(p.qWords.upload(words, stream));
  MLLM_STATUS_TRY(p.qSegs.upload(segs, stream));
  MLLM_STATUS_TRY(p.qPos.upload(pos, stream));
  gather(*tokens.layout, tokens.kPos, tokens.kLen, words, segs, pos);
  MLLM_STATUS_TRY(p.kWords.upload(words, stream));
  MLLM_STATUS_TRY(p.kSegs.upload(segs, stream));
  MLLM_STATUS_TRY(p.kPos.upload(pos, stream));
  if (p.rowTiles == 0 || p.colTiles == 0) {
    // Nothing to attend: empty lists, but valid offsets and orders.
    MLLM_STATUS_TRY(p.classes.allocate(0));
    MLLM_STATUS_TRY(p.rowCols.allocate(0));
    MLLM_STATUS_TRY(p.colRows.allocate(0));
    MLLM_STATUS_TRY(
        p.rowStart.upload(std::vector<int32_t>(p.rowTiles + 1, 0), stream));
    MLLM_STATUS_TRY(
        p.colStart.upload(std::vector<int32_t>(p.colTiles + 1, 0), stream));
    std::vector<int32_t> rows(p.rowTiles), cols(p.colTiles);
    std::iota(rows.begin(), rows.end(), 0);
    std::iota(cols.begin(), cols.end(), 0);
    MLLM_STATUS_TRY(p.rowOrder.upload(rows, stream));
    MLLM_STATUS_TRY(p.colOrder.upload(cols, stream));
    return Status();
  }

  cpu::AttentionPlan c = cpu::prepareAttention(
      cpuTokens(*tokens.layout, tokens.policy, tokens.qPos, tokens.qLen,
                tokens.kPos, tokens.kLen));
  std::vector<uint8_t> classes(p.rowTiles * p.colTiles);
  std::vector<int32_t> rowWork(p.rowTiles, 0), colWork(p.colTiles, 0);
  std::vector<int32_t> rowCols, colRows;
  for (int64_t r = 0; r < p.rowTiles; ++r)
    for (int64_t col = 0; col < p.colTiles; ++col) {
      TileClass cls = c.tileClass(r, col);
      classes[r * p.colTiles + col] = static_cast<uint8_t>(cls);
      if (cls == TileClass::Skip)
        continue;
      ++rowWork[r];
      ++colWork[col];
      p.partialTiles += cls == TileClass::Partial;
      rowCols.push_back(static_cast<int32_t>(col));
    }
  for (int64_t col = 0; col < p.colTiles; ++col)
    for (int64_t r = 0; r < p.rowTiles; ++r)
      if (classes[r * p.colTiles + col])
        colRows.push_back(static_cast<int32_t>(r));
  for (int32_t w : rowWork) {
    p.nonSkippedTiles += w;
    p.maxRowWork = std::max<int64_t>(p.maxRowWork, w);
  }
  p.visiblePairs = c.visiblePairs();
  MLLM_STATUS_TRY(p.classes.upload(classes, stream));
  MLLM_STATUS_TRY(p.rowStart.upload(exclusiveScan(rowWork), stream));
  MLLM_STATUS_TRY(p.colStart.upload(exclusiveScan(colWork), stream));
  MLLM_STATUS_TRY(p.rowOrder.upload(heaviestFirst(rowWork), stream));
  MLLM_STATUS_TRY(p.colOrder.upload(heaviestFirst(colWork), stream));
  MLLM_STATUS_TRY(p.rowCols.upload(rowCols, stream));
  MLLM_STATUS_TRY(p.colRows.upload(colRows, stream));
  return Status();
}

Status cuda::attentionForward(const AttentionPlan &plan,
                              const AttentionHeads &heads, const bf16 *q,
                              const bf16 *k, const bf16 *v, bf16 *o, float *lse,
                              const AttentionOptions &options) {
  std::string bad = checkAttentionHeads(heads);
  if (!bad.empty())
    return Status::error("attentionForward: " + bad);
  if (plan.rowTiles == 0)
    return Status();
  MLLM_STATUS_TRY(checkCall("attentionForward", plan, heads, options.stream,
                            {{"q", q}, {"o", o}}, {{"k", k}, {"v", v}}, lse));
  const int64_t qn = plan.qLen * heads.heads * heads.headDim,
                kn = plan.kLen * heads.kvHeads * heads.headDim;
  if (plan.colTiles == 0) {
    // No keys: every row sees nothing, O = 0 and LSE = -inf.
    std::fill(o, o + qn, __float2bfloat16(0.0f));
    std::fill(lse, lse + plan.qLen * heads.heads, -INFINITY);
    return Status();
  }
  std::vector<float> fq = toFloat(q, qn), fk = toFloat(k, kn),
                     fv = toFloat(v, kn), fo(qn), flse(plan.qLen * heads.heads);
  {
    std::lock_guard<std::mutex> lock(cpuKernelMutex());
    cpu::AttentionPlan c = cpuPlanOf(plan);
    cpu::attentionForward<float>(c, cpuHeads(heads), fq.data(), fk.data(),
                                 fv.data(), fo.data(), flse.data());
  }
  storeBf16(fo.data(), o, qn);
  std::copy(flse.begin(), flse.end(), lse);
  return Status();
}

Status cuda::attentionBackward(const AttentionPlan &plan,
                               const AttentionHeads &heads, const bf16 *q,
                               const bf16 *k, const bf16 *v, const bf16 *o,
                               const float *lse, const bf16 *dO, bf16 *dq,
                               bf16 *dk, bf16 *dv,
                               const AttentionOptions &options) {
  std::string bad = checkAttentionHeads(heads);
  if (!bad.empty())
    return Status::error("attentionBackward: " + bad);
  MLLM_STATUS_TRY(checkCall("attentionBackward", plan, heads, options.stream,
                            {{"q", q}, {"o", o}, {"dO", dO}, {"dq", dq}},
                            {{"k", k}, {"v", v}, {"dk", dk}, {"dv", dv}}, lse));
  const int64_t qn = plan.qLen * heads.heads * heads.headDim,
                kn = plan.kLen * heads.kvHeads * heads.headDim;
  if (plan.rowTiles == 0 || plan.colTiles == 0) {
    // No pair is visible: every gradient is 0, as the CUDA kernels write.
    std::fill(dq, dq + qn, __float2bfloat16(0.0f));
    std::fill(dk, dk + kn, __float2bfloat16(0.0f));
    std::fill(dv, dv + kn, __float2bfloat16(0.0f));
    return Status();
  }
  std::vector<float> fq = toFloat(q, qn), fk = toFloat(k, kn),
                     fv = toFloat(v, kn), fo = toFloat(o, qn),
                     fdO = toFloat(dO, qn), fdq(qn), fdk(kn), fdv(kn);
  {
    std::lock_guard<std::mutex> lock(cpuKernelMutex());
    cpu::AttentionPlan c = cpuPlanOf(plan);
    cpu::attentionBackward<float>(c, cpuHeads(heads), fq.data(), fk.data(),
                                  fv.data(), fo.data(), lse, fdO.data(),
                                  fdq.data(), fdk.data(), fdv.data());
  }
  storeBf16(fdq.data(), dq, qn);
  storeBf16(fdk.data(), dk, kn);
  storeBf16(fdv.data(), dv, kn);
  return Status();
}
