//===- PartitionPass.cpp - Pipeline stages of every model part ------------===//
//
// mllm-partition: prices every partition unit of every part (JobModel.h),
// hands the times to plan::planPipeline with the job's policy, and records
// the stages as an mllm.pipeline of mllm.stage ops.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/JobModel.h"
#include "mllm/Transforms/MLLM/Passes.h"

#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Plan/Memory.h"
#include "mllm/Plan/Partition.h"
#include "mllm/Plan/Profile.h"
#include "mllm/runtime/Schedule.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace mllm {
#define GEN_PASS_DEF_PARTITIONPASS
#include "mllm/Transforms/MLLM/Passes.h.inc"
} // namespace mllm

using namespace mlir;
using namespace mllm;

namespace {

plan::Objective getObjective(PartitionPolicy policy) {
  switch (policy) {
  case PartitionPolicy::FrozenAware:
  case PartitionPolicy::FrozenUnaware:
    return plan::Objective::MinMax;
  case PartitionPolicy::Uniform:
    return plan::Objective::Uniform;
  case PartitionPolicy::Explicit:
    return plan::Objective::Explicit;
  }
  return plan::Objective::MinMax;
}

std::string formatList(ArrayRef<int64_t> values) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleaveComma(values, os);
  os << "]";
  return s;
}

class Partition : public mllm::impl::PartitionPassBase<Partition> {
public:
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (module.getOps<ModelOp>().empty())
      return;
    if (!(efficiency > 0.0 && efficiency <= 1.0)) {
      module.emitError("mllm-partition: 'efficiency' must be in (0, 1], got ")
          << efficiency.getValue();
      return signalPassFailure();
    }
    if (searchBudget < 0) {
      module.emitError("mllm-partition: 'search-budget' must be at least 0, "
                       "got ")
          << searchBudget.getValue();
      return signalPassFailure();
    }
    std::optional<plan::Profile> loaded;
    if (!profile.empty()) {
      auto p = plan::Profile::load(profile);
      if (!p) {
        // The message names the file (and the line, for a bad entry).
        module.emitError(llvm::toString(p.takeError()));
        return signalPassFailure();
      }
      loaded = std::move(*p);
    }
    JobModelOptions options;
    options.profile = loaded ? &*loaded : nullptr;
    options.efficiency = efficiency;
    FailureOr<JobModel> job = buildJobModel(module, options);
    if (failed(job))
      return signalPassFailure();
    // The layers that ride along with the blocks are priced while planning;
    // a planning that failed has not looked at every layer.
    if (failed(plan(module, *job)))
      return signalPassFailure();
    if (loaded)
      warnUnusedProfileEntries(module, *loaded);
  }

private:
  /// A measurement that matched no layer is ignored; say so, at the model
  /// (the spec's model block), naming the entry.
  static void warnUnusedProfileEntries(ModuleOp module,
                                       const plan::Profile &profile) {
    auto models = module.getOps<ModelOp>();
    Location at = models.empty() ? module.getLoc() : (*models.begin()).getLoc();
    for (const plan::Profile::Entry *e : profile.unused()) {
      std::string keys;
      for (const auto &[key, value] : e->keys)
        keys += (keys.empty() ? "" : ", ") + key + " " + std::to_string(value);
      mlir::emitWarning(at)
          << "the profile's entry at " << profile.name << ":" << e->line << ":"
          << e->column << " ('" << stringifyLayerKind(e->kind) << "'"
          << (keys.empty() ? "" : ", " + keys)
          << ") matches no layer of this model and is not used: an entry "
             "applies where its kind and every key it gives equal the "
             "layer's (mllmc --emit=mllm shows the layers' configs; tokens, "
             "attention_span, tp, cp and element_bytes are the workload's)";
    }
  }
  LogicalResult checkPart(const JobModel &job, const PartInfo &part);
  LogicalResult plan(ModuleOp module, const JobModel &job);
};

} // namespace

LogicalResult Partition::checkPart(const JobModel &job, const PartInfo &part) {
  int64_t n = static_cast<int64_t>(part.units.size());
  StringRef what = hasPartitionBlocks(part.op) ? "blocks" : "layers";
  if (n == 0)
    return part.op->emitError("'") << part.name << "' has no layers to place";
  if (part.pp > n)
    return emitError(part.loc())
           << "pp " << part.pp << " of '" << part.name << "' exceeds its " << n
           << " " << what << "; every stage needs at least one";
  ArrayRef<int64_t> stages = part.explicitStages;
  bool isExplicit = job.policy == PartitionPolicy::Explicit;
  if (!stages.empty() && !isExplicit)
    return emitError(part.loc())
           << "'" << part.name << "' lists explicit stages "
           << formatList(stages) << " but the partition policy is "
           << stringifyPartitionPolicy(job.policy) << ", not explicit";
  if (!isExplicit)
    return success();
  if (stages.empty()) {
    if (part.pp > 1)
      return emitError(part.loc())
             << "the explicit partition needs a 'stages' list for '"
             << part.name << "', which has pp " << part.pp;
    return success();
  }
  int64_t sum = 0;
  for (int64_t s : stages)
    sum += s;
  if (sum < n)
    return emitError(part.loc())
           << "explicit stages " << formatList(stages) << " of '" << part.name
           << "' place " << sum << " of its " << n << " " << what << "; "
           << (sum + 1 == n
                   ? what.drop_back().str() + " " + std::to_string(sum) + " is"
                   : what.str() + " " + std::to_string(sum) + " to " +
                         std::to_string(n - 1) + " are")
           << " in no stage";
  if (sum > n)
    return emitError(part.loc())
           << "explicit stages " << formatList(stages) << " of '" << part.name
           << "' place " << sum << " " << what << " but it has " << n << "; "
           << sum - n << " would be placed twice";
  return success();
}

/// What the partitioner sees of a part: per unit its times (and, for
/// frozen_unaware, the all-trainable times it balances), its memory on one
/// GPU, and the activations its stages receive and send.
static plan::PipelineModule pipelineModule(const JobModel &job,
                                           const PartInfo &part) {
  plan::PipelineModule m;
  m.name = part.name;
  m.isLLM = part.isLLM;
  if (part.pp > 0)
    m.stages = part.pp;
  m.explicitStages = part.explicitStages;
  m.gpusPerStage = part.tp * part.cp;
  for (const UnitCost &u : part.units) {
    m.layers.push_back({u.fwd, u.bwd(), u.wgrad});
    if (job.policy == PartitionPolicy::FrozenUnaware)
      m.balanceLayers.push_back({u.fwd, u.trainedBwd, 0});
    m.memory.push_back(
        unitMemory(job, u.params, u.trainableParams, u.activationBytes));
  }
  double tied = part.tiedHeadParams;
  m.lastStageExtra =
      unitMemory(job, tied, part.tiedHeadTrainable ? tied : 0, 0);
  m.cutBytes = part.cutBytes;
  m.outputBytes = part.outputBytes;
  // The LLM's first stage receives every encoder's output.
  if (part.isLLM)
    for (const PartInfo &other : job.parts)
      if (!other.isLLM)
        m.inputBytes += other.outputBytes;
  return m;
}

/// Layout chain cuts one chain of every part's layers: the stage count is
/// the planner's (pp = auto everywhere), and a stage holding two parts needs
/// one GPU layout for both (equal tp, no CP).
static LogicalResult checkChain(const JobModel &job) {
  if (job.layout != EncoderLayout::Chain)
    return success();
  const PartInfo &first = job.parts.front();
  // Every part that breaks a rule, each at its block.
  bool ok = true;
  for (const PartInfo &part : job.parts) {
    if (part.pp != 0) {
      emitError(part.loc())
          << "layout chain cuts the layers of every part as one chain of "
             "stages; set 'pp = auto' for '"
          << part.name << "' (it has pp " << part.pp << ")";
      ok = false;
    }
    if (part.tp != first.tp) {
      emitError(part.loc())
          << "layout chain puts parts on shared stages, which needs one "
             "tp for every part; '"
          << part.name << "' has tp " << part.tp << " but '" << first.name
          << "' has tp " << first.tp;
      ok = false;
    }
    if (part.cp != 1) {
      emitError(part.loc())
          << "layout chain puts parts on shared stages, which cannot run "
             "context parallelism; '"
          << part.name << "' has cp " << part.cp;
      ok = false;
    }
  }
  if (!ok)
    return failure();
  if (job.policy == PartitionPolicy::Explicit)
    return emitError(first.loc()) << "layout chain chooses its own cuts; it "
                                     "cannot take an explicit partition";
  return success();
}

/// A stage time past the IR's bound (a day per microbatch) comes from
/// mistyped inputs (`peak_bf16 = 989FLOPS` for TFLOPS, `text_tokens = 1G`
/// for 1k): said here, in the spec's terms, rather than by the verifier.
static LogicalResult checkStageTimes(const JobModel &job, const PartInfo &part,
                                     int64_t index, const UnitCost &sum) {
  for (auto [name, seconds] : {std::pair<StringRef, double>{"forward", sum.fwd},
                               {"weight-gradient", sum.wgrad},
                               {"input-gradient", sum.igrad},
                               {"recompute", sum.recompute}}) {
    if (roundMillis(seconds) <= bounds::kMaxMillis)
      continue;
    InFlightDiagnostic diag =
        emitError(part.loc())
        << "stage " << index << " of '" << part.name << "' would take "
        << llvm::formatv("{0:e2}", seconds * 1e3) << " ms per microbatch ("
        << name << "), more than the day a stage may take: an input is "
        << "likely mistyped; check the GPU's peak_bf16 ("
        << llvm::formatv("{0:e2}", job.device.peakFlops)
        << " FLOP/s; 989TFLOPS, not 989FLOPS) and the sequence length ("
        << DataOp(job.data).getSeqLen() << " tokens)";
    diag.attachNote(ClusterOp(job.cluster).getLoc())
        << "the cluster's GPU is set here";
    diag.attachNote(DataOp(job.data).getLoc()) << "the data layout is set here";
    return failure();
  }
  return success();
}

LogicalResult Partition::plan(ModuleOp module, const JobModel &job) {
  // A broken chain first: a part's own errors (its CP split, say) may
  // follow from the chain's rules.
  if (failed(checkChain(job)))
    return failure();
  bool ok = true;
  for (const PartInfo &part : job.parts)
    ok &= succeeded(checkPart(job, part));
  if (!ok)
    return failure();
  ParallelOp parallel = job.parallel;
  ClusterOp cluster = job.cluster;
  Operation *anchor =
      parallel ? parallel.getOperation() : cluster.getOperation();
  if (job.worldSize % job.dp != 0)
    return anchor->emitError("dp ")
           << job.dp << " does not divide the cluster's " << job.worldSize
           << " GPUs";
  int64_t budget = job.worldSize / job.dp;

  std::vector<plan::PipelineModule> modules;
  for (const PartInfo &part : job.parts)
    modules.push_back(pipelineModule(job, part));
  plan::PipelineResources resources;
  resources.gpuBudget = budget;
  resources.microbatches = job.microbatches;
  resources.memoryCapacity = static_cast<double>(cluster.getMemory());
  resources.gpusPerNode = static_cast<int64_t>(cluster.getGpusPerNode());
  resources.dp = job.dp;
  resources.intraNodeBandwidth = job.device.intraNodeBandwidth;
  resources.interNodeBandwidth = job.device.interNodeBandwidth;
  resources.searchBudget = searchBudget;
  std::optional<plan::PipelinePlan> result = plan::planPipeline(
      modules, job.layout, getObjective(job.policy), resources);
  if (!result) {
    std::string parts;
    llvm::raw_string_ostream os(parts);
    llvm::ListSeparator sep(", ");
    for (const PartInfo &part : job.parts) {
      os << sep << "'" << part.name << "' ";
      if (part.pp > 0)
        os << part.pp << " x ";
      else
        os << "auto x ";
      os << part.tp * part.cp << " GPUs";
    }
    return anchor->emitError("no pipeline of ")
           << parts << " fits the " << budget << " GPUs of one replica ("
           << job.worldSize << " GPUs / dp " << job.dp << ")"
           << (job.layout == EncoderLayout::Colocated
                   ? "; colocated encoders need equal stage counts and tp x cp"
                   : "");
  }

  // GPUs per replica of the chosen plan (colocated encoders and chain
  // stages share theirs).
  int64_t gpus = result->gpus;
  bool anyAuto =
      llvm::any_of(job.parts, [](const PartInfo &p) { return p.pp == 0; });
  // A plan that does not fit is the closest miss, which the rank map
  // reports.
  if (anyAuto && gpus < budget && result->fits)
    anchor->emitWarning("the chosen pipeline uses ")
        << gpus << " of the " << budget
        << " GPUs of one replica; more stages would not shorten the "
           "estimated iteration";
  // What Sema says of a fixed pp when no part is auto (it leaves a job
  // with any pp = auto to this pass), for the LLM's stages.
  for (const PartInfo &part : job.parts) {
    if (!part.isLLM || !anyAuto)
      continue;
    int64_t stages =
        llvm::count_if(result->stages, [&](const plan::StagePlan &s) {
          return s.module == part.name;
        });
    if (job.microbatches < stages)
      DataOp(job.data).emitWarning()
          << job.microbatches << " microbatches cannot fill the " << stages
          << " pipeline stages "
          << (part.pp == 0 ? "'pp = auto' chose for the LLM" : "of the LLM")
          << "; the pipeline will mostly idle (raise microbatches)";
  }

  for (auto old : llvm::make_early_inc_range(module.getOps<PipelineOp>()))
    old.erase();
  // The plan follows the job: at the end of the module.
  OpBuilder builder(module.getContext());
  builder.setInsertionPointToEnd(module.getBody());
  MLIRContext *ctx = builder.getContext();
  auto pipeline = PipelineOp::create(
      builder, anchor->getLoc(), PartitionPolicyAttr::get(ctx, job.policy),
      EncoderLayoutAttr::get(ctx, job.layout),
      builder.getI64IntegerAttr(job.microbatches),
      builder.getI64IntegerAttr(gpus),
      builder.getF64FloatAttr(roundMillis(result->bottleneck)),
      builder.getF64FloatAttr(roundMillis(result->iterationTime)),
      result->search ? SearchCoverageAttr::get(ctx, *result->search)
                     : SearchCoverageAttr(),
      result->search ? builder.getI64IntegerAttr(result->searchPriced)
                     : IntegerAttr());
  pipeline.getBody().push_back(new Block());
  builder.setInsertionPointToStart(&pipeline.getBody().front());

  llvm::StringMap<int64_t> stageIndex;
  for (const plan::StagePlan &stage : result->stages) {
    auto it = llvm::find_if(
        job.parts, [&](const PartInfo &p) { return p.name == stage.module; });
    if (it == job.parts.end())
      return module.emitError("internal error: the partitioner returned a "
                              "stage of unknown part '")
             << stage.module << "'";
    const PartInfo *part = &*it;
    int64_t begin = stage.firstLayer, end = begin + stage.numLayers;
    if (begin < 0 || stage.numLayers < 1 ||
        end > static_cast<int64_t>(part->units.size()))
      return module.emitError("internal error: the partitioner returned "
                              "layers [")
             << begin << ", " << end << ") of '" << stage.module << "'";
    UnitCost sum;
    llvm::SetVector<StringRef> extras;
    for (int64_t u = begin; u < end; ++u) {
      const UnitCost &unit = part->units[u];
      sum.fwd += unit.fwd;
      sum.wgrad += unit.wgrad;
      sum.igrad += unit.igrad;
      sum.recompute += unit.recompute;
      for (const std::string &e : unit.extras)
        extras.insert(e);
    }
    int64_t index = stageIndex[stage.module]++;
    if (failed(checkStageTimes(job, *part, index, sum)))
      return failure();
    ArrayAttr with;
    if (!extras.empty())
      with = builder.getStrArrayAttr(extras.getArrayRef());
    StageOp::create(
        builder, part->loc(),
        builder.getStringAttr(sched::partStageName(stage.module, index)),
        FlatSymbolRefAttr::get(ctx, stage.module),
        builder.getI64IntegerAttr(begin), builder.getI64IntegerAttr(end), with,
        stage.colocated ? builder.getUnitAttr() : UnitAttr(),
        stage.cutToFit ? builder.getUnitAttr() : UnitAttr(),
        builder.getF64FloatAttr(roundMillis(sum.fwd)),
        builder.getF64FloatAttr(roundMillis(sum.wgrad)),
        builder.getF64FloatAttr(roundMillis(sum.igrad)),
        builder.getF64FloatAttr(roundMillis(sum.recompute)),
        /*memory=*/IntegerAttr(), /*weights=*/IntegerAttr(),
        /*grads=*/IntegerAttr(), /*optimizer=*/IntegerAttr(),
        /*activations=*/IntegerAttr(), /*sends=*/IntegerAttr(),
        /*transit=*/IntegerAttr(),
        /*in_flight=*/IntegerAttr(),
        /*first_rank=*/IntegerAttr(), /*end_rank=*/IntegerAttr(),
        /*dp_stride=*/IntegerAttr(), /*cp_stride=*/IntegerAttr(),
        /*tp_stride=*/IntegerAttr());
    ++numStages;
  }
  return success();
}
