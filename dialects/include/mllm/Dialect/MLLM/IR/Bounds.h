//===- Bounds.h - the documented bounds of a job's integers -----*- C++ -*-===//
//
// One table of the limits docs/language.md ("Bounds") documents. The front
// end rejects a spec beyond them at the field; the mllm and sched verifiers
// reject IR beyond them. Within them every derived quantity (tokens per
// microbatch, GPUs of a stage, stage x microbatch pairs of a schedule) is far
// from int64 overflow and the tools' time and memory stay bounded: the
// partitioner is quadratic in the blocks of a part, a schedule lists every
// microbatch of every stage (in IR or, for a plan, in memory), a plan every
// rank.
//
// The derived quantities are computed here, overflow-checked, so that Sema
// and the verifiers agree on them.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_IR_BOUNDS_H
#define MLLM_DIALECT_MLLM_IR_BOUNDS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/MathExtras.h"

#include <cstdint>
#include <optional>
#include <utility>

namespace mllm::bounds {

/// An int field without a bound of its own (text_tokens, tokens,
/// max_positions, steps, seed, dp, ...).
inline constexpr int64_t kMaxInt = int64_t(1) << 31;
/// Layers of one group and blocks (partition units) of one part: the
/// partitioner's tables grow with blocks x stages.
inline constexpr int64_t kMaxLayers = 4096;
/// hidden, ffn, head_dim, heads x head_dim, a projector's in and out.
inline constexpr int64_t kMaxWidth = int64_t(1) << 20;
/// heads, kv_heads, patch, channels, mel_bins, ...
inline constexpr int64_t kMaxCount = int64_t(1) << 16;
inline constexpr int64_t kMaxVocab = int64_t(1) << 24;
/// tp, pp and cp as written (each is further bounded by the cluster and the
/// model: tp <= gpus_per_node, pp <= layers).
inline constexpr int64_t kMaxDegree = int64_t(1) << 16;
inline constexpr int64_t kMaxNodes = int64_t(1) << 20;
inline constexpr int64_t kMaxGpusPerNode = int64_t(1) << 10;
/// nodes x gpus_per_node: a plan lists every rank.
inline constexpr int64_t kMaxWorldSize = int64_t(1) << 20;
inline constexpr int64_t kMaxMicrobatches = int64_t(1) << 16;
inline constexpr int64_t kMaxMicrobatchSize = int64_t(1) << 16;
inline constexpr int64_t kMaxPacking = int64_t(1) << 10;
inline constexpr int64_t kMaxItems = int64_t(1) << 10;
/// microbatch_size x seq_len: every token product of the cost model and the
/// schedule (tokens x hidden x bytes) stays inside int64.
inline constexpr int64_t kMaxTokensPerMicrobatch = int64_t(1) << 40;
/// Pipeline stages x microbatches of a schedule materialised as IR, one
/// `sched` op per action (about 2 KB of IR per step): --emit=sched and
/// --emit=llvm, mllm-opt's sched passes, a sched.schedule.
inline constexpr int64_t kMaxScheduleSteps = int64_t(1) << 16;
/// Pipeline stages x microbatches of a plan: --emit=plan, the summary,
/// --explain, mllm-sim and mllm-run generate and verify the schedule in
/// memory (about 0.5 to 1 KB per step) and write it as repeated runs, so a
/// plan may hold more steps than a schedule in IR (64 stages x 16,384
/// microbatches, 16 x 65,536).
inline constexpr int64_t kMaxPlanSteps = int64_t(1) << 20;
/// Bytes (GPU memory) and the other integers that are exact in a double.
inline constexpr int64_t kMaxBytes = int64_t(1) << 53;
/// A time in milliseconds: a day, beyond any real per-microbatch time.
inline constexpr double kMaxMillis = 8.64e7;

/// a + b, or nullopt on int64 overflow.
inline std::optional<int64_t> add(int64_t a, int64_t b) {
  int64_t result;
  if (llvm::AddOverflow(a, b, result))
    return std::nullopt;
  return result;
}

/// a * b, or nullopt on int64 overflow.
inline std::optional<int64_t> mul(int64_t a, int64_t b) {
  int64_t result;
  if (llvm::MulOverflow(a, b, result))
    return std::nullopt;
  return result;
}

/// The sum of `values`, or nullopt if it exceeds `limit` (or overflows).
inline std::optional<int64_t> sum(llvm::ArrayRef<int64_t> values,
                                  int64_t limit) {
  int64_t total = 0;
  for (int64_t v : values) {
    std::optional<int64_t> next = add(total, v);
    if (!next || *next > limit)
      return std::nullopt;
    total = *next;
  }
  return total;
}

/// Tokens of one sequence: packing x (text + sum of tokens x items over the
/// inputs), or nullopt beyond kMaxTokensPerMicrobatch.
inline std::optional<int64_t>
sequenceLength(int64_t textTokens,
               llvm::ArrayRef<std::pair<int64_t, int64_t>> tokensAndItems,
               int64_t packing) {
  std::optional<int64_t> sample = textTokens;
  for (auto [tokens, items] : tokensAndItems) {
    std::optional<int64_t> input = mul(tokens, items);
    sample = input ? add(*sample, *input) : std::nullopt;
    if (!sample || *sample > kMaxTokensPerMicrobatch)
      return std::nullopt;
  }
  std::optional<int64_t> seq = mul(*sample, packing);
  if (!seq || *seq > kMaxTokensPerMicrobatch)
    return std::nullopt;
  return seq;
}

/// GPUs of `dp` replicas of a stage of degrees tp x cp, or nullopt beyond
/// kMaxWorldSize.
inline std::optional<int64_t> stageGpus(int64_t dp, int64_t cp, int64_t tp) {
  std::optional<int64_t> gpus = mul(tp, cp);
  gpus = gpus ? mul(*gpus, dp) : std::nullopt;
  if (!gpus || *gpus > kMaxWorldSize)
    return std::nullopt;
  return gpus;
}

/// Stage x microbatch pairs of a schedule, or nullopt beyond `limit`
/// (kMaxScheduleSteps: a schedule in IR; kMaxPlanSteps: a plan's).
inline std::optional<int64_t> scheduleSteps(int64_t stages,
                                            int64_t microbatches,
                                            int64_t limit = kMaxScheduleSteps) {
  std::optional<int64_t> steps = mul(stages, microbatches);
  if (!steps || *steps > limit)
    return std::nullopt;
  return steps;
}

} // namespace mllm::bounds

#endif // MLLM_DIALECT_MLLM_IR_BOUNDS_H
