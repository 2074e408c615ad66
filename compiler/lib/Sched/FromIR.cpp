//===- FromIR.cpp - pipeline graph from the planned mllm IR ---------------===//
//
// Reads the schedule's view of a planned job:
//  - stages: one per mllm.stage, in pipeline order; with encoders_colocated,
//    stage s of every encoder is one stage (part "vision+audio", name
//    "vision+audio_s0") whose times, memory, parameters and output are the
//    sums of its encoders'.
//  - edges: stage i -> i+1 within a part (or within the colocated encoder
//    chain); an encoder's last stage -> the LLM's first stage.
//  - times: the mllm.stage fwd / bwd_w / bwd_d / recompute, milliseconds to
//    seconds; unawareBackward from the cost model's units (roofline with
//    JobModel's default efficiency, not a --profile).
//  - gradient flags: a stage computes weight gradients iff bwd_w > 0 or its
//    partition units hold trainable parameters, input gradients iff
//    bwd_d > 0 or the frozen analysis gives its units an input gradient (the
//    units come from JobModel, whose flags are the needs_* attributes'; they
//    catch a time that rounds to 0.000 ms). An edge carries a
//    gradient back iff its predecessor computes either gradient, i.e. has a
//    trainable parameter at or upstream of it.
//  - shapes and bytes: a stage sends per microbatch one tensor [tokens,
//    hidden] of the job's precision (bf16, f16 or f32), hidden being the
//    receiving stage's width: encoders [their tokens before the projector's
//    merge, with a class token's row per item, their width]; an encoder's
//    last stage [its projector's output tokens, the LLM width]; LLM
//    [ceil(microbatch size x seq_len / cp), the LLM width] (each CP rank
//    sends its slice); the last LLM stage sends nothing. outputBytes is the
//    shape's size. Colocated encoder stages send one tensor per encoder (and
//    get back those of the encoders that train).
//  - memory: weights + grads + optimizer and the activations of one
//    microbatch from the mllm.stage memory attributes (MiB, as rounded up
//    by mllm-rank-map); the GPU's capacity from mllm.cluster.
//  - model FLOPs of an iteration: per layer, the forward plus the backward
//    parts the frozen analysis requires (no recompute), from the cost model,
//    over all microbatches and DP replicas (docs/cost-model.md's FLOPs).
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/FromIR.h"

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Model/Layers.h"
#include "mllm/Plan/CostModel.h"
#include "mllm/Plan/JobModel.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <map>

using namespace mlir;
using namespace mllm;
using namespace mllm::sched;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// One mllm.stage, before colocated encoders are merged.
struct RawStage {
  StageOp op;
  const PartInfo *part = nullptr;
  int64_t index = 0; ///< Within the part.
  StageInfo info;
};

/// FLOPs of one microbatch over all GPUs of one replica: forward plus the
/// required backward parts of every layer.
double modelFlopsPerMicrobatch(JobModel &job,
                               const DenseMap<Operation *, GroupGrads> &grads) {
  plan::Device device;
  device.peakFlops = job.cluster.getPeakFlops().convertToDouble();
  device.memoryBandwidth = job.cluster.getMemoryBandwidth().convertToDouble();
  auto groupFlops = [&](LayersOp group, const plan::Workload &w) {
    plan::LayerCost c = plan::layerCost(
        group.getKind(), model::fromConfig(group.getConfig()), w, device);
    GroupGrads g = grads.lookup(group);
    auto count = static_cast<double>(group.getCount());
    double inputGradLayers = g.inputGrad             ? count
                             : g.inputGradAfterFirst ? count - 1
                                                     : 0;
    double perGpu = count * c.fwdFlops +
                    (g.weightGrad ? count * c.wgradFlops : 0) +
                    inputGradLayers * c.igradFlops;
    return perGpu * static_cast<double>(w.tp * w.cp);
  };
  auto layersOf = [](Operation *op) {
    return op->getRegion(0).front().getOps<LayersOp>();
  };
  double total = 0;
  for (const PartInfo &part : job.parts) {
    for (LayersOp g : layersOf(part.op))
      total += groupFlops(g, part.workload);
    if (auto enc = dyn_cast<EncoderOp>(part.op))
      if (ProjectorOp proj = projectorOf(job.model, enc.getSymName()))
        for (LayersOp g : layersOf(proj))
          total += groupFlops(g, part.projectorWorkload);
  }
  return total;
}

} // namespace

namespace {

/// `into` and `other` as one stage on the same GPUs: times, memory,
/// parameters and flags add up.
void absorb(StageInfo &into, const StageInfo &other) {
  into.fwd += other.fwd;
  into.bwdInput += other.bwdInput;
  into.bwdWeight += other.bwdWeight;
  into.recompute += other.recompute;
  into.unawareBackward += other.unawareBackward;
  into.needsInputGrad |= other.needsInputGrad;
  into.needsWeightGrad |= other.needsWeightGrad;
  into.trainableParams += other.trainableParams;
  into.staticBytes += other.staticBytes;
  into.activationBytesPerMicrobatch += other.activationBytesPerMicrobatch;
  into.isLLM |= other.isLLM;
}

void link(PipelineGraph &g, int from, int to) {
  g.stages[to].prev.push_back(from);
  g.stages[to].gradToPrev.push_back(g.stages[from].hasBackward());
  g.stages[from].next.push_back(to);
}

int add(PipelineGraph &g, StageInfo stage) {
  g.stages.push_back(std::move(stage));
  return static_cast<int>(g.stages.size() - 1);
}

/// Every encoder's chain of stages into the LLM's first stage.
void layOutParallel(const std::vector<RawStage> &raw, PipelineGraph &g) {
  std::vector<int> llm;
  std::vector<std::vector<int>> chains;
  const PartInfo *current = nullptr;
  for (const RawStage &r : raw) {
    if (r.part->isLLM)
      continue;
    if (r.part != current) {
      chains.emplace_back();
      current = r.part;
    }
    chains.back().push_back(add(g, r.info));
  }
  for (const RawStage &r : raw)
    if (r.part->isLLM)
      llm.push_back(add(g, r.info));
  if (llm.empty())
    return;
  for (const std::vector<int> &chain : chains) {
    for (size_t i = 0; i + 1 < chain.size(); ++i)
      link(g, chain[i], chain[i + 1]);
    link(g, chain.back(), llm.front());
  }
  for (size_t i = 0; i + 1 < llm.size(); ++i)
    link(g, llm[i], llm[i + 1]);
}

/// Stage s of every encoder as one stage (part "vision+audio"), sending one
/// tensor per encoder and getting back those of the encoders that train;
/// then the LLM's stages.
void layOutColocated(const std::vector<RawStage> &raw, PipelineGraph &g) {
  std::map<int64_t, std::vector<const RawStage *>> byIndex;
  for (const RawStage &r : raw)
    if (!r.part->isLLM)
      byIndex[r.index].push_back(&r);
  std::vector<int> order;
  for (auto &[index, members] : byIndex) {
    StageInfo merged = members.front()->info;
    std::string part = members.front()->part->name;
    int64_t gradBytes = merged.hasBackward() ? merged.outputBytes : 0;
    MessageShape gradShape;
    if (merged.hasBackward())
      gradShape = merged.outputShape;
    for (const RawStage *r : llvm::drop_begin(members)) {
      const StageInfo &o = r->info;
      part += "+" + r->part->name;
      absorb(merged, o);
      merged.outputBytes += o.outputBytes;
      merged.outputShape.insert(merged.outputShape.end(), o.outputShape.begin(),
                                o.outputShape.end());
      if (o.hasBackward()) {
        gradBytes += o.outputBytes;
        gradShape.insert(gradShape.end(), o.outputShape.begin(),
                         o.outputShape.end());
      }
    }
    merged.part = part;
    merged.name = partStageName(part, index);
    if (gradBytes != merged.outputBytes && merged.hasBackward()) {
      merged.outputGradBytes = gradBytes;
      merged.outputGradShape = gradShape;
    }
    order.push_back(add(g, std::move(merged)));
  }
  for (const RawStage &r : raw)
    if (r.part->isLLM)
      order.push_back(add(g, r.info));
  for (size_t i = 0; i + 1 < order.size(); ++i)
    link(g, order[i], order[i + 1]);
}

/// Layout chain: one linear pipeline; an mllm.stage marked colocated joins
/// the stage before it (name "vision_s1+llm_s0", part "vision+llm"). A cut
/// carries the activation of the part it falls in, or the output of the
/// part that ends there, and the outputs of earlier encoders, which travel
/// to the LLM's first layer.
void layOutChain(const std::vector<RawStage> &raw, PipelineGraph &g) {
  std::vector<std::vector<const RawStage *>> groups;
  for (const RawStage &r : raw) {
    StageOp op = r.op;
    if (op.getColocated() && !groups.empty())
      groups.back().push_back(&r);
    else
      groups.push_back({&r});
  }
  MessageShape done; // Outputs of encoders that have ended, in order.
  for (const std::vector<const RawStage *> &members : groups) {
    StageInfo merged = members.front()->info;
    std::string name = merged.name, part = members.front()->part->name;
    for (const RawStage *r : llvm::drop_begin(members)) {
      absorb(merged, r->info);
      name += "+" + r->info.name;
      part += "+" + r->part->name;
    }
    const RawStage &last = *members.back();
    // Outputs of encoders ended before this stage's last part travel on.
    for (const RawStage *r : members)
      if (r != &last && !r->part->isLLM)
        done.insert(done.end(), r->info.outputShape.begin(),
                    r->info.outputShape.end());
    merged.outputShape = last.info.outputShape;
    if (!last.part->isLLM)
      merged.outputShape.insert(merged.outputShape.begin(), done.begin(),
                                done.end());
    bool endsPart =
        last.index + 1 == static_cast<int64_t>(std::count_if(
                              raw.begin(), raw.end(), [&](const RawStage &o) {
                                return o.part == last.part;
                              }));
    if (endsPart && !last.part->isLLM)
      done.insert(done.end(), last.info.outputShape.begin(),
                  last.info.outputShape.end());
    merged.outputBytes = messageBytes(merged.outputShape);
    merged.name = name;
    merged.part = part;
    int index = add(g, std::move(merged));
    if (index > 0)
      link(g, index - 1, index);
  }
}

} // namespace

llvm::Expected<PipelineGraph>
mllm::sched::buildPipelineGraph(mlir::ModuleOp module) {
  PipelineOp pipeline;
  for (auto p : module.getOps<PipelineOp>())
    pipeline = p;
  if (!pipeline)
    return fail("the module has no 'mllm.pipeline': plan it first "
                "(mllm-frozen-analysis, mllm-partition, mllm-rank-map)");

  // The job, with JobModel's diagnostics turned into the error.
  std::string diagnostics;
  FailureOr<JobModel> maybeJob;
  {
    ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &diag) {
      if (!diagnostics.empty())
        diagnostics += "\n";
      diagnostics += diag.str();
      return success();
    });
    maybeJob = buildJobModel(module, JobModelOptions());
  }
  if (failed(maybeJob))
    return fail("cannot read the job: " + diagnostics);
  JobModel &job = *maybeJob;
  FailureOr<DenseMap<Operation *, GroupGrads>> grads;
  {
    ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &diag) {
      diagnostics += diag.str();
      return success();
    });
    grads = analyzeGradients(job.model);
  }
  if (failed(grads))
    return fail("the frozen analysis failed: " + diagnostics);

  int64_t elementBytes = job.elementBytes;
  Precision precision = job.train ? job.train.getPrecision() : Precision::BF16;
  std::string elementType = precision == Precision::FP32   ? "f32"
                            : precision == Precision::FP16 ? "f16"
                                                           : "bf16";
  auto tensor = [&](int64_t tokens, int64_t hidden) {
    TensorShape t;
    t.dims = {tokens, hidden};
    t.elementType = elementType;
    t.elementBytes = elementBytes;
    return t;
  };
  LLMOp llm = job.model.getLLM();
  auto llmWidth = static_cast<int64_t>(llm.getWidth());
  const PartInfo &llmPart = job.parts.back();

  // Every mllm.stage.
  std::vector<RawStage> raw;
  llvm::StringMap<int64_t> counts;
  for (auto op : pipeline.getBody().front().getOps<StageOp>()) {
    RawStage r;
    r.op = op;
    for (const PartInfo &part : job.parts)
      if (part.name == op.getPart())
        r.part = &part;
    if (!r.part)
      return fail("stage '" + op.getSymName() + "' refers to '" + op.getPart() +
                  "', which is not an encoder or the LLM");
    if (static_cast<size_t>(op.getEnd()) > r.part->units.size())
      return fail("stage '" + op.getSymName() + "' holds blocks beyond its " +
                  "part's " + llvm::Twine(r.part->units.size()));
    if (!op.getFirstRank() || !op.getDpStride() || !op.getWeights() ||
        !op.getGrads() || !op.getOptimizer() || !op.getActivations())
      return fail("stage '" + op.getSymName() +
                  "' has no ranks or memory: run mllm-rank-map first");
    r.index = counts[r.part->name]++;
    raw.push_back(r);
  }
  if (raw.empty())
    return fail("the pipeline has no stages");

  for (RawStage &r : raw) {
    StageOp op = r.op;
    const PartInfo &part = *r.part;
    StageInfo &s = r.info;
    s.name = op.getSymName().str();
    s.part = part.name;
    s.isLLM = part.isLLM;
    s.fwd = op.getFwd().convertToDouble() / 1e3;
    s.bwdWeight = op.getBwdW().convertToDouble() / 1e3;
    s.bwdInput = op.getBwdD().convertToDouble() / 1e3;
    s.recompute = op.getRecompute().convertToDouble() / 1e3;
    double trainable = 0, unawareBackward = 0;
    bool unitWeightGrad = false, unitInputGrad = false;
    for (auto u = static_cast<size_t>(op.getBegin());
         u < static_cast<size_t>(op.getEnd()); ++u) {
      const UnitCost &unit = part.units[u];
      trainable += unit.trainableParams;
      unawareBackward += unit.trainedBwd;
      unitWeightGrad |= unit.wgrad > 0 || unit.trainableParams > 0;
      unitInputGrad |= unit.igrad > 0;
    }
    int64_t partStages = counts[part.name];
    bool last = r.index + 1 == partStages;
    // The last stage's copy of a tied embedding (as mllm-rank-map counts it).
    if (part.tiedHeadTrainable)
      trainable += part.tiedHeadCopy(op.getBegin(), op.getEnd());
    s.trainableParams = static_cast<int64_t>(trainable + 0.5);
    s.unawareBackward = unawareBackward;
    s.needsWeightGrad = s.bwdWeight > 0 || unitWeightGrad;
    s.needsInputGrad = s.bwdInput > 0 || unitInputGrad;
    s.staticBytes = static_cast<int64_t>(
        static_cast<double>(*op.getWeights() + *op.getGrads() +
                            *op.getOptimizer() + op.getTransit().value_or(0)) *
        kMiB);
    // What a microbatch in flight holds: its saved activations and the
    // activation sent on, whose buffer waits for the gradient.
    uint64_t perMicrobatch = *op.getActivations() + op.getSends().value_or(0);
    s.activationBytesPerMicrobatch =
        static_cast<int64_t>(static_cast<double>(perMicrobatch) * kMiB);
    s.memoryCapacity = static_cast<int64_t>(job.cluster.getMemory());
    s.firstRank = static_cast<int64_t>(*op.getFirstRank());
    s.dpStride = static_cast<int64_t>(*op.getDpStride());
    s.tp = part.tp;
    s.cp = part.cp;
    s.dp = job.dp;
    if (part.isLLM) {
      if (!last)
        s.outputShape = {tensor(part.cutTokens, llmWidth)};
    } else {
      auto enc = cast<EncoderOp>(part.op);
      ProjectorOp proj = projectorOf(job.model, enc.getSymName());
      s.outputShape = {
          last && proj
              ? tensor(part.projectorWorkload.tokens, llmWidth)
              : tensor(part.cutTokens, static_cast<int64_t>(enc.getWidth()))};
    }
    s.outputBytes = messageBytes(s.outputShape);
  }

  // Merge the stages that share GPUs and lay out the stages.
  PipelineGraph g;
  switch (job.layout) {
  case EncoderLayout::Colocated:
    layOutColocated(raw, g);
    break;
  case EncoderLayout::Chain:
    layOutChain(raw, g);
    break;
  case EncoderLayout::Parallel:
    layOutParallel(raw, g);
    break;
  }
  if (llvm::none_of(g.stages, [](const StageInfo &s) { return s.isLLM; }))
    return fail("the pipeline has no stage of the LLM '" + llmPart.name + "'");

  // The job.
  DataOp data = job.data;
  g.microbatches = static_cast<int64_t>(data.getMicrobatches());
  g.gpusPerNode = static_cast<int64_t>(job.cluster.getGpusPerNode());
  g.intraNodeBandwidth = job.cluster.getIntraNodeBandwidth().convertToDouble();
  g.interNodeBandwidth = job.cluster.getInterNodeBandwidth().convertToDouble();
  g.peakFlops = job.cluster.getPeakFlops().convertToDouble();
  g.tokensPerIteration =
      static_cast<int64_t>(data.getMicrobatchSize() * data.getSeqLen()) *
      g.microbatches * job.dp;
  g.flopsPerIteration = modelFlopsPerMicrobatch(job, *grads) *
                        static_cast<double>(g.microbatches * job.dp);
  return g;
}
