//===- PlanBuilder.cpp - the plan model from the planned IR ---------------===//
//
// Fills a runtime::Plan from a module the plan pipeline (and, when present,
// the schedule pipeline) has run on. Everything comes from the IR: the
// frozen analysis' flags, the stages the passes placed, the schedule's
// programs (or, without a sched.schedule, the same programs generated and
// verified in memory), and the pipeline graph the schedule was generated
// from (buildPipelineGraph), so a plan built from a spec and one built from
// the same job's .mlir are the same plan.
//
//===----------------------------------------------------------------------===//
#include "mllm/Driver/PlanBuilder.h"
#include "mllm/Model/SequenceSpec.h"

#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/Model/Layers.h"
#include "mllm/Plan/JobModel.h"
#include "mllm/Sched/FromIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/runtime/PlanMemory.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;
using namespace mllm;

namespace {

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::string inputGradText(const GroupGrads &g) {
  if (g.inputGrad)
    return "all";
  if (g.inputGradAfterFirst)
    return "after_first";
  return "none";
}

std::vector<runtime::PlanLayerGroup>
groupsOf(Operation *part, const DenseMap<Operation *, GroupGrads> &grads) {
  std::vector<runtime::PlanLayerGroup> out;
  for (auto g : part->getRegion(0).front().getOps<LayersOp>()) {
    runtime::PlanLayerGroup group;
    group.name = g.getName().str();
    group.kind = stringifyLayerKind(g.getKind()).str();
    group.count = static_cast<int64_t>(g.getCount());
    group.config = model::fromConfig(g.getConfig());
    GroupGrads f = grads.lookup(g);
    group.weightGrad = f.weightGrad;
    group.inputGrad = inputGradText(f);
    group.recompute = f.recompute;
    out.push_back(std::move(group));
  }
  return out;
}

/// Records the programs' arenas (runtime::recordArenas) for a schedule of
/// at most kMaxScheduleSteps stage x microbatch steps, the schedules the
/// sched IR (and so --emit=llvm) holds; a larger plan records none (the
/// plan format allows every program or none). Planning memory costs about
/// ten times what generating and verifying the schedule does (4 s for the
/// 24 programs of 16,384 microbatches of largest.mllm, against 0.5 s for
/// the rest of --emit=plan), which a plan of up to kMaxPlanSteps must not
/// pay.
void recordArenasWithinBound(runtime::Plan &plan) {
  const runtime::PlanSchedule &schedule = *plan.schedule;
  if (bounds::scheduleSteps(static_cast<int64_t>(schedule.programs.size()),
                            schedule.graph.microbatches))
    runtime::recordArenas(plan);
}

} // namespace

llvm::Expected<runtime::Plan>
mllm::buildPlan(ModuleOp module, StringRef specFile, StringRef specHash,
                std::optional<sched::ScheduleKind> generate) {
  runtime::Plan plan;
  // The job, with diagnostics turned into the error.
  std::string diagnostics;
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &diag) {
    if (!diagnostics.empty())
      diagnostics += "\n";
    diagnostics += diag.str();
    return success();
  });
  FailureOr<JobModel> maybeJob = buildJobModel(module, JobModelOptions());
  if (failed(maybeJob))
    return fail("cannot read the job: " + diagnostics);
  JobModel &job = *maybeJob;
  PipelineOp pipeline = getFirst<PipelineOp>(module);
  if (!pipeline)
    return fail("the module has no 'mllm.pipeline': plan it first");
  auto grads = analyzeGradients(job.model);
  if (failed(grads))
    return fail("the frozen analysis failed: " + diagnostics);

  plan.job.spec = specFile.str();
  plan.specHash = specHash.str();

  // Job and training.
  ClusterOp cluster = job.cluster;
  runtime::PlanJob &j = plan.job;
  j.model = job.model.getSymName().str();
  j.nodes = static_cast<int64_t>(cluster.getNodes());
  j.gpusPerNode = static_cast<int64_t>(cluster.getGpusPerNode());
  j.worldSize = j.nodes * j.gpusPerNode;
  j.gpu = cluster.getGpu().str();
  j.gpuMemoryBytes = static_cast<int64_t>(cluster.getMemory());
  j.peakFlops = cluster.getPeakFlops().convertToDouble();
  j.memoryBandwidth = cluster.getMemoryBandwidth().convertToDouble();
  j.intraNodeBandwidth = cluster.getIntraNodeBandwidth().convertToDouble();
  j.interNodeBandwidth = cluster.getInterNodeBandwidth().convertToDouble();
  j.dp = job.dp;
  j.layout = stringifyEncoderLayout(pipeline.getLayout()).str();
  j.partition = stringifyPartitionPolicy(pipeline.getPolicy()).str();
  j.cpBalance = stringifyCPBalance(job.parallel ? job.parallel.getCpBalance()
                                                : CPBalance::LPT)
                    .str();
  if (TrainOp train = job.train) {
    plan.train.steps = static_cast<int64_t>(train.getSteps());
    plan.train.optimizer = stringifyOptimizer(train.getOptimizer()).str();
    plan.train.lr = train.getLr().convertToDouble();
    plan.train.weightDecay = train.getWeightDecay().convertToDouble();
    plan.train.precision = stringifyPrecision(train.getPrecision()).str();
    plan.train.seed = static_cast<int64_t>(train.getSeed());
  }
  plan.data = planData(job.data);

  // Parts.
  llvm::StringMap<int64_t> stageCounts;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>())
    ++stageCounts[stage.getPart()];
  for (const PartInfo &info : job.parts) {
    runtime::PlanPart p;
    p.name = info.name;
    p.isLLM = info.isLLM;
    if (auto enc = dyn_cast<EncoderOp>(info.op)) {
      p.instance = enc.getInstance().str();
      p.modality = stringifyModalityKind(enc.getModality()).str();
      p.width = static_cast<int64_t>(enc.getWidth());
      p.frozen = enc.getFrozen();
      p.recompute = stringifyRecompute(enc.getRecompute()).str();
    } else {
      auto llm = cast<LLMOp>(info.op);
      p.instance = llm.getInstance().str();
      p.width = static_cast<int64_t>(llm.getWidth());
      p.frozen = llm.getFrozen();
      p.recompute = stringifyRecompute(llm.getRecompute()).str();
    }
    p.tp = info.tp;
    p.cp = info.cp;
    p.pp = stageCounts.lookup(info.name);
    ModuleParallelOp mp = info.parallel;
    p.ppAuto = mp && mp.getPp() == 0;
    p.blocks = static_cast<int64_t>(info.units.size());
    p.tokens = info.workload.tokens;
    p.attentionSpan = info.workload.attentionSpan;
    p.groups = groupsOf(info.op, *grads);
    if (!info.isLLM)
      if (ProjectorOp proj = projectorOf(job.model, info.name)) {
        runtime::PlanProjector pr;
        pr.name = proj.getSymName().str();
        pr.kind = stringifyProjectorKind(proj.getKind()).str();
        pr.merge = static_cast<int64_t>(proj.getMerge());
        pr.frozen = proj.getFrozen();
        pr.groups = groupsOf(proj, *grads);
        p.projector = std::move(pr);
      }
    plan.parts.push_back(std::move(p));
  }

  // Pipeline and stages.
  plan.pipeline.gpusPerReplica = static_cast<int64_t>(pipeline.getGpus());
  plan.pipeline.bottleneckMs = pipeline.getBottleneck().convertToDouble();
  plan.pipeline.iterationMs = pipeline.getIteration().convertToDouble();
  llvm::StringMap<int64_t> index;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>()) {
    runtime::PlanStage s;
    s.name = stage.getSymName().str();
    s.part = stage.getPart().str();
    s.index = index[stage.getPart()]++;
    s.begin = static_cast<int64_t>(stage.getBegin());
    s.end = static_cast<int64_t>(stage.getEnd());
    if (auto with = stage.getWith())
      for (StringRef w : with->getAsValueRange<StringAttr>())
        s.with.push_back(w.str());
    s.fwdMs = stage.getFwd().convertToDouble();
    s.bwdWeightMs = stage.getBwdW().convertToDouble();
    s.bwdInputMs = stage.getBwdD().convertToDouble();
    s.recomputeMs = stage.getRecompute().convertToDouble();
    if (auto memory = stage.getMemory();
        memory && stage.getWeights() && stage.getGrads() &&
        stage.getOptimizer() && stage.getActivations() && stage.getInFlight())
      s.memory = runtime::PlanStageMemory{
          static_cast<int64_t>(*memory),
          static_cast<int64_t>(*stage.getWeights()),
          static_cast<int64_t>(*stage.getGrads()),
          static_cast<int64_t>(*stage.getOptimizer()),
          static_cast<int64_t>(*stage.getActivations()),
          static_cast<int64_t>(*stage.getInFlight()),
          static_cast<int64_t>(stage.getSends().value_or(0)),
          static_cast<int64_t>(stage.getTransit().value_or(0))};
    if (stage.getFirstRank() && stage.getEndRank() && stage.getDpStride() &&
        stage.getCpStride() && stage.getTpStride()) {
      const PartInfo *info = nullptr;
      for (const PartInfo &p : job.parts)
        if (p.name == stage.getPart())
          info = &p;
      runtime::RankLayout r;
      r.first = static_cast<int64_t>(*stage.getFirstRank());
      r.dp = job.dp;
      r.cp = info ? info->cp : 1;
      r.tp = info ? info->tp : 1;
      r.dpStride = static_cast<int64_t>(*stage.getDpStride());
      r.cpStride = static_cast<int64_t>(*stage.getCpStride());
      r.tpStride = static_cast<int64_t>(*stage.getTpStride());
      s.ranks = r;
    }
    plan.stages.push_back(std::move(s));
  }

  for (CPAssignmentOp cp : module.getOps<CPAssignmentOp>()) {
    runtime::PlanCPAssignment a;
    a.part = cp.getPart().str();
    a.cp = static_cast<int64_t>(cp.getCp());
    a.policy = stringifyCPBalance(cp.getPolicy()).str();
    a.optimal = cp.getOptimal();
    a.tokens = static_cast<int64_t>(cp.getTokens());
    a.block = static_cast<int64_t>(cp.getBlock());
    a.keyTile = static_cast<int64_t>(cp.getKeyTile());
    if (std::optional<llvm::APFloat> w = cp.getTokenWeight())
      a.tokenWeight = w->convertToDouble();
    for (int64_t r = 0; r < a.cp; ++r) {
      auto &ranges = a.ranks.emplace_back();
      for (auto range : cp.getRankRanges(r))
        ranges.push_back(range);
    }
    a.workload.assign(cp.getWorkload().begin(), cp.getWorkload().end());
    a.imbalance = cp.getImbalance().convertToDouble();
    plan.cpAssignments.push_back(std::move(a));
  }

  // The schedule: the programs the IR holds, on the graph they were
  // generated from.
  auto schedules = module.getOps<sched_ir::ScheduleOp>();
  if (!schedules.empty()) {
    sched_ir::ScheduleOp op = *schedules.begin();
    llvm::Expected<sched::PipelineGraph> graph =
        sched::buildPipelineGraph(module);
    if (!graph)
      return graph.takeError();
    sched_ir::ScheduleContents contents = sched_ir::readSchedule(op);
    if (contents.graph.stages.size() != graph->stages.size())
      return fail("the schedule has " +
                  llvm::Twine(contents.graph.stages.size()) +
                  " programs but the pipeline " +
                  llvm::Twine(graph->stages.size()) + " stages");
    for (size_t s = 0; s < graph->stages.size(); ++s)
      if (contents.graph.stages[s].name != graph->stages[s].name)
        return fail("program " + llvm::Twine(s) + " is '" +
                    contents.graph.stages[s].name + "' but stage " +
                    llvm::Twine(s) + " of the pipeline is '" +
                    graph->stages[s].name + "'");
    runtime::PlanSchedule schedule;
    schedule.kind = sched_ir::stringifyScheduleKind(op.getKind()).str();
    schedule.graph = std::move(*graph);
    schedule.programs = std::move(contents.programs);
    plan.schedule = std::move(schedule);
    recordArenasWithinBound(plan);
  } else if (generate) {
    // The same programs in memory, on the same graph: sched-generate's
    // library call and sched-verify's verifier without the IR between them.
    llvm::Expected<sched::PipelineGraph> graph =
        sched::buildPipelineGraph(module);
    if (!graph)
      return graph.takeError();
    llvm::Expected<std::vector<sched::Program>> programs =
        sched::generateVerifiedSchedule(*graph, *generate);
    if (!programs)
      return programs.takeError();
    runtime::PlanSchedule schedule;
    schedule.kind = sched_ir::stringifyScheduleKind(*generate).str();
    schedule.graph = std::move(*graph);
    schedule.programs = std::move(*programs);
    plan.schedule = std::move(schedule);
    recordArenasWithinBound(plan);
  }
  return plan;
}
