//===- MLLMOps.cpp - mllm dialect operations ------------------------------===//
//
// Verifiers state the IR invariants that every later pass may rely on. The
// front end reports user mistakes before IR exists; these checks catch IR
// written by hand or produced by a buggy pass. Every integer is bounded as
// the language documents it (Bounds.h), so no pass overflows or allocates
// without limit on IR that verifies.
//
// A verifier runs on one op at a time: the ops it reads besides its own
// children may not be verified yet (every mllm.model, being isolated from
// above, is verified after all the other ops of its module). Those are read
// through the helpers below, which treat a missing or out-of-bounds
// attribute as absent and skip the check: the other op's own verifier
// reports it.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Dialect/MLLM/IR/LayerConfigSchema.h"
#include "mllm/Dialect/MLLM/IR/Rules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <algorithm>
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
  // The verifier guarantees the bounds; an op that failed it is printed too
  // (in diagnostics), so print what is there, and no more than that.
  auto pairs = static_cast<int64_t>(flat.size() / 2);
  for (size_t r = 0; r + 1 < offsets.size(); ++r) {
    if (r)
      printer << ", ";
    printer << "[";
    int64_t begin = std::clamp<int64_t>(offsets[r], 0, pairs);
    int64_t end = std::clamp<int64_t>(offsets[r + 1], begin, pairs);
    for (int64_t i = begin; i < end; ++i) {
      if (i != begin)
        printer << ", ";
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

using namespace mllm::bounds;

/// An i64 attribute's value within [min, max], else nullopt: absent (an op
/// not verified yet), of another type, or beyond its bounds.
static std::optional<int64_t> readInt(Attribute attr, int64_t min,
                                      int64_t max) {
  auto value = dyn_cast_or_null<IntegerAttr>(attr);
  if (!value || !value.getType().isSignlessInteger(64))
    return std::nullopt;
  int64_t v = value.getInt();
  if (v < min || v > max)
    return std::nullopt;
  return v;
}

/// The symbol name of an op that may not be verified yet, or empty.
static StringRef symbolName(Operation *op) {
  if (auto name =
          op->getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName()))
    return name.getValue();
  return {};
}

/// The block of an op with one single-block region, or null.
static Block *bodyOf(Operation *op) {
  if (op->getNumRegions() != 1 || !llvm::hasSingleElement(op->getRegion(0)))
    return nullptr;
  return &op->getRegion(0).front();
}

/// Reports `value` of attribute `name` beyond `max`.
static LogicalResult checkAtMost(Operation *op, StringRef name, int64_t value,
                                 int64_t max) {
  if (value <= max)
    return success();
  return op->emitOpError("'")
         << name << "' is " << value << "; the limit is " << max;
}

/// The single mllm.model next to `op` in its builtin.module, if any (with
/// its body block; its ops may not be verified yet).
static ModelOp findModel(Operation *op) {
  Operation *top = op->getParentOp();
  while (top && !isa<ModuleOp>(top))
    top = top->getParentOp();
  if (!top)
    return {};
  for (auto model : cast<ModuleOp>(top).getOps<ModelOp>())
    return bodyOf(model) ? model : ModelOp();
  return {};
}

/// The LLM of a model that may not be verified yet, or null.
static LLMOp findLLM(ModelOp model) {
  Block *body = bodyOf(model);
  if (!body)
    return {};
  for (auto llm : body->getOps<LLMOp>())
    return llm;
  return {};
}

/// The largest value of config key `key` (Bounds.h): the front end's bound
/// of the field it comes from.
static int64_t maxConfigValue(StringRef key) {
  static const std::pair<StringLiteral, int64_t> table[] = {
      {"hidden", kMaxWidth},       {"ffn", kMaxWidth},
      {"head_dim", kMaxWidth},     {"in", kMaxWidth},
      {"out", kMaxWidth},          {"image_width", kMaxWidth},
      {"image_height", kMaxWidth}, {"heads", kMaxCount},
      {"kv_heads", kMaxCount},     {"patch", kMaxCount},
      {"channels", kMaxCount},     {"temporal_patch", kMaxCount},
      {"mel_bins", kMaxCount},     {"conv_kernel", kMaxCount},
      {"vocab", kMaxVocab}};
  for (auto [name, max] : table)
    if (key == name)
      return max;
  return kMaxInt;
}

static int64_t getIntConfig(LayersOp op, StringRef key) {
  if (auto attr = dyn_cast_or_null<IntegerAttr>(op.getConfig().get(key)))
    return attr.getInt();
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

/// Width of the tokens a verified model part produces.
static int64_t partWidth(Operation *part) {
  if (auto enc = dyn_cast<EncoderOp>(part))
    return enc.getWidth();
  return cast<LLMOp>(part).getWidth();
}

/// Source and target of a projector and its widths (reads its verified
/// siblings, so it runs from the model's region verifier).
static LogicalResult verifyProjector(ModelOp model, ProjectorOp proj) {
  Operation *source = SymbolTable::lookupSymbolIn(model, proj.getSourceAttr());
  if (!isa_and_nonnull<EncoderOp>(source))
    return proj.emitOpError("source '")
           << proj.getSource() << "' is not an encoder";
  Operation *target = SymbolTable::lookupSymbolIn(model, proj.getTargetAttr());
  if (!isa_and_nonnull<LLMOp>(target))
    return proj.emitOpError("target '")
           << proj.getTarget() << "' is not the LLM";

  // The first layer reads the (merged) encoder tokens, the last writes LLM
  // tokens.
  auto groups = proj.getBody().front().getOps<LayersOp>();
  LayersOp first = *groups.begin();
  LayersOp last = first;
  for (LayersOp group : groups)
    last = group;
  int64_t in = getIntConfig(first, "in");
  int64_t out = getIntConfig(last, "out");
  // Both factors are bounded: no overflow.
  int64_t expectedIn = proj.getMerge() * partWidth(source);
  if (in != expectedIn)
    return proj.emitOpError("reads ")
           << in << " features but encoder '" << proj.getSource()
           << "' provides " << expectedIn << " (width " << partWidth(source)
           << " x merge " << proj.getMerge() << ")";
  if (out != partWidth(target))
    return proj.emitOpError("writes ")
           << out << " features but the LLM's width is " << partWidth(target);
  return success();
}

// A region verifier: the parts and their layers are verified first.
LogicalResult ModelOp::verifyRegions() {
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
  for (auto proj : getBody().front().getOps<ProjectorOp>())
    if (failed(verifyProjector(*this, proj)))
      return failure();
  for (auto enc : getBody().front().getOps<EncoderOp>())
    if (!projected.contains(enc.getSymName()))
      return enc.emitOpError("has no projector into the LLM");
  return success();
}

//===----------------------------------------------------------------------===//
// EncoderOp / LLMOp / ProjectorOp
//===----------------------------------------------------------------------===//

LogicalResult EncoderOp::verify() {
  if (failed(checkAtMost(*this, "width", getWidth(), kMaxWidth)))
    return failure();
  return verifyHasLayers(*this, getBody());
}

LogicalResult LLMOp::verify() {
  if (failed(checkAtMost(*this, "width", getWidth(), kMaxWidth)))
    return failure();
  return verifyHasLayers(*this, getBody());
}

LogicalResult ProjectorOp::verify() {
  if (failed(checkAtMost(*this, "merge", getMerge(), kMaxCount)))
    return failure();
  return verifyHasLayers(*this, getBody());
}

//===----------------------------------------------------------------------===//
// LayersOp
//===----------------------------------------------------------------------===//

LogicalResult LayersOp::verify() {
  // The same bounds the front end applies, so hand-written IR cannot make
  // the planning passes loop or overflow.
  if (failed(checkAtMost(*this, "count", getCount(), kMaxLayers)))
    return failure();
  for (NamedAttribute entry : getConfig()) {
    auto attr = dyn_cast<IntegerAttr>(entry.getValue());
    if (!attr)
      continue;
    StringRef key = entry.getName().getValue();
    // Readers take the value as an int64 (IntegerAttr::getInt).
    if (!attr.getType().isSignlessInteger(64))
      return emitOpError("config '")
             << key << "' must be a 64-bit integer, got " << attr.getType();
    int64_t max = maxConfigValue(key);
    if (attr.getInt() > max)
      return emitOpError("config '")
             << key << "' is " << attr.getInt() << "; the limit is " << max;
  }
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
    if (kvHeads <= 0 || heads % kvHeads != 0)
      return emitOpError("has ") << heads << " heads, not a multiple of its "
                                 << kvHeads << " kv_heads";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// DataOp / InputOp
//===----------------------------------------------------------------------===//

LogicalResult DataOp::verify() {
  if (failed(checkAtMost(*this, "text_tokens", getTextTokens(), kMaxInt)) ||
      failed(checkAtMost(*this, "packing", getPacking(), kMaxPacking)) ||
      failed(checkAtMost(*this, "microbatch_size", getMicrobatchSize(),
                         kMaxMicrobatchSize)) ||
      failed(checkAtMost(*this, "microbatches", getMicrobatches(),
                         kMaxMicrobatches)))
    return failure();
  auto seqLen = static_cast<int64_t>(getSeqLen());
  auto size = static_cast<int64_t>(getMicrobatchSize());
  // Both factors are bounded before they are multiplied.
  if (seqLen > kMaxTokensPerMicrobatch ||
      seqLen * size > kMaxTokensPerMicrobatch)
    return emitOpError("a microbatch of ")
           << getMicrobatchSize() << " x " << getSeqLen()
           << " tokens exceeds the limit of " << kMaxTokensPerMicrobatch;
  return success();
}

// A region verifier: the inputs are verified (and bounded) first.
LogicalResult DataOp::verifyRegions() {
  SmallVector<std::pair<int64_t, int64_t>> inputs;
  llvm::StringSet<> seen;
  for (Operation &op : getBody().front()) {
    auto input = dyn_cast<InputOp>(op);
    if (!input)
      return op.emitOpError("is not allowed in 'mllm.data'");
    if (!seen.insert(input.getEncoder()).second)
      return input.emitOpError("repeats the input of encoder '")
             << input.getEncoder() << "'";
    inputs.push_back({input.getTokens(), input.getItems()});
  }
  std::optional<int64_t> layout =
      bounds::sequenceLength(getTextTokens(), inputs, getPacking());
  if (!layout)
    return emitOpError("the layout gives more than ")
           << kMaxTokensPerMicrobatch << " tokens per sequence";
  if (*layout != static_cast<int64_t>(getSeqLen()))
    return emitOpError("seq_len ")
           << getSeqLen() << " does not match the layout, which gives "
           << *layout;
  return success();
}

LogicalResult InputOp::verify() {
  if (failed(
          checkAtMost(*this, "tokens", getTokens(), kMaxTokensPerMicrobatch)) ||
      failed(checkAtMost(*this, "items", getItems(), kMaxItems)))
    return failure();
  if (auto given = getEncoderTokens())
    if (failed(checkAtMost(*this, "encoder_tokens", *given,
                           kMaxTokensPerMicrobatch)))
      return failure();
  if (ModelOp model = findModel(*this)) {
    Operation *enc = SymbolTable::lookupSymbolIn(model, getEncoderAttr());
    if (!isa_and_nonnull<EncoderOp>(enc))
      return emitOpError("refers to '")
             << getEncoder() << "', which is not an encoder of model '"
             << symbolName(model) << "'";
    if (auto given = getEncoderTokens()) {
      uint64_t merge = 1;
      for (auto proj : model.getBody().front().getOps<ProjectorOp>())
        if (proj.getSource() == getEncoder())
          merge = proj.getMerge();
      uint64_t padded = (*given + merge - 1) / merge;
      if (padded != getTokens())
        return emitOpError("has encoder_tokens ")
               << *given << ", which merge " << merge << " pads to " << padded
               << " tokens, not " << getTokens();
    }
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
    if (!(p >= 0.0 && p <= 1.0))
      return emitOpError("position ") << p << " is outside [0, 1]";
  return success();
}

//===----------------------------------------------------------------------===//
// ClusterOp / ParallelOp / ModuleParallelOp / TrainOp
//===----------------------------------------------------------------------===//

LogicalResult ClusterOp::verify() {
  auto nodes = static_cast<int64_t>(getNodes());
  auto perNode = static_cast<int64_t>(getGpusPerNode());
  if (nodes > kMaxNodes || perNode > kMaxGpusPerNode)
    return emitOpError("at most ")
           << kMaxNodes << " nodes of at most " << kMaxGpusPerNode << " GPUs";
  if (nodes * perNode > kMaxWorldSize)
    return emitOpError("a cluster of ")
           << nodes * perNode << " GPUs exceeds the limit of " << kMaxWorldSize;
  if (failed(checkAtMost(*this, "memory", getMemory(), kMaxBytes)))
    return failure();
  for (auto [name, value] :
       {std::pair<StringRef, double>{"peak_flops",
                                     getPeakFlops().convertToDouble()},
        {"memory_bandwidth", getMemoryBandwidth().convertToDouble()},
        {"intra_node_bandwidth", getIntraNodeBandwidth().convertToDouble()},
        {"inter_node_bandwidth", getInterNodeBandwidth().convertToDouble()}})
    if (!(value > 0.0) || !std::isfinite(value))
      return emitOpError("'") << name << "' must be positive and finite";
  return success();
}

ModuleParallelOp ParallelOp::lookupPart(StringRef part) {
  for (auto mp : getBody().front().getOps<ModuleParallelOp>())
    if (mp.getPart() == part)
      return mp;
  return {};
}

LogicalResult ParallelOp::verify() {
  // dp replicas of at least one GPU each fit in the largest cluster.
  return checkAtMost(*this, "dp", getDp(), kMaxWorldSize);
}

// A region verifier: the per-part configs are verified first.
LogicalResult ParallelOp::verifyRegions() {
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
  if (failed(checkAtMost(*this, "tp", getTp(), kMaxDegree)) ||
      failed(checkAtMost(*this, "pp", getPp(), kMaxDegree)) ||
      failed(checkAtMost(*this, "cp", getCp(), kMaxDegree)))
    return failure();
  if (auto stages = getStages()) {
    if (stages->size() != getPp())
      return emitOpError("lists ")
             << stages->size() << " stages but pp is " << getPp();
    for (int64_t n : *stages) {
      if (n <= 0)
        return emitOpError("stage layer counts must be positive, got ") << n;
      if (n > kMaxLayers)
        return emitOpError("stage layer counts must be at most ")
               << kMaxLayers << ", got " << n;
    }
  }
  ModelOp model = findModel(*this);
  if (!model)
    return success();
  Operation *part = SymbolTable::lookupSymbolIn(model, getPartAttr());
  if (!isa_and_nonnull<EncoderOp, LLMOp>(part))
    return emitOpError("refers to '")
           << getPart() << "', which is not an encoder or the LLM";
  // The front end reports the same rule earlier, at the spec's field.
  if (auto error =
          rules::contextParallelPart(getPart(), isa<LLMOp>(part), getCp()))
    return emitError(*error);
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
  if (failed(checkAtMost(*this, "cp", getCp(), kMaxDegree)) ||
      failed(
          checkAtMost(*this, "tokens", getTokens(), kMaxTokensPerMicrobatch)) ||
      failed(checkAtMost(*this, "block", getBlock(), kMaxInt)) ||
      failed(checkAtMost(*this, "key_tile", getKeyTile(), kMaxInt)))
    return failure();
  // BalanceOptions::tokenWeight's range (runtime/Balance.h).
  if (std::optional<llvm::APFloat> w = getTokenWeight())
    if (!(w->convertToDouble() >= 0 && w->convertToDouble() <= 1e6))
      return emitOpError("token_weight must be in [0, 1e6], got ")
             << w->convertToDouble();
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
    std::optional<int64_t> next = bounds::add(sum, w);
    if (!next)
      return emitOpError("the workloads sum beyond int64");
    maxWork = std::max(maxWork, w);
    sum = *next;
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

  // Consistency with the rest of the job, when it is there (those ops may
  // not be verified yet: see the file comment).
  auto module = (*this)->getParentOfType<ModuleOp>();
  if (ModelOp model = findModel(*this)) {
    LLMOp llm = findLLM(model);
    StringRef name = llm ? symbolName(llm) : StringRef();
    if (!name.empty() && name != getPart())
      return emitOpError("part '")
             << getPart() << "' is not the LLM '" << name << "'";
  }
  for (auto data : module.getOps<DataOp>())
    if (std::optional<int64_t> seqLen =
            readInt(data.getSeqLenAttr(), 1, kMaxTokensPerMicrobatch);
        seqLen && *seqLen != tokens)
      return emitOpError("splits ")
             << tokens << " tokens but the sequence has " << *seqLen;
  for (auto parallel : module.getOps<ParallelOp>()) {
    Block *body = bodyOf(parallel);
    if (!body)
      continue;
    for (auto mp : body->getOps<ModuleParallelOp>()) {
      FlatSymbolRefAttr part = mp.getPartAttr();
      std::optional<int64_t> mpCp = readInt(mp.getCpAttr(), 1, kMaxDegree);
      if (part && mpCp && part.getValue() == getPart() && *mpCp != cp)
        return emitOpError("has cp ")
               << cp << " but '" << getPart() << "' has cp " << *mpCp;
    }
  }
  return success();
}

LogicalResult TrainOp::verify() {
  if (failed(checkAtMost(*this, "steps", getSteps(), kMaxInt)) ||
      failed(checkAtMost(*this, "seed", getSeed(), kMaxInt)))
    return failure();
  double lr = getLr().convertToDouble();
  if (!(lr > 0.0))
    return emitOpError("learning rate must be positive");
  double wd = getWeightDecay().convertToDouble();
  if (!(wd >= 0.0))
    return emitOpError("weight decay must not be negative");
  if (!std::isfinite(lr) || !std::isfinite(wd))
    return emitOpError("learning rate and weight decay must be finite");
  return success();
}

//===----------------------------------------------------------------------===//
// PipelineOp / StageOp
//===----------------------------------------------------------------------===//

static bool isBlockKind(LayerKind kind) {
  return kind == LayerKind::TransformerBlock ||
         kind == LayerKind::ConformerBlock;
}

/// The partition units of a part of a model that may not be verified yet:
/// its transformer (or conformer) blocks, or every layer when it has no
/// blocks; nullopt when a layer group cannot be read.
static std::optional<int64_t> numPartitionUnits(Operation *part) {
  Block *body = bodyOf(part);
  if (!body)
    return std::nullopt;
  int64_t blocks = 0, layers = 0;
  for (Operation &op : *body) {
    auto group = dyn_cast<LayersOp>(op);
    std::optional<int64_t> count =
        group ? readInt(group.getCountAttr(), 1, kMaxLayers) : std::nullopt;
    LayerKindAttr kind = group ? group.getKindAttr() : LayerKindAttr();
    if (!count || !kind)
      return std::nullopt;
    // At most kMaxLayers per group and one group per op: no overflow.
    layers += *count;
    if (isBlockKind(kind.getValue()))
      blocks += *count;
  }
  return blocks ? blocks : layers;
}

LogicalResult StageOp::verify() {
  if (failed(checkAtMost(*this, "end", getEnd(), kMaxLayers)))
    return failure();
  if (getEnd() <= getBegin())
    return emitOpError("layer range [")
           << getBegin() << ", " << getEnd() << ") is empty";
  for (auto [name, value] :
       {std::pair<StringRef, double>{"fwd", getFwd().convertToDouble()},
        {"bwd_w", getBwdW().convertToDouble()},
        {"bwd_d", getBwdD().convertToDouble()},
        {"recompute", getRecompute().convertToDouble()}})
    if (!(value >= 0.0 && value <= kMaxMillis))
      return emitOpError("time '")
             << name << "' must be between 0 and "
             << static_cast<int64_t>(kMaxMillis) << " ms, got " << value;

  // The memory estimate and the ranks are written by mllm-rank-map: each
  // group of attributes is there in full or not at all.
  auto checkGroup =
      [&](StringRef what,
          ArrayRef<std::pair<StringRef, Attribute>> attrs) -> LogicalResult {
    unsigned present = llvm::count_if(
        attrs, [](const auto &entry) { return entry.second != nullptr; });
    if (present == 0 || present == attrs.size())
      return success();
    for (auto [name, attr] : attrs)
      if (!attr)
        return emitOpError("has a partial ")
               << what << ": '" << name << "' is missing";
    return success();
  };
  if (failed(
          checkGroup("memory estimate", {{"memory", getMemoryAttr()},
                                         {"weights", getWeightsAttr()},
                                         {"grads", getGradsAttr()},
                                         {"optimizer", getOptimizerAttr()},
                                         {"activations", getActivationsAttr()},
                                         {"in_flight", getInFlightAttr()}})) ||
      failed(checkGroup("rank layout", {{"first_rank", getFirstRankAttr()},
                                        {"end_rank", getEndRankAttr()},
                                        {"dp_stride", getDpStrideAttr()},
                                        {"cp_stride", getCpStrideAttr()},
                                        {"tp_stride", getTpStrideAttr()}})))
    return failure();

  if (auto memory = getMemory()) {
    // MiB: the bytes limit, and at most kMaxMicrobatches in flight, keep
    // the sum far inside int64.
    constexpr int64_t maxMiB = kMaxBytes >> 20;
    for (auto [name, value] :
         {std::pair<StringRef, uint64_t>{"memory", *memory},
          {"weights", *getWeights()},
          {"grads", *getGrads()},
          {"optimizer", *getOptimizer()},
          {"activations", *getActivations()},
          {"sends", getSends().value_or(0)},
          {"transit", getTransit().value_or(0)}})
      if (failed(checkAtMost(*this, name, static_cast<int64_t>(value), maxMiB)))
        return failure();
    if (failed(checkAtMost(*this, "in_flight",
                           static_cast<int64_t>(*getInFlight()),
                           kMaxMicrobatches)))
      return failure();
    auto sum = static_cast<int64_t>(
        *getWeights() + *getGrads() + *getOptimizer() +
        getTransit().value_or(0) +
        (*getActivations() + getSends().value_or(0)) * *getInFlight());
    if (sum != static_cast<int64_t>(*memory))
      return emitOpError("memory ")
             << *memory << " MiB is not weights + grads + optimizer + transit "
             << "+ (activations + sends) x in-flight = " << sum << " MiB";
  } else if (getSendsAttr() || getTransitAttr()) {
    return emitOpError("has '")
           << (getSendsAttr() ? "sends" : "transit")
           << "' without the memory estimate it is part of";
  }
  if (auto first = getFirstRank()) {
    for (auto [name, value] :
         {std::pair<StringRef, uint64_t>{"first_rank", *first},
          {"end_rank", *getEndRank()},
          {"dp_stride", *getDpStride()},
          {"cp_stride", *getCpStride()},
          {"tp_stride", *getTpStride()}})
      if (failed(checkAtMost(*this, name, static_cast<int64_t>(value),
                             kMaxWorldSize)))
        return failure();
    auto begin = static_cast<int64_t>(*first);
    auto end = static_cast<int64_t>(*getEndRank());
    auto dpStride = static_cast<int64_t>(*getDpStride());
    auto cpStride = static_cast<int64_t>(*getCpStride());
    auto tpStride = static_cast<int64_t>(*getTpStride());
    if (end <= begin)
      return emitOpError("rank range [")
             << begin << ", " << end << ") is empty";
    if (tpStride != 1 || cpStride % tpStride != 0 || dpStride % cpStride != 0 ||
        (end - begin) % dpStride != 0)
      return emitOpError("rank strides dp ")
             << dpStride << " cp " << cpStride << " tp " << tpStride
             << " do not lay out the " << end - begin
             << " ranks with tp innermost";
  }
  return success();
}

LogicalResult PipelineOp::verifyRegions() {
  if (failed(checkAtMost(*this, "microbatches", getMicrobatches(),
                         kMaxMicrobatches)) ||
      failed(checkAtMost(*this, "gpus", getGpus(), kMaxWorldSize)))
    return failure();
  for (double t :
       {getIteration().convertToDouble(), getBottleneck().convertToDouble()})
    if (!(t >= 0.0) || !std::isfinite(t))
      return emitOpError("times must be finite and not negative");
  if (getSearch().has_value() != getPriced().has_value())
    return emitOpError("'search' and 'priced' go together (the plans a "
                       "search priced); write both or neither");
  auto module = dyn_cast_or_null<ModuleOp>((*this)->getParentOp());
  // The microbatch count is the data layout's; this copy must agree.
  if (module)
    for (DataOp data : module.getOps<DataOp>())
      if (std::optional<int64_t> mb =
              readInt(data.getMicrobatchesAttr(), 1, kMaxMicrobatches);
          mb && *mb != static_cast<int64_t>(getMicrobatches()))
        return emitOpError("plans ")
               << getMicrobatches() << " microbatches but 'mllm.data' has "
               << *mb;
  ModelOp model = findModel(*this);
  // Parts in pipeline order, and per part the end of its last stage.
  SmallVector<StringRef> order;
  llvm::StringMap<int64_t> covered, stageCount;
  int64_t numStages = 0;
  for (Operation &op : getBody().front()) {
    auto stage = dyn_cast<StageOp>(op);
    if (!stage)
      return op.emitOpError("is not allowed in 'mllm.pipeline'");
    ++numStages;
    StringRef part = stage.getPart();
    // A colocated stage shares the previous stage's GPUs: in a chain, the
    // first stage of a part right after the last stage of the part before.
    if (stage.getColocated()) {
      if (getLayout() != EncoderLayout::Chain)
        return stage.emitOpError("is colocated, which only layout 'chain' "
                                 "allows; the pipeline's layout is '")
               << stringifyEncoderLayout(getLayout()) << "'";
      if (order.empty() || order.back() == part || stage.getBegin() != 0)
        return stage.emitOpError(
            "is colocated but does not start a part: a colocated stage "
            "holds the first layers of a part, right after the previous "
            "part's last stage");
    }
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
  // A plan's schedule lists every microbatch of every stage (a schedule in
  // IR holds fewer: sched-generate and the sched.schedule verifier check
  // kMaxScheduleSteps).
  if (!bounds::scheduleSteps(numStages, static_cast<int64_t>(getMicrobatches()),
                             kMaxPlanSteps))
    return emitOpError("plans ")
           << numStages << " stages x " << getMicrobatches()
           << " microbatches; a plan's schedule holds at most " << kMaxPlanSteps
           << " (fewer stages or microbatches)";
  if (!model)
    return success();

  // Parts: encoders in model order, then the LLM; each part's blocks
  // covered exactly.
  SmallVector<Operation *> parts;
  for (Operation &op : *bodyOf(model))
    if (isa<EncoderOp>(op))
      parts.push_back(&op);
  if (LLMOp llm = findLLM(model))
    parts.push_back(llm);
  size_t next = 0;
  for (Operation *part : parts) {
    StringRef name = symbolName(part);
    if (name.empty())
      return success(); // The part's own verifier reports it.
    auto it = covered.find(name);
    if (it == covered.end())
      return emitOpError("has no stage of '") << name << "'";
    if (next >= order.size() || order[next] != name)
      return emitOpError("stages of '")
             << name << "' are out of order: encoders in model order, then "
             << "the LLM";
    ++next;
    std::optional<int64_t> units = numPartitionUnits(part);
    if (units && it->second != *units)
      return emitOpError("stages of '")
             << name << "' cover layers [0, " << it->second << ") but it has "
             << *units;
  }
  if (next != order.size())
    return emitOpError("has stages of '")
           << order[next] << "', which is not an encoder or the LLM";
  if (!module)
    return success();

  // Fixed stage counts match the parallel config, and every stage's ranks
  // are its part's dp x cp x tp GPUs inside the cluster.
  std::optional<int64_t> dp, world;
  for (auto parallel : module.getOps<ParallelOp>())
    dp = readInt(parallel.getDpAttr(), 1, kMaxWorldSize);
  for (auto cluster : module.getOps<ClusterOp>()) {
    std::optional<int64_t> nodes =
        readInt(cluster.getNodesAttr(), 1, kMaxNodes);
    std::optional<int64_t> perNode =
        readInt(cluster.getGpusPerNodeAttr(), 1, kMaxGpusPerNode);
    if (nodes && perNode)
      world = *nodes * *perNode;
  }
  if (dp && world && *dp * static_cast<int64_t>(getGpus()) > *world)
    return emitOpError("uses ") << getGpus() << " GPUs per replica x dp " << *dp
                                << " but the cluster has " << *world;
  for (auto parallel : module.getOps<ParallelOp>()) {
    Block *body = bodyOf(parallel);
    if (!body)
      continue;
    for (auto mp : body->getOps<ModuleParallelOp>()) {
      FlatSymbolRefAttr part = mp.getPartAttr();
      if (!part)
        continue;
      auto it = stageCount.find(part.getValue());
      if (it == stageCount.end())
        continue;
      std::optional<int64_t> pp = readInt(mp.getPpAttr(), 0, kMaxDegree);
      if (pp && *pp != 0 && *pp != it->second)
        return emitOpError("has ")
               << it->second << " stages of '" << part.getValue()
               << "' but its pp is " << *pp;
      std::optional<int64_t> tp = readInt(mp.getTpAttr(), 1, kMaxDegree);
      std::optional<int64_t> cp = readInt(mp.getCpAttr(), 1, kMaxDegree);
      if (!dp || !tp || !cp)
        continue;
      std::optional<int64_t> gpus = bounds::stageGpus(*dp, *cp, *tp);
      for (auto stage : getBody().front().getOps<StageOp>()) {
        if (stage.getPart() != part.getValue() || !stage.getFirstRank())
          continue;
        auto first = static_cast<int64_t>(*stage.getFirstRank());
        auto end = static_cast<int64_t>(*stage.getEndRank());
        if (!gpus || end - first != *gpus ||
            static_cast<int64_t>(*stage.getDpStride()) != *cp * *tp ||
            static_cast<int64_t>(*stage.getCpStride()) != *tp)
          return stage.emitOpError("has ranks [")
                 << first << ", " << end << ") with strides dp "
                 << *stage.getDpStride() << " cp " << *stage.getCpStride()
                 << ", but '" << part.getValue() << "' runs dp " << *dp
                 << " x cp " << *cp << " x tp " << *tp
                 << " GPUs per stage (mllm.parallel)";
        if (world && end > *world)
          return stage.emitOpError("has ranks [")
                 << first << ", " << end << ") beyond the cluster's " << *world
                 << " GPUs";
      }
    }
  }
  return success();
}
