//===- RankMap.cpp - Ranks and memory of every pipeline stage -------------===//
//
// mllm-rank-map: lays the global ranks out over the stages of mllm.pipeline
// (stage by stage; inside a stage dp, then cp, then a contiguous run of tp
// ranks; a stage starts on a multiple of its tp when the GPUs the pipeline
// leaves idle allow, so that its TP groups stay inside nodes), estimates
// the memory of one GPU of every stage with the planner's memory model
// (mllm/Plan/Memory.h), records both on the mllm.stage ops and reports
// stages that do not fit.
//
//===----------------------------------------------------------------------===//
#include "RankMapMemory.h"

#include "mllm/Transforms/MLLM/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

namespace mllm {
#define GEN_PASS_DEF_RANKMAPPASS
#include "mllm/Transforms/MLLM/Passes.h.inc"
} // namespace mllm

using namespace mlir;
using namespace mllm;
using namespace mllm::rankmap;
using plan::StageMemory;

namespace {

/// GiB, or MiB below one GiB (a small GPU's figures would all read 0.00).
std::string gib(double bytes) {
  std::string s;
  if (bytes >= plan::kGiB)
    llvm::raw_string_ostream(s)
        << llvm::format("%.2f", bytes / plan::kGiB) << " GiB";
  else
    llvm::raw_string_ostream(s)
        << llvm::format("%.1f", bytes / plan::kMiB) << " MiB";
  return s;
}

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
  LogicalResult placeRanks(PipelineOp pipeline, JobModel &job,
                           ArrayRef<GpuGroup> groups,
                           std::vector<int64_t> &firstRank);
  LogicalResult reportOverflow(JobModel &job, const GpuGroup &group,
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
  for (StageInfo &s : stages)
    s.memory = stageMemory(job, s, llmStages);

  // GPU groups: a stage, or stage s of every colocated encoder.
  bool colocated = job.layout == EncoderLayout::Colocated;
  std::vector<GpuGroup> groups;
  llvm::DenseMap<int64_t, size_t> colocatedGroup; // encoder stage -> group
  for (StageInfo &s : stages) {
    // Layout chain: a stage marked colocated runs on the previous stage's
    // GPUs.
    if (s.op.getColocated() && !groups.empty()) {
      groups.back().push_back(&s);
      continue;
    }
    if (colocated && !s.part->isLLM) {
      auto [it, inserted] = colocatedGroup.try_emplace(s.index, groups.size());
      if (inserted)
        groups.emplace_back();
      groups[it->second].push_back(&s);
      continue;
    }
    groups.push_back({&s});
  }

  StageIndex index(groups);
  setMessages(job, groups, index);

  // A chain is one linear pipeline: group g of G holds G - g microbatches.
  if (job.layout == EncoderLayout::Chain)
    for (auto [g, group] : llvm::enumerate(groups))
      for (StageInfo *s : group) {
        auto n = static_cast<int64_t>(groups.size());
        s->memory.wanted = plan::inFlightDepth(true, static_cast<int64_t>(g), n,
                                               n, job.microbatches);
      }

  // Memory-aware 1F1B caps a GPU's microbatches in flight to what fits (at
  // least one), with the schedule generator's arithmetic on the shared
  // GPU's summed terms (Memory.h), so the check below fails only when not
  // even one microbatch fits.
  // In pipeline order, so that a group's predecessors are capped first: one
  // holding more microbatches leaves more sent gradients here.
  double capacity = static_cast<double>(job.cluster.getMemory());
  std::vector<SmallVector<size_t, 2>> preds =
      predecessorGroups(job, groups, index);
  std::vector<StageMemory> gpuMemory;
  for (auto [g, group] : llvm::enumerate(groups)) {
    // The shared GPU's terms as the generator adds them up: each stage's
    // rounded to MiB as mllm.stage records it (FromIR sums the records).
    StageMemory mem;
    for (StageInfo *s : group)
      mem.add(s->memory.recorded());
    plan::PredecessorsInFlight before;
    for (size_t p : preds[g])
      if (gpuMemory[p].activations > 0)
        before.add(gpuMemory[p].inFlight);
    plan::capInFlightAfter(mem, capacity, before);
    messageHolder(job, group)->memory.transit = mem.transit;
    for (StageInfo *s : group) {
      s->memory.inFlight = mem.inFlight;
      s->memory.wanted = mem.wanted;
    }
    gpuMemory.push_back(mem);
  }

  std::vector<int64_t> firstRank;
  if (failed(placeRanks(pipeline, job, groups, firstRank)))
    return failure();

  OpBuilder b(pipeline.getContext());
  for (auto [g, group] : llvm::enumerate(groups))
    for (StageInfo *s : group) {
      int64_t tp = s->part->tp, cp = s->part->cp;
      int64_t first = firstRank[g], end = first + job.dp * cp * tp;
      s->op.setFirstRankAttr(b.getI64IntegerAttr(first));
      s->op.setEndRankAttr(b.getI64IntegerAttr(end));
      s->op.setDpStrideAttr(b.getI64IntegerAttr(cp * tp));
      s->op.setCpStrideAttr(b.getI64IntegerAttr(tp));
      s->op.setTpStrideAttr(b.getI64IntegerAttr(1));
      const StageMemory &mem = s->memory;
      int64_t weights = plan::toMiB(mem.weights),
              grads = plan::toMiB(mem.grads),
              optimizer = plan::toMiB(mem.optimizer),
              activations = mem.activationMiB(), sends = mem.sendMiB(),
              transit = mem.transitMiB();
      s->op.setWeightsAttr(b.getI64IntegerAttr(weights));
      s->op.setGradsAttr(b.getI64IntegerAttr(grads));
      s->op.setOptimizerAttr(b.getI64IntegerAttr(optimizer));
      s->op.setActivationsAttr(b.getI64IntegerAttr(activations));
      if (sends > 0)
        s->op.setSendsAttr(b.getI64IntegerAttr(sends));
      if (transit > 0)
        s->op.setTransitAttr(b.getI64IntegerAttr(transit));
      s->op.setInFlightAttr(b.getI64IntegerAttr(mem.inFlight));
      s->op.setMemoryAttr(
          b.getI64IntegerAttr(weights + grads + optimizer + transit +
                              (activations + sends) * mem.inFlight));
    }

  if (!checkMemory)
    return success();
  bool ok = true;
  for (auto [g, group] : llvm::enumerate(groups))
    if (!gpuMemory[g].fits(capacity))
      ok &= succeeded(reportOverflow(job, group, gpuMemory[g]));
  return success(ok);
}

/// Ranks, group by group in pipeline order. A group whose TP groups could
/// straddle a node boundary (tp divides the node but the run would not
/// start on a multiple of tp) starts at the next multiple of tp when the
/// GPUs the pipeline leaves idle pay for the gap; one warning counts the TP
/// groups that still straddle.
LogicalResult RankMap::placeRanks(PipelineOp pipeline, JobModel &job,
                                  ArrayRef<GpuGroup> groups,
                                  std::vector<int64_t> &firstRank) {
  int64_t perNode = std::max<int64_t>(job.cluster.getGpusPerNode(), 1);
  int64_t used = 0;
  for (const GpuGroup &group : groups)
    used += job.dp * group.front()->part->cp * group.front()->part->tp;
  if (used > job.worldSize)
    return pipeline.emitOpError("needs ")
           << used << " GPUs but the cluster has " << job.worldSize;
  int64_t slack = job.worldSize - used, next = 0;
  for (const GpuGroup &group : groups) {
    int64_t tp = group.front()->part->tp;
    int64_t count = job.dp * group.front()->part->cp * tp;
    if (tp > 1 && tp <= perNode && perNode % tp == 0 && next % tp != 0) {
      int64_t gap = tp - next % tp;
      if (gap <= slack) {
        slack -= gap;
        next += gap;
      }
    }
    firstRank.push_back(next);
    next += count;
  }

  // TP groups that cross a node boundary, counted, with why they could not
  // be kept inside a node.
  int64_t straddling = 0, tpGroups = 0;
  std::string firstOne, why;
  for (auto [g, group] : llvm::enumerate(groups)) {
    const StageInfo &s = *group.front();
    int64_t tp = s.part->tp;
    if (tp <= 1)
      continue;
    int64_t end = firstRank[g] + job.dp * s.part->cp * tp;
    for (int64_t start = firstRank[g]; start < end; start += tp) {
      ++tpGroups;
      if (start / perNode == (start + tp - 1) / perNode)
        continue;
      if (straddling++ > 0)
        continue;
      firstOne = "ranks " + std::to_string(start) + " to " +
                 std::to_string(start + tp - 1) + " of stage " +
                 std::to_string(s.index) + " of '" + s.part->name + "'";
      why = perNode % tp != 0
                ? "tp " + std::to_string(tp) + " does not divide the " +
                      std::to_string(perNode) + " GPUs of a node"
                : "the pipeline leaves too few idle GPUs to start every "
                  "stage on a multiple of its tp";
    }
  }
  if (straddling > 0)
    pipeline.emitWarning()
        << straddling << " of the " << tpGroups
        << " tensor-parallel groups span a node boundary (the first: "
        << firstOne << "; " << why
        << "); tensor parallelism will cross the inter-node link";

  // A partitioner that chose to leave GPUs idle has said so already.
  if (used < job.worldSize &&
      used != static_cast<int64_t>(pipeline.getGpus()) * job.dp)
    pipeline.emitWarning("the pipeline uses ")
        << used << " of the cluster's " << job.worldSize << " GPUs; "
        << job.worldSize - used << " stay idle";
  return success();
}

LogicalResult RankMap::reportOverflow(JobModel &job, const GpuGroup &group,
                                      const StageMemory &mem) {
  const StageInfo &s = *group.front();
  std::string who;
  llvm::raw_string_ostream os(who);
  os << "stage " << s.index << " of '" << s.part->name << "'";
  for (const StageInfo *other : llvm::drop_begin(group))
    os << " + '" << other->part->name << "'";
  if (group.size() > 1)
    os << (job.layout == EncoderLayout::Chain ? " (one chain stage)"
                                              : " (colocated)");

  // The contributors, largest first (MiB-rounded, as recorded).
  double weights = plan::toMiB(mem.weights) * plan::kMiB,
         grads = plan::toMiB(mem.grads) * plan::kMiB,
         optimizer = plan::toMiB(mem.optimizer) * plan::kMiB,
         activations = mem.activationMiB() * plan::kMiB,
         sends = mem.sendMiB() * plan::kMiB,
         transit = mem.transitMiB() * plan::kMiB;
  std::string inFlight = std::to_string(mem.inFlight) +
                         (mem.inFlight == 1 ? " microbatch" : " microbatches") +
                         " in flight";
  // A capped count says what it was capped from and why it is the floor.
  if (mem.capped())
    inFlight +=
        ": memory-aware 1F1B lowered the " + std::to_string(mem.wanted) +
        " of its warm-up to what fits, and 1 is the least a stage holds";
  struct Item {
    double bytes;
    std::string text;
  };
  SmallVector<Item> items = {
      {weights, "weights " + gib(weights)},
      {grads, "gradients " + gib(grads)},
      {optimizer, "optimizer state " + gib(optimizer)},
      {activations * mem.inFlight,
       "activations " + gib(activations * mem.inFlight) + " (" +
           gib(activations) + " x " + inFlight + ")"},
      {sends * mem.inFlight, "sent activations waiting for their gradients " +
                                 gib(sends * mem.inFlight)},
      {transit, "other messages " + gib(transit)}};
  // Largest first; ties keep the order above.
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

  // pp = auto has tried every stage count the replica's GPUs allow; a
  // chain's parts share one tp, which stays within a node.
  int64_t perNode = std::max<int64_t>(job.cluster.getGpusPerNode(), 1);
  bool tpCanRise = s.part->tp < perNode;
  std::string part = "'" + s.part->name + "'";
  std::string tpOf = job.layout == EncoderLayout::Chain
                         ? std::string("every part (layout chain)")
                         : part;
  SmallVector<std::string, 3> remedies;
  if (s.part->pp != 0)
    remedies.push_back(!tpCanRise ? "raise pp of " + part
                       : job.layout == EncoderLayout::Chain
                           ? "raise pp of " + part + " or tp of " + tpOf
                           : "raise pp or tp of " + part);
  else if (tpCanRise)
    remedies.push_back("raise tp of " + tpOf);
  Recompute recompute = Recompute::None;
  if (auto enc = dyn_cast<EncoderOp>(s.part->op))
    recompute = enc.getRecompute();
  else if (auto llm = dyn_cast<LLMOp>(s.part->op))
    recompute = llm.getRecompute();
  // Recomputation frees saved activations only: no help where weights,
  // gradients, optimizer state and messages alone overflow the GPU.
  double capacity = static_cast<double>(job.cluster.getMemory());
  if (recompute != Recompute::Full && mem.activations > 0 &&
      static_cast<double>(mem.staticMiB()) * plan::kMiB < capacity)
    remedies.push_back("set recompute = full");
  std::string hint;
  if (s.part->pp == 0)
    hint = "'pp = auto' found no pipeline within the " +
           std::to_string(job.worldSize / job.dp) +
           " GPUs of a replica in which it fits; ";
  if (remedies.empty())
    hint += "use GPUs with more memory (tp " + std::to_string(s.part->tp) +
            " already spans a node's " + std::to_string(perNode) + " GPUs)";
  else
    hint += llvm::join(remedies, ", or ");
  if (job.dp > 1 && mem.grads + mem.optimizer > 0)
    hint += " (dp " + std::to_string(job.dp) +
            " replicates the optimizer state; lower it to free GPUs)";

  emitError(s.part->loc()) << who << " needs " << gib(mem.total())
                           << " per GPU but a GPU of the cluster ('"
                           << job.cluster.getGpu() << "') has " << gib(capacity)
                           << ": " << breakdown << "; " << hint;
  return failure();
}
