//===- SchedOps.cpp - sched dialect operations ----------------------------===//
//
// Verifiers of the invariants one program states on its own: microbatches
// in range, peers that exist and lie in the right direction, the order of a
// microbatch's actions, gradient sync and optimizer step only where weight
// gradients exist. Whether programs agree with each other (sends matching
// receives, no deadlock) is sched-verify's job. Every integer is bounded as
// the language documents it (Bounds.h): the schedule library allocates per
// microbatch and per rank.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/Dialect/MLLM/IR/Bounds.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mllm::sched_ir;
using namespace mllm::bounds;

/// Reports `value` of attribute `name` beyond `max`.
static LogicalResult checkAtMost(Operation *op, StringRef name, uint64_t value,
                                 int64_t max) {
  if (value <= static_cast<uint64_t>(max))
    return success();
  return op->emitOpError("'")
         << name << "' is " << value << "; the limit is " << max;
}

#include "mllm/Dialect/Sched/IR/SchedEnums.cpp.inc"

//===----------------------------------------------------------------------===//
// The shape of a message: `[d0, d1] x type` tensors joined by `+`
//===----------------------------------------------------------------------===//

static ParseResult parseMessageShape(OpAsmParser &parser, ArrayAttr &shape) {
  SmallVector<Type> tensors;
  do {
    SmallVector<int64_t> dims;
    Type element;
    SMLoc loc = parser.getCurrentLocation();
    if (parser.parseCommaSeparatedList(
            OpAsmParser::Delimiter::Square,
            [&]() { return parser.parseInteger(dims.emplace_back()); },
            " in a message shape") ||
        parser.parseKeyword("x") || parser.parseType(element))
      return failure();
    if (!element.isIntOrFloat())
      return parser.emitError(loc) << "the element type of a message shape is "
                                      "an integer or float type, not "
                                   << element;
    if (llvm::any_of(dims, [](int64_t d) { return d < 0; }))
      return parser.emitError(loc, "a message shape has no negative sizes");
    tensors.push_back(RankedTensorType::get(dims, element));
  } while (succeeded(parser.parseOptionalPlus()));
  shape = parser.getBuilder().getTypeArrayAttr(tensors);
  return success();
}

static void printMessageShape(OpAsmPrinter &printer, Operation *,
                              ArrayAttr shape) {
  llvm::interleave(
      shape.getAsValueRange<TypeAttr>(), printer,
      [&](Type type) {
        auto tensor = dyn_cast<RankedTensorType>(type);
        if (!tensor) {
          printer << type;
          return;
        }
        printer << "[";
        llvm::interleaveComma(tensor.getShape(), printer);
        printer << "] x " << tensor.getElementType();
      },
      " + ");
}

#define GET_OP_CLASSES
#include "mllm/Dialect/Sched/IR/SchedOps.cpp.inc"

//===----------------------------------------------------------------------===//
// ScheduleOp
//===----------------------------------------------------------------------===//

LogicalResult ScheduleOp::verify() {
  return checkAtMost(*this, "microbatches", getMicrobatches(),
                     kMaxMicrobatches);
}

LogicalResult ScheduleOp::verifyRegions() {
  // A program lists every microbatch: the schedule's size is bounded.
  int64_t programs = llvm::range_size(getBody().front());
  if (!scheduleSteps(programs, static_cast<int64_t>(getMicrobatches())))
    return emitOpError() << "has " << programs << " programs x "
                         << getMicrobatches()
                         << " microbatches; a schedule holds at most "
                         << kMaxScheduleSteps;
  int64_t index = 0;
  for (Operation &op : getBody().front()) {
    auto program = dyn_cast<ProgramOp>(op);
    if (!program)
      return op.emitOpError("is not a 'sched.program'; a schedule holds only "
                            "programs");
    if (static_cast<int64_t>(program.getStage()) != index)
      return program.emitOpError()
             << "is stage " << program.getStage() << " but is program " << index
             << " of the schedule; programs go in stage order";
    ++index;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ProgramOp
//===----------------------------------------------------------------------===//

ScheduleOp ProgramOp::getSchedule() {
  return cast<ScheduleOp>((*this)->getParentOp());
}

SmallVector<int64_t> ProgramOp::getRanks() {
  SmallVector<int64_t> ranks;
  for (uint64_t d = 0; d < getDp(); ++d)
    for (uint64_t c = 0; c < getCp(); ++c)
      for (uint64_t t = 0; t < getTp(); ++t)
        ranks.push_back(getFirstRank() + d * getDpStride() + c * getTp() + t);
  return ranks;
}

namespace {
/// Which compute actions of a microbatch a program has run so far.
struct MicrobatchState {
  bool forward = false, backwardInput = false, backwardWeight = false;
};
} // namespace

LogicalResult ProgramOp::verify() {
  for (auto [name, value] :
       {std::pair<StringRef, uint64_t>{"stage", getStage()},
        {"first", getFirstRank()},
        {"dp", getDp()},
        {"stride", getDpStride()},
        {"cp", getCp()},
        {"tp", getTp()}})
    if (failed(checkAtMost(*this, name, value, kMaxWorldSize)))
      return failure();
  if (failed(checkAtMost(*this, "max_in_flight", getMaxInFlight(),
                         kMaxMicrobatches)))
    return failure();
  // The last rank, first + (dp - 1) x stride + cp x tp - 1, is a rank of the
  // largest cluster (getRanks lists them all).
  auto first = static_cast<int64_t>(getFirstRank());
  std::optional<int64_t> span = mul(static_cast<int64_t>(getDp()) - 1,
                                    static_cast<int64_t>(getDpStride()));
  std::optional<int64_t> slots =
      mul(static_cast<int64_t>(getCp()), static_cast<int64_t>(getTp()));
  std::optional<int64_t> end =
      span && slots ? add(first, *span + *slots) : std::nullopt;
  if (!end || *end > kMaxWorldSize)
    return emitOpError() << "has ranks beyond the largest cluster's "
                         << kMaxWorldSize << " GPUs";
  return success();
}

LogicalResult ProgramOp::verifyRegions() {
  llvm::DenseMap<int64_t, MicrobatchState> state;
  // (kind, microbatch, peer) of the transfers seen so far.
  llvm::DenseSet<std::tuple<StringRef, int64_t, StringRef>> transfers;
  Operation *allReduce = nullptr, *step = nullptr;
  bool anyWeightGrad = false;

  // (kind, peer, tag) of the transfers seen so far.
  llvm::DenseSet<std::tuple<StringRef, StringRef, int64_t>> tags;

  auto checkTransfer = [&](auto op, int64_t mb,
                           StringRef peer) -> LogicalResult {
    if (!transfers.insert({op->getName().getStringRef(), mb, peer}).second)
      return op->emitOpError() << "repeats the transfer of microbatch " << mb
                               << " with '" << peer << "'";
    auto tag = static_cast<int64_t>(op.getTag());
    if (!tags.insert({op->getName().getStringRef(), peer, tag}).second)
      return op->emitOpError() << "repeats tag " << tag << " with '" << peer
                               << "'; a tag names one message between a pair "
                                  "of stages";
    return success();
  };

  for (Operation &op : getBody().front()) {
    if (op.getDialect() != (*this)->getDialect() ||
        isa<ProgramOp, ScheduleOp>(op))
      return op.emitOpError("is not a sched action; a program holds only "
                            "actions");
    LogicalResult result =
        llvm::TypeSwitch<Operation *, LogicalResult>(&op)
            .Case([&](ForwardOp fwd) -> LogicalResult {
              MicrobatchState &mb = state[fwd.getMicrobatch()];
              if (mb.forward)
                return fwd.emitOpError() << "repeats the forward of microbatch "
                                         << fwd.getMicrobatch();
              mb.forward = true;
              return success();
            })
            .Case([&](BackwardInputOp bwd) -> LogicalResult {
              MicrobatchState &mb = state[bwd.getMicrobatch()];
              if (mb.backwardInput)
                return bwd.emitOpError()
                       << "repeats the input-gradient backward of microbatch "
                       << bwd.getMicrobatch();
              if (!mb.forward)
                return bwd.emitOpError()
                       << "runs the backward of microbatch "
                       << bwd.getMicrobatch() << " before its forward";
              mb.backwardInput = true;
              return success();
            })
            .Case([&](BackwardWeightOp bwd) -> LogicalResult {
              MicrobatchState &mb = state[bwd.getMicrobatch()];
              if (mb.backwardWeight)
                return bwd.emitOpError()
                       << "repeats the weight-gradient backward of "
                          "microbatch "
                       << bwd.getMicrobatch();
              if (!mb.forward)
                return bwd.emitOpError()
                       << "runs the backward of microbatch "
                       << bwd.getMicrobatch() << " before its forward";
              if (allReduce || step)
                return bwd.emitOpError()
                       << "computes weight gradients of microbatch "
                       << bwd.getMicrobatch() << " after the "
                       << (allReduce ? "gradient all-reduce"
                                     : "optimizer step");
              mb.backwardWeight = true;
              anyWeightGrad = true;
              return success();
            })
            .Case([&](RecvActOp recv) -> LogicalResult {
              if (state[recv.getMicrobatch()].forward)
                return recv.emitOpError()
                       << "receives activations of microbatch "
                       << recv.getMicrobatch() << " after its forward";
              return checkTransfer(recv, recv.getMicrobatch(), recv.getPeer());
            })
            .Case([&](SendActOp send) -> LogicalResult {
              if (!state[send.getMicrobatch()].forward)
                return send.emitOpError()
                       << "sends activations of microbatch "
                       << send.getMicrobatch() << " before its forward";
              return checkTransfer(send, send.getMicrobatch(), send.getPeer());
            })
            .Case([&](RecvGradOp recv) -> LogicalResult {
              MicrobatchState &mb = state[recv.getMicrobatch()];
              if (mb.backwardInput || mb.backwardWeight)
                return recv.emitOpError()
                       << "receives gradients of microbatch "
                       << recv.getMicrobatch() << " after its backward";
              return checkTransfer(recv, recv.getMicrobatch(), recv.getPeer());
            })
            .Case([&](SendGradOp send) -> LogicalResult {
              if (!state[send.getMicrobatch()].backwardInput)
                return send.emitOpError()
                       << "sends gradients of microbatch "
                       << send.getMicrobatch()
                       << " before its input-gradient backward";
              return checkTransfer(send, send.getMicrobatch(), send.getPeer());
            })
            .Case([&](AllReduceGradsOp ar) -> LogicalResult {
              if (allReduce)
                return ar.emitOpError("repeats the gradient all-reduce");
              if (step)
                return ar.emitOpError(
                    "all-reduces gradients after the optimizer step");
              allReduce = ar;
              return success();
            })
            .Case([&](OptimizerStepOp opt) -> LogicalResult {
              if (step)
                return opt.emitOpError("repeats the optimizer step");
              step = opt;
              return success();
            })
            .Default([](Operation *) { return success(); });
    if (failed(result))
      return failure();
  }
  if (!anyWeightGrad) {
    if (allReduce)
      return allReduce->emitOpError(
          "all-reduces gradients but the program computes no weight "
          "gradients");
    if (step)
      return step->emitOpError(
          "steps the optimizer but the program computes no weight gradients");
  }
  if (step && !allReduce && getDp() * getCp() > 1)
    return step->emitOpError()
           << "steps the optimizer without a gradient all-reduce over dp "
           << getDp() << " x cp " << getCp();
  return success();
}

//===----------------------------------------------------------------------===//
// Actions
//===----------------------------------------------------------------------===//

/// The microbatch of an action is below the schedule's microbatch count.
static LogicalResult verifyMicrobatch(Operation *op, uint64_t mb) {
  auto program = cast<ProgramOp>(op->getParentOp());
  uint64_t count = program.getSchedule().getMicrobatches();
  if (mb >= count)
    return op->emitOpError()
           << "microbatch " << mb << " is out of range: the schedule has "
           << count << " microbatches";
  return success();
}

/// Collective flags of a compute action, against its stage's degrees.
template <typename OpTy>
static LogicalResult verifyCompute(OpTy op, bool isForward) {
  if (failed(verifyMicrobatch(op, op.getMicrobatch())))
    return failure();
  auto program = cast<ProgramOp>(op->getParentOp());
  if (op.getTpAllReduce() && program.getTp() == 1)
    return op.emitOpError("has 'tp_all_reduce' but the stage has tp 1");
  if ((op.getCpAllGather() || op.getCpReduceScatter()) && program.getCp() == 1)
    return op.emitOpError()
           << "has '"
           << (op.getCpAllGather() ? "cp_all_gather" : "cp_reduce_scatter")
           << "' but the stage has cp 1";
  if (isForward && op.getCpReduceScatter())
    return op.emitOpError("has 'cp_reduce_scatter'; a forward only gathers");
  return success();
}

LogicalResult ForwardOp::verify() { return verifyCompute(*this, true); }
LogicalResult BackwardInputOp::verify() { return verifyCompute(*this, false); }
LogicalResult BackwardWeightOp::verify() {
  if (getTpAllReduce())
    return emitOpError(
        "has 'tp_all_reduce'; weight gradients need no tensor-parallel "
        "reduction");
  return verifyCompute(*this, false);
}

/// Peer of a transfer: a program of the same schedule, not this one, later
/// in the pipeline (`towardsLater`) or earlier. `what` is e.g. "sends
/// activations to".
static LogicalResult verifyPeer(Operation *op, FlatSymbolRefAttr peer,
                                SymbolTableCollection &symbols,
                                bool towardsLater, StringRef what) {
  auto program = cast<ProgramOp>(op->getParentOp());
  ScheduleOp schedule = program.getSchedule();
  auto other = symbols.lookupSymbolIn<ProgramOp>(schedule, peer.getAttr());
  if (!other)
    return op->emitOpError() << "names peer " << peer
                             << ", which is not a program of the schedule";
  if (other == program)
    return op->emitOpError("names its own program as the peer");
  bool later = other.getStage() > program.getStage();
  if (later != towardsLater)
    return op->emitOpError()
           << what << (later ? " a later" : " an earlier") << " stage, " << peer
           << " (stage " << other.getStage() << ")";
  return success();
}

/// A transfer's microbatch, and its shape: static tensors of integer or
/// float elements of whole bytes whose sizes add up to its bytes.
template <typename OpTy>
static LogicalResult verifyTransfer(OpTy op) {
  if (failed(verifyMicrobatch(op, op.getMicrobatch())) ||
      failed(checkAtMost(op, "tag", op.getTag(), kMaxInt)) ||
      failed(checkAtMost(op, "bytes", op.getBytes(), kMaxBytes)))
    return failure();
  ArrayAttr shape = op.getShape();
  if (shape.empty())
    return op.emitOpError("has an empty shape; a message holds at least one "
                          "tensor");
  int64_t total = 0;
  for (Type type : shape.getAsValueRange<TypeAttr>()) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape())
      return op.emitOpError()
             << "has shape element " << type
             << "; each is a ranked tensor type of static shape";
    Type element = tensor.getElementType();
    if (!element.isIntOrFloat() || element.getIntOrFloatBitWidth() % 8 != 0)
      return op.emitOpError() << "has element type " << element
                              << "; each is an integer or float type of "
                                 "whole bytes";
    // Sizes are checked before they are multiplied: a hand-written shape
    // may overflow int64.
    std::optional<int64_t> bytes = element.getIntOrFloatBitWidth() / 8;
    for (int64_t dim : tensor.getShape())
      if (bytes)
        bytes = mul(*bytes, dim);
    std::optional<int64_t> sum = bytes ? add(total, *bytes) : std::nullopt;
    if (!sum || *sum > kMaxBytes)
      return op.emitOpError()
             << "has a shape of more than " << kMaxBytes << " bytes";
    total = *sum;
  }
  if (static_cast<uint64_t>(total) != op.getBytes())
    return op.emitOpError()
           << "has a shape of " << total << " bytes but transfers "
           << op.getBytes() << " bytes";
  return success();
}

LogicalResult SendActOp::verify() { return verifyTransfer(*this); }
LogicalResult RecvActOp::verify() { return verifyTransfer(*this); }
LogicalResult SendGradOp::verify() { return verifyTransfer(*this); }
LogicalResult RecvGradOp::verify() { return verifyTransfer(*this); }

LogicalResult SendActOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyPeer(*this, getPeerAttr(), symbols, /*towardsLater=*/true,
                    "sends activations to");
}
LogicalResult RecvActOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyPeer(*this, getPeerAttr(), symbols, /*towardsLater=*/false,
                    "receives activations from");
}
LogicalResult SendGradOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyPeer(*this, getPeerAttr(), symbols, /*towardsLater=*/false,
                    "sends gradients to");
}
LogicalResult RecvGradOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyPeer(*this, getPeerAttr(), symbols, /*towardsLater=*/true,
                    "receives gradients from");
}

LogicalResult AllReduceGradsOp::verify() {
  if (failed(checkAtMost(*this, "bytes", getBytes(), kMaxBytes)))
    return failure();
  auto program = cast<ProgramOp>((*this)->getParentOp());
  if (getDp() != program.getDp() || getCp() != program.getCp())
    return emitOpError() << "group dp " << getDp() << " x cp " << getCp()
                         << " differs from the stage's dp " << program.getDp()
                         << " x cp " << program.getCp();
  return success();
}
