//===- SchedOps.cpp - sched dialect operations ----------------------------===//
//
// Verifiers of the invariants one program states on its own: microbatches
// in range, peers that exist and lie in the right direction, the order of a
// microbatch's actions, gradient sync and optimizer step only where weight
// gradients exist. Whether programs agree with each other (sends matching
// receives, no deadlock) is sched-verify's job.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/Sched/IR/SchedOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mllm::sched_ir;

#include "mllm/Dialect/Sched/IR/SchedEnums.cpp.inc"

#define GET_OP_CLASSES
#include "mllm/Dialect/Sched/IR/SchedOps.cpp.inc"

//===----------------------------------------------------------------------===//
// ScheduleOp
//===----------------------------------------------------------------------===//

LogicalResult ScheduleOp::verifyRegions() {
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

LogicalResult ProgramOp::verifyRegions() {
  llvm::DenseMap<int64_t, MicrobatchState> state;
  // (kind, microbatch, peer) of the transfers seen so far.
  llvm::DenseSet<std::tuple<StringRef, int64_t, StringRef>> transfers;
  Operation *allReduce = nullptr, *step = nullptr;
  bool anyWeightGrad = false;

  auto checkTransfer = [&](Operation *op, int64_t mb,
                           StringRef peer) -> LogicalResult {
    if (!transfers.insert({op->getName().getStringRef(), mb, peer}).second)
      return op->emitOpError() << "repeats the transfer of microbatch " << mb
                               << " with '" << peer << "'";
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

LogicalResult SendActOp::verify() {
  return verifyMicrobatch(*this, getMicrobatch());
}
LogicalResult RecvActOp::verify() {
  return verifyMicrobatch(*this, getMicrobatch());
}
LogicalResult SendGradOp::verify() {
  return verifyMicrobatch(*this, getMicrobatch());
}
LogicalResult RecvGradOp::verify() {
  return verifyMicrobatch(*this, getMicrobatch());
}

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
  auto program = cast<ProgramOp>((*this)->getParentOp());
  if (getDp() != program.getDp() || getCp() != program.getCp())
    return emitOpError() << "group dp " << getDp() << " x cp " << getCp()
                         << " differs from the stage's dp " << program.getDp()
                         << " x cp " << program.getCp();
  return success();
}
