//===- MLLMOps.cpp - mllm dialect operations ------------------------------===//
//
// Verifiers state the IR invariants that every later pass may rely on. The
// front end reports user mistakes before IR exists; these checks catch IR
// written by hand or produced by a buggy pass.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mllm;

#include "mllm/Dialect/MLLM/IR/MLLMEnums.cpp.inc"

/// `prepend`, `append` or `at [0.25, 0.5]`.
static ParseResult parsePlacement(OpAsmParser &parser, PlacementAttr &placement,
                                  DenseF64ArrayAttr &positions) {
  StringRef keyword;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<Placement> value = symbolizePlacement(keyword);
  if (!value)
    return parser.emitError(loc, "expected 'prepend', 'append' or 'at'");
  placement = PlacementAttr::get(parser.getContext(), *value);
  if (*value != Placement::At)
    return success();
  SmallVector<double> values;
  if (parser.parseLSquare() ||
      parser.parseCommaSeparatedList([&]() -> ParseResult {
        double v;
        if (parser.parseFloat(v))
          return failure();
        values.push_back(v);
        return success();
      }) ||
      parser.parseRSquare())
    return failure();
  positions = DenseF64ArrayAttr::get(parser.getContext(), values);
  return success();
}

static void printPlacement(OpAsmPrinter &printer, Operation *,
                           PlacementAttr placement,
                           DenseF64ArrayAttr positions) {
  printer << stringifyPlacement(placement.getValue());
  if (!positions)
    return;
  printer << " [";
  llvm::interleaveComma(positions.asArrayRef(), printer);
  printer << "]";
}

#define GET_OP_CLASSES
#include "mllm/Dialect/MLLM/IR/MLLMOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// The single mllm.model next to `op` in its builtin.module, if any.
static ModelOp findModel(Operation *op) {
  Operation *top = op->getParentOp();
  while (top && !isa<ModuleOp>(top))
    top = top->getParentOp();
  if (!top)
    return {};
  for (auto model : cast<ModuleOp>(top).getOps<ModelOp>())
    return model;
  return {};
}

static int64_t getIntConfig(LayersOp op, StringRef key) {
  if (auto attr = dyn_cast_or_null<IntegerAttr>(op.getConfig().get(key)))
    return attr.getInt();
  return 0;
}

/// Width of the tokens a model part produces (encoder/LLM `width`).
static int64_t partWidth(Operation *part) {
  if (auto enc = dyn_cast_or_null<EncoderOp>(part))
    return enc.getWidth();
  if (auto llm = dyn_cast_or_null<LLMOp>(part))
    return llm.getWidth();
  return 0;
}

static LogicalResult verifyHasLayers(Operation *op, Region &body) {
  if (body.front().empty())
    return op->emitOpError("has no layer groups");
  for (Operation &nested : body.front())
    if (!isa<LayersOp>(nested))
      return nested.emitOpError("is not allowed in '")
             << op->getName() << "'; expected 'mllm.layers'";
  return success();
}

//===----------------------------------------------------------------------===//
// ModelOp
//===----------------------------------------------------------------------===//

LLMOp ModelOp::getLLM() {
  for (auto llm : getBody().front().getOps<LLMOp>())
    return llm;
  return {};
}

LogicalResult ModelOp::verify() {
  unsigned numLLMs = 0;
  llvm::StringSet<> projected;
  for (Operation &op : getBody().front()) {
    if (isa<LLMOp>(op))
      ++numLLMs;
    else if (auto proj = dyn_cast<ProjectorOp>(op)) {
      if (!projected.insert(proj.getSource()).second)
        return proj.emitOpError("is the second projector of encoder '")
               << proj.getSource() << "'";
    } else if (!isa<EncoderOp>(op))
      return op.emitOpError("is not allowed in 'mllm.model'");
  }
  if (numLLMs != 1)
    return emitOpError("must contain exactly one 'mllm.llm', found ")
           << numLLMs;
  for (auto enc : getBody().front().getOps<EncoderOp>())
    if (!projected.contains(enc.getSymName()))
      return enc.emitOpError("has no projector into the LLM");
  return success();
}

//===----------------------------------------------------------------------===//
// EncoderOp / LLMOp / ProjectorOp
//===----------------------------------------------------------------------===//

LogicalResult EncoderOp::verify() { return verifyHasLayers(*this, getBody()); }
LogicalResult LLMOp::verify() { return verifyHasLayers(*this, getBody()); }

LogicalResult ProjectorOp::verify() {
  if (failed(verifyHasLayers(*this, getBody())))
    return failure();
  auto model = (*this)->getParentOfType<ModelOp>();
  Operation *source = SymbolTable::lookupSymbolIn(model, getSourceAttr());
  if (!isa_and_nonnull<EncoderOp>(source))
    return emitOpError("source '") << getSource() << "' is not an encoder";
  Operation *target = SymbolTable::lookupSymbolIn(model, getTargetAttr());
  if (!isa_and_nonnull<LLMOp>(target))
    return emitOpError("target '") << getTarget() << "' is not the LLM";

  // The first layer reads the (merged) encoder tokens, the last writes LLM
  // tokens.
  auto groups = getBody().front().getOps<LayersOp>();
  LayersOp first = *groups.begin();
  LayersOp last = first;
  for (LayersOp group : groups)
    last = group;
  int64_t in = getIntConfig(first, "in");
  int64_t out = getIntConfig(last, "out");
  int64_t expectedIn = getMerge() * partWidth(source);
  if (in != expectedIn)
    return emitOpError("reads ")
           << in << " features but encoder '" << getSource() << "' provides "
           << expectedIn << " (width " << partWidth(source) << " x merge "
           << getMerge() << ")";
  if (out != partWidth(target))
    return emitOpError("writes ")
           << out << " features but the LLM's width is " << partWidth(target);
  return success();
}

//===----------------------------------------------------------------------===//
// LayersOp
//===----------------------------------------------------------------------===//

static ArrayRef<StringRef> requiredKeys(LayerKind kind) {
  static const StringRef embed[] = {"vocab", "hidden"};
  static const StringRef patch[] = {"hidden", "patch", "channels"};
  static const StringRef audio[] = {"hidden", "mel_bins"};
  static const StringRef block[] = {"hidden", "ffn", "heads", "kv_heads",
                                    "head_dim"};
  static const StringRef norm[] = {"hidden"};
  static const StringRef head[] = {"hidden", "vocab"};
  static const StringRef linear[] = {"in", "out"};
  static const StringRef mlp[] = {"in", "hidden", "out"};
  static const StringRef pool[] = {"hidden", "ffn", "heads"};
  switch (kind) {
  case LayerKind::TokenEmbedding:
    return embed;
  case LayerKind::PatchEmbedding:
    return patch;
  case LayerKind::AudioFrontend:
    return audio;
  case LayerKind::TransformerBlock:
  case LayerKind::ConformerBlock:
    return block;
  case LayerKind::Norm:
    return norm;
  case LayerKind::LMHead:
    return head;
  case LayerKind::Linear:
    return linear;
  case LayerKind::MLP:
    return mlp;
  case LayerKind::AttentionPool:
    return pool;
  }
  return {};
}

LogicalResult LayersOp::verify() {
  for (StringRef key : requiredKeys(getKind())) {
    auto attr = dyn_cast_or_null<IntegerAttr>(getConfig().get(key));
    if (!attr)
      return emitOpError("of kind '")
             << stringifyLayerKind(getKind()) << "' needs integer config '"
             << key << "'";
    if (attr.getInt() <= 0)
      return emitOpError("config '")
             << key << "' must be positive, got " << attr.getInt();
  }
  if (getKind() == LayerKind::TransformerBlock ||
      getKind() == LayerKind::ConformerBlock) {
    int64_t heads = getIntConfig(*this, "heads");
    int64_t kvHeads = getIntConfig(*this, "kv_heads");
    if (heads % kvHeads != 0)
      return emitOpError("has ") << heads << " heads, not a multiple of its "
                                 << kvHeads << " kv_heads";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// DataOp / InputOp
//===----------------------------------------------------------------------===//

LogicalResult DataOp::verify() {
  int64_t perSample = getTextTokens();
  llvm::StringSet<> seen;
  for (Operation &op : getBody().front()) {
    auto input = dyn_cast<InputOp>(op);
    if (!input)
      return op.emitOpError("is not allowed in 'mllm.data'");
    if (!seen.insert(input.getEncoder()).second)
      return input.emitOpError("repeats the input of encoder '")
             << input.getEncoder() << "'";
    perSample += input.getTokens() * input.getItems();
  }
  if (perSample * getPacking() != getSeqLen())
    return emitOpError("seq_len ")
           << getSeqLen() << " does not match the layout, which gives "
           << perSample * getPacking();
  return success();
}

LogicalResult InputOp::verify() {
  if (ModelOp model = findModel(*this)) {
    Operation *enc = SymbolTable::lookupSymbolIn(model, getEncoderAttr());
    if (!isa_and_nonnull<EncoderOp>(enc))
      return emitOpError("refers to '")
             << getEncoder() << "', which is not an encoder of model '"
             << model.getSymName() << "'";
  }
  ArrayRef<double> positions;
  if (auto given = getPositions())
    positions = *given;
  if (getPlacement() == Placement::At) {
    if (positions.size() != 1 && positions.size() != getItems())
      return emitOpError("has ")
             << positions.size() << " positions for " << getItems()
             << " items; give one position or one per item";
  } else if (!positions.empty()) {
    return emitOpError("positions are only meaningful with placement 'at'");
  }
  for (double p : positions)
    if (p < 0.0 || p > 1.0)
      return emitOpError("position ") << p << " is outside [0, 1]";
  return success();
}

//===----------------------------------------------------------------------===//
// ClusterOp / ParallelOp / ModuleParallelOp / TrainOp
//===----------------------------------------------------------------------===//

LogicalResult ClusterOp::verify() {
  for (auto [name, value] :
       {std::pair<StringRef, double>{"peak_flops",
                                     getPeakFlops().convertToDouble()},
        {"memory_bandwidth", getMemoryBandwidth().convertToDouble()},
        {"intra_node_bandwidth", getIntraNodeBandwidth().convertToDouble()},
        {"inter_node_bandwidth", getInterNodeBandwidth().convertToDouble()}})
    if (!(value > 0.0))
      return emitOpError("'") << name << "' must be positive";
  return success();
}

LogicalResult ParallelOp::verify() {
  llvm::StringSet<> seen;
  for (Operation &op : getBody().front()) {
    auto mp = dyn_cast<ModuleParallelOp>(op);
    if (!mp)
      return op.emitOpError("is not allowed in 'mllm.parallel'");
    if (!seen.insert(mp.getPart()).second)
      return mp.emitOpError("repeats the parallel config of '")
             << mp.getPart() << "'";
  }
  return success();
}

LogicalResult ModuleParallelOp::verify() {
  if (auto stages = getStages()) {
    if (stages->size() != getPp())
      return emitOpError("lists ")
             << stages->size() << " stages but pp is " << getPp();
    for (int64_t n : *stages)
      if (n <= 0)
        return emitOpError("stage layer counts must be positive, got ") << n;
  }
  ModelOp model = findModel(*this);
  if (!model)
    return success();
  Operation *part = SymbolTable::lookupSymbolIn(model, getPartAttr());
  if (!isa_and_nonnull<EncoderOp, LLMOp>(part))
    return emitOpError("refers to '")
           << getPart() << "', which is not an encoder or the LLM";
  return success();
}

LogicalResult TrainOp::verify() {
  if (!(getLr().convertToDouble() > 0.0))
    return emitOpError("learning rate must be positive");
  if (getWeightDecay().convertToDouble() < 0.0)
    return emitOpError("weight decay must not be negative");
  return success();
}
