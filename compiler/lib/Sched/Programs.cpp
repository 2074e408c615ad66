//===- Programs.cpp - sched IR <-> schedule programs ----------------------===//
#include "mllm/Sched/Programs.h"
#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;

LogicalResult sched_ir::checkScheduleSize(ModuleOp module,
                                          const sched::PipelineGraph &graph) {
  auto stages = static_cast<int64_t>(graph.stages.size());
  if (bounds::scheduleSteps(stages, graph.microbatches))
    return success();
  Location loc = module.getLoc();
  for (DataOp data : module.getOps<DataOp>())
    loc = data.getLoc();
  return emitError(loc) << stages << " pipeline stages x " << graph.microbatches
                        << " microbatches exceed the "
                        << bounds::kMaxScheduleSteps
                        << " steps a schedule in IR holds (one sched op per "
                           "action); lower 'microbatches' or pp, or write the "
                           "plan (--emit=plan), whose schedule is generated "
                           "in memory and holds up to "
                        << bounds::kMaxPlanSteps;
}

sched::ActionKind sched_ir::getActionKind(Operation *op) {
  using K = sched::ActionKind;
  return llvm::TypeSwitch<Operation *, K>(op)
      .Case([](ForwardOp) { return K::Forward; })
      .Case([](BackwardInputOp) { return K::BackwardInput; })
      .Case([](BackwardWeightOp) { return K::BackwardWeight; })
      .Case([](SendActOp) { return K::SendActivation; })
      .Case([](RecvActOp) { return K::RecvActivation; })
      .Case([](SendGradOp) { return K::SendGrad; })
      .Case([](RecvGradOp) { return K::RecvGrad; })
      .Case([](AllReduceGradsOp) { return K::AllReduceGrads; })
      .Case([](OptimizerStepOp) { return K::OptimizerStep; })
      .Default(
          [](Operation *) -> K { llvm_unreachable("not a sched action"); });
}

/// The element type named by `t` ("bf16", "f16", "f32", "f64", "iN"), else
/// an integer type of its element bytes.
static Type elementTypeOf(OpBuilder &builder, const sched::TensorShape &t) {
  StringRef name = t.elementType;
  if (name == "bf16")
    return builder.getBF16Type();
  if (name == "f16")
    return builder.getF16Type();
  if (name == "f32")
    return builder.getF32Type();
  if (name == "f64")
    return builder.getF64Type();
  unsigned width;
  if (name.consume_front("i") && !name.getAsInteger(10, width))
    return builder.getIntegerType(width);
  return builder.getIntegerType(static_cast<unsigned>(t.elementBytes * 8));
}

ArrayAttr sched_ir::toShapeAttr(OpBuilder &builder,
                                const sched::MessageShape &shape) {
  SmallVector<Type> tensors;
  for (const sched::TensorShape &t : shape)
    tensors.push_back(RankedTensorType::get(t.dims, elementTypeOf(builder, t)));
  return builder.getTypeArrayAttr(tensors);
}

/// The name TensorShape::elementType uses for `element`: "bf16", "f16",
/// "f32", "f64", "iN", as MLIR prints them (without printing: this runs for
/// every message of a schedule).
static std::string elementTypeName(Type element) {
  if (element.isBF16())
    return "bf16";
  if (element.isF16())
    return "f16";
  if (element.isF32())
    return "f32";
  if (element.isF64())
    return "f64";
  if (element.isSignlessInteger())
    return "i" + std::to_string(element.getIntOrFloatBitWidth());
  std::string name;
  llvm::raw_string_ostream os(name);
  os << element;
  return name;
}

sched::MessageShape sched_ir::fromShapeAttr(ArrayAttr shape) {
  sched::MessageShape result;
  for (Type type : shape.getAsValueRange<TypeAttr>()) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor)
      continue;
    sched::TensorShape t;
    t.dims.assign(tensor.getShape().begin(), tensor.getShape().end());
    Type element = tensor.getElementType();
    t.elementType = elementTypeName(element);
    t.elementBytes =
        element.isIntOrFloat()
            ? static_cast<int64_t>(element.getIntOrFloatBitWidth() / 8)
            : 0;
    result.push_back(std::move(t));
  }
  return result;
}

namespace {
/// The attributes of one schedule's messages, made once per distinct value:
/// a schedule repeats a handful of shapes, peers and sizes millions of times
/// at scale, and uniquing each again costs more than the op itself.
class AttrCache {
public:
  explicit AttrCache(OpBuilder &builder) : builder(builder) {}

  ArrayAttr shape(const sched::MessageShape &shape) {
    for (auto &[known, attr] : shapes)
      if (known == shape)
        return attr;
    shapes.emplace_back(shape, toShapeAttr(builder, shape));
    return shapes.back().second;
  }
  FlatSymbolRefAttr peer(StringRef name) {
    FlatSymbolRefAttr &attr = peers[name];
    if (!attr)
      attr = FlatSymbolRefAttr::get(builder.getContext(), name);
    return attr;
  }
  IntegerAttr integer(uint64_t value) {
    IntegerAttr &attr = integers[value];
    if (!attr)
      attr = builder.getI64IntegerAttr(static_cast<int64_t>(value));
    return attr;
  }

private:
  OpBuilder &builder;
  std::vector<std::pair<sched::MessageShape, ArrayAttr>> shapes;
  llvm::StringMap<FlatSymbolRefAttr> peers;
  llvm::DenseMap<uint64_t, IntegerAttr> integers;
};
} // namespace

ScheduleOp sched_ir::buildSchedule(OpBuilder &builder, Location loc,
                                   const sched::PipelineGraph &graph,
                                   ArrayRef<sched::Program> programs,
                                   sched::ScheduleKind kind,
                                   ArrayRef<Location> stageLocs) {
  using K = sched::ActionKind;
  auto schedule = ScheduleOp::create(builder, loc, kind,
                                     static_cast<uint64_t>(graph.microbatches));
  Block &body = schedule.getBody().emplaceBlock();
  OpBuilder::InsertionGuard guard(builder);
  AttrCache attrs(builder);
  for (const sched::Program &program : programs) {
    const sched::StageInfo &stage = graph.stages[program.stage];
    Location stageLoc = stageLocs.empty() ? loc : stageLocs[program.stage];
    builder.setInsertionPointToEnd(&body);
    auto op = ProgramOp::create(
        builder, stageLoc, stage.name, static_cast<uint64_t>(program.stage),
        stage.part, stage.isLLM, static_cast<uint64_t>(stage.firstRank),
        static_cast<uint64_t>(stage.dp), static_cast<uint64_t>(stage.dpStride),
        static_cast<uint64_t>(stage.cp), static_cast<uint64_t>(stage.tp),
        static_cast<uint64_t>(program.maxInFlight));
    builder.setInsertionPointToEnd(&op.getBody().emplaceBlock());

    auto peer = [&](const sched::Action &action) {
      return attrs.peer(graph.stages[action.peer].name);
    };
    auto tag = [&](const sched::Action &action) {
      return attrs.integer(static_cast<uint64_t>(
          action.tag >= 0 ? action.tag
                          : sched::messageTag(action.kind, action.microbatch)));
    };
    auto shape = [&](const sched::Action &action) {
      return attrs.shape(action.shape.empty() ? sched::opaqueShape(action.bytes)
                                              : action.shape);
    };
    UnitAttr unit = builder.getUnitAttr();
    auto flag = [&](bool on) { return on ? unit : UnitAttr(); };
    std::vector<sched::ComputeCollectives> collectives =
        sched::computeCollectives(stage, program);
    for (auto [index, action] : llvm::enumerate(program.actions)) {
      IntegerAttr mb =
          attrs.integer(static_cast<uint64_t>(std::max(action.microbatch, 0)));
      const sched::ComputeCollectives &c = collectives[index];
      IntegerAttr bytes = attrs.integer(static_cast<uint64_t>(action.bytes));
      switch (action.kind) {
      case K::Forward:
        ForwardOp::create(builder, stageLoc, mb, flag(c.tpAllReduce),
                          flag(c.cpAllGather), flag(c.cpReduceScatter));
        break;
      case K::BackwardInput:
        BackwardInputOp::create(builder, stageLoc, mb, flag(c.tpAllReduce),
                                flag(c.cpAllGather), flag(c.cpReduceScatter));
        break;
      case K::BackwardWeight:
        BackwardWeightOp::create(builder, stageLoc, mb, flag(c.tpAllReduce),
                                 flag(c.cpAllGather), flag(c.cpReduceScatter));
        break;
      case K::SendActivation:
        SendActOp::create(builder, stageLoc, mb, peer(action), tag(action),
                          shape(action), bytes);
        break;
      case K::RecvActivation:
        RecvActOp::create(builder, stageLoc, mb, peer(action), tag(action),
                          shape(action), bytes);
        break;
      case K::SendGrad:
        SendGradOp::create(builder, stageLoc, mb, peer(action), tag(action),
                           shape(action), bytes);
        break;
      case K::RecvGrad:
        RecvGradOp::create(builder, stageLoc, mb, peer(action), tag(action),
                           shape(action), bytes);
        break;
      case K::AllReduceGrads:
        AllReduceGradsOp::create(
            builder, stageLoc, static_cast<uint64_t>(action.bytes),
            static_cast<uint64_t>(stage.dp), static_cast<uint64_t>(stage.cp));
        break;
      case K::OptimizerStep:
        OptimizerStepOp::create(builder, stageLoc);
        break;
      }
    }
  }
  return schedule;
}

ScheduleContents sched_ir::readSchedule(ScheduleOp schedule) {
  using K = sched::ActionKind;
  ScheduleContents result;
  sched::PipelineGraph &graph = result.graph;
  graph.microbatches = static_cast<int64_t>(schedule.getMicrobatches());
  llvm::StringMap<int> index;
  for (ProgramOp op : schedule.getBody().front().getOps<ProgramOp>()) {
    index[op.getSymName()] = static_cast<int>(result.programOps.size());
    result.programOps.push_back(op);
    sched::StageInfo stage;
    stage.name = op.getSymName().str();
    stage.part = op.getPart().str();
    stage.isLLM = op.getLlm();
    stage.firstRank = static_cast<int64_t>(op.getFirstRank());
    stage.dpStride = static_cast<int64_t>(op.getDpStride());
    stage.tp = static_cast<int64_t>(op.getTp());
    stage.cp = static_cast<int64_t>(op.getCp());
    stage.dp = static_cast<int64_t>(op.getDp());
    graph.stages.push_back(std::move(stage));
  }

  // Peers and shapes by attribute: a schedule repeats a few of each.
  llvm::DenseMap<Attribute, int> peers;
  auto peerOf = [&](FlatSymbolRefAttr attr) {
    auto [it, inserted] = peers.try_emplace(attr, 0);
    if (inserted)
      it->second = index.lookup(attr.getValue());
    return it->second;
  };
  llvm::DenseMap<Attribute, sched::MessageShape> shapes;
  auto shapeOf = [&](ArrayAttr attr) -> const sched::MessageShape & {
    auto [it, inserted] = shapes.try_emplace(attr);
    if (inserted)
      it->second = fromShapeAttr(attr);
    return it->second;
  };
  for (auto [s, op] : llvm::enumerate(result.programOps)) {
    sched::StageInfo &stage = graph.stages[s];
    sched::Program program;
    program.stage = static_cast<int>(s);
    program.maxInFlight = static_cast<int64_t>(op.getMaxInFlight());
    std::vector<Operation *> actionOps;
    auto addEdge = [](std::vector<int> &edges, int peer) {
      if (!llvm::is_contained(edges, peer))
        edges.push_back(peer);
    };
    for (Operation &actionOp : op.getBody().front()) {
      sched::Action action;
      action.kind = getActionKind(&actionOp);
      llvm::TypeSwitch<Operation *>(&actionOp)
          .Case<ForwardOp, BackwardInputOp, BackwardWeightOp>([&](auto c) {
            action.microbatch = static_cast<int32_t>(c.getMicrobatch());
          })
          .Case<SendActOp, RecvActOp, SendGradOp, RecvGradOp>([&](auto p) {
            action.microbatch = static_cast<int32_t>(p.getMicrobatch());
            action.peer = peerOf(p.getPeerAttr());
            action.bytes = static_cast<int64_t>(p.getBytes());
            action.tag = static_cast<int64_t>(p.getTag());
            action.shape = shapeOf(p.getShape());
          })
          .Case([&](AllReduceGradsOp ar) {
            action.bytes = static_cast<int64_t>(ar.getBytes());
          });
      switch (action.kind) {
      case K::BackwardInput:
        stage.needsInputGrad = true;
        break;
      case K::BackwardWeight:
        stage.needsWeightGrad = true;
        break;
      case K::SendActivation:
        addEdge(stage.next, action.peer);
        if (action.bytes >= stage.outputBytes) {
          stage.outputBytes = action.bytes;
          stage.outputShape = action.shape;
        }
        break;
      case K::RecvActivation:
        addEdge(stage.prev, action.peer);
        break;
      default:
        break;
      }
      program.actions.push_back(action);
      actionOps.push_back(&actionOp);
    }
    result.programs.push_back(std::move(program));
    result.actionOps.push_back(std::move(actionOps));
  }

  // Whether a gradient goes back along each incoming edge.
  for (auto [s, program] : llvm::enumerate(result.programs)) {
    sched::StageInfo &stage = graph.stages[s];
    stage.gradToPrev.assign(stage.prev.size(), false);
    for (const sched::Action &action : program.actions)
      if (action.kind == K::SendGrad)
        for (auto [i, prev] : llvm::enumerate(stage.prev))
          if (prev == action.peer)
            stage.gradToPrev[i] = true;
  }
  return result;
}
