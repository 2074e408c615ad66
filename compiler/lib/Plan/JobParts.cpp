//===- JobParts.cpp - every part's partition units and their costs -------===//
//
// The cost side of the job model: each encoder's and the LLM's layer groups
// priced with layerCost (docs/cost-model.md) on the part's workload, with
// the frozen analysis' flags, and gathered into partition units (a block
// and the layers riding with it). With cp > 1 the LLM is priced at its
// slowest CP rank (CPSplit.h).
//
//===----------------------------------------------------------------------===//
#include "JobModelImpl.h"

#include "mllm/Model/Layers.h"
#include "mllm/Plan/CPSplit.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mllm;

static SmallVector<LayersOp> groupsOf(Operation *part) {
  return llvm::to_vector(part->getRegion(0).front().getOps<LayersOp>());
}

//===----------------------------------------------------------------------===//
// Costs
//===----------------------------------------------------------------------===//

namespace {
/// Builds the partition units of one part from its layer groups.
class UnitBuilder {
public:
  UnitBuilder(bool hasBlocks) : hasBlocks(hasBlocks) {}

  /// `c` prices the layer's times; `mem` (the same unless CP gives another
  /// rank the most tokens) its saved activations.
  void add(LayersOp group, StringRef name, const GroupGrads &grads,
           bool recomputeRequested, bool fullRecompute,
           const plan::LayerCost &c, const plan::LayerCost &mem,
           bool rides = false) {
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
      layer.fwdComm = c.fwdComm;
      layer.igradComm = d ? c.igradComm : 0;
      layer.trainedBwd = c.wgrad + c.igrad + (recomputeRequested ? c.fwd : 0);
      layer.params = c.params;
      layer.trainableParams = w ? c.params : 0;
      // With full recompute only the layer's input is kept; selective
      // recompute is charged the full activations (an upper bound).
      if (w || d)
        layer.activationBytes =
            r && fullRecompute ? mem.inputBytes : mem.activationBytes;
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
    into.fwdComm += layer.fwdComm;
    into.igradComm += layer.igradComm;
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

namespace {
/// Builds the PartInfo of every encoder and of the LLM.
struct PartBuilder {
  JobModel &job;
  const DenseMap<Operation *, GroupGrads> &grads;
  const JobModelOptions &options;

  plan::LayerCost cost(LayersOp group, const plan::Workload &w) const {
    return plan::layerCost(group.getKind(),
                           model::fromConfig(group.getConfig()), w, job.device,
                           options.profile);
  }
  void init(PartInfo &part) const {
    part.parallel =
        job.parallel ? job.parallel.lookupPart(part.name) : ModuleParallelOp();
    if (part.parallel) {
      part.tp = part.parallel.getTp();
      part.pp = part.parallel.getPp();
      part.cp = part.parallel.getCp();
      if (auto stages = part.parallel.getStages())
        part.explicitStages.assign(stages->begin(), stages->end());
    }
  }
  PartInfo encoder(EncoderOp enc) const;
  PartInfo llm(ModuleOp module, LLMOp llm) const;
  /// The slowest CP rank of `part`'s split: the one whose transformer block
  /// takes longest (every LLM stage holds blocks of that one shape).
  int64_t slowestRank(const PartInfo &part, ArrayRef<LayersOp> groups,
                      const plan::Workload &base) const;
};

/// `base` as CP rank `r` of `split` sees it.
plan::Workload rankWorkload(const plan::Workload &base,
                            const plan::CPSplit &split, int64_t r,
                            int64_t sequences) {
  plan::Workload w = base;
  w.cpTokens = split.tokens[r] * sequences;
  w.cpAttentionShare = split.attentionShare(r);
  return w;
}
} // namespace

PartInfo PartBuilder::encoder(EncoderOp enc) const {
  PartInfo part;
  part.op = enc;
  part.name = enc.getSymName().str();
  init(part);
  DataOp data = job.data;
  int64_t sequences =
      static_cast<int64_t>(data.getMicrobatchSize() * data.getPacking());
  InputOp input;
  for (auto in : data.getBody().front().getOps<InputOp>())
    if (in.getEncoder() == enc.getSymName())
      input = in;
  ProjectorOp proj = projectorOf(job.model, enc.getSymName());
  int64_t merge = proj ? static_cast<int64_t>(proj.getMerge()) : 1;
  // Encoder tokens are counted before the projector's merge, as the
  // encoder's layers see them (the merge pads their output).
  int64_t itemTokens = input ? static_cast<int64_t>(input.getTokens()) : 0;
  int64_t encoderTokens = input ? input.encoderTokensPerItem(merge) : 0;
  int64_t items =
      input ? sequences * static_cast<int64_t>(input.getItems()) : 0;
  plan::Workload w;
  w.tokens = items * encoderTokens;
  w.attentionSpan = encoderTokens;
  w.tp = part.tp;
  w.elementBytes = job.elementBytes;
  SmallVector<LayersOp> groups = groupsOf(enc);
  UnitBuilder units(hasBlocks(groups));
  bool requested = enc.getRecompute() != Recompute::None;
  bool full = enc.getRecompute() == Recompute::Full;
  for (LayersOp g : groups) {
    plan::LayerCost c = cost(g, w);
    units.add(g, g.getName(), grads.lookup(g), requested, full, c, c);
  }
  part.workload = w;
  bool classToken = llvm::any_of(groups, [](LayersOp g) {
    return g.getKind() == LayerKind::PatchEmbedding &&
           model::fromConfig(g.getConfig()).classToken;
  });
  part.cutTokens = w.tokens + (classToken ? items : 0);
  part.cutBytes = static_cast<double>(part.cutTokens) *
                  static_cast<double>(enc.getWidth()) * job.elementBytes;
  part.outputBytes = part.cutBytes;
  if (proj) {
    plan::Workload pw = w;
    pw.tokens = items * itemTokens;
    pw.attentionSpan = itemTokens;
    part.projectorWorkload = pw;
    for (LayersOp g : groupsOf(proj)) {
      plan::LayerCost c = cost(g, pw);
      units.add(g, (proj.getSymName() + "." + g.getName()).str(),
                grads.lookup(g), false, false, c, c, /*rides=*/true);
    }
    part.outputBytes = static_cast<double>(pw.tokens) *
                       static_cast<double>(job.model.getLLM().getWidth()) *
                       job.elementBytes;
  }
  part.units = units.finish();
  return part;
}

int64_t PartBuilder::slowestRank(const PartInfo &part,
                                 ArrayRef<LayersOp> groups,
                                 const plan::Workload &base) const {
  const plan::CPSplit &split = *part.cpSplit;
  int64_t sequences = static_cast<int64_t>(job.data.getMicrobatchSize());
  LayersOp block;
  for (LayersOp g : groups)
    if (!block && isPartitionBlock(g.getKind()))
      block = g;
  int64_t best = 0;
  double slowest = -1;
  for (int64_t r = 0; r < split.cp; ++r) {
    double t = 0;
    if (block) {
      plan::LayerCost c = cost(block, rankWorkload(base, split, r, sequences));
      t = c.fwd + c.wgrad + c.igrad;
    } else {
      t = static_cast<double>(split.tokens[r]);
    }
    if (t > slowest) {
      slowest = t;
      best = r;
    }
  }
  return best;
}

PartInfo PartBuilder::llm(ModuleOp module, LLMOp llm) const {
  DataOp data = job.data;
  PartInfo part;
  part.op = llm;
  part.name = llm.getSymName().str();
  part.isLLM = true;
  init(part);
  plan::Workload w;
  w.tokens = static_cast<int64_t>(data.getMicrobatchSize() * data.getSeqLen());
  w.attentionSpan = static_cast<int64_t>(data.getSeqLen());
  w.tp = part.tp;
  w.cp = part.cp;
  w.elementBytes = job.elementBytes;
  part.workload = w;
  int64_t cp = std::max<int64_t>(part.cp, 1);
  part.cutTokens = (w.tokens + cp - 1) / cp;
  part.cutBytes = static_cast<double>(part.cutTokens) *
                  static_cast<double>(llm.getWidth()) * job.elementBytes;
  SmallVector<LayersOp> groups = groupsOf(llm);
  // With CP, times are the slowest rank's and activations those of the rank
  // holding the most tokens.
  plan::Workload timeW = w, memW = w;
  if (part.cp > 1) {
    CPBalance policy =
        job.parallel ? job.parallel.getCpBalance() : CPBalance::LPT;
    part.cpSplit =
        plan::splitContextParallel(module, part.name, part.cp, policy);
    if (part.cpSplit) {
      int64_t sequences = static_cast<int64_t>(data.getMicrobatchSize());
      part.cpRank = slowestRank(part, groups, w);
      timeW = rankWorkload(w, *part.cpSplit, part.cpRank, sequences);
      memW.cpTokens = part.cpSplit->maxTokens() * sequences;
    }
  }
  UnitBuilder units(hasBlocks(groups));
  bool requested = llm.getRecompute() != Recompute::None;
  bool full = llm.getRecompute() == Recompute::Full;
  for (LayersOp g : groups) {
    plan::LayerCost c = cost(g, timeW);
    plan::LayerCost mem = part.cp > 1 ? cost(g, memW) : c;
    units.add(g, g.getName(), grads.lookup(g), requested, full, c, mem);
    model::LayerShape shape = model::fromConfig(g.getConfig());
    if (g.getKind() == LayerKind::LMHead && shape.tied) {
      part.tiedHeadParams = static_cast<double>(shape.vocab) *
                            static_cast<double>(shape.hidden) /
                            static_cast<double>(part.tp);
      part.tiedHeadTrainable = !llm.getFrozen();
    }
  }
  part.units = units.finish();
  return part;
}

std::vector<PartInfo>
mllm::detail::buildParts(ModuleOp module, JobModel &job,
                         const DenseMap<Operation *, GroupGrads> &grads,
                         const JobModelOptions &options) {
  PartBuilder builder{job, grads, options};
  std::vector<PartInfo> parts;
  for (auto enc : job.model.getBody().front().getOps<EncoderOp>())
    parts.push_back(builder.encoder(enc));
  parts.push_back(builder.llm(module, job.model.getLLM()));
  return parts;
}
