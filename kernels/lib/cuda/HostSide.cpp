//===- HostSide.cpp - the kernel API's functions that run on the host -----===//
//
// The checks of attention arguments, patch and convolution shapes, the
// split-KV choice and the embedding gradient's plan are host code. They are
// compiled into both the CUDA library (MLLMKernelsCUDA) and its host twin
// (MLLMKernelsCUDAHost, kernels/lib/cudahost), so the twin runs exactly the
// GPU library's decisions. Plain C++ against the CUDA runtime API.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/Layers.h"

#include <algorithm>
#include <limits>
#include <string>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

std::string cuda::checkAttentionTokens(const AttentionTokens &t) {
  if (!t.layout)
    return "no token layout";
  const TokenLayout &l = *t.layout;
  if (!l.segments.empty() && l.segments.size() != l.words.size())
    return "the layout has " + std::to_string(l.segments.size()) +
           " segments for " + std::to_string(l.words.size()) + " words";
  if (t.qLen < 0 || t.kLen < 0)
    return "negative query or key count";
  // Tile indices and list offsets are int32 on the device.
  if (t.qLen > (int64_t(1) << 31) - kTileRows || t.kLen > (int64_t(1) << 30))
    return "too many tokens for one call";
  // So are the tile lists' offsets, which count up to every tile.
  const int64_t tiles = (t.qLen + kTileRows - 1) / kTileRows *
                        ((t.kLen + kTileCols - 1) / kTileCols);
  if (tiles > std::numeric_limits<int32_t>::max())
    return std::to_string(t.qLen) + " queries x " + std::to_string(t.kLen) +
           " keys are " + std::to_string(tiles) +
           " tiles, more than one call lists (2^31 - 1); split the queries";
  const int64_t *lists[] = {t.qPos, t.kPos};
  const int64_t lens[] = {t.qLen, t.kLen};
  for (int w = 0; w < 2; ++w) {
    if (!lists[w] && lens[w] > l.size())
      return std::string(w ? "key" : "query") + " count " +
             std::to_string(lens[w]) + " exceeds the layout's " +
             std::to_string(l.size()) + " tokens";
    for (int64_t i = 0; lists[w] && i < lens[w]; ++i)
      if (lists[w][i] < 0 || lists[w][i] >= l.size())
        return std::string(w ? "key " : "query ") + std::to_string(i) +
               " is outside the layout";
  }
  return "";
}

std::string cuda::checkAttentionHeads(const AttentionHeads &h) {
  if (h.heads < 1 || h.kvHeads < 1 || h.heads % h.kvHeads != 0)
    return "kv heads must be positive and divide the heads";
  if (h.headDim != 64 && h.headDim != 128)
    return "head dim " + std::to_string(h.headDim) +
           " is not supported (64 or 128)";
  return "";
}

int cuda::autoSplits(const AttentionPlan &plan, const AttentionHeads &heads) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) !=
          cudaSuccess)
    return 1;
  const int64_t tasks = plan.rowTiles * heads.heads;
  if (tasks == 0 || tasks >= 2 * sms)
    return 1;
  // Enough blocks for two waves, never more splits than key tiles in the
  // heaviest row (a split with nothing to do only costs its launch).
  const int64_t wanted = (2 * sms + tasks - 1) / tasks;
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>({wanted, plan.maxRowWork, 16})));
}

Status cuda::checkSharedMemory(size_t bytes, const std::string &what,
                               const std::string &remedy) {
  int device = 0, allowed = 0, major = 0, minor = 0;
  MLLM_CUDA_TRY(cudaGetDevice(&device));
  MLLM_CUDA_TRY(cudaDeviceGetAttribute(
      &allowed, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (bytes <= static_cast<size_t>(allowed))
    return Status();
  MLLM_CUDA_TRY(cudaDeviceGetAttribute(
      &major, cudaDevAttrComputeCapabilityMajor, device));
  MLLM_CUDA_TRY(cudaDeviceGetAttribute(
      &minor, cudaDevAttrComputeCapabilityMinor, device));
  auto kib = [](size_t b) {
    return std::to_string(b / 1024) + "." +
           std::to_string(b % 1024 * 10 / 1024);
  };
  return Status::error(what + " needs " + kib(bytes) +
                       " KiB of shared memory per block, and this GPU "
                       "(compute capability " +
                       std::to_string(major) + "." + std::to_string(minor) +
                       ") gives at most " + kib(static_cast<size_t>(allowed)) +
                       " KiB" + (remedy.empty() ? "" : "; " + remedy));
}

std::string cuda::checkPatchShape(const cpu::PatchShape &s) {
  if (s.patch < 1 || s.temporalPatch < 1)
    return "patch sizes " + std::to_string(s.temporalPatch) + " x " +
           std::to_string(s.patch) + " x " + std::to_string(s.patch) +
           " are not positive";
  if (s.channels < 1)
    return "a channel count of " + std::to_string(s.channels) +
           " is not positive";
  if (s.frames < 0 || s.height < 0 || s.width < 0 ||
      s.frames % s.temporalPatch != 0 || s.height % s.patch != 0 ||
      s.width % s.patch != 0)
    return "an item of " + std::to_string(s.frames) + " x " +
           std::to_string(s.height) + " x " + std::to_string(s.width) +
           " is not a whole number of " + std::to_string(s.temporalPatch) +
           " x " + std::to_string(s.patch) + " x " + std::to_string(s.patch) +
           " patches";
  return "";
}

std::string cuda::checkConv1dShape(const cpu::Conv1dShape &s) {
  if (s.kernel < 1 || s.stride < 1 || s.padding < 0)
    return "kernel " + std::to_string(s.kernel) + ", stride " +
           std::to_string(s.stride) + " and padding " +
           std::to_string(s.padding) +
           " are not a convolution (kernel and stride >= 1, padding >= 0)";
  if (s.inChannels < 1)
    return "an input channel count of " + std::to_string(s.inChannels) +
           " is not positive";
  if (s.frames < 0 || s.frames + 2 * s.padding < s.kernel)
    return std::to_string(s.frames) + " frames padded by " +
           std::to_string(s.padding) + " on each side are fewer than the " +
           std::to_string(s.kernel) + " of the kernel";
  return "";
}

namespace {

/// The plan over the tokens whose id lies in [first, first + count), ids
/// made local; the caller has rejected the ids it does not want skipped.
Status buildEmbeddingGradPlan(const std::vector<int64_t> &hostIds,
                              int64_t first, int64_t count,
                              EmbeddingGradPlan &plan, cudaStream_t stream) {
  const int64_t tokens = static_cast<int64_t>(hostIds.size());
  // Token indices and runs are int32 on the device.
  if (tokens > std::numeric_limits<int32_t>::max())
    return Status::error("embedding: " + std::to_string(tokens) +
                         " tokens are too many for one gradient plan");
  std::vector<int32_t> order;
  for (int64_t t = 0; t < tokens; ++t)
    if (hostIds[t] >= first && hostIds[t] - first < count)
      order.push_back(static_cast<int32_t>(t));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return hostIds[a] < hostIds[b];
  });
  std::vector<int64_t> ids;
  std::vector<int32_t> start;
  const size_t kept = order.size();
  for (size_t i = 0; i < kept; ++i)
    if (i == 0 || hostIds[order[i]] != hostIds[order[i - 1]]) {
      ids.push_back(hostIds[order[i]] - first);
      start.push_back(static_cast<int32_t>(i));
    }
  start.push_back(static_cast<int32_t>(kept));
  plan.tokens = tokens;
  plan.uniqueIds = static_cast<int64_t>(ids.size());
  // Room for every token from the first batch on: a slice's share changes
  // from batch to batch, and growing would cudaFree (a device-wide wait,
  // NCCL transfers included).
  if (tokens > 0) {
    MLLM_STATUS_TRY(plan.ids.allocate(static_cast<size_t>(tokens)));
    MLLM_STATUS_TRY(plan.start.allocate(static_cast<size_t>(tokens) + 1));
    MLLM_STATUS_TRY(plan.order.allocate(static_cast<size_t>(tokens)));
  }
  MLLM_STATUS_TRY(plan.ids.upload(ids, stream));
  MLLM_STATUS_TRY(plan.start.upload(start, stream));
  MLLM_STATUS_TRY(plan.order.upload(order, stream));
  MLLM_CUDA_TRY(cudaStreamSynchronize(stream)); // the host vectors go away
  return Status();
}

} // namespace

Status cuda::prepareEmbeddingGrad(const std::vector<int64_t> &hostIds,
                                  int64_t vocab, EmbeddingGradPlan &plan,
                                  cudaStream_t stream) {
  const int64_t tokens = static_cast<int64_t>(hostIds.size());
  for (int64_t t = 0; t < tokens; ++t)
    if (hostIds[t] < 0 || hostIds[t] >= vocab)
      return Status::error("embedding: token " + std::to_string(t) +
                           " has id " + std::to_string(hostIds[t]) +
                           " outside the vocabulary of " +
                           std::to_string(vocab));
  return buildEmbeddingGradPlan(hostIds, 0, vocab, plan, stream);
}

Status cuda::prepareEmbeddingGradSlice(const std::vector<int64_t> &hostIds,
                                       int64_t vocabFirst, int64_t vocabCount,
                                       EmbeddingGradPlan &plan,
                                       cudaStream_t stream) {
  if (vocabFirst < 0 || vocabCount < 0)
    return Status::error("embedding: the vocabulary slice of " +
                         std::to_string(vocabCount) + " ids from " +
                         std::to_string(vocabFirst) +
                         " has a negative start or size");
  return buildEmbeddingGradPlan(hostIds, vocabFirst, vocabCount, plan, stream);
}
