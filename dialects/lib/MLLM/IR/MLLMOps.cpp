//===- MLLMOps.cpp - mllm dialect operations ------------------------------===//
//
// Verifiers state the IR invariants that every later pass may rely on. The
// front end reports user mistakes before IR exists; these checks catch IR
// written by hand or produced by a buggy pass.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Dialect/MLLM/IR/LayerConfigSchema.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <cmath>

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

/// `[[0:128, 384:512], [128:384]]`: per rank its [start, end) token ranges.
static ParseResult parseRankRanges(OpAsmParser &parser,
                                   DenseI64ArrayAttr &ranges,
                                   DenseI64ArrayAttr &rankOffsets) {
  SmallVector<int64_t> flat, offsets{0};
  auto parseRange = [&]() -> ParseResult {
    int64_t start, end;
    if (parser.parseInteger(start) || parser.parseColon() ||
        parser.parseInteger(end))
      return failure();
    flat.push_back(start);
    flat.push_back(end);
    return success();
  };
  auto parseRank = [&]() -> ParseResult {
    if (parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Square,
                                       parseRange))
      return failure();
    offsets.push_back(static_cast<int64_t>(flat.size() / 2));
    return success();
  };
  if (parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Square, parseRank))
    return failure();
  ranges = DenseI64ArrayAttr::get(parser.getContext(), flat);
  rankOffsets = DenseI64ArrayAttr::get(parser.getContext(), offsets);
  return success();
}

static void printRankRanges(OpAsmPrinter &printer, Operation *,
                            DenseI64ArrayAttr ranges,
                            DenseI64ArrayAttr rankOffsets) {
  ArrayRef<int64_t> flat = ranges.asArrayRef();
  ArrayRef<int64_t> offsets = rankOffsets.asArrayRef();
  printer << "[";
  for (size_t r = 0; r + 1 < offsets.size(); ++r) {
    if (r)
      printer << ", ";
    printer << "[";
    for (int64_t i = offsets[r]; i < offsets[r + 1]; ++i) {
      if (i != offsets[r])
        printer << ", ";
      // The verifier guarantees the bounds; print what is there regardless.
      if (i >= 0 && 2 * i + 1 < static_cast<int64_t>(flat.size()))
        printer << flat[2 * i] << ":" << flat[2 * i + 1];
    }
    printer << "]";
  }
  printer << "]";
}

/// `12.345 ms`: a time in milliseconds (stored in an F64Attr, printed with
/// microsecond resolution; the passes round to it, so text round-trips).
static ParseResult parseMillis(OpAsmParser &parser, FloatAttr &value) {
  double ms;
  if (parser.parseFloat(ms) || parser.parseKeyword("ms"))
    return failure();
  value = parser.getBuilder().getF64FloatAttr(ms);
  return success();
}

static void printMillis(OpAsmPrinter &printer, Operation *, FloatAttr value) {
  printer << llvm::format("%.3f", value.getValueAsDouble()) << " ms";
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

ProjectorOp mllm::projectorOf(ModelOp model, StringRef encoder) {
  for (auto proj : model.getBody().front().getOps<ProjectorOp>())
    if (proj.getSource() == encoder)
      return proj;
  return {};
}

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

LogicalResult LayersOp::verify() {
  // The same bounds the front end applies, so hand-written IR cannot make
  // the planning passes loop or overflow.
  if (getCount() > (1u << 16))
    return emitOpError("count ") << getCount() << " exceeds 65536";
  for (NamedAttribute entry : getConfig())
    if (auto attr = dyn_cast<IntegerAttr>(entry.getValue()))
      if (attr.getInt() > (int64_t(1) << 31))
        return emitOpError("config '")
               << entry.getName().getValue() << "' is too large ("
               << attr.getInt() << ")";
  // The keys each kind needs are the schema's (LayerConfigSchema.h).
  if (auto *schema =
          (*this)->getDialect()->getRegisteredInterface<LayerConfigSchema>())
    if (failed(schema->verifyConfig(getKind(), getConfig(),
                                    [&] { return emitOpError(); })))
      return failure();
  if (!getIntConfig(*this, "heads") || !getIntConfig(*this, "kv_heads"))
    return success();
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
  if (getNodes() > (1u << 20) || getGpusPerNode() > (1u << 10))
    return emitOpError("at most 1048576 nodes of at most 1024 GPUs");
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

ModuleParallelOp ParallelOp::lookupPart(StringRef part) {
  for (auto mp : getBody().front().getOps<ModuleParallelOp>())
    if (mp.getPart() == part)
      return mp;
  return {};
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
  // The IR's rule (the front end reports it earlier, at the spec's field).
  if (getCp() > 1 && !isa<LLMOp>(part))
    return emitError("context parallelism applies to the LLM only; '")
           << getPart() << "' has cp " << getCp();
  return success();
}

//===----------------------------------------------------------------------===//
// CPAssignmentOp
//===----------------------------------------------------------------------===//

SmallVector<std::pair<int64_t, int64_t>>
CPAssignmentOp::getRankRanges(int64_t rank) {
  ArrayRef<int64_t> flat = getRanges();
  ArrayRef<int64_t> offsets = getRankOffsets();
  SmallVector<std::pair<int64_t, int64_t>> result;
  for (int64_t i = offsets[rank]; i < offsets[rank + 1]; ++i)
    result.push_back({flat[2 * i], flat[2 * i + 1]});
  return result;
}

LogicalResult CPAssignmentOp::verify() {
  int64_t cp = getCp(), tokens = getTokens(), block = getBlock();
  ArrayRef<int64_t> flat = getRanges();
  ArrayRef<int64_t> offsets = getRankOffsets();
  ArrayRef<int64_t> workload = getWorkload();
  if (static_cast<int64_t>(offsets.size()) != cp + 1)
    return emitOpError("lists the ranges of ")
           << static_cast<int64_t>(offsets.size()) - 1 << " ranks but cp is "
           << cp;
  if (flat.size() % 2 != 0)
    return emitOpError("token ranges must come in [start, end) pairs");
  if (offsets.front() != 0 ||
      offsets.back() != static_cast<int64_t>(flat.size() / 2))
    return emitOpError("rank offsets must start at 0 and end at the number "
                       "of ranges");
  SmallVector<std::pair<int64_t, int64_t>> all;
  for (int64_t r = 0; r < cp; ++r) {
    if (offsets[r + 1] < offsets[r] || offsets[r + 1] > offsets.back())
      return emitOpError("rank offsets must not decrease");
    if (offsets[r + 1] == offsets[r])
      return emitOpError("rank ") << r << " owns no tokens";
    int64_t prevEnd = -1;
    for (int64_t i = offsets[r]; i < offsets[r + 1]; ++i) {
      int64_t start = flat[2 * i], end = flat[2 * i + 1];
      if (start < 0 || end > tokens || start >= end)
        return emitOpError("rank ")
               << r << " has the range " << start << ":" << end
               << ", which is empty or outside the " << tokens << " tokens";
      if (start % block != 0 || (end % block != 0 && end != tokens))
        return emitOpError("rank ")
               << r << " has the range " << start << ":" << end
               << ", which does not follow the blocks of " << block
               << " tokens";
      if (start < prevEnd)
        return emitOpError("the ranges of rank ")
               << r << " must be ascending and disjoint";
      prevEnd = end;
      all.push_back({start, end});
    }
  }
  llvm::sort(all);
  int64_t covered = 0;
  for (auto [start, end] : all) {
    if (start != covered)
      return emitOpError(start < covered ? "ranks share token "
                                         : "no rank owns token ")
             << std::min(start, covered);
    covered = end;
  }
  if (covered != tokens)
    return emitOpError("no rank owns token ") << covered;

  if (static_cast<int64_t>(workload.size()) != cp)
    return emitOpError("lists ")
           << workload.size() << " workloads but cp is " << cp;
  int64_t maxWork = 0, sum = 0;
  for (int64_t w : workload) {
    if (w < 0)
      return emitOpError("workloads must not be negative");
    maxWork = std::max(maxWork, w);
    sum += w;
  }
  double expected = sum > 0
                        ? static_cast<double>(maxWork) *
                              static_cast<double>(cp) / static_cast<double>(sum)
                        : 0.0;
  double imbalance = getImbalance().convertToDouble();
  if (!(std::abs(imbalance - expected) <= 5.1e-5))
    return emitOpError("imbalance ")
           << imbalance
           << " does not match the workloads (max / mean = " << expected << ")";

  // Consistency with the rest of the job, when it is there.
  auto module = (*this)->getParentOfType<ModuleOp>();
  if (ModelOp model = findModel(*this)) {
    LLMOp llm = model.getLLM();
    if (llm && llm.getSymName() != getPart())
      return emitOpError("part '")
             << getPart() << "' is not the LLM '" << llm.getSymName() << "'";
  }
  for (auto data : module.getOps<DataOp>())
    if (static_cast<int64_t>(data.getSeqLen()) != tokens)
      return emitOpError("splits ")
             << tokens << " tokens but the sequence has " << data.getSeqLen();
  for (auto parallel : module.getOps<ParallelOp>())
    for (auto mp : parallel.getBody().front().getOps<ModuleParallelOp>())
      if (mp.getPart() == getPart() && static_cast<int64_t>(mp.getCp()) != cp)
        return emitOpError("has cp ")
               << cp << " but '" << getPart() << "' has cp " << mp.getCp();
  return success();
}

LogicalResult TrainOp::verify() {
  if (!(getLr().convertToDouble() > 0.0))
    return emitOpError("learning rate must be positive");
  if (getWeightDecay().convertToDouble() < 0.0)
    return emitOpError("weight decay must not be negative");
  return success();
}

//===----------------------------------------------------------------------===//
// PipelineOp / StageOp
//===----------------------------------------------------------------------===//

static bool isBlockKind(LayerKind kind) {
  return kind == LayerKind::TransformerBlock ||
         kind == LayerKind::ConformerBlock;
}

/// The partition units of a part: its transformer (or conformer) blocks, or
/// every layer when it has no blocks.
static int64_t numPartitionUnits(Operation *part) {
  int64_t blocks = 0, layers = 0;
  for (auto group : part->getRegion(0).front().getOps<LayersOp>()) {
    layers += group.getCount();
    if (isBlockKind(group.getKind()))
      blocks += group.getCount();
  }
  return blocks ? blocks : layers;
}

LogicalResult StageOp::verify() {
  if (getEnd() <= getBegin())
    return emitOpError("layer range [")
           << getBegin() << ", " << getEnd() << ") is empty";
  for (auto [name, value] :
       {std::pair<StringRef, double>{"fwd", getFwd().convertToDouble()},
        {"bwd_w", getBwdW().convertToDouble()},
        {"bwd_d", getBwdD().convertToDouble()},
        {"recompute", getRecompute().convertToDouble()}})
    if (!(value >= 0.0))
      return emitOpError("time '") << name << "' must not be negative";
  auto memory = getMemory();
  if (memory) {
    int64_t sum =
        static_cast<int64_t>(*getWeights() + *getGrads() + *getOptimizer() +
                             *getActivations() * *getInFlight());
    if (sum != static_cast<int64_t>(*memory))
      return emitOpError("memory ")
             << *memory << " MiB is not weights + grads + optimizer + "
             << "activations x in-flight = " << sum << " MiB";
  }
  if (auto first = getFirstRank()) {
    int64_t end = *getEndRank();
    int64_t dpStride = *getDpStride(), cpStride = *getCpStride(),
            tpStride = *getTpStride();
    if (end <= static_cast<int64_t>(*first))
      return emitOpError("rank range [")
             << *first << ", " << end << ") is empty";
    if (tpStride != 1 || cpStride % tpStride != 0 || dpStride % cpStride != 0 ||
        (end - static_cast<int64_t>(*first)) % dpStride != 0)
      return emitOpError("rank strides dp ")
             << dpStride << " cp " << cpStride << " tp " << tpStride
             << " do not lay out the " << end - static_cast<int64_t>(*first)
             << " ranks with tp innermost";
  }
  return success();
}

LogicalResult PipelineOp::verifyRegions() {
  if (getIteration().convertToDouble() < 0.0 ||
      getBottleneck().convertToDouble() < 0.0)
    return emitOpError("times must not be negative");
  // The microbatch count is the data layout's; this copy must agree.
  if (auto module = dyn_cast_or_null<ModuleOp>((*this)->getParentOp()))
    for (DataOp data : module.getOps<DataOp>())
      if (IntegerAttr mb = data.getMicrobatchesAttr();
          mb && mb.getInt() != static_cast<int64_t>(getMicrobatches()))
        return emitOpError("plans ")
               << getMicrobatches() << " microbatches but 'mllm.data' has "
               << mb.getInt();
  ModelOp model = findModel(*this);
  // Parts in pipeline order, and per part the end of its last stage.
  SmallVector<StringRef> order;
  llvm::StringMap<int64_t> covered, stageCount;
  for (Operation &op : getBody().front()) {
    auto stage = dyn_cast<StageOp>(op);
    if (!stage)
      return op.emitOpError("is not allowed in 'mllm.pipeline'");
    StringRef part = stage.getPart();
    if (order.empty() || order.back() != part) {
      if (covered.count(part))
        return stage.emitOpError("stages of '")
               << part << "' must be consecutive in the pipeline";
      order.push_back(part);
      covered[part] = 0;
    }
    int64_t &end = covered[part];
    if (static_cast<int64_t>(stage.getBegin()) != end)
      return stage.emitOpError("starts at layer ")
             << stage.getBegin() << " but the previous stage of '" << part
             << "' ends at " << end;
    end = stage.getEnd();
    ++stageCount[part];
  }
  if (!model)
    return success();

  // Parts: encoders in model order, then the LLM; each part's blocks
  // covered exactly.
  SmallVector<Operation *> parts;
  for (Operation &op : model.getBody().front())
    if (isa<EncoderOp>(op))
      parts.push_back(&op);
  if (LLMOp llm = model.getLLM())
    parts.push_back(llm);
  size_t next = 0;
  for (Operation *part : parts) {
    StringRef name = mlir::SymbolTable::getSymbolName(part).getValue();
    auto it = covered.find(name);
    if (it == covered.end())
      return emitOpError("has no stage of '") << name << "'";
    if (next >= order.size() || order[next] != name)
      return emitOpError("stages of '")
             << name << "' are out of order: encoders in model order, then "
             << "the LLM";
    ++next;
    int64_t units = numPartitionUnits(part);
    if (it->second != units)
      return emitOpError("stages of '")
             << name << "' cover layers [0, " << it->second << ") but it has "
             << units;
  }
  if (next != order.size())
    return emitOpError("has stages of '")
           << order[next] << "', which is not an encoder or the LLM";

  // Fixed stage counts match the parallel config.
  auto module = (*this)->getParentOfType<ModuleOp>();
  for (auto parallel : module.getOps<ParallelOp>())
    for (auto mp : parallel.getBody().front().getOps<ModuleParallelOp>()) {
      auto it = stageCount.find(mp.getPart());
      if (it == stageCount.end())
        continue;
      if (mp.getPp() != 0 && static_cast<int64_t>(mp.getPp()) != it->second)
        return emitOpError("has ")
               << it->second << " stages of '" << mp.getPart()
               << "' but its pp is " << mp.getPp();
    }
  return success();
}
