//===- Balance.h - Context-parallel token-workload balancing ----*- C++ -*-===//
//
// Splits one sequence over the ranks of a context-parallel (CP) group. The
// sequence is cut into blocks of TileShape::rows tokens (128 by default); a
// block's workload is the number of key tiles its query tile row must
// compute (brief §C.4), and a policy assigns whole blocks to ranks. The
// output, per rank, is the sorted list of global token indices it owns: the
// single source of truth for gathering hidden states, labels, RoPE positions
// and the gathered K/V order (brief §C.5, §C.8).
//
// The compiler calls balanceTokens() on the declared layout and the runtime
// calls the same function on every batch.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_RUNTIME_BALANCE_H
#define MLLM_RUNTIME_BALANCE_H

#include "mllm/kernels/TileMap.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace mllm {
namespace runtime {

enum class BalancePolicy {
  /// Longest-processing-time greedy over blocks (brief §C.5 Algorithm 1).
  Lpt,
  /// Exact makespan minimisation with CBC (then block counts evened out
  /// under that makespan); small instances only.
  Ilp,
  /// 2*cp contiguous chunks, rank r gets chunks r and 2*cp-1-r.
  Zigzag,
  /// cp contiguous chunks.
  Uniform,
};

const char *policyName(BalancePolicy policy);
std::optional<BalancePolicy> parseBalancePolicy(llvm::StringRef name);
/// False when the build found no CBC: the Ilp policy then reports an error.
bool ilpAvailable();

struct BalanceOptions {
  BalancePolicy policy = BalancePolicy::Lpt;
  /// rows = tokens per balancing block; cols = key tile width.
  kernels::TileShape tiles;
  double ilpTimeLimitSeconds = 5.0;
  /// Larger instances are refused rather than left to run for hours.
  int64_t ilpMaxBlocks = 512;
  /// What one token costs besides its attention (the layer's matmuls),
  /// in tiles of attention: lpt and ilp then balance a rank's tiles +
  /// tokenWeight x tokens, its time in the cost model, instead of its
  /// tiles alone (0). The compiler derives it (plan::cpTokenWeight) and
  /// records it in the plan, which the runtime balances every batch with.
  double tokenWeight = 0;
};

/// The largest token weight balanceBlocks() takes (its costs are integers).
constexpr double kMaxTokenWeight = 1e6;

struct RankShard {
  std::vector<int64_t> tokens; // global token indices, ascending
  int64_t workload = 0;        // sum of its blocks' workloads
  /// What lpt and ilp balance: workload + tokenWeight x tokens (in tiles).
  double cost = 0;
};

struct BalanceResult {
  BalancePolicy policy = BalancePolicy::Lpt;
  int64_t blockSize = 0;
  std::vector<int32_t> blockOwner; // rank of each block
  std::vector<RankShard> ranks;
  /// Ilp only: the makespan is proven optimal (it meets lowerBound, or CBC
  /// closed the search within the time limit).
  bool provenOptimal = false;
  /// Ilp only: CBC stopped at its time limit without a proof; the answer is
  /// the best split found (never worse than LPT's).
  bool timedOut = false;
  /// Ilp only: max(heaviest block, ceil(total / cp)), a makespan no split of
  /// whole blocks beats (in costs: rounded down, with a token weight).
  int64_t lowerBound = 0;

  int64_t maxWorkload() const;
  /// The largest rank's cost (its workload without a token weight).
  double maxCost() const;
  double meanWorkload() const;
  /// max / mean workload (1.0 = perfect; 0 when there is no work).
  double imbalance() const;
};

/// Assign blocks of `opts.tiles.rows` tokens (the last may be shorter),
/// with the given workloads, to `cp` ranks.
llvm::Expected<BalanceResult> balanceBlocks(llvm::ArrayRef<int64_t> blockWork,
                                            int64_t numTokens, int64_t cp,
                                            const BalanceOptions &opts = {});

/// Block workloads from the layout's tile map, then balanceBlocks().
llvm::Expected<BalanceResult> balanceTokens(const kernels::TokenLayout &layout,
                                            kernels::MaskPolicy mask,
                                            int64_t cp,
                                            const BalanceOptions &opts = {});

/// Next-token labels over the whole sequence, before any split:
/// shifted[i] = labels[i + 1], and `ignoreIndex` for the last token and for
/// the last token of each packed sample (segments may be empty).
llvm::Expected<std::vector<int64_t>>
shiftLabels(llvm::ArrayRef<int64_t> labels, llvm::ArrayRef<uint32_t> segments,
            int64_t ignoreIndex = -100);

/// shiftLabels(), then each rank's labels in the order of its tokens.
llvm::Expected<std::vector<std::vector<int64_t>>> shiftAndSplitLabels(
    llvm::ArrayRef<int64_t> labels, const BalanceResult &balance,
    llvm::ArrayRef<uint32_t> segments = {}, int64_t ignoreIndex = -100);

namespace detail {
/// What the ILP proved about its answer.
struct IlpOutcome {
  bool optimal = false;  ///< The makespan is optimal.
  bool timedOut = false; ///< CBC stopped at its time limit without a proof.
  int64_t lowerBound = 0;
};
/// max(heaviest block, ceil(total / cp)).
int64_t makespanLowerBound(llvm::ArrayRef<int64_t> work, int64_t cp);
/// Exact makespan ILP (CBC) with an integer makespan, stopping as soon as
/// the incumbent meets the best bound, then block counts evened out under
/// that makespan (BalanceIlp.cpp). `assignment` holds a feasible start
/// (e.g. LPT) and receives the best assignment found (never worse than the
/// start); a start that meets makespanLowerBound is returned at once.
/// Defined only when CBC is built.
llvm::Error solveMakespanIlp(llvm::ArrayRef<int64_t> work, int64_t cp,
                             double timeLimitSeconds,
                             std::vector<int32_t> &assignment,
                             IlpOutcome &outcome);
} // namespace detail

} // namespace runtime
} // namespace mllm

#endif // MLLM_RUNTIME_BALANCE_H
