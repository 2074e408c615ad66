//===- MLIRGen.cpp - resolved job to the mllm dialect ---------------------===//
#include "mllm/MLIRGen/MLIRGen.h"

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Model/Layers.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

using namespace mllm;
using namespace mlir;

namespace {

class Generator {
public:
  Generator(const spec::Job &job, Diagnostics &diags)
      : job(job), diags(diags), b(&diags.getContext()) {}

  OwningOpRef<ModuleOp> run() {
    MLIRContext *ctx = &diags.getContext();
    // The verifier checks layer configs against the one key table.
    DialectRegistry registry;
    model::registerLayerConfigSchema(registry);
    ctx->appendDialectRegistry(registry);
    ctx->loadDialect<MLLMDialect>();
    Location fileLoc = FileLineColLoc::get(ctx, job.file, 1, 1);
    OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
    b.setInsertionPointToEnd(module->getBody());
    model();
    data();
    cluster();
    parallel();
    train();
    if (failed(verify(*module))) {
      emitError(fileLoc) << "internal error: generated IR does not verify";
      return nullptr;
    }
    return module;
  }

private:
  Location loc(llvm::SMRange range) { return diags.loc(range.Start); }
  Location named(llvm::StringRef name, llvm::SMRange range) {
    return NameLoc::get(b.getStringAttr(name), loc(range));
  }

  void layers(const std::vector<model::LayerGroup> &groups, Location at) {
    for (const model::LayerGroup &g : groups)
      LayersOp::create(b, at, g.name, g.kind, g.count,
                       model::toConfig(b.getContext(), g.kind, g.shape));
  }

  static Recompute recompute(spec::Recompute r) {
    switch (r) {
    case spec::Recompute::None:
      return Recompute::None;
    case spec::Recompute::Full:
      return Recompute::Full;
    case spec::Recompute::Selective:
      return Recompute::Selective;
    }
    return Recompute::None;
  }

  static MaskPolicy mask(spec::Mask m) {
    switch (m) {
    case spec::Mask::Causal:
      return MaskPolicy::Causal;
    case spec::Mask::Bidirectional:
      return MaskPolicy::Bidirectional;
    case spec::Mask::PrefixLM:
      return MaskPolicy::PrefixLM;
    }
    return MaskPolicy::Causal;
  }

  void model() {
    const spec::Model &m = job.model;
    auto modelOp = ModelOp::create(b, named(m.name, m.loc), m.name);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(&modelOp.getBody().emplaceBlock());
    const spec::LLM &llm = m.llm;
    for (const spec::Encoder &e : m.encoders) {
      Location at = named(e.name, e.loc);
      auto enc = EncoderOp::create(
          b, at, e.name,
          e.config.arch == spec::Arch::VisionEncoder ? ModalityKind::Image
                                                     : ModalityKind::Audio,
          e.config.instance, e.config.hidden, e.frozen, recompute(e.recompute));
      {
        OpBuilder::InsertionGuard inner(b);
        b.setInsertionPointToEnd(&enc.getBody().emplaceBlock());
        layers(model::expand(e.config), at);
      }
      std::string projName = e.name + "_projector";
      Location pat = named(projName, e.projector.loc);
      auto proj =
          ProjectorOp::create(b, pat, projName, e.name, llm.name,
                              e.projector.kind == spec::ProjectorKind::Linear
                                  ? ProjectorKind::Linear
                                  : ProjectorKind::MLP,
                              e.projector.merge, e.projector.frozen);
      OpBuilder::InsertionGuard inner(b);
      b.setInsertionPointToEnd(&proj.getBody().emplaceBlock());
      layers(model::expand(e.projector), pat);
    }
    Location at = named(llm.name, llm.loc);
    auto llmOp =
        LLMOp::create(b, at, llm.name, llm.config.instance, llm.config.hidden,
                      llm.frozen, recompute(llm.recompute));
    b.setInsertionPointToEnd(&llmOp.getBody().emplaceBlock());
    layers(model::expand(llm.config), at);
  }

  void data() {
    const spec::Data &d = job.data;
    auto op =
        DataOp::create(b, loc(d.loc), d.textTokens, d.packing, d.seqLen,
                       d.microbatchSize, d.microbatches, mask(d.textMask));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(&op.getBody().emplaceBlock());
    for (const spec::ModalityInput &in : d.inputs) {
      Placement placement =
          in.placement == spec::Placement::Prepend  ? Placement::Prepend
          : in.placement == spec::Placement::Append ? Placement::Append
                                                    : Placement::At;
      DenseF64ArrayAttr positions;
      if (!in.positions.empty())
        positions = b.getDenseF64ArrayAttr(in.positions);
      // Written only where the merge pads (InputOp::encoderTokensPerItem).
      IntegerAttr encoderTokens;
      for (const spec::Encoder &enc : job.model.encoders)
        if (enc.name == in.encoder &&
            in.encoderTokens != in.tokens * enc.projector.merge)
          encoderTokens = b.getI64IntegerAttr(in.encoderTokens);
      InputOp::create(b, loc(in.loc), in.encoder, in.tokens, in.items,
                      placement, positions, mask(in.mask), encoderTokens);
    }
  }

  void cluster() {
    const spec::Cluster &c = job.cluster;
    ClusterOp::create(b, loc(c.loc), c.nodes, c.gpusPerNode, c.gpu.name,
                      llvm::APFloat(c.gpu.peakFlops), c.gpu.memory,
                      llvm::APFloat(c.gpu.memoryBandwidth),
                      llvm::APFloat(c.intraNodeBandwidth),
                      llvm::APFloat(c.interNodeBandwidth));
  }

  void parallel() {
    const spec::Parallel &p = job.parallel;
    Location at = p.loc.isValid() ? loc(p.loc) : loc(job.cluster.loc);
    auto op =
        ParallelOp::create(b, at, p.dp, p.layout, p.partition, p.cpBalance);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(&op.getBody().emplaceBlock());
    for (const spec::PartParallel &part : p.parts) {
      DenseI64ArrayAttr stages;
      if (!part.stages.empty())
        stages = b.getDenseI64ArrayAttr(part.stages);
      ModuleParallelOp::create(b, part.loc.isValid() ? loc(part.loc) : at,
                               part.part, part.tp, part.pp, part.cp, stages);
    }
  }

  void train() {
    const spec::Train &t = job.train;
    Location at = t.loc.isValid() ? loc(t.loc) : loc(job.model.loc);
    TrainOp::create(b, at, t.steps, t.optimizer, llvm::APFloat(t.lr),
                    llvm::APFloat(t.weightDecay), t.precision, t.seed);
  }

  const spec::Job &job;
  Diagnostics &diags;
  OpBuilder b;
};

} // namespace

OwningOpRef<ModuleOp> mllm::mlirGen(const spec::Job &job, Diagnostics &diags) {
  return Generator(job, diags).run();
}
