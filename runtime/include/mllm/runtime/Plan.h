//===- Plan.h - the training plan: what the compiler decided ----*- C++ -*-===//
//
// The contract between the compiler and everything that uses its result: the
// job (cluster, degrees, policies), the training settings, the data layout of
// a sequence, every model part with its layer groups and full
// hyperparameters, the pipeline stages with their costs, memory and ranks,
// the CP token assignments, and the schedule (the stages' programs with the
// graph they run on). The compiler fills a Plan and writes it
// (writePlan); mllm-sim and the runtime read it (readPlan). A plan is
// self-contained: a runtime builds every layer of every stage, and the
// sequence layout and mask of a sample, from it alone.
//
// Enumerated values are kept as the plan file spells them (the mllm and
// sched dialects' spellings); the consumer that acts on one parses it
// (the layer kinds by the layer factory, the CP policy by the balancer).
// docs/plan-format.md is the schema.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_PLAN_H
#define MLLM_RUNTIME_PLAN_H

#include "mllm/kernels/SequenceLayout.h"
#include "mllm/runtime/LayerConfig.h"
#include "mllm/runtime/RankLayout.h"
#include "mllm/runtime/Schedule.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mllm::runtime {

/// The version of the plan schema this library reads and writes.
constexpr int64_t kPlanVersion = 3;

struct PlanJob {
  std::string spec;  ///< The spec file the plan was compiled from.
  std::string model; ///< The model's name.
  int64_t worldSize = 1, nodes = 1, gpusPerNode = 1;
  std::string gpu;
  int64_t gpuMemoryBytes = 0;
  double peakFlops = 0;       ///< Dense bf16 FLOP/s of one GPU.
  double memoryBandwidth = 0; ///< Bytes/s.
  double intraNodeBandwidth = 0, interNodeBandwidth = 0; ///< Bytes/s.
  int64_t dp = 1;
  std::string layout;    ///< encoders_parallel | encoders_colocated | chain
  std::string partition; ///< frozen_aware | frozen_unaware | uniform | ...
  std::string cpBalance; ///< lpt | ilp | zigzag | uniform
};

struct PlanTrain {
  int64_t steps = 1;
  std::string optimizer = "adamw"; ///< adamw | adam | sgd
  double lr = 1e-4, weightDecay = 0;
  std::string precision = "bf16"; ///< bf16 | fp16 | fp32
  int64_t seed = 0;
};

/// The tokens one encoder contributes to each sample.
struct PlanInput {
  std::string encoder;
  int64_t tokens = 0; ///< LLM tokens per item (after the projector's merge).
  int64_t items = 1;
  std::string placement = "prepend";  ///< prepend | append | at
  std::vector<double> positions;      ///< `at`: fractions of the text.
  std::string mask = "bidirectional"; ///< bidirectional | causal
  /// The encoder's own tokens per item, before the merge, where the merge
  /// pads them to whole groups (mllm.input's encoder_tokens); 0: tokens x
  /// merge.
  int64_t encoderTokens = 0;

  /// The encoder's tokens per item under a projector merge of `merge`.
  int64_t encoderTokensPerItem(int64_t merge) const {
    return encoderTokens > 0 ? encoderTokens : tokens * merge;
  }
};

/// The layout of one LLM sequence and the microbatching.
struct PlanData {
  int64_t textTokens = 0, packing = 1, seqLen = 0;
  int64_t microbatchSize = 1, microbatches = 1;
  std::string textMask = "causal"; ///< causal | prefix_lm | bidirectional
  std::vector<PlanInput> inputs;   ///< One per encoder with items.

  /// The input of encoder `encoder`, or null.
  const PlanInput *findInput(llvm::StringRef encoder) const {
    for (const PlanInput &in : inputs)
      if (in.encoder == encoder)
        return &in;
    return nullptr;
  }
};

/// A group of identical layers and the backward the frozen analysis gives
/// them.
struct PlanLayerGroup {
  std::string name; ///< "blocks", "embed", "mlp", ...
  std::string kind; ///< "transformer_block", ... (LayerConfig.h)
  int64_t count = 1;
  LayerConfig config;
  bool weightGrad = false;
  /// all | after_first (every layer but the group's first) | none
  std::string inputGrad = "none";
  bool recompute = false;
  bool inputGradAt(int64_t layer) const {
    return inputGrad == "all" || (inputGrad == "after_first" && layer > 0);
  }
};

struct PlanProjector {
  std::string name, kind; ///< kind: linear | mlp
  int64_t merge = 1;
  bool frozen = false;
  std::vector<PlanLayerGroup> groups;
};

/// An encoder or the LLM.
struct PlanPart {
  std::string name;
  bool isLLM = false;
  std::string instance;
  std::string modality; ///< image | audio (encoders)
  int64_t width = 0;    ///< Hidden size of its output tokens.
  bool frozen = false;
  std::string recompute = "none"; ///< none | full | selective
  int64_t tp = 1, pp = 1, cp = 1;
  bool ppAuto = false;
  /// Partition units: transformer/conformer blocks (or all layers of a part
  /// without blocks); stages cut the part between units.
  int64_t blocks = 0;
  /// Tokens the part processes per microbatch (all sequences or items), and
  /// the tokens one attention sees (a sequence or an item).
  int64_t tokens = 0, attentionSpan = 0;
  std::vector<PlanLayerGroup> groups;
  std::optional<PlanProjector> projector;
};

/// Memory of one GPU of a stage, MiB (as the memory check counts it).
struct PlanStageMemory {
  int64_t total = 0, weights = 0, grads = 0, optimizer = 0, activations = 0,
          inFlight = 0;
  /// mllm.stage's `sends` (the activation sent on, held until its gradient
  /// comes back: like `activations`, once per microbatch in flight) and
  /// `transit` (the other message buffers live at once).
  int64_t sends = 0, transit = 0;
};

/// Whether a layer kind is a partition block: a part with blocks is cut
/// between them (its other layers ride along), a part without blocks
/// between any layers (PlanPart::blocks).
inline bool isPartitionBlockKind(llvm::StringRef kind) {
  return kind == "transformer_block" || kind == "conformer_block";
}

/// One pipeline stage of one part (an `mllm.stage`).
struct PlanStage {
  std::string name, part;
  int64_t index = 0;             ///< Within the part.
  int64_t begin = 0, end = 0;    ///< Partition units [begin, end) of the part.
  std::vector<std::string> with; ///< Other groups it runs ("embed", ...).
  double fwdMs = 0, bwdWeightMs = 0, bwdInputMs = 0, recomputeMs = 0;
  std::optional<PlanStageMemory> memory;
  std::optional<RankLayout> ranks;
};

/// How one sequence of a part is split over its CP ranks.
struct PlanCPAssignment {
  std::string part;
  int64_t cp = 1;
  std::string policy;
  bool optimal = false;
  int64_t tokens = 0, block = 0, keyTile = 0;
  /// BalanceOptions::tokenWeight: what one token costs besides its
  /// attention, in tiles (0: the split balances tiles alone).
  double tokenWeight = 0;
  /// Per rank, its [start, end) token ranges, ascending.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> ranks;
  std::vector<int64_t> workload;
  double imbalance = 0;
};

struct PlanPipeline {
  int64_t gpusPerReplica = 0;
  double bottleneckMs = 0, iterationMs = 0;
};

/// The schedule: the stages it runs on (with everything the simulator
/// needs: costs, memory, message shapes, ranks, bandwidths) and one program
/// per stage.
struct PlanSchedule {
  std::string kind; ///< multimodal_1f1b | linear_1f1b | gpipe
  sched::PipelineGraph graph;
  std::vector<sched::Program> programs;
  /// Per program, the arena of its static memory plan in bytes
  /// (PlanMemory.h), as recorded; empty when the plan records none.
  std::vector<int64_t> arenaBytes;
  /// The index of the program every global rank runs (-1: none).
  std::vector<int64_t> rankProgram() const;
};

struct Plan {
  int64_t version = kPlanVersion;
  /// SHA-256 (hex) of the spec's source files, and of the plan's content
  /// (everything but this hash), as recorded.
  std::string specHash, planHash;
  PlanJob job;
  PlanTrain train;
  PlanData data;
  std::vector<PlanPart> parts; ///< Encoders in model order, then the LLM.
  PlanPipeline pipeline;
  std::vector<PlanStage> stages;
  std::vector<PlanCPAssignment> cpAssignments;
  std::optional<PlanSchedule> schedule;

  const PlanPart *findPart(llvm::StringRef name) const;
  const PlanPart &llm() const { return parts.back(); }
  /// The ranks a parallel run starts: up to the last one the schedule's
  /// programs run on (the GPUs past them idle, as where `pp = auto` leaves
  /// some of a replica's), else the job's world size.
  int64_t launchRanks() const;
};

/// The declared layout of one LLM sequence (the bitfield words and segments
/// of every token follow from it, kernels::buildSequenceLayout). The one
/// conversion from the plan's data section: the compiler's CP balancing and
/// the runtime's batches both go through it. Fails on a spelling it does not
/// know.
llvm::Expected<kernels::SequenceSpec> sequenceSpec(const Plan &plan);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_PLAN_H
