//===- JobModel.cpp - a job's layers, gradients and costs, from the IR ----===//
//
// Reads the mllm dialect into the inputs of the plan libraries: the module
// DAG for analyzeFrozen, and per layer the shape and workload for layerCost.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/JobModel.h"

#include "mllm/Model/Layers.h"
#include "mllm/Plan/Frozen.h"
#include "mllm/Plan/Profile.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mllm;

double mllm::roundMillis(double seconds) {
  return std::round(seconds * 1e6) / 1e3;
}

static SmallVector<LayersOp> groupsOf(Operation *part) {
  return llvm::to_vector(part->getRegion(0).front().getOps<LayersOp>());
}

//===----------------------------------------------------------------------===//
// Frozen analysis
//===----------------------------------------------------------------------===//

FailureOr<DenseMap<Operation *, GroupGrads>>
mllm::analyzeGradients(ModelOp model) {
  // The chains, in topological order: encoders, projectors, the LLM's
  // leading token embedding (a source: its input is token ids, and the
  // projectors' outputs join the sequence after it), the rest of the LLM.
  std::vector<plan::ModuleChain> chains;
  // Per chain, the groups it covers, in order.
  std::vector<SmallVector<LayersOp>> chainGroups;
  llvm::StringMap<int> encoderChain;
  auto addChain = [&](StringRef name, ArrayRef<LayersOp> groups, bool trainable,
                      bool recompute, std::vector<int> predecessors) {
    plan::ModuleChain chain;
    chain.name = name.str();
    for (LayersOp group : groups)
      for (uint64_t i = 0; i < group.getCount(); ++i) {
        chain.trainable.push_back(trainable);
        chain.recompute.push_back(recompute);
      }
    chain.predecessors = std::move(predecessors);
    chains.push_back(std::move(chain));
    chainGroups.emplace_back(groups.begin(), groups.end());
    return static_cast<int>(chains.size() - 1);
  };

  Block &body = model.getBody().front();
  for (auto enc : body.getOps<EncoderOp>())
    encoderChain[enc.getSymName()] =
        addChain(enc.getSymName(), groupsOf(enc), !enc.getFrozen(),
                 enc.getRecompute() != Recompute::None, {});
  std::vector<int> llmInputs;
  for (auto proj : body.getOps<ProjectorOp>()) {
    std::vector<int> preds;
    auto it = encoderChain.find(proj.getSource());
    if (it != encoderChain.end())
      preds.push_back(it->second);
    llmInputs.push_back(addChain(proj.getSymName(), groupsOf(proj),
                                 !proj.getFrozen(), false, std::move(preds)));
  }
  if (LLMOp llm = model.getLLM()) {
    SmallVector<LayersOp> groups = groupsOf(llm);
    size_t numEmbed = 0;
    while (numEmbed < groups.size() &&
           groups[numEmbed].getKind() == LayerKind::TokenEmbedding)
      ++numEmbed;
    bool trainable = !llm.getFrozen();
    bool recompute = llm.getRecompute() != Recompute::None;
    ArrayRef<LayersOp> all(groups);
    if (numEmbed)
      llmInputs.push_back(addChain(llm.getSymName(), all.take_front(numEmbed),
                                   trainable, recompute, {}));
    if (numEmbed < groups.size())
      addChain(llm.getSymName(), all.drop_front(numEmbed), trainable, recompute,
               llmInputs);
  }

  std::vector<plan::GradFlags> flags = plan::analyzeFrozen(chains);
  DenseMap<Operation *, GroupGrads> result;
  for (size_t c = 0; c < chains.size(); ++c) {
    const plan::GradFlags &f = flags[c];
    size_t layer = 0;
    for (LayersOp group : chainGroups[c]) {
      size_t first = layer, end = layer + group.getCount();
      if (end > f.needsWeightGrad.size() || end > f.needsInputGrad.size() ||
          end > f.recomputes.size())
        return model.emitError("internal error: the frozen analysis returned "
                               "flags for ")
               << f.needsWeightGrad.size() << " layers of '" << chains[c].name
               << "', expected at least " << end;
      GroupGrads g;
      g.weightGrad = f.needsWeightGrad[first];
      g.recompute = f.recomputes[first];
      bool firstInput = f.needsInputGrad[first];
      bool restInput = end - first > 1 ? f.needsInputGrad[first + 1] : false;
      for (size_t l = first + 1; l < end; ++l)
        if (f.needsWeightGrad[l] != g.weightGrad ||
            f.needsInputGrad[l] != restInput || f.recomputes[l] != g.recompute)
          return group.emitError("internal error: the frozen analysis gives "
                                 "layer ")
                 << l - first << " of this group other gradients than "
                 << "layer " << (l == first + 1 ? 0 : 1);
      if (end - first == 1 || firstInput == restInput)
        g.inputGrad = firstInput;
      else if (!firstInput && restInput)
        g.inputGradAfterFirst = true;
      else
        return group.emitError("internal error: the first layer of this group "
                               "needs an input gradient but the others do "
                               "not");
      result[group] = g;
      layer = end;
    }
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Costs
//===----------------------------------------------------------------------===//

namespace {
/// Builds the partition units of one part from its layer groups.
class UnitBuilder {
public:
  UnitBuilder(bool hasBlocks) : hasBlocks(hasBlocks) {}

  void add(LayersOp group, StringRef name, const GroupGrads &grads,
           bool recomputeRequested, bool fullRecompute,
           const plan::LayerCost &c, bool rides = false) {
    bool block = !rides && (!hasBlocks || isPartitionBlock(group.getKind()));
    for (uint64_t i = 0; i < group.getCount(); ++i) {
      UnitCost *unit;
      if (block) {
        units.emplace_back();
        unit = &units.back();
        // Layers before the first block ride with it.
        if (units.size() == 1) {
          accumulate(*unit, pending);
          unit->extras = std::move(pending.extras);
        }
      } else {
        unit = units.empty() ? &pending : &units.back();
        if (i == 0)
          unit->extras.push_back(name.str());
      }
      UnitCost layer;
      bool w = grads.weightGrad, d = grads.inputGradAt(i);
      bool r = grads.recompute;
      layer.fwd = c.fwd;
      layer.wgrad = w ? c.wgrad : 0;
      layer.igrad = d ? c.igrad : 0;
      layer.recompute = r ? c.fwd : 0;
      layer.trainedBwd = c.wgrad + c.igrad + (recomputeRequested ? c.fwd : 0);
      layer.params = c.params;
      layer.trainableParams = w ? c.params : 0;
      // With full recompute only the layer's input is kept; selective
      // recompute is charged the full activations (an upper bound).
      if (w || d)
        layer.activationBytes =
            r && fullRecompute ? c.inputBytes : c.activationBytes;
      accumulate(*unit, layer);
    }
  }

  std::vector<UnitCost> finish() {
    if (units.empty() && (pending.fwd > 0 || !pending.extras.empty()))
      units.push_back(std::move(pending));
    return std::move(units);
  }

private:
  static void accumulate(UnitCost &into, const UnitCost &layer) {
    into.fwd += layer.fwd;
    into.wgrad += layer.wgrad;
    into.igrad += layer.igrad;
    into.recompute += layer.recompute;
    into.trainedBwd += layer.trainedBwd;
    into.params += layer.params;
    into.trainableParams += layer.trainableParams;
    into.activationBytes += layer.activationBytes;
  }

  bool hasBlocks;
  std::vector<UnitCost> units;
  UnitCost pending;
};
} // namespace

static bool hasBlocks(ArrayRef<LayersOp> groups) {
  return llvm::any_of(groups,
                      [](LayersOp g) { return isPartitionBlock(g.getKind()); });
}

bool mllm::hasPartitionBlocks(Operation *part) {
  return hasBlocks(groupsOf(part));
}

FailureOr<JobModel> mllm::buildJobModel(ModuleOp module,
                                        const JobModelOptions &options) {
  JobModel job;
  job.model = getFirst<ModelOp>(module);
  job.data = getFirst<DataOp>(module);
  job.cluster = getFirst<ClusterOp>(module);
  job.parallel = getFirst<ParallelOp>(module);
  job.train = getFirst<TrainOp>(module);
  if (!job.model)
    return module.emitError("planning the pipeline needs an 'mllm.model'");
  if (!job.data)
    return job.model.emitError("planning the pipeline of '")
           << job.model.getSymName() << "' needs an 'mllm.data'";
  if (!job.cluster)
    return job.model.emitError("planning the pipeline of '")
           << job.model.getSymName() << "' needs an 'mllm.cluster'";
  if (!job.model.getLLM())
    return job.model.emitError("has no LLM");

  job.worldSize = static_cast<int64_t>(job.cluster.getNodes() *
                                       job.cluster.getGpusPerNode());
  job.microbatches = job.data.getMicrobatches();
  if (job.parallel) {
    job.dp = job.parallel.getDp();
    job.layout = job.parallel.getLayout();
    job.policy = job.parallel.getPartition();
  }
  Precision precision = job.train ? job.train.getPrecision() : Precision::BF16;
  Optimizer optimizer = job.train ? job.train.getOptimizer() : Optimizer::AdamW;
  job.elementBytes = precision == Precision::FP32 ? 4 : 2;
  bool mixed = precision != Precision::FP32;
  job.gradBytesPerParam = 4;
  switch (optimizer) {
  case Optimizer::AdamW:
  case Optimizer::Adam:
    job.optimizerBytesPerParam = mixed ? 12 : 8; // (master +) m + v
    break;
  case Optimizer::SGD:
    job.optimizerBytesPerParam = mixed ? 4 : 0; // (master)
    break;
  }

  FailureOr<DenseMap<Operation *, GroupGrads>> grads =
      analyzeGradients(job.model);
  if (failed(grads))
    return failure();

  plan::Device device;
  device.peakFlops = job.cluster.getPeakFlops().convertToDouble();
  device.memoryBandwidth = job.cluster.getMemoryBandwidth().convertToDouble();
  device.efficiency = options.efficiency;

  auto data = job.data;
  int64_t sequences =
      static_cast<int64_t>(data.getMicrobatchSize() * data.getPacking());
  auto inputOf = [&](StringRef encoder) -> InputOp {
    for (auto input : data.getBody().front().getOps<InputOp>())
      if (input.getEncoder() == encoder)
        return input;
    return {};
  };
  auto parallelOf = [&](StringRef part) -> ModuleParallelOp {
    return job.parallel ? job.parallel.lookupPart(part) : ModuleParallelOp();
  };
  auto cost = [&](LayersOp group, const plan::Workload &w) {
    return plan::layerCost(group.getKind(),
                           model::fromConfig(group.getConfig()), w, device,
                           options.profile);
  };
  auto initPart = [&](PartInfo &part) {
    part.parallel = parallelOf(part.name);
    if (part.parallel) {
      part.tp = part.parallel.getTp();
      part.pp = part.parallel.getPp();
      part.cp = part.parallel.getCp();
      if (auto stages = part.parallel.getStages())
        part.explicitStages.assign(stages->begin(), stages->end());
    }
  };

  Block &body = job.model.getBody().front();
  for (auto enc : body.getOps<EncoderOp>()) {
    PartInfo part;
    part.op = enc;
    part.name = enc.getSymName().str();
    initPart(part);
    ProjectorOp proj;
    for (auto p : body.getOps<ProjectorOp>())
      if (p.getSource() == enc.getSymName())
        proj = p;
    int64_t merge = proj ? static_cast<int64_t>(proj.getMerge()) : 1;
    InputOp input = inputOf(enc.getSymName());
    // Encoder tokens are counted before the projector's merge.
    int64_t itemTokens = input ? static_cast<int64_t>(input.getTokens()) : 0;
    int64_t items =
        input ? sequences * static_cast<int64_t>(input.getItems()) : 0;
    plan::Workload w;
    w.tokens = items * itemTokens * merge;
    w.attentionSpan = itemTokens * merge;
    w.tp = part.tp;
    w.elementBytes = job.elementBytes;
    SmallVector<LayersOp> groups = groupsOf(enc);
    UnitBuilder units(hasBlocks(groups));
    bool requested = enc.getRecompute() != Recompute::None;
    bool full = enc.getRecompute() == Recompute::Full;
    for (LayersOp g : groups)
      units.add(g, g.getName(), (*grads)[g], requested, full, cost(g, w));
    part.workload = w;
    if (proj) {
      plan::Workload pw = w;
      pw.tokens = items * itemTokens;
      pw.attentionSpan = itemTokens;
      part.projectorWorkload = pw;
      for (LayersOp g : groupsOf(proj))
        units.add(g, (proj.getSymName() + "." + g.getName()).str(), (*grads)[g],
                  false, false, cost(g, pw), /*rides=*/true);
    }
    part.units = units.finish();
    job.parts.push_back(std::move(part));
  }

  LLMOp llm = job.model.getLLM();
  PartInfo part;
  part.op = llm;
  part.name = llm.getSymName().str();
  part.isLLM = true;
  initPart(part);
  plan::Workload w;
  w.tokens = static_cast<int64_t>(data.getMicrobatchSize() * data.getSeqLen());
  w.attentionSpan = static_cast<int64_t>(data.getSeqLen());
  w.tp = part.tp;
  w.cp = part.cp;
  w.elementBytes = job.elementBytes;
  part.workload = w;
  SmallVector<LayersOp> groups = groupsOf(llm);
  UnitBuilder units(hasBlocks(groups));
  bool requested = llm.getRecompute() != Recompute::None;
  bool full = llm.getRecompute() == Recompute::Full;
  for (LayersOp g : groups) {
    units.add(g, g.getName(), (*grads)[g], requested, full, cost(g, w));
    model::LayerShape shape = model::fromConfig(g.getConfig());
    if (g.getKind() == LayerKind::LMHead && shape.tied) {
      part.tiedHeadParams = static_cast<double>(shape.vocab) *
                            static_cast<double>(shape.hidden) /
                            static_cast<double>(part.tp);
      part.tiedHeadTrainable = !llm.getFrozen();
    }
  }
  part.units = units.finish();
  job.parts.push_back(std::move(part));
  return job;
}
