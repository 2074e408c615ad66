//===- ParallelParts.h - the collectives of TP and CP layers ----*- C++ -*-===//
//
// What a layer needs to run as one rank of a parallel layer: its
// collectives with their failures kept (the layer calls have no error
// path), the tensor-parallel context its parts share, the vocabulary slice
// of a vocab-parallel shard with its parallel cross-entropy, and the K/V
// exchange of context-parallel attention. docs/runtime-layers.md §8 says
// which layer runs which collective where.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_CPU_PARALLELPARTS_H
#define MLLM_RUNTIME_CPU_PARALLELPARTS_H

#include "mllm/runtime/cpu/Layer.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/Twine.h"

#include <limits>

namespace mllm::runtime::cpu {

struct SequenceContext;

/// A layer's collectives. The first failure is kept, with what the layer
/// was doing, for Layer::takeCommError(); the layer's later collectives
/// are skipped, so a broken group costs one deadline, not one per call.
/// float runs the Group's calls; double (gradient checks) goes through
/// allReduceSum(double) and allGatherBytes, which the Group has for it.
class LayerComm {
public:
  template <typename T>
  void allReduceSum(Group &g, T *data, int64_t n, const llvm::Twine &what);
  template <typename T>
  void allReduceMax(Group &g, T *data, int64_t n, const llvm::Twine &what);
  /// Every rank's counts[r] values, concatenated in group-rank order.
  template <typename T>
  void allGather(Group &g, const T *local, llvm::ArrayRef<int64_t> counts,
                 T *out, const llvm::Twine &what);
  /// `in` (blocks of counts[r] values) summed over the group; this rank's
  /// block is left in `local`.
  template <typename T>
  void reduceScatterSum(Group &g, const T *in, llvm::ArrayRef<int64_t> counts,
                        T *local, const llvm::Twine &what);
  /// The kept failure (and forgets it), or success.
  llvm::Error take();
  bool failed() const { return !failure.empty(); }

private:
  /// Keeps `e` (if it is one); false when the layer had already failed.
  bool ok(llvm::Error e, const llvm::Twine &what);
  std::string failure;
};

/// A layer's tensor-parallel shard and its collectives, shared by its parts
/// (Megatron-LM's f and g: identity forward / all-reduce backward before a
/// column-parallel part, all-reduce forward / identity backward after a
/// row-parallel one).
struct TensorContext {
  TensorShard shard;
  LayerComm comm;
  std::string layer; ///< the layer kind, for messages
  bool split() const { return shard.size > 1; }
  /// Sums a partial [n] result over the TP group; a no-op without TP.
  template <typename T>
  void allReduce(T *data, int64_t n, const char *what) {
    if (split())
      comm.allReduceSum(*shard.group, data, n,
                        llvm::Twine(layer) + ": TP all-reduce of " + what);
  }
};

/// The vocabulary rows [begin, end) of a vocab-parallel shard: rank r of p
/// holds [vocab r / p, vocab (r + 1) / p) (uneven vocabularies allowed).
struct VocabRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
  bool contains(int64_t id) const { return id >= begin && id < end; }
};
VocabRange vocabRange(int64_t vocab, const TensorShard &shard);

/// Softmax cross-entropy over logits split by vocabulary: this rank's
/// logits [rows, range.size()] of the full vocabulary's. The row maximum
/// is all-reduced (max), then the sums of exp(logit - max) and the target
/// logits (double, in one all-reduce); lse[rows] = max + log(sum) as the
/// unsplit kernel forms it. Returns the loss sum over counted rows, the
/// same on every rank. Without TP this is the kernel itself.
template <typename T>
double vocabParallelCrossEntropyForward(TensorContext &tp, const T *logits,
                                        const int64_t *targets, double *lse,
                                        int64_t rows, VocabRange range);
/// Per row of logits split by vocabulary as above: the index in the whole
/// vocabulary of its first largest logit, NaN skipped (-1 for a row of
/// NaN), the same on every rank: the maxima are all-reduced (max), then
/// the candidates of predictionSlots (sum). Without TP a scan. Ids at or
/// past `limit` are not candidates (generation: what the tokenizer
/// decodes).
template <typename T>
void vocabParallelArgmax(TensorContext &tp, const T *logits, int64_t *predicted,
                         int64_t rows, VocabRange range,
                         int64_t limit = std::numeric_limits<int64_t>::max());
/// The two halves of a vocab-parallel prediction around one all-reduce
/// (sum, double) of `rows` x shards slots, shared by the backends. This
/// shard fills its slots [shard.rank x rows, + rows) (the others zero): for
/// each row whose maximum `rowMax[t]` (over the whole row) its slice holds
/// (`sliceMax[t]`, at index `first[t]` of the slice, -1 for none), 1 + the
/// whole vocabulary's index of it, else 0. Summed over the group, every
/// rank reads each row's first shard's candidate (the shards' slices
/// ascend with their ranks): the first largest logit of the whole row, or
/// -1 when no shard has one.
template <typename T>
void predictionSlots(const T *sliceMax, const T *rowMax, const int64_t *first,
                     int64_t rows, VocabRange range, const TensorShard &shard,
                     double *slots);
void firstPrediction(const double *slots, int64_t rows, int64_t shards,
                     int64_t *predicted);
/// dlogits of this rank's vocabulary: scale (softmax - onehot), 0 on ignored
/// rows (local: the all-reduced lse holds the rest).
template <typename T>
void vocabParallelCrossEntropyBackward(const T *logits, const int64_t *targets,
                                       const double *lse, T *dlogits,
                                       double scale, int64_t rows,
                                       VocabRange range);

/// Context-parallel attention's keys: k and v, this rank's rows
/// [sequences * tokens, width], gathered into kAll, vAll [sequences * keys,
/// width], each sequence's keys in the CP ranks' order (the plan's key
/// list). Without CP they are copies.
template <typename T>
void gatherKeys(const SequenceContext &seq, LayerComm &comm, const T *k,
                const T *v, int64_t width, Tensor<T> &kAll, Tensor<T> &vAll,
                llvm::StringRef layer);
/// The inverse for the gradients: dkAll, dvAll summed over the CP group,
/// this rank's rows left in dk, dv ([sequences * tokens, width]).
template <typename T>
void scatterKeyGrads(const SequenceContext &seq, LayerComm &comm,
                     const T *dkAll, const T *dvAll, int64_t width, T *dk,
                     T *dv, llvm::StringRef layer);

} // namespace mllm::runtime::cpu

#endif // MLLM_RUNTIME_CPU_PARALLELPARTS_H
