//===- AttentionPlan.cu - The tile map of a CUDA attention call -----------===//
//
// prepareAttention(): the token lists go to the device, and the steps of
// TilePlan.h run there, one thread per tile summary, per tile and per query
// row of a Partial tile. The per-tile counts come back to the host, which
// orders the work heaviest first (the balancer's LPT rule, as the CPU plan)
// and lays out the per-row and per-column lists of non-skipped tiles.
//
//===----------------------------------------------------------------------===//

#include "AttentionDevice.cuh"

#include <algorithm>
#include <numeric>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

namespace {

__global__ void summarizeKernel(TokenListView list, int64_t width,
                                int64_t tiles, TileSummary *out) {
  int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t < tiles)
    out[t] = summarizeTile(list, t, width);
}

/// One block of kTileRows threads per query tile: classify its tiles from
/// the summaries (threads over columns), then make every Partial tile exact
/// (threads over rows), counting non-skipped tiles and allowed pairs.
__global__ void classifyKernel(dev::Plan p, const TileSummary *qSum,
                               const TileSummary *kSum, uint8_t *classes,
                               int32_t *rowWork, int32_t *rowPartial,
                               int64_t *rowPairs) {
  int64_t r = blockIdx.x;
  uint8_t *row = classes + r * p.colTiles;
  for (int64_t c = threadIdx.x; c < p.colTiles; c += blockDim.x)
    row[c] = static_cast<uint8_t>(classifyTile(qSum[r], kSum[c], p.policy));
  __syncthreads();

  __shared__ unsigned long long anyBits[kTileRows / 32],
      allBits[kTileRows / 32];
  __shared__ long long pairs[kTileRows / 32];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int64_t m = tileExtent(p.qLen, kTileRows, r);
  int64_t qi = r * kTileRows + threadIdx.x;
  int64_t work = 0, partial = 0, rowPairSum = 0;
  for (int64_t c = 0; c < p.colTiles; ++c) {
    TileClass cls = static_cast<TileClass>(row[c]);
    if (cls == TileClass::Skip)
      continue;
    int64_t n = tileExtent(p.kLen, kTileCols, c);
    if (cls == TileClass::Full) {
      ++work;
      rowPairSum += fullTilePairs(p.qLen, p.kLen, kTileRows, kTileCols, r, c);
      continue;
    }
    bool in = threadIdx.x < m;
    uint64_t bits = in ? planRowBits(p.policy, p.q, qi, p.k, c, kTileCols) : 0;
    uint64_t any = bits, all = in ? bits : lowBits(n);
    long long count = popcount64(bits);
    for (int o = 16; o > 0; o /= 2) {
      any |= __shfl_xor_sync(0xffffffffu, any, o);
      all &= __shfl_xor_sync(0xffffffffu, all, o);
      count += __shfl_xor_sync(0xffffffffu, count, o);
    }
    if (lane == 0) {
      anyBits[warp] = any;
      allBits[warp] = all;
      pairs[warp] = count;
    }
    __syncthreads();
    for (int w = 0; w < kTileRows / 32; ++w) {
      any |= anyBits[w];
      all &= allBits[w];
    }
    TileClass exact = exactClass(any, all, n);
    if (exact != TileClass::Skip) {
      ++work;
      partial += exact == TileClass::Partial;
      for (int w = 0; w < kTileRows / 32; ++w)
        rowPairSum += pairs[w];
    }
    __syncthreads(); // every thread read the class and the partials
    if (threadIdx.x == 0)
      row[c] = static_cast<uint8_t>(exact);
  }
  if (threadIdx.x == 0) {
    rowWork[r] = static_cast<int32_t>(work);
    rowPartial[r] = static_cast<int32_t>(partial);
    rowPairs[r] = rowPairSum;
  }
}

__global__ void columnWorkKernel(dev::Plan p, int32_t *colWork) {
  int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= p.colTiles)
    return;
  int32_t work = 0;
  for (int64_t r = 0; r < p.rowTiles; ++r)
    work += p.classes[r * p.colTiles + c] != 0;
  colWork[c] = work;
}

/// The CSR (per query tile) and CSC (per key tile) lists, ascending.
__global__ void listKernel(dev::Plan p, int32_t *rowCols, int32_t *colRows) {
  int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t < p.rowTiles) {
    int32_t *out = rowCols + p.rowStart[t];
    for (int64_t c = 0; c < p.colTiles; ++c)
      if (p.classes[t * p.colTiles + c])
        *out++ = static_cast<int32_t>(c);
  } else if (t < p.rowTiles + p.colTiles) {
    int64_t c = t - p.rowTiles;
    int32_t *out = colRows + p.colStart[c];
    for (int64_t r = 0; r < p.rowTiles; ++r)
      if (p.classes[r * p.colTiles + c])
        *out++ = static_cast<int32_t>(r);
  }
}

int blocksFor(int64_t n, int threads) {
  return static_cast<int>((n + threads - 1) / threads);
}

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

} // namespace

Status cuda::prepareAttention(const AttentionTokens &tokens,
                              AttentionPlan &plan, cudaStream_t stream) {
  std::string bad = checkAttentionTokens(tokens);
  if (!bad.empty())
    return Status::error("prepareAttention: " + bad);
  AttentionPlan &p = plan;
  // The counts start again; the arrays keep their allocations, reused
  // where they fit.
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
    MLLM_CUDA_TRY(cudaStreamSynchronize(stream));
    return Status();
  }

  DeviceArray<TileSummary> &qSum = p.qSum, &kSum = p.kSum;
  DeviceArray<int32_t> &rowWork = p.rowWork, &rowPartial = p.rowPartial,
                       &colWork = p.colWork;
  DeviceArray<int64_t> &rowPairs = p.rowPairs;
  MLLM_STATUS_TRY(qSum.allocate(p.rowTiles));
  MLLM_STATUS_TRY(kSum.allocate(p.colTiles));
  MLLM_STATUS_TRY(rowWork.allocate(p.rowTiles));
  MLLM_STATUS_TRY(rowPartial.allocate(p.rowTiles));
  MLLM_STATUS_TRY(colWork.allocate(p.colTiles));
  MLLM_STATUS_TRY(rowPairs.allocate(p.rowTiles));
  MLLM_STATUS_TRY(p.classes.allocate(p.rowTiles * p.colTiles));
  dev::Plan d = dev::view(p);
  summarizeKernel<<<blocksFor(p.rowTiles, 128), 128, 0, stream>>>(
      d.q, kTileRows, p.rowTiles, qSum.data());
  summarizeKernel<<<blocksFor(p.colTiles, 128), 128, 0, stream>>>(
      d.k, kTileCols, p.colTiles, kSum.data());
  classifyKernel<<<static_cast<unsigned>(p.rowTiles),
                   static_cast<unsigned>(kTileRows), 0, stream>>>(
      d, qSum.data(), kSum.data(), p.classes.data(), rowWork.data(),
      rowPartial.data(), rowPairs.data());
  columnWorkKernel<<<blocksFor(p.colTiles, 128), 128, 0, stream>>>(
      d, colWork.data());
  MLLM_CUDA_LAUNCHED();

  std::vector<int32_t> rows, partials, cols;
  std::vector<int64_t> pairs;
  MLLM_STATUS_TRY(rowWork.download(rows, stream));
  MLLM_STATUS_TRY(rowPartial.download(partials, stream));
  MLLM_STATUS_TRY(colWork.download(cols, stream));
  MLLM_STATUS_TRY(rowPairs.download(pairs, stream));
  for (int32_t w : rows) {
    p.nonSkippedTiles += w;
    p.maxRowWork = std::max<int64_t>(p.maxRowWork, w);
  }
  for (int32_t n : partials)
    p.partialTiles += n;
  p.visiblePairs = std::accumulate(pairs.begin(), pairs.end(), int64_t(0));
  MLLM_STATUS_TRY(p.rowStart.upload(exclusiveScan(rows), stream));
  MLLM_STATUS_TRY(p.colStart.upload(exclusiveScan(cols), stream));
  MLLM_STATUS_TRY(p.rowOrder.upload(heaviestFirst(rows), stream));
  MLLM_STATUS_TRY(p.colOrder.upload(heaviestFirst(cols), stream));
  MLLM_STATUS_TRY(p.rowCols.allocate(p.nonSkippedTiles));
  MLLM_STATUS_TRY(p.colRows.allocate(p.nonSkippedTiles));
  d = dev::view(p);
  listKernel<<<blocksFor(p.rowTiles + p.colTiles, 128), 128, 0, stream>>>(
      d, p.rowCols.data(), p.colRows.data());
  MLLM_CUDA_LAUNCHED();
  MLLM_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status();
}
