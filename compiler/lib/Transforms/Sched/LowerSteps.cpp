//===- LowerSteps.cpp - sched-lower-steps: programs to step functions -----===//
//
// One function per program that calls the runtime's C ABI
// (mllm/runtime/StepABI.h) action by action, with repeated runs of actions
// as scf.for loops, and an early return on the first non-zero status.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/Transforms/Sched/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <map>

namespace mllm::sched_ir {
#define GEN_PASS_DEF_LOWERSTEPSPASS
#include "mllm/Transforms/Sched/Passes.h.inc"
} // namespace mllm::sched_ir

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;
using sched::ActionKind;

namespace {

/// The C ABI function of an action kind.
const char *abiName(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return "mllm_rt_forward";
  case ActionKind::BackwardInput:
    return "mllm_rt_backward_input";
  case ActionKind::BackwardWeight:
    return "mllm_rt_backward_weight";
  case ActionKind::SendActivation:
    return "mllm_rt_send_act";
  case ActionKind::RecvActivation:
    return "mllm_rt_recv_act";
  case ActionKind::SendGrad:
    return "mllm_rt_send_grad";
  case ActionKind::RecvGrad:
    return "mllm_rt_recv_grad";
  case ActionKind::AllReduceGrads:
    return "mllm_rt_all_reduce_grads";
  case ActionKind::OptimizerStep:
    return "mllm_rt_optimizer_step";
  }
  return "";
}

/// i64 operands after ctx of each ABI function.
unsigned abiArity(ActionKind kind) {
  if (sched::isComm(kind))
    return 6; // action, mb, peer, tag, bytes, offset
  if (kind == ActionKind::AllReduceGrads)
    return 3; // action, bytes, offset
  if (kind == ActionKind::OptimizerStep)
    return 1; // action
  return 3;   // action, mb, offset
}

/// The arena offset each action passes: its message buffer, a compute
/// action's saved activations (else its workspace), the all-reduce's
/// gradients; -1 when it has none.
std::vector<int64_t>
actionOffsets(const sched::Program &program,
              const std::optional<sched::MemoryPlan> &plan) {
  std::vector<int64_t> offsets(program.actions.size(), -1);
  if (!plan)
    return offsets;
  std::map<int64_t, int64_t> byAction, workspace;
  std::map<int32_t, int64_t> saved;
  int64_t grads = -1;
  for (const sched::Buffer &b : plan->buffers) {
    switch (b.kind) {
    case sched::BufferKind::Saved:
      saved[b.microbatch] = b.offset;
      break;
    case sched::BufferKind::Workspace:
      workspace[b.action] = b.offset;
      break;
    case sched::BufferKind::Grads:
      grads = b.offset;
      break;
    case sched::BufferKind::Weights:
    case sched::BufferKind::OptimizerState:
      break;
    default:
      byAction[b.action] = b.offset;
    }
  }
  for (size_t i = 0; i < program.actions.size(); ++i) {
    const sched::Action &a = program.actions[i];
    auto at = static_cast<int64_t>(i);
    if (sched::isComm(a.kind)) {
      if (byAction.count(at))
        offsets[i] = byAction[at];
    } else if (a.kind == ActionKind::AllReduceGrads) {
      offsets[i] = grads;
    } else if (a.kind != ActionKind::OptimizerStep) {
      if (saved.count(a.microbatch))
        offsets[i] = saved[a.microbatch];
      else if (workspace.count(at))
        offsets[i] = workspace[at];
    }
  }
  return offsets;
}

class StepBuilder {
public:
  StepBuilder(ModuleOp module, OpBuilder &builder)
      : module(module), builder(builder), ctx(module.getContext()) {
    i32 = builder.getI32Type();
    i64 = builder.getI64Type();
    ptr = LLVM::LLVMPointerType::get(ctx);
  }

  /// Declares the C ABI functions (once).
  void declareABI(Location loc) {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(module.getBody());
    auto declare = [&](StringRef name, unsigned arity) {
      SmallVector<Type> args(1, ptr);
      args.append(arity, i64);
      auto f = func::FuncOp::create(builder, loc, name,
                                    builder.getFunctionType(args, {i32}));
      f.setPrivate();
    };
    declare("mllm_rt_begin", 3);
    for (ActionKind k : {ActionKind::Forward, ActionKind::BackwardInput,
                         ActionKind::BackwardWeight, ActionKind::SendActivation,
                         ActionKind::RecvActivation, ActionKind::SendGrad,
                         ActionKind::RecvGrad, ActionKind::AllReduceGrads,
                         ActionKind::OptimizerStep})
      declare(abiName(k), abiArity(k));
  }

  /// @mllm_step_<index> for `program`.
  void build(Location loc, int64_t index, const sched::StageInfo &stage,
             const sched::Program &program,
             const std::optional<sched::MemoryPlan> &plan, bool loops,
             uint64_t &calls, uint64_t &loopCount) {
    std::vector<int64_t> offsets = actionOffsets(program, plan);
    std::vector<sched::ActionRun> runs;
    if (loops) {
      runs = sched::findActionRuns(program.actions,
                                   sched::computeCollectives(stage, program));
    } else {
      for (size_t i = 0; i < program.actions.size(); ++i)
        runs.push_back({i, 1, 1});
    }
    std::string suffix = std::to_string(index);
    FlatSymbolRefAttr table;
    if (llvm::any_of(runs,
                     [](const sched::ActionRun &r) { return r.times > 1; })) {
      // Offsets of the looped actions, indexed by action.
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPointToEnd(module.getBody());
      auto type = LLVM::LLVMArrayType::get(i64, offsets.size());
      auto data = DenseElementsAttr::get(
          RankedTensorType::get({static_cast<int64_t>(offsets.size())}, i64),
          ArrayRef<int64_t>(offsets));
      std::string name = "mllm_offsets_" + suffix;
      LLVM::GlobalOp::create(builder, loc, type, /*isConstant=*/true,
                             LLVM::Linkage::Internal, name, data);
      table = FlatSymbolRefAttr::get(ctx, name);
    }

    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(module.getBody());
    auto func = func::FuncOp::create(builder, loc, "mllm_step_" + suffix,
                                     builder.getFunctionType({ptr}, {i32}));
    Block *entry = func.addEntryBlock();
    Value ctxArg = entry->getArgument(0);
    Block *exit = new Block();
    exit->addArgument(i32, loc);
    builder.setInsertionPointToStart(entry);
    Value zero = constI32(loc, 0);

    // Returns at once on a non-zero status; continues in a new block.
    auto check = [&](Value status) {
      Value bad = arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::ne,
                                        status, zero);
      Block *next = new Block();
      func.getBody().push_back(next);
      cf::CondBranchOp::create(builder, loc, bad, exit, ValueRange{status},
                               next, ValueRange{});
      builder.setInsertionPointToStart(next);
    };

    SmallVector<Value> beginArgs = {
        ctxArg, constI64(loc, index),
        constI64(loc, static_cast<int64_t>(program.actions.size())),
        constI64(loc, plan ? plan->arenaBytes : -1)};
    check(call(loc, "mllm_rt_begin", beginArgs));
    ++calls;

    for (const sched::ActionRun &run : runs) {
      if (run.times == 1) {
        for (size_t j = 0; j < run.length; ++j) {
          size_t i = run.begin + j;
          const sched::Action &a = program.actions[i];
          Value tag = sched::isComm(a.kind) ? constI64(loc, a.tag) : Value();
          Value mb = sched::perMicrobatch(a.kind) ? constI64(loc, a.microbatch)
                                                  : Value();
          check(callAction(loc, ctxArg, a,
                           constI64(loc, static_cast<int64_t>(i)), mb, tag,
                           constI64(loc, offsets[i])));
          ++calls;
        }
        continue;
      }
      // k = 0 .. times-1: microbatch + k, tag + 2k, action begin + k x length.
      ++loopCount;
      Value lb = arith::ConstantIndexOp::create(builder, loc, 0);
      Value ub = arith::ConstantIndexOp::create(builder, loc, run.times);
      Value one = arith::ConstantIndexOp::create(builder, loc, 1);
      auto loop =
          scf::ForOp::create(builder, loc, lb, ub, one, ValueRange{zero});
      {
        OpBuilder::InsertionGuard inLoop(builder);
        builder.setInsertionPointToStart(loop.getBody());
        Value k = arith::IndexCastOp::create(builder, loc, i64,
                                             loop.getInductionVar());
        Value status = loop.getRegionIterArgs()[0];
        Value twoK = arith::AddIOp::create(builder, loc, k, k);
        Value kLength = arith::MulIOp::create(
            builder, loc, k, constI64(loc, static_cast<int64_t>(run.length)));
        for (size_t j = 0; j < run.length; ++j) {
          size_t i = run.begin + j;
          const sched::Action &a = program.actions[i];
          Value action = arith::AddIOp::create(
              builder, loc, kLength, constI64(loc, static_cast<int64_t>(i)));
          Value mb = arith::AddIOp::create(builder, loc, k,
                                           constI64(loc, a.microbatch));
          Value tag;
          if (sched::isComm(a.kind))
            tag =
                arith::AddIOp::create(builder, loc, twoK, constI64(loc, a.tag));
          Value ok = arith::CmpIOp::create(
              builder, loc, arith::CmpIPredicate::eq, status, zero);
          auto guarded = scf::IfOp::create(builder, loc, TypeRange{i32}, ok,
                                           /*withElseRegion=*/true);
          {
            OpBuilder::InsertionGuard inIf(builder);
            builder.setInsertionPointToStart(guarded.thenBlock());
            Value offset = loadOffset(loc, table, offsets.size(), action);
            Value s = callAction(loc, ctxArg, a, action, mb, tag, offset);
            scf::YieldOp::create(builder, loc, s);
            builder.setInsertionPointToStart(guarded.elseBlock());
            scf::YieldOp::create(builder, loc, status);
          }
          status = guarded.getResult(0);
          ++calls;
        }
        scf::YieldOp::create(builder, loc, status);
      }
      check(loop.getResult(0));
    }
    cf::BranchOp::create(builder, loc, exit, ValueRange{zero});
    func.getBody().push_back(exit);
    builder.setInsertionPointToStart(exit);
    func::ReturnOp::create(builder, loc, exit->getArgument(0));
  }

private:
  Value constI64(Location loc, int64_t v) {
    return arith::ConstantIntOp::create(builder, loc, i64, v);
  }
  Value constI32(Location loc, int32_t v) {
    return arith::ConstantIntOp::create(builder, loc, i32, v);
  }
  Value call(Location loc, StringRef name, ValueRange args) {
    return func::CallOp::create(builder, loc, name, TypeRange{i32}, args)
        .getResult(0);
  }
  Value loadOffset(Location loc, FlatSymbolRefAttr table, size_t size,
                   Value index) {
    Value base = LLVM::AddressOfOp::create(builder, loc, ptr, table);
    auto type = LLVM::LLVMArrayType::get(i64, size);
    Value at = LLVM::GEPOp::create(builder, loc, ptr, type, base,
                                   ArrayRef<LLVM::GEPArg>{0, index});
    return LLVM::LoadOp::create(builder, loc, i64, at);
  }
  Value callAction(Location loc, Value ctxArg, const sched::Action &a,
                   Value action, Value mb, Value tag, Value offset) {
    SmallVector<Value> args = {ctxArg, action};
    if (sched::isComm(a.kind)) {
      args.append(
          {mb, constI64(loc, a.peer), tag, constI64(loc, a.bytes), offset});
    } else if (a.kind == ActionKind::AllReduceGrads) {
      args.append({constI64(loc, a.bytes), offset});
    } else if (a.kind != ActionKind::OptimizerStep) {
      args.append({mb, offset});
    }
    return call(loc, abiName(a.kind), args);
  }

  ModuleOp module;
  OpBuilder &builder;
  MLIRContext *ctx;
  Type i32, i64, ptr;
};

struct LowerStepsPass
    : public sched_ir::impl::LowerStepsPassBase<LowerStepsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<ScheduleOp> schedules(module.getOps<ScheduleOp>());
    if (schedules.size() != 1) {
      module.emitError("sched-lower-steps needs exactly one sched.schedule, "
                       "the module has ")
          << schedules.size();
      return signalPassFailure();
    }
    ScheduleOp schedule = schedules.front();
    ScheduleContents contents = readSchedule(schedule);
    // (The option itself would stream as a char: 99 printed 'c'.)
    const int64_t only = program;
    if (only < -1 || only >= static_cast<int64_t>(contents.programs.size())) {
      schedule.emitError("no program ")
          << only << " to lower; the schedule has " << contents.programs.size()
          << " (program=0.."
          << static_cast<int64_t>(contents.programs.size()) - 1
          << ", or -1 for all)";
      return signalPassFailure();
    }
    std::vector<std::optional<sched::MemoryPlan>> plans;
    for (ProgramOp op : contents.programOps) {
      auto plan = readMemoryPlan(op);
      if (!plan) {
        op.emitError(llvm::toString(plan.takeError()));
        return signalPassFailure();
      }
      plans.push_back(std::move(*plan));
    }

    // Everything else goes: the result is a module of step functions.
    Location loc = schedule.getLoc();
    for (Operation &op : llvm::make_early_inc_range(*module.getBody()))
      op.erase();
    OpBuilder builder(module.getContext());
    StepBuilder steps(module, builder);
    steps.declareABI(loc);
    uint64_t calls = 0, loopCount = 0;
    for (size_t s = 0; s < contents.programs.size(); ++s) {
      if (program >= 0 && static_cast<int64_t>(s) != program)
        continue;
      const sched::Program &p = contents.programs[s];
      steps.build(loc, static_cast<int64_t>(s), contents.graph.stages[p.stage],
                  p, plans[s], loops, calls, loopCount);
    }
    numCalls += calls;
    numLoops += loopCount;
  }
};

} // namespace
