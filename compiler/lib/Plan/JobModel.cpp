//===- JobModel.cpp - a job's layers, gradients and costs, from the IR ----===//
//
// Reads the mllm dialect into the inputs of the plan libraries: the module
// DAG for analyzeFrozen, and per layer the shape and workload for layerCost.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/JobModel.h"

#include "JobModelImpl.h"

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

plan::LayerMemory mllm::unitMemory(const JobModel &job, double params,
                                   double trainable, double activationBytes) {
  plan::LayerMemory m;
  m.weights = params * static_cast<double>(job.elementBytes);
  m.grads = trainable * job.gradBytesPerParam;
  m.optimizer = trainable * job.optimizerBytesPerParam;
  m.activations = activationBytes;
  return m;
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

  plan::Device &device = job.device;
  device.peakFlops = job.cluster.getPeakFlops().convertToDouble();
  device.memoryBandwidth = job.cluster.getMemoryBandwidth().convertToDouble();
  device.efficiency = options.efficiency;
  device.intraNodeBandwidth =
      job.cluster.getIntraNodeBandwidth().convertToDouble();
  device.interNodeBandwidth =
      job.cluster.getInterNodeBandwidth().convertToDouble();
  device.gpusPerNode = static_cast<int64_t>(job.cluster.getGpusPerNode());

  job.parts = detail::buildParts(module, job, *grads, options);
  return job;
}
