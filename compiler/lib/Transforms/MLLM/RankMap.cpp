//===- RankMap.cpp - Ranks and memory of every pipeline stage -------------===//
//
// mllm-rank-map: lays the global ranks out over the stages of mllm.pipeline
// (stage by stage; inside a stage dp, then cp, then a contiguous run of tp
// ranks), estimates the memory of one GPU of every stage, records both on
// the mllm.stage ops and reports stages that do not fit.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/JobModel.h"
#include "mllm/Transforms/MLLM/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

#include <cmath>

namespace mllm {
#define GEN_PASS_DEF_RANKMAPPASS
#include "mllm/Transforms/MLLM/Passes.h.inc"
} // namespace mllm

using namespace mlir;
using namespace mllm;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;

int64_t toMiB(double bytes) {
  return static_cast<int64_t>(std::ceil(bytes / kMiB - 1e-9));
}

std::string gib(double bytes) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%.2f", bytes / kGiB) << " GiB";
  return s;
}

/// Memory of one GPU of one stage, in bytes.
struct StageMemory {
  double weights = 0, grads = 0, optimizer = 0, activations = 0;
  int64_t inFlight = 0;
  double total() const {
    return weights + grads + optimizer + activations * inFlight;
  }
  void add(const StageMemory &other) {
    weights += other.weights;
    grads += other.grads;
    optimizer += other.optimizer;
    activations += other.activations;
    inFlight = std::max(inFlight, other.inFlight);
  }
};

struct StageInfo {
  StageOp op;
  const PartInfo *part;
  int64_t index;     ///< Within the part.
  int64_t numStages; ///< Of the part.
  StageMemory memory;
};

class RankMap : public mllm::impl::RankMapPassBase<RankMap> {
public:
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    PipelineOp pipeline;
    for (auto p : module.getOps<PipelineOp>())
      pipeline = p;
    if (!pipeline)
      return;
    FailureOr<JobModel> job = buildJobModel(module, JobModelOptions());
    if (failed(job) || failed(map(pipeline, *job)))
      signalPassFailure();
  }

private:
  LogicalResult map(PipelineOp pipeline, JobModel &job);
  LogicalResult reportOverflow(JobModel &job,
                               ArrayRef<const StageInfo *> sharing,
                               const StageMemory &memory);
};

} // namespace

LogicalResult RankMap::map(PipelineOp pipeline, JobModel &job) {
  // The stages, with their part and index.
  std::vector<StageInfo> stages;
  llvm::StringMap<int64_t> counts;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>()) {
    auto it = llvm::find_if(job.parts, [&](const PartInfo &p) {
      return p.name == stage.getPart();
    });
    if (it == job.parts.end())
      return stage.emitOpError("refers to '")
             << stage.getPart() << "', which is not an encoder or the LLM";
    const PartInfo *part = &*it;
    if (static_cast<size_t>(stage.getEnd()) > part->units.size())
      return stage.emitOpError("layers [")
             << stage.getBegin() << ", " << stage.getEnd() << ") exceed the "
             << part->units.size() << " of '" << part->name << "'";
    stages.push_back({stage, part, counts[part->name]++, 0, {}});
  }
  for (StageInfo &s : stages)
    s.numStages = counts[s.part->name];
  int64_t llmStages = counts[job.parts.back().name];
  int64_t m = job.microbatches;

  // Memory per GPU of every stage.
  for (StageInfo &s : stages) {
    StageMemory &mem = s.memory;
    for (int64_t u = s.op.getBegin(); u < static_cast<int64_t>(s.op.getEnd());
         ++u) {
      const UnitCost &unit = s.part->units[u];
      mem.weights += unit.params * job.elementBytes;
      mem.grads += unit.trainableParams * job.gradBytesPerParam;
      mem.optimizer += unit.trainableParams * job.optimizerBytesPerParam;
      mem.activations += unit.activationBytes;
    }
    // The last stage's copy of a tied embedding matrix.
    const PartInfo &part = *s.part;
    double tiedCopy = part.tiedHeadCopy(s.op.getBegin(), s.op.getEnd());
    mem.weights += tiedCopy * job.elementBytes;
    if (part.tiedHeadTrainable) {
      mem.grads += tiedCopy * job.gradBytesPerParam;
      mem.optimizer += tiedCopy * job.optimizerBytesPerParam;
    }
    // Microbatches whose activations a stage holds at the peak of 1F1B:
    // its warm-up depth (all downstream stages to the loss) plus one.
    int64_t depth = s.numStages - s.index;
    if (!s.part->isLLM)
      depth += llmStages;
    mem.inFlight = std::min(depth, m);
    // Memory-aware 1F1B: when the full warm-up does not fit, the stage holds
    // as many microbatches as fit (at least one). The schedule generator
    // applies the same cap (Schedule.h, maxInFlight), so the memory check
    // below fails only when not even one microbatch fits.
    double capacity = static_cast<double>(job.cluster.getMemory());
    double fixed = mem.weights + mem.grads + mem.optimizer;
    if (mem.activations > 0 &&
        fixed + mem.activations * mem.inFlight > capacity) {
      auto fit = static_cast<int64_t>((capacity - fixed) / mem.activations);
      mem.inFlight = std::max<int64_t>(1, std::min(mem.inFlight, fit));
    }
  }

  // Ranks: stage by stage; colocated encoders share stage s.
  int64_t next = 0;
  bool colocated = job.layout == EncoderLayout::Colocated;
  llvm::DenseMap<int64_t, int64_t> colocatedBase; // encoder stage -> rank
  std::vector<int64_t> firstRank(stages.size());
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageInfo &s = stages[i];
    int64_t count = job.dp * s.part->cp * s.part->tp;
    if (colocated && !s.part->isLLM) {
      auto [it, inserted] = colocatedBase.try_emplace(s.index, next);
      firstRank[i] = it->second;
      if (inserted)
        next += count;
      continue;
    }
    firstRank[i] = next;
    next += count;
  }
  if (next > job.worldSize)
    return pipeline.emitOpError("needs ")
           << next << " GPUs but the cluster has " << job.worldSize;
  // A partitioner that chose to leave GPUs idle has said so already.
  if (next < job.worldSize &&
      next != static_cast<int64_t>(pipeline.getGpus()) * job.dp)
    pipeline.emitWarning("the pipeline uses ")
        << next << " of the cluster's " << job.worldSize << " GPUs; ranks "
        << next << " to " << job.worldSize - 1 << " stay idle";

  OpBuilder b(pipeline.getContext());
  int64_t perNode = job.cluster.getGpusPerNode();
  for (size_t i = 0; i < stages.size(); ++i) {
    StageInfo &s = stages[i];
    int64_t tp = s.part->tp, cp = s.part->cp;
    int64_t first = firstRank[i], end = first + job.dp * cp * tp;
    s.op.setFirstRankAttr(b.getI64IntegerAttr(first));
    s.op.setEndRankAttr(b.getI64IntegerAttr(end));
    s.op.setDpStrideAttr(b.getI64IntegerAttr(cp * tp));
    s.op.setCpStrideAttr(b.getI64IntegerAttr(tp));
    s.op.setTpStrideAttr(b.getI64IntegerAttr(1));
    for (int64_t start = first; tp > 1 && start < end; start += tp)
      if (start / perNode != (start + tp - 1) / perNode) {
        emitWarning(s.part->loc())
            << "the tp group of ranks " << start << " to " << start + tp - 1
            << " (stage " << s.index << " of '" << s.part->name
            << "') spans nodes " << start / perNode << " and "
            << (start + tp - 1) / perNode << "; tensor parallelism will cross "
            << "the inter-node link";
        break;
      }

    const StageMemory &mem = s.memory;
    int64_t weights = toMiB(mem.weights), grads = toMiB(mem.grads),
            optimizer = toMiB(mem.optimizer),
            activations = toMiB(mem.activations);
    s.op.setWeightsAttr(b.getI64IntegerAttr(weights));
    s.op.setGradsAttr(b.getI64IntegerAttr(grads));
    s.op.setOptimizerAttr(b.getI64IntegerAttr(optimizer));
    s.op.setActivationsAttr(b.getI64IntegerAttr(activations));
    s.op.setInFlightAttr(b.getI64IntegerAttr(mem.inFlight));
    s.op.setMemoryAttr(b.getI64IntegerAttr(weights + grads + optimizer +
                                           activations * mem.inFlight));
  }

  if (!checkMemory)
    return success();
  // A GPU holds one stage, or with colocated encoders stage s of every
  // encoder.
  bool ok = true;
  llvm::DenseSet<int64_t> checkedColocated;
  for (const StageInfo &s : stages) {
    SmallVector<const StageInfo *> sharing{&s};
    StageMemory mem = s.memory;
    if (colocated && !s.part->isLLM) {
      if (!checkedColocated.insert(s.index).second)
        continue;
      for (const StageInfo &other : stages)
        if (&other != &s && !other.part->isLLM && other.index == s.index) {
          sharing.push_back(&other);
          mem.add(other.memory);
        }
      // Each encoder's activations stay in flight for its own count; the
      // sum above takes the largest, an upper bound.
    }
    if (mem.total() > static_cast<double>(job.cluster.getMemory()))
      ok &= succeeded(reportOverflow(job, sharing, mem));
  }
  return success(ok);
}

LogicalResult RankMap::reportOverflow(JobModel &job,
                                      ArrayRef<const StageInfo *> sharing,
                                      const StageMemory &mem) {
  const StageInfo &s = *sharing.front();
  std::string who;
  llvm::raw_string_ostream os(who);
  os << "stage " << s.index << " of '" << s.part->name << "'";
  for (const StageInfo *other : sharing.drop_front())
    os << " + '" << other->part->name << "'";
  if (sharing.size() > 1)
    os << " (colocated)";

  // The contributors, largest first.
  struct Item {
    double bytes;
    std::string text;
  };
  SmallVector<Item> items;
  items.push_back({mem.weights, "weights " + gib(mem.weights)});
  items.push_back({mem.grads, "gradients " + gib(mem.grads)});
  items.push_back({mem.optimizer, "optimizer state " + gib(mem.optimizer)});
  items.push_back({mem.activations * mem.inFlight,
                   "activations " + gib(mem.activations * mem.inFlight) + " (" +
                       gib(mem.activations) + " x " +
                       std::to_string(mem.inFlight) +
                       (mem.inFlight == 1 ? " microbatch" : " microbatches") +
                       " in flight)"});
  // Largest first; ties keep the order above (the sort is on a copy with
  // the index as the second key).
  SmallVector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < items.size(); ++i)
    order.push_back({-items[i].bytes, i});
  llvm::sort(order);
  std::string breakdown;
  llvm::raw_string_ostream bs(breakdown);
  llvm::ListSeparator sep(", ");
  for (auto [negBytes, i] : order)
    if (negBytes < 0)
      bs << sep << items[i].text;

  std::string hint = "raise pp or tp of '" + s.part->name + "'";
  Recompute recompute = Recompute::None;
  if (auto enc = dyn_cast<EncoderOp>(s.part->op))
    recompute = enc.getRecompute();
  else if (auto llm = dyn_cast<LLMOp>(s.part->op))
    recompute = llm.getRecompute();
  if (recompute != Recompute::Full && mem.activations > 0)
    hint += ", or set recompute = full";
  if (job.dp > 1 && mem.grads + mem.optimizer > 0)
    hint += " (dp " + std::to_string(job.dp) +
            " replicates the optimizer state; lower it to free GPUs)";

  auto diag = emitError(s.part->loc())
              << who << " needs " << gib(mem.total())
              << " per GPU but a GPU of the cluster ('" << job.cluster.getGpu()
              << "') has " << gib(static_cast<double>(job.cluster.getMemory()))
              << ": " << breakdown << "; " << hint;
  (void)diag;
  return failure();
}
