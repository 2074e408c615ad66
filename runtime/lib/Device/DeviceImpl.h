//===- DeviceImpl.h - the state of a DeviceTrainer --------------*- C++ -*-===//
//
// Private to runtime/lib/Device: parameters on the device, the layers of
// the LLM with the buffers their forward keeps for the backward, and the
// helpers that turn a kernel's Status into an llvm::Error.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DEVICE_DEVICEIMPL_H
#define MLLM_RUNTIME_DEVICE_DEVICEIMPL_H

#include "mllm/runtime/MemoryPlan.h"
#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Optimizer.h"
#include "mllm/runtime/exec/RankRunner.h"

#include "mllm/kernels/cuda/Attention.h"
#include "mllm/kernels/cuda/Gemm.h"
#include "mllm/kernels/cuda/Layers.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mllm::runtime::device {

using kernels::cuda::bf16;
using kernels::cuda::DeviceArray;
using kernels::cuda::Status;

/// `status` as an llvm::Error naming `what`.
llvm::Error check(const Status &status, const llvm::Twine &what);

/// A CUDA runtime result as a kernel Status.
inline Status cudaStatus(cudaError_t rc) {
  return rc == cudaSuccess ? Status() : Status::error(cudaGetErrorString(rc));
}

/// cudaMemcpy2DAsync of `height` rows of `width` bytes, or one copy per row
/// where a pitch passes CUDA's limit (memPitch: 2^31 - 1 bytes on current
/// GPUs; a [sequences, keys] block of 128k keys of 64 heads x 128 does).
inline cudaError_t copyRowsAsync(void *dst, size_t dpitch, const void *src,
                                 size_t spitch, size_t width, size_t height,
                                 cudaStream_t stream) {
  constexpr size_t kMaxPitch = 2147483647;
  if (dpitch <= kMaxPitch && spitch <= kMaxPitch)
    return cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height,
                             cudaMemcpyDeviceToDevice, stream);
  for (size_t r = 0; r < height; ++r)
    if (cudaError_t rc =
            cudaMemcpyAsync(static_cast<char *>(dst) + r * dpitch,
                            static_cast<const char *>(src) + r * spitch, width,
                            cudaMemcpyDeviceToDevice, stream))
      return rc;
  return cudaSuccess;
}

/// Returns the llvm::Error `expr` evaluates to, if it is one.
#define MLLM_TRY(expr)                                                         \
  do {                                                                         \
    if (llvm::Error mllmError_ = (expr))                                       \
      return mllmError_;                                                       \
  } while (0)

/// The activation `name` (gelu, relu, silu: [rows, width]; swiglu, geglu:
/// `in` is [rows, 2 x width] = [gate | up]) and its gradient.
Status activationForward(const std::string &name, const bf16 *in, bf16 *out,
                         int64_t rows, int64_t width, cudaStream_t stream);
Status activationBackward(const std::string &name, const bf16 *in,
                          const bf16 *dOut, bf16 *dIn, int64_t rows,
                          int64_t width, cudaStream_t stream);

/// One parameter: fp32 master weights, the bf16 copy the kernels read, and
/// when it trains its fp32 gradient and AdamW moments. All in the arena.
struct DeviceParam {
  cpu::Param<float> *host = nullptr;
  std::string name;
  int64_t n = 0;
  bool trains = true;
  float *master = nullptr, *grad = nullptr, *expAvg = nullptr,
        *expAvgSq = nullptr;
  bf16 *value = nullptr;
};

enum class LayerKind {
  Embedding,
  Block,
  Norm,
  Head,
  Patch,          ///< An encoder's patch embedding (images).
  Audio,          ///< An encoder's audio front end (two 1-D convolutions).
  ProjectorInput, ///< Drops the class token before the projector.
  Mlp,            ///< Projector: fc2(act(fc1(x))), with biases.
  Linear,         ///< Projector: x W^T + b.
  Conformer,      ///< A macaron conformer block (DeviceConformer.cpp).
};

/// What a conformer block's forward keeps besides its input and the
/// attention's q, k, v, o, lse: cpu::ConformerBlock's intermediates by its
/// names, the feed-forwards' pre-activations and outputs, and the
/// statistics of its six norms (ffn1, attn, conv, conv.norm, ffn2, final).
struct ConformerSaved {
  bf16 *n1 = nullptr, *x1 = nullptr, *n2 = nullptr, *x2 = nullptr,
       *n3 = nullptr, *p1 = nullptr, *g = nullptr, *dc = nullptr, *ln = nullptr,
       *s = nullptr, *x3 = nullptr, *n4 = nullptr, *x4 = nullptr;
  bf16 *u1 = nullptr, *a1 = nullptr, *u2 = nullptr, *a2 = nullptr;
  float *mean[6] = {}, *rstd[6] = {};
};

/// The sequences a chain's blocks see in one microbatch, their positions
/// and the plan of their attention.
struct Sequences {
  int64_t sequences = 0, tokens = 0;
  /// The keys each query attends among: `tokens`, or under context
  /// parallelism every CP rank's tokens of the sequence, all-gathered in
  /// rank order.
  int64_t keys = 0;
  int64_t *positions = nullptr; ///< Device memory: [tokens].
  kernels::cuda::AttentionPlan attention;
  /// `attention` is the plan of the chain's declared mask.
  bool declaredAttention = false;
  int64_t rows() const { return sequences * tokens; }
};

/// One layer of a chain with what its forward keeps for the microbatch in
/// flight (pointers into that microbatch's `saved` buffer of the arena).
struct DeviceLayer {
  LayerKind kind = LayerKind::Block;
  std::string name; ///< "llm.blocks.3", for messages.
  LayerConfig config;
  bool gated = false, rope = false;
  /// A tensor-parallel shard (Impl::tp): a block holds the query heads
  /// from `headFirst` and its `config` has the shard's head, kv-head and
  /// feed-forward counts; the embedding and the head hold the vocabulary
  /// rows from `vocabFirst`, `config.vocab` of them.
  bool split = false;
  int64_t headFirst = 0, vocabFirst = 0;
  /// ALiBi: the layer's slopes, one per query head (in the weights region).
  float *slopes = nullptr;
  /// The plan's frozen analysis: whether it accumulates weight gradients,
  /// and whether the gradient of its input is needed upstream.
  bool trains = true, inputGrad = true;
  /// A block of a part with recomputation: it keeps only its input; its
  /// forward's other results live in the action's workspace and its
  /// backward runs the forward again first.
  bool recompute = false;
  /// Rows and width of its input, and of its output, in one microbatch.
  int64_t rows = 0, width = 0, outRows = 0, outWidth = 0;
  /// Blocks: the sequences they attend within.
  Sequences *seq = nullptr;
  /// Patch: items per microbatch, patch-grid tokens per item, and whether
  /// a class token leads each item. ProjectorInput: tokens per item.
  int64_t items = 0, grid = 0, itemTokens = 0;
  bool classToken = false;
  /// By the CPU layer's parameter name ("wq", "norm1.weight", "weight").
  std::map<std::string, DeviceParam *> params;
  DeviceParam &param(const std::string &name) const { return *params.at(name); }
  DeviceParam *maybe(const std::string &name) const {
    auto it = params.find(name);
    return it == params.end() ? nullptr : it->second;
  }

  // Saved by the forward (rows = sequences x tokens of one microbatch).
  bf16 *x = nullptr;                   ///< The input.
  bf16 *xn1 = nullptr, *xn2 = nullptr; ///< Block: the norms' outputs.
  float *mean1 = nullptr, *rstd1 = nullptr, *mean2 = nullptr, *rstd2 = nullptr;
  bf16 *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr; ///< q, k roped
  float *lse = nullptr; ///< Attention: [sequences, heads, tokens].
  /// k and v above hold [sequences, keys] rows: under CP, every rank's.
  bf16 *h = nullptr;               ///< x + attention.
  bf16 *u = nullptr, *a = nullptr; ///< Feed-forward pre-activation, output.
  bf16 *logits = nullptr;          ///< Head: [rows, vocab].
  float *rowLse = nullptr;         ///< Head: per row.
  /// Patch: the images [items, C, T, H, W]; Audio: the log-mel windows
  /// [items, frames, mels].
  bf16 *media = nullptr;
  bf16 *patches = nullptr; ///< Patch: [items x grid, patch dim].
  bf16 *g1 = nullptr;      ///< Audio: GELU(conv1); u, a: conv1, conv2.
  /// Conformer: what it saves besides x and q, k, v, o, lse.
  ConformerSaved conformer;
};

/// An encoder with its projector: the layers, the sequences its blocks see
/// (one per item), its output (the projected tokens the LLM's fan-in
/// places) and that output's gradient.
struct DeviceEncoder {
  std::string name; ///< The encoder, as MicrobatchData::media names it.
  std::vector<DeviceLayer> layers;
  Sequences seq;
  int64_t mediaValues = 0; ///< Floats of media per microbatch.
  bf16 *out = nullptr;     ///< Saved: [outRows, outWidth].
  bf16 *dOut = nullptr;    ///< Workspace: the gradient of `out`.
  int64_t outRows = 0, outWidth = 0;
  /// Whether any layer trains (the LLM's backward then fills dOut).
  bool trains = false;
  /// Its layers include the projector (a pipeline stage may hold the
  /// first ones only, or none: the LLM's stage with the fan-in).
  bool ends = false;
  /// This microbatch's fan-in: rows of `out` and the LLM sequence rows
  /// they go to (device memory, saved; `copies` of them).
  int64_t *fromRows = nullptr, *toRows = nullptr;
  int64_t copies = 0;
  /// This batch's forward runs none of its layers: a round of generation
  /// whose new tokens hold none of its rows.
  bool idle = false;
};

/// Gradient scratch shared by the layers: a compute action's workspace.
struct Scratch {
  bf16 *dy = nullptr, *dx = nullptr;  ///< [rows, hidden]: the gradient.
  bf16 *dxn = nullptr, *dh = nullptr; ///< [rows, hidden].
  bf16 *dO = nullptr, *dq = nullptr;  ///< [rows, heads x head_dim].
  bf16 *dk = nullptr, *dv = nullptr;  ///< [rows, kv_heads x head_dim].
  /// Under CP: dK and dV of every rank's keys ([sequences x keys,
  /// kv_heads x head_dim]), and the rank-major staging of the exchanges of
  /// K and V (of their gradients), both in flight at once.
  bf16 *dkAll = nullptr, *dvAll = nullptr, *kStage = nullptr, *vStage = nullptr;
  bf16 *da = nullptr, *du = nullptr; ///< [rows, ffn], [rows, 2 ffn].
  bf16 *dlogits = nullptr;           ///< [rows, vocab].
  bf16 *cols = nullptr;              ///< An audio front end's im2col columns.
  /// Where frozen norms write the weight gradients their kernels always
  /// produce: [widest norm] x 2, never read.
  float *discard = nullptr;
  double *lossSum = nullptr; ///< The head's loss sum.
  /// A vocab-parallel head: the rows' maxima, and their sums of exp and
  /// target logits ([2 x rows]), reduced over the TP group.
  float *rowMax = nullptr;
  double *ceSums = nullptr;
  int64_t *count = nullptr;
};

/// One microbatch as the LLM's kernels read it. The token arrays are in
/// the microbatch's `saved` buffer; the attention and embedding-gradient
/// plans own their (small) device arrays.
struct DeviceBatch : Sequences {
  int64_t *ids = nullptr, *targets = nullptr;
  std::vector<int64_t> hostIds;
  kernels::cuda::EmbeddingGradPlan embeddingGrad;
  /// A learned position table: each row's position (the sequence's
  /// positions, sequence after sequence) and its gradient's plan.
  int64_t *positionIds = nullptr;
  std::vector<int64_t> hostPositionIds;
  kernels::cuda::EmbeddingGradPlan positionGrad;
  double lossScale = 1;
};

/// Hands out consecutive 256-byte-aligned pieces of a region: with no base
/// it only measures the region.
class Carver {
public:
  explicit Carver(uint8_t *base = nullptr) : base(base) {}
  template <typename T>
  void take(T *&p, int64_t count) {
    p = base ? reinterpret_cast<T *>(base + used) : nullptr;
    used += (count * static_cast<int64_t>(sizeof(T)) + 255) / 256 * 256;
  }
  int64_t bytes() const { return used; }
  /// Pieces carved from here on start `bytes` further.
  void skip(int64_t bytes) { used += bytes; }

private:
  uint8_t *base;
  int64_t used = 0;
};

/// What a block's forward keeps besides its input (in `saved`, or in the
/// workspace when it recomputes).
void carveBlockResults(Carver &c, DeviceLayer &l);
void carveConformerResults(Carver &c, DeviceLayer &l);

/// A layer's norm: RMSNorm, or LayerNorm with its bias (DeviceLayers.cpp).
struct Norm {
  DeviceParam &w;
  DeviceParam *b;
};
/// The norm of `l` whose parameters are `prefix` + "weight" / "bias".
Norm normOf(const DeviceLayer &l, const std::string &prefix);
Status normForward(const Norm &n, const bf16 *x, bf16 *y, float *mean,
                   float *rstd, int64_t rows, int64_t dim, cudaStream_t stream);
/// A frozen norm's weight gradients go to `discard` ([2 x dim]).
Status normBackward(const Norm &n, const bf16 *dy, const bf16 *x,
                    const float *mean, const float *rstd, bf16 *dx,
                    int64_t rows, int64_t dim, float *discard,
                    cudaStream_t stream);
kernels::cuda::AttentionHeads headsOf(const LayerConfig &c);

struct DeviceTrainer::Impl {
  exec::Model *model = nullptr;
  exec::DataSource *data = nullptr;
  DataParallel parallel;
  /// Tensor parallelism: this process is TP rank `tpRank` of `tpSize` and
  /// its blocks, embedding and head are shards (cpu::TensorShard's split)
  /// whose collectives go through `tp`. Null: whole layers.
  ShardCollectives *tp = nullptr;
  int64_t tpRank = 0, tpSize = 1;
  /// Context parallelism (a rank of a stage with cp > 1, or a round of
  /// generation with the key cache: useShare): the LLM's blocks attend
  /// with this rank's tokens (`cpShares[cpRank]`) as queries and every CP
  /// rank's (`cpShares`, gathered over `cp` in rank order, `cpKeys`) as
  /// keys. Null: whole sequences.
  ShardCollectives *cp = nullptr;
  /// The split of the microbatch in flight (exec::cpSplit: the plan's, or
  /// the batch's own) and this rank's index in it.
  std::vector<std::vector<int64_t>> cpShares;
  std::vector<int64_t> cpKeys;
  size_t cpRank = 0;
  const std::vector<int64_t> &cpLocal() const { return cpShares[cpRank]; }
  /// Batches bring their own split (real data, exec::DataSource::
  /// splitsPerBatch): the arena is laid out for `cpMostTokens` tokens of
  /// each sequence (exec::largestShare) and each microbatch's kernels run
  /// on its own share. False: the plan's split, laid out exactly.
  bool cpPerBatch = false;
  int64_t cpMostTokens = 0;
  /// Takes `split` for the microbatch: its shares, keys and the LLM's
  /// rows. Before the microbatch's buffers are bound, which the rows size.
  llvm::Error useSplit(const std::vector<std::vector<int64_t>> &split);
  /// The LLM's rows for `tokens` tokens of each sequence.
  void setLocalRows(int64_t tokens);
  /// `shares` in flight: the keys in their order, this rank's rows.
  void takeShares(const std::vector<std::vector<int64_t>> &shares);
  /// A round of generation with a key cache (DeviceKeyCache.h): the LLM
  /// runs the tokens of `share`[1] as CP rank 1, `cache` the CP group
  /// serving `share`[0]'s keys. Before the round's buffers are bound;
  /// endShare() after it goes back to whole sequences.
  void useShare(ShardCollectives &cache,
                const std::vector<std::vector<int64_t>> &share);
  void endShare();
  /// Between useShare() and endShare(): forwards only, whose workspace
  /// takes no gradient scratch (carveScratch).
  bool sharing = false;
  /// The encoders with layers here that the loaded batch runs (not idle).
  int64_t encodersRun() const {
    int64_t n = 0;
    for (const DeviceEncoder &e : encoders)
      n += !e.layers.empty() && !e.idle;
    return n;
  }
  /// CP's K/V exchange of a block, rows of `width`: posts the all-gather of
  /// every rank's `from` into the rank-major staging `to` (`gather`), or
  /// the reduce-scatter of the staging `from` into this rank's `to`; the
  /// stream waits for them at joinKeyExchange(). placeKeys() copies between
  /// a staging buffer and the attention's [sequences, keys] rows (`keys`),
  /// into the latter when `toKeys`.
  llvm::Error postKeyExchange(const DeviceLayer &l, const bf16 *from, bf16 *to,
                              int64_t width, bool gather);
  llvm::Error joinKeyExchange(const DeviceLayer &l, const char *what);
  llvm::Error placeKeys(const DeviceLayer &l, bf16 *stage, bf16 *keys,
                        int64_t width, bool toKeys);
  /// `what`'s partial sums (`count` bf16 at `data`) over the TP group.
  llvm::Error tpSum(bf16 *data, int64_t count, const llvm::Twine &what);
  /// This process's replicas: [firstReplica, firstReplica + replicas).
  int64_t firstReplica = 0, replicas = 1;
  cudaStream_t stream = nullptr;
  kernels::cuda::AttentionKernel attentionKernel =
      kernels::cuda::AttentionKernel::Staged;
  kernels::cuda::Gemm gemm;
  std::vector<std::unique_ptr<DeviceParam>> params;
  /// The LLM's layers (the fan-in follows the embedding), and the
  /// encoders'.
  std::vector<DeviceLayer> layers;
  std::vector<DeviceEncoder> encoders;
  Scratch scratch;
  DeviceBatch batch;
  /// Every buffer above, in one allocation laid out by the static memory
  /// plan of the one-process program (sched::planMemory with this
  /// executor's sizes): `highWater` is the highest byte bound so far.
  DeviceArray<uint8_t> arena;
  /// The `grads` buffer: every parameter's gradient, one after another
  /// (with alignment padding), summed over the processes in one call.
  float *gradRegion = nullptr;
  int64_t gradFloats = 0;
  sched::Program program;
  sched::MemoryPlan memory;
  int64_t highWater = 0;
  /// Pinned host memory: each microbatch's loss sum of the step.
  double *hostLosses = nullptr;
  kernels::cpu::AdamConfig adam;
  /// The host side of a checkpoint: the moments as the CPU optimizer keeps
  /// them (filled from the device by save, read by load), over the
  /// parameters a checkpoint holds (made on first use).
  std::unique_ptr<exec::Optimizer> host;
  exec::Optimizer &hostOptimizer(llvm::ArrayRef<exec::NamedParam> of);
  /// The master weights into the CPU model's parameters and the moments
  /// into `optimizer`'s slots.
  llvm::Error toHost(exec::Optimizer &optimizer);
  /// The other way: the CPU model's weights and, with `optimizer`, its
  /// moments onto the device.
  llvm::Error fromHost(exec::Optimizer *optimizer);
  /// Restores the parameters `of` and their moments from a checkpoint of
  /// either backend (exec::readCheckpoint: one file or a sharded
  /// directory, of this plan or another).
  llvm::Error load(llvm::StringRef path, llvm::ArrayRef<exec::NamedParam> of);
  int64_t done = 0;
  bool resharded = false;
  int64_t rows = 0, bytes = 0;
  /// Host staging of a microbatch's media in bf16 (kept until the next).
  std::vector<bf16> hostMedia;

  /// A rank of a pipeline (DeviceRankRunner): its program of the plan's
  /// schedule with that program's send releases, and the steps it runs,
  /// [first, last) of each chain in `held` (one, or several for colocated
  /// encoders and the chain layout). Null: the one-process program over
  /// every layer.
  const sched::Program *rankProgram = nullptr;
  std::vector<int64_t> releases;
  /// Receive actions of `rankProgram` whose buffer holds several copies
  /// (one per source rank), and how many.
  std::map<int64_t, int64_t> messageCopies;
  std::vector<exec::StageRange> held;
  /// The steps of `chain` this process runs: [0, SIZE_MAX) without a
  /// rank program, else its range in `held`, or null.
  std::optional<exec::StageRange> heldRange(size_t chain) const {
    if (!rankProgram)
      return exec::StageRange{chain, 0, SIZE_MAX};
    for (const exec::StageRange &r : held)
      if (r.chain == chain)
        return r;
    return std::nullopt;
  }
  bool holds(size_t chain) const { return heldRange(chain).has_value(); }
  /// This process holds the LLM's fan-in: the encoders' tokens come here.
  bool fanInHere() const {
    return !encoders.empty() && !layers.empty() &&
           layers.front().kind == LayerKind::Embedding;
  }

  ~Impl();
  llvm::Error build();
  /// The device parameter of `p`, made on first use (a tied weight is one).
  DeviceParam *deviceParam(cpu::Param<float> *p);
  std::map<const cpu::Param<float> *, std::string> paramNames;
  /// Plans the arena, allocates it, places the parameters and uploads them.
  llvm::Error allocate();
  /// The pieces of each region, in a fixed order (a Carver measures them,
  /// then binds them to their place in the arena).
  void carveWeights(Carver &c);
  /// Calls `f` on every layer: the encoders', then the LLM's.
  template <typename F>
  void forEachLayer(F f) {
    for (DeviceEncoder &e : encoders)
      for (DeviceLayer &l : e.layers)
        f(l);
    for (DeviceLayer &l : layers)
      f(l);
  }
  void carveGrads(Carver &c);
  void carveMoments(Carver &c);
  void carveSaved(Carver &c);
  void carveScratch(Carver &c);
  /// A pipeline stage that runs no backward keeps nothing for one: what a
  /// forward saves lives in its workspace, after the scratch.
  bool savedInWorkspace = false;
  void carveForwardOnly(Carver &c) {
    carveScratch(c);
    carveSaved(c);
  }
  /// Binds the arena's buffer `kind` of microbatch `mb` / action `action`
  /// (-1: a persistent one) with `carve`.
  llvm::Error bind(sched::BufferKind kind, int64_t mb, int64_t action,
                   void (Impl::*carve)(Carver &));
  /// Builds the device layers of steps [first, last) of `chain` (the
  /// LLM's or an encoder's).
  llvm::Error buildChain(exec::Chain &chain, bool llm,
                         std::vector<DeviceLayer> &out, Sequences *seq,
                         size_t first = 0, size_t last = SIZE_MAX);
  llvm::Error loadBatch(const exec::MicrobatchData &data);
  /// Reserves the per-batch plans' device arrays for the largest batch.
  llvm::Error reservePlans();
  /// Uploads encoder `e`'s media (of `data`) and fan-in rows (of `local`,
  /// the rank's share of `data` under CP) of the microbatch: what this
  /// process holds of them.
  llvm::Error loadEncoder(DeviceEncoder &e, const exec::MicrobatchData &data,
                          const exec::MicrobatchData &local, size_t index);
  llvm::Error loadFanIn(DeviceEncoder &e, const exec::MicrobatchData &data,
                        size_t index);
  /// Forward of the whole model (the encoders, then the LLM) for the
  /// loaded batch; its loss sum (before the loss scale) is copied to
  /// `lossSum`, host memory from cudaMallocHost, in stream order.
  llvm::Error forward(double *lossSum);
  /// Backward of the whole model: input and weight gradients as the plan's
  /// frozen analysis asks.
  llvm::Error backward();
  /// The device layers of `chain` (an encoder's index, or the LLM's).
  std::vector<DeviceLayer> &layersOf(size_t chain) {
    return chain + 1 == model->chains.size() ? layers : encoders[chain].layers;
  }
  /// A pipeline rank's share of forward() on `chain`: `in` (the input of
  /// its first layer, unless that is an input layer) copied into place, and
  /// its last layer's output written to `out` (unless that is the head; an
  /// encoder's projected tokens are also kept in its `out`). With the
  /// fan-in, the encoders' tokens must be in their `out` first.
  llvm::Error forwardStage(size_t chain, const bf16 *in, bf16 *out,
                           double *lossSum);
  /// Its share of backward() on `chain`: from `dOut`, the gradient of its
  /// output
  /// (unless it holds the head), down to its first layer; the gradient of
  /// that layer's input goes to `dIn` when it is not null (zeros when the
  /// frozen analysis computes none). With the fan-in, the trained encoders'
  /// tokens' gradients are left in their `dOut`.
  llvm::Error backwardStage(size_t chain, const bf16 *dOut, bf16 *dIn);
  /// One layer's forward into `out`, its backward from the gradient of its
  /// output in scratch.dy, leaving its input's gradient there (when
  /// inputGrad).
  llvm::Error forwardLayer(DeviceLayer &l, bf16 *out, double *lossSum);
  llvm::Error backwardLayer(DeviceLayer &l);
  /// The encoders' own layers (patch embedding, projector input and
  /// projectors) for forwardLayer/backwardLayer.
  llvm::Error forwardEncoderLayer(DeviceLayer &l, bf16 *out);
  llvm::Error backwardEncoderLayer(DeviceLayer &l);
  /// A block's attention (transformer and conformer): q, k, v of the
  /// normalised input `xn` (biases, RoPE), the attention into l.o and
  /// l.lse, and y = residual + o Wo^T + bo.
  llvm::Error attentionForward(DeviceLayer &l, const bf16 *xn,
                               const bf16 *residual, bf16 *y);
  /// Its backward from `dy`, the gradient of y: the weights' gradients and,
  /// when `inputGrad`, the gradient of `xn` in scratch.dxn.
  llvm::Error attentionBackward(DeviceLayer &l, const bf16 *dy, const bf16 *xn,
                                bool inputGrad);
  /// A conformer block's (DeviceConformer.cpp).
  llvm::Error conformerForward(DeviceLayer &l, bf16 *out);
  llvm::Error conformerBackward(DeviceLayer &l);
  /// The LLM's fan-in: the encoders' tokens into the embedding's output,
  /// and back: their gradients out of it.
  llvm::Error fanInForward(bf16 *sequence);
  llvm::Error fanInBackward(bf16 *dSequence, bool embeddingTrains);
  llvm::Error optimizerStep();
  /// The fp32 gradients / master weights into the CPU model's parameters.
  llvm::Error downloadGradients();
  llvm::Error downloadParams();
  /// The index in `program` of microbatch `mb`'s action `kind`, or -1.
  int64_t actionOf(sched::ActionKind kind, int64_t mb) const;
  /// Action `index` of the one-process program in a step: a forward reads
  /// its microbatch and runs it, a backward_input runs both backwards (a
  /// backward_weight is empty), and step() takes the optimizer step after
  /// the actions. `stepScales` gets each microbatch's loss scale.
  llvm::Error stepAction(size_t index);
  std::vector<double> stepScales;
  /// The one-process run as a StepDriver sees it (DeviceSteps.cpp), and the
  /// driver mllm-run's factory made for it at the first step (none: the
  /// loop over stepAction).
  std::unique_ptr<exec::ProgramRunner> programRunner();
  std::unique_ptr<exec::ProgramRunner> steps;
  std::unique_ptr<exec::StepDriver> driver;
  llvm::Error zeroGrads();
  /// Ends the sums of the gradients over the processes (the rest of the
  /// region posted, every sum waited for) and sums `loss` (DataParallel).
  llvm::Error reduceOverProcesses(double &loss);
  /// The first half of that: the gradients only.
  llvm::Error finishGradientSums();
  /// After a failure: waits for the sums already posted (their errors
  /// dropped), so none writes into the arena later.
  void drainSums();
  /// Gradient buckets: for each layer whose backward makes gradients final
  /// (in the backward's order, the region from the end down), the lowest
  /// offset (floats into gradRegion) final after it. Empty when the
  /// parameters do not lie in that order: one sum of the whole region at
  /// the end then.
  std::map<const DeviceLayer *, int64_t> finalFrom;
  void planBuckets();
  /// During the step's last microbatch: posts the gradients made final by
  /// `l`'s backward once they fill a bucket.
  llvm::Error gradientsDone(const DeviceLayer &l);
  bool lastMicrobatch = false;
  /// Before the first step of a parallel run: every process holds the same
  /// step count and weights (an error names the first that does not).
  llvm::Error agreeOnStart();
  bool startAgreed = false;
  int64_t postedFrom = 0;    ///< Gradients from here on are posted.
  int64_t bucketsPosted = 0; ///< Over the trainer's life.

  /// Row-major C = alpha op(A) op(B) + beta C for a linear layer's three
  /// products (W is [out, in]): y = x W^T, dx (+)= dy W, dW += dy^T x.
  llvm::Error linear(const bf16 *x, const DeviceParam &w, bf16 *y, int64_t rows,
                     int64_t in, int64_t out, float beta = 0);
  llvm::Error linearInput(const bf16 *dy, const DeviceParam &w, bf16 *dx,
                          int64_t rows, int64_t in, int64_t out,
                          float beta = 0);
  llvm::Error linearWeight(const bf16 *x, const bf16 *dy, DeviceParam &w,
                           int64_t rows, int64_t in, int64_t out);
  /// y = residual + x W^T for a row-parallel linear (`in` columns of this
  /// shard; the partial products summed over the TP group first).
  llvm::Error rowParallel(DeviceLayer &l, const bf16 *x, const DeviceParam &w,
                          const bf16 *residual, bf16 *y, int64_t in);
  /// A vocab-parallel head's loss: lse and the loss sum from its logits.
  llvm::Error vocabParallelLoss(DeviceLayer &l);

  /// Evaluation (DeviceTrainer::evaluate, DeviceRankRunner::evaluate): the
  /// head's forward stops at the rows' logit maxima, their sums of exp and
  /// target logits (crossEntropyRowMax, crossEntropySliceSums) and their
  /// predictions (rowArgmax), copied to the host. A vocab-parallel head
  /// all-reduces the first two as its loss does, then each shard's
  /// prediction where it holds the row's maximum, so that every shard gets
  /// the first largest logit of the whole row.
  bool evaluating = false;
  DeviceArray<float> evalRowMax;
  DeviceArray<double> evalSums, evalCandidates;
  DeviceArray<int64_t> evalArgmax;
  std::vector<float> evalHostMax, evalLocalMax;
  std::vector<double> evalHostSums, evalHostCandidates;
  std::vector<int64_t> evalHostArgmax;
  llvm::Error evaluationHead(DeviceLayer &l);
  /// Generation (DeviceTrainer::nextToken, DeviceRankRunner::nextToken):
  /// while `generating`, the head's forward stops at the first largest of
  /// row `generateRow`'s logits among ids [0, generateChoices), copied to
  /// the host (generatedHost[0]; under TP over the shards, as an
  /// evaluation's predictions). A row < 0 is on another CP rank: -1.
  bool generating = false;
  int64_t generateRow = -1, generateChoices = 0;
  DeviceArray<int64_t> generated;
  std::vector<int64_t> generatedHost;
  llvm::Error generationHead(DeviceLayer &l);
  /// Waits, with their deadlines, for the TP and CP collectives posted so
  /// far: before the host waits for the stream inside an action.
  llvm::Error finishCollectives(const std::string &what);
  /// The predictions of a vocab-parallel head: evalHostArgmax from this
  /// shard's (local) to the whole row's, over the TP group.
  llvm::Error shardPredictions(DeviceLayer &l);
  /// Adds the last evaluated microbatch's counts to `into`: per row of the
  /// head with a target (`targets`: the head's rows', this rank's tokens
  /// under CP) its cross-entropy and whether the prediction is the target.
  llvm::Error countEvaluation(llvm::ArrayRef<int64_t> targets,
                              cpu::HeadEval &into) const;
  /// y += b on every row, and db += the rows of dy (when `b` trains).
  llvm::Error addBias(bf16 *y, const DeviceParam *b, int64_t rows, int64_t out);
  llvm::Error biasGrad(const bf16 *dy, DeviceParam *b, int64_t rows,
                       int64_t out);
};

} // namespace mllm::runtime::device

#endif // MLLM_RUNTIME_DEVICE_DEVICEIMPL_H
