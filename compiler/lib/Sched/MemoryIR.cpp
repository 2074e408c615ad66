//===- MemoryIR.cpp - the static memory plan in the sched IR --------------===//
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/ArenaFit.h"
#include "mllm/runtime/SendRelease.h"

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mllm;
using namespace mllm::sched_ir;

DictionaryAttr sched_ir::toMemoryAttr(MLIRContext *context,
                                      const sched::MemoryPlan &plan) {
  Builder b(context);
  SmallVector<Attribute> buffers;
  buffers.reserve(plan.buffers.size());
  for (const sched::Buffer &buf : plan.buffers) {
    SmallVector<NamedAttribute, 6> fields;
    fields.push_back(
        b.getNamedAttr("kind", b.getStringAttr(bufferKindName(buf.kind))));
    if (buf.microbatch >= 0)
      fields.push_back(
          b.getNamedAttr("mb", b.getI64IntegerAttr(buf.microbatch)));
    if (buf.action >= 0)
      fields.push_back(
          b.getNamedAttr("action", b.getI64IntegerAttr(buf.action)));
    fields.push_back(b.getNamedAttr("bytes", b.getI64IntegerAttr(buf.bytes)));
    fields.push_back(
        b.getNamedAttr("live", b.getDenseI64ArrayAttr({buf.first, buf.last})));
    fields.push_back(b.getNamedAttr("offset", b.getI64IntegerAttr(buf.offset)));
    buffers.push_back(b.getDictionaryAttr(fields));
  }
  return b.getDictionaryAttr(
      {b.getNamedAttr("arena", b.getI64IntegerAttr(plan.arenaBytes)),
       b.getNamedAttr("buffers", b.getArrayAttr(buffers))});
}

static llvm::Error malformed(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "malformed '" + kMemoryAttrName + "': " + why);
}

llvm::Expected<std::optional<sched::MemoryPlan>>
sched_ir::readMemoryPlan(ProgramOp program) {
  Attribute raw = program->getAttr(kMemoryAttrName);
  if (!raw)
    return std::nullopt;
  auto dict = dyn_cast<DictionaryAttr>(raw);
  if (!dict)
    return malformed("expected a dictionary");
  auto arena = dict.getAs<IntegerAttr>("arena");
  auto buffers = dict.getAs<ArrayAttr>("buffers");
  if (!arena || !buffers)
    return malformed("expected 'arena' (an integer) and 'buffers' (an array)");
  sched::MemoryPlan plan;
  plan.arenaBytes = arena.getInt();
  for (auto [i, attr] : llvm::enumerate(buffers)) {
    auto buf = dyn_cast<DictionaryAttr>(attr);
    auto where = [&, i = i](const llvm::Twine &what) {
      return malformed(llvm::formatv("buffer {0}: ", i) + what);
    };
    if (!buf)
      return where("expected a dictionary");
    auto kind = buf.getAs<StringAttr>("kind");
    auto bytes = buf.getAs<IntegerAttr>("bytes");
    auto offset = buf.getAs<IntegerAttr>("offset");
    auto live = buf.getAs<DenseI64ArrayAttr>("live");
    if (!kind || !bytes || !offset || !live || live.size() != 2)
      return where("expected 'kind', 'bytes', 'offset' and 'live' "
                   "(array<i64: first, last>)");
    std::optional<sched::BufferKind> k = sched::parseBufferKind(kind);
    if (!k)
      return where("unknown kind '" + kind.getValue() + "'");
    sched::Buffer b;
    b.kind = *k;
    b.bytes = bytes.getInt();
    b.offset = offset.getInt();
    b.first = live[0];
    b.last = live[1];
    if (auto mb = buf.getAs<IntegerAttr>("mb"))
      b.microbatch = static_cast<int32_t>(mb.getInt());
    if (auto action = buf.getAs<IntegerAttr>("action"))
      b.action = action.getInt();
    plan.buffers.push_back(b);
  }
  return std::optional<sched::MemoryPlan>(std::move(plan));
}

namespace {

/// Calls fn(stage) for every mllm.stage a GPU of `program` holds (colocated
/// encoders and chains put several on one).
template <typename Fn>
void forEachStageOn(ModuleOp module, ProgramOp program, Fn fn) {
  for (PipelineOp pipeline : module.getOps<PipelineOp>())
    for (StageOp stage : pipeline.getBody().front().getOps<StageOp>()) {
      bool sameRanks = stage.getFirstRank() &&
                       *stage.getFirstRank() == program.getFirstRank();
      bool sameName =
          !stage.getFirstRank() && stage.getSymName() == program.getSymName();
      if (sameRanks || sameName)
        fn(stage);
    }
}

constexpr int64_t kMiB = 1024 * 1024;

} // namespace

std::optional<sched::StageSizes> sched_ir::costModelSizes(ModuleOp module,
                                                          ProgramOp program) {
  std::optional<sched::StageSizes> sizes;
  auto add = [&](StageOp stage) {
    if (!stage.getWeights())
      return;
    if (!sizes)
      sizes.emplace();
    sizes->weights += static_cast<int64_t>(*stage.getWeights()) * kMiB;
    sizes->grads += static_cast<int64_t>(*stage.getGrads()) * kMiB;
    sizes->optimizer += static_cast<int64_t>(*stage.getOptimizer()) * kMiB;
    sizes->savedPerMicrobatch +=
        static_cast<int64_t>(*stage.getActivations()) * kMiB;
  };
  forEachStageOn(module, program, add);
  return sizes;
}

LogicalResult
sched_ir::checkScheduleMemory(ModuleOp module, ScheduleOp schedule,
                              const ScheduleContents &contents,
                              std::vector<sched::MemoryPlan> plans) {
  int64_t capacity = 0;
  module.walk([&](ClusterOp cluster) {
    capacity = static_cast<int64_t>(cluster.getMemory());
  });
  if (capacity <= 0)
    return success();
  sched::PipelineGraph graph = contents.graph;
  std::vector<sched::Program> programs = contents.programs;
  bool computed = plans.empty();
  std::vector<sched::StageSizes> sizes;
  for (auto [s, op] : llvm::enumerate(contents.programOps)) {
    std::optional<sched::StageSizes> model = costModelSizes(module, op);
    if (!model)
      return success();
    sched::StageInfo &info = graph.stages[programs[s].stage];
    info.memoryCapacity = capacity;
    // The estimate also holds the messages (sends per microbatch, transit).
    int64_t sends = 0, transit = 0;
    forEachStageOn(module, op, [&](StageOp stage) {
      sends += static_cast<int64_t>(stage.getSends().value_or(0)) * kMiB;
      transit += static_cast<int64_t>(stage.getTransit().value_or(0)) * kMiB;
    });
    info.staticBytes =
        model->weights + model->grads + model->optimizer + transit;
    info.activationBytesPerMicrobatch = model->savedPerMicrobatch + sends;
    sizes.push_back(*model);
  }
  if (computed) {
    std::vector<std::vector<int64_t>> releases =
        sched::sendReleases(graph, programs);
    for (size_t s = 0; s < programs.size(); ++s)
      plans.push_back(sched::planMemory(programs[s], sizes[s], releases[s]));
  }
  llvm::Error e =
      sched::checkArenas(graph, programs, plans, schedule.getKind());
  if (!e)
    return success();
  llvm::handleAllErrors(
      std::move(e),
      [&](const sched::ScheduleError &e) {
        Operation *at = schedule;
        for (auto [s, op] : llvm::enumerate(contents.programOps))
          if (programs[s].stage == e.stage)
            at = op;
        at->emitError(e.message);
      },
      [&](const llvm::ErrorInfoBase &e) { schedule->emitError(e.message()); });
  return failure();
}
