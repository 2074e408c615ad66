//===- Plan.cpp - the YAML plan and the --explain report ------------------===//
//
// Both read the IR after the compile pipeline (mllm.pipeline with its
// stages, mllm.cp_assignment) and the frozen analysis (JobModel.h), so they
// print exactly what the passes decided.
//
//===----------------------------------------------------------------------===//
#include "Plan.h"

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Plan/JobModel.h"
#include "mllm/Sched/Programs.h"
#include "mllm/Dialect/Sched/IR/SchedOps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/YAMLTraits.h"

#include <algorithm>

using namespace mlir;
using namespace mllm;

namespace {

/// A double-quoted YAML string.
std::string quote(StringRef s) { return "\"" + llvm::yaml::escape(s) + "\""; }

std::string ms(double value) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%.3f", value);
  return s;
}

const char *boolText(bool b) { return b ? "true" : "false"; }

struct Job {
  ModelOp model;
  DataOp data;
  ClusterOp cluster;
  ParallelOp parallel;
  TrainOp train;
  PipelineOp pipeline;
};

FailureOr<Job> getJob(ModuleOp module) {
  Job job{getFirst<ModelOp>(module),   getFirst<DataOp>(module),
          getFirst<ClusterOp>(module), getFirst<ParallelOp>(module),
          getFirst<TrainOp>(module),   getFirst<PipelineOp>(module)};
  if (!job.model || !job.data || !job.cluster || !job.pipeline)
    return module.emitError(
        "internal error: the compiled job has no pipeline plan");
  return job;
}

ModuleParallelOp parallelOf(Job &job, StringRef part) {
  return job.parallel ? job.parallel.lookupPart(part) : ModuleParallelOp();
}

/// The encoders, in model order, then the LLM.
SmallVector<Operation *> partsOf(ModelOp model) {
  SmallVector<Operation *> parts;
  for (auto enc : model.getBody().front().getOps<EncoderOp>())
    parts.push_back(enc);
  parts.push_back(model.getLLM());
  return parts;
}

StringRef nameOf(Operation *op) {
  return SymbolTable::getSymbolName(op).getValue();
}

int64_t numBlocks(Operation *part) {
  int64_t blocks = 0, layers = 0;
  for (auto g : part->getRegion(0).front().getOps<LayersOp>()) {
    layers += g.getCount();
    if (isPartitionBlock(g.getKind()))
      blocks += g.getCount();
  }
  return blocks ? blocks : layers;
}

StringRef inputGradText(const GroupGrads &g) {
  if (g.inputGrad)
    return "all";
  if (g.inputGradAfterFirst)
    return "after_first";
  return "none";
}

/// "weight grad, input grad, recompute" or "no backward".
std::string describe(const GroupGrads &g) {
  SmallVector<std::string> what;
  if (g.weightGrad)
    what.push_back("weight grad");
  if (g.inputGrad)
    what.push_back("input grad");
  else if (g.inputGradAfterFirst)
    what.push_back("input grad (not the first layer)");
  if (g.recompute)
    what.push_back("recompute");
  if (what.empty())
    return "no backward";
  return llvm::join(what, " + ");
}

bool isFrozen(Operation *op) {
  if (auto enc = dyn_cast<EncoderOp>(op))
    return enc.getFrozen();
  if (auto proj = dyn_cast<ProjectorOp>(op))
    return proj.getFrozen();
  return cast<LLMOp>(op).getFrozen();
}

Recompute recomputeOf(Operation *op) {
  if (auto enc = dyn_cast<EncoderOp>(op))
    return enc.getRecompute();
  if (auto llm = dyn_cast<LLMOp>(op))
    return llm.getRecompute();
  return Recompute::None;
}

} // namespace

//===----------------------------------------------------------------------===//
// YAML plan
//===----------------------------------------------------------------------===//

/// `[a, b, c]`.
static void writeList(raw_ostream &os, ArrayRef<int64_t> values) {
  os << "[";
  llvm::interleaveComma(values, os);
  os << "]";
}

/// `[[a, b], [c, d]]`.
static void writeRankGroups(raw_ostream &os,
                            ArrayRef<SmallVector<int64_t>> groups) {
  os << "[";
  llvm::interleaveComma(groups, os, [&](const SmallVector<int64_t> &group) {
    writeList(os, group);
  });
  os << "]";
}

/// The `schedule:` section (version 2): the verified sched.schedule, one
/// program per pipeline stage with its ranks, communicators and actions.
static LogicalResult writeSchedule(ModuleOp module, raw_ostream &os) {
  auto schedules = module.getOps<sched_ir::ScheduleOp>();
  if (schedules.empty())
    return module.emitError("internal error: the compiled job has no "
                            "schedule");
  sched_ir::ScheduleOp schedule = *schedules.begin();
  sched_ir::ScheduleContents contents = sched_ir::readSchedule(schedule);
  const sched::PipelineGraph &graph = contents.graph;

  os << "schedule:\n";
  os << "  kind: " << sched_ir::stringifyScheduleKind(schedule.getKind())
     << "\n";
  os << "  microbatches: " << schedule.getMicrobatches() << "\n";
  // Which program every global rank runs (-1: none).
  int64_t worldSize = 0;
  for (sched_ir::ProgramOp program : contents.programOps)
    for (int64_t rank : program.getRanks())
      worldSize = std::max(worldSize, rank + 1);
  if (ClusterOp cluster = getFirst<ClusterOp>(module))
    worldSize = std::max<int64_t>(worldSize, cluster.getNodes() *
                                                 cluster.getGpusPerNode());
  SmallVector<int64_t> rankProgram(worldSize, -1);
  for (auto [index, program] : llvm::enumerate(contents.programOps))
    for (int64_t rank : program.getRanks())
      if (rankProgram[rank] < 0)
        rankProgram[rank] = static_cast<int64_t>(index);
  os << "  rank_program: ";
  writeList(os, rankProgram);
  os << "\n";

  os << "  programs:\n";
  auto nameList = [&](ArrayRef<int> stages) {
    os << "[";
    llvm::interleaveComma(stages, os,
                          [&](int s) { os << quote(graph.stages[s].name); });
    os << "]";
  };
  for (auto [s, program] : llvm::enumerate(contents.programOps)) {
    const sched::StageInfo &stage = graph.stages[s];
    int64_t first = program.getFirstRank(), stride = program.getDpStride();
    int64_t dp = program.getDp(), cp = program.getCp(), tp = program.getTp();
    // sched.program records the dp stride; inside a replica the rank map
    // lays out cp slots of tp ranks (its cp stride is tp, its verifier
    // enforces TP innermost).
    auto rankOf = [&](int64_t d, int64_t c, int64_t t) {
      return first + d * stride + c * tp + t;
    };
    os << "    - name: " << quote(program.getSymName()) << "\n";
    os << "      stage: " << program.getStage() << "\n";
    os << "      part: " << quote(program.getPart()) << "\n";
    os << "      llm: " << boolText(program.getLlm()) << "\n";
    os << "      max_in_flight: " << program.getMaxInFlight() << "\n";
    os << "      ranks: {first: " << first << ", dp: " << dp
       << ", dp_stride: " << stride << ", cp: " << cp << ", tp: " << tp
       << "}\n";
    os << "      prev: ";
    nameList(stage.prev);
    os << "\n";
    os << "      next: ";
    nameList(stage.next);
    os << "\n";
    SmallVector<SmallVector<int64_t>> replicas, tpGroups, cpGroups, gradGroups;
    for (int64_t d = 0; d < dp; ++d) {
      SmallVector<int64_t> &replica = replicas.emplace_back();
      for (int64_t c = 0; c < cp; ++c) {
        SmallVector<int64_t> &group = tpGroups.emplace_back();
        for (int64_t t = 0; t < tp; ++t) {
          replica.push_back(rankOf(d, c, t));
          group.push_back(rankOf(d, c, t));
        }
      }
      for (int64_t t = 0; t < tp; ++t) {
        SmallVector<int64_t> &group = cpGroups.emplace_back();
        for (int64_t c = 0; c < cp; ++c)
          group.push_back(rankOf(d, c, t));
      }
    }
    for (int64_t t = 0; t < tp; ++t) {
      SmallVector<int64_t> &group = gradGroups.emplace_back();
      for (int64_t d = 0; d < dp; ++d)
        for (int64_t c = 0; c < cp; ++c)
          group.push_back(rankOf(d, c, t));
    }
    os << "      groups:\n";
    os << "        replicas: ";
    writeRankGroups(os, replicas);
    os << "\n        tp: ";
    writeRankGroups(os, tpGroups);
    os << "\n        cp: ";
    writeRankGroups(os, cpGroups);
    os << "\n        grad_sync: ";
    writeRankGroups(os, gradGroups);
    os << "\n";
    os << "      actions:\n";
    for (Operation &op : program.getBody().front()) {
      os << "        - {op: " << op.getName().stripDialect();
      llvm::TypeSwitch<Operation *>(&op)
          .Case<sched_ir::ForwardOp, sched_ir::BackwardInputOp,
                sched_ir::BackwardWeightOp>([&](auto compute) {
            os << ", mb: " << compute.getMicrobatch();
            SmallVector<StringRef> collectives;
            if (compute.getTpAllReduce())
              collectives.push_back("tp_all_reduce");
            if (compute.getCpAllGather())
              collectives.push_back("cp_all_gather");
            if (compute.getCpReduceScatter())
              collectives.push_back("cp_reduce_scatter");
            if (!collectives.empty())
              os << ", collectives: [" << llvm::join(collectives, ", ") << "]";
          })
          .Case<sched_ir::SendActOp, sched_ir::RecvActOp, sched_ir::SendGradOp,
                sched_ir::RecvGradOp>([&](auto p2p) {
            os << ", mb: " << p2p.getMicrobatch()
               << ", peer: " << quote(p2p.getPeer())
               << ", tag: " << p2p.getTag() << ", shape: [";
            llvm::interleaveComma(sched_ir::fromShapeAttr(p2p.getShape()), os,
                                  [&](const sched::TensorShape &tensor) {
                                    os << "{dims: ";
                                    writeList(os, tensor.dims);
                                    os << ", dtype: " << tensor.elementType
                                       << "}";
                                  });
            os << "], bytes: " << p2p.getBytes();
          })
          .Case([&](sched_ir::AllReduceGradsOp ar) {
            os << ", bytes: " << ar.getBytes() << ", group: grad_sync";
          });
      os << "}\n";
    }
  }
  return success();
}

LogicalResult mllm::writePlan(ModuleOp module, StringRef specFile,
                              raw_ostream &os) {
  FailureOr<Job> got = getJob(module);
  if (failed(got))
    return failure();
  Job &job = *got;
  auto grads = analyzeGradients(job.model);
  if (failed(grads))
    return failure();
  ClusterOp cluster = job.cluster;
  DataOp data = job.data;
  PipelineOp pipeline = job.pipeline;

  os << "# mllmc plan; the schema is docs/plan-format.md\n";
  os << "version: 2\n";
  os << "job:\n";
  os << "  spec: " << quote(specFile) << "\n";
  os << "  model: " << quote(job.model.getSymName()) << "\n";
  os << "  world_size: " << cluster.getNodes() * cluster.getGpusPerNode()
     << "\n";
  os << "  nodes: " << cluster.getNodes() << "\n";
  os << "  gpus_per_node: " << cluster.getGpusPerNode() << "\n";
  os << "  gpu: " << quote(cluster.getGpu()) << "\n";
  os << "  gpu_memory_bytes: " << cluster.getMemory() << "\n";
  os << "  dp: " << (job.parallel ? job.parallel.getDp() : 1) << "\n";
  os << "  layout: " << stringifyEncoderLayout(pipeline.getLayout()) << "\n";
  os << "  partition: " << stringifyPartitionPolicy(pipeline.getPolicy())
     << "\n";
  os << "  seq_len: " << data.getSeqLen() << "\n";
  os << "  microbatch_size: " << data.getMicrobatchSize() << "\n";
  os << "  microbatches: " << data.getMicrobatches() << "\n";
  if (TrainOp train = job.train) {
    os << "  precision: " << stringifyPrecision(train.getPrecision()) << "\n";
    os << "  optimizer: " << stringifyOptimizer(train.getOptimizer()) << "\n";
  }
  os << "pipeline:\n";
  os << "  gpus_per_replica: " << pipeline.getGpus() << "\n";
  os << "  bottleneck_ms: " << ms(pipeline.getBottleneck().convertToDouble())
     << "\n";
  os << "  iteration_ms: " << ms(pipeline.getIteration().convertToDouble())
     << "\n";

  auto writeGroups = [&](Operation *part, StringRef indent) {
    os << indent << "groups:\n";
    for (auto g : part->getRegion(0).front().getOps<LayersOp>()) {
      const GroupGrads &f = (*grads)[g];
      os << indent << "  - {name: " << quote(g.getName())
         << ", kind: " << stringifyLayerKind(g.getKind())
         << ", count: " << g.getCount()
         << ", weight_grad: " << boolText(f.weightGrad)
         << ", input_grad: " << inputGradText(f)
         << ", recompute: " << boolText(f.recompute) << "}\n";
    }
  };
  os << "parts:\n";
  llvm::StringMap<int64_t> stageCounts;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>())
    ++stageCounts[stage.getPart()];
  for (Operation *part : partsOf(job.model)) {
    StringRef name = nameOf(part);
    ModuleParallelOp mp = parallelOf(job, name);
    os << "  - name: " << quote(name) << "\n";
    os << "    kind: " << (isa<LLMOp>(part) ? "llm" : "encoder") << "\n";
    if (auto enc = dyn_cast<EncoderOp>(part)) {
      os << "    instance: " << quote(enc.getInstance()) << "\n";
      os << "    modality: " << stringifyModalityKind(enc.getModality())
         << "\n";
    } else {
      os << "    instance: " << quote(cast<LLMOp>(part).getInstance()) << "\n";
    }
    os << "    frozen: " << boolText(isFrozen(part)) << "\n";
    os << "    recompute: " << stringifyRecompute(recomputeOf(part)) << "\n";
    os << "    tp: " << (mp ? mp.getTp() : 1) << "\n";
    os << "    pp: " << stageCounts[name] << "\n";
    os << "    pp_auto: " << boolText(mp && mp.getPp() == 0) << "\n";
    os << "    cp: " << (mp ? mp.getCp() : 1) << "\n";
    os << "    blocks: " << numBlocks(part) << "\n";
    writeGroups(part, "    ");
    if (ProjectorOp proj = projectorOf(job.model, name)) {
      os << "    projector:\n";
      os << "      name: " << quote(proj.getSymName()) << "\n";
      os << "      kind: " << stringifyProjectorKind(proj.getKind()) << "\n";
      os << "      merge: " << proj.getMerge() << "\n";
      os << "      frozen: " << boolText(proj.getFrozen()) << "\n";
      writeGroups(proj, "      ");
    }
  }

  os << "stages:\n";
  llvm::StringMap<int64_t> index;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>()) {
    os << "  - name: " << quote(stage.getSymName()) << "\n";
    os << "    part: " << quote(stage.getPart()) << "\n";
    os << "    index: " << index[stage.getPart()]++ << "\n";
    os << "    layers: [" << stage.getBegin() << ", " << stage.getEnd()
       << "]\n";
    os << "    with: [";
    if (auto with = stage.getWith())
      llvm::interleaveComma(with->getAsValueRange<StringAttr>(), os,
                            [&](StringRef s) { os << quote(s); });
    os << "]\n";
    os << "    fwd_ms: " << ms(stage.getFwd().convertToDouble()) << "\n";
    os << "    bwd_weight_ms: " << ms(stage.getBwdW().convertToDouble())
       << "\n";
    os << "    bwd_input_ms: " << ms(stage.getBwdD().convertToDouble()) << "\n";
    os << "    recompute_ms: " << ms(stage.getRecompute().convertToDouble())
       << "\n";
    if (auto memory = stage.getMemory())
      os << "    memory_mib: {total: " << *memory
         << ", weights: " << *stage.getWeights()
         << ", grads: " << *stage.getGrads()
         << ", optimizer: " << *stage.getOptimizer()
         << ", activations: " << *stage.getActivations()
         << ", in_flight: " << *stage.getInFlight() << "}\n";
    if (auto first = stage.getFirstRank())
      os << "    ranks: {first: " << *first << ", end: " << *stage.getEndRank()
         << ", dp_stride: " << *stage.getDpStride()
         << ", cp_stride: " << *stage.getCpStride()
         << ", tp_stride: " << *stage.getTpStride() << "}\n";
  }

  os << "cp_assignments:";
  auto assignments = module.getOps<CPAssignmentOp>();
  if (assignments.empty())
    os << " []";
  os << "\n";
  for (CPAssignmentOp cp : assignments) {
    os << "  - part: " << quote(cp.getPart()) << "\n";
    os << "    cp: " << cp.getCp() << "\n";
    os << "    policy: " << stringifyCPBalance(cp.getPolicy()) << "\n";
    os << "    optimal: " << boolText(cp.getOptimal()) << "\n";
    os << "    tokens: " << cp.getTokens() << "\n";
    os << "    block: " << cp.getBlock() << "\n";
    os << "    key_tile: " << cp.getKeyTile() << "\n";
    os << "    ranks:\n";
    for (int64_t r = 0; r < static_cast<int64_t>(cp.getCp()); ++r) {
      os << "      - [";
      llvm::interleaveComma(
          cp.getRankRanges(r), os, [&](std::pair<int64_t, int64_t> range) {
            os << "[" << range.first << ", " << range.second << "]";
          });
      os << "]\n";
    }
    os << "    workload: [";
    llvm::interleaveComma(cp.getWorkload(), os);
    os << "]\n";
    os << "    imbalance: "
       << llvm::format("%.4f", cp.getImbalance().convertToDouble()) << "\n";
  }
  return writeSchedule(module, os);
}

//===----------------------------------------------------------------------===//
// --explain
//===----------------------------------------------------------------------===//

LogicalResult mllm::printExplain(ModuleOp module, raw_ostream &os) {
  FailureOr<Job> got = getJob(module);
  if (failed(got))
    return failure();
  Job &job = *got;
  auto grads = analyzeGradients(job.model);
  if (failed(grads))
    return failure();
  PipelineOp pipeline = job.pipeline;

  // Frozen analysis, per part: runs of groups with the same flags.
  os << "frozen analysis (the backward each layer group runs):\n";
  auto summarize = [&](Operation *part) {
    os << "  " << nameOf(part) << " (" << (isFrozen(part) ? "frozen" : "trains")
       << "): ";
    SmallVector<std::pair<std::string, std::string>> runs;
    for (auto g : part->getRegion(0).front().getOps<LayersOp>()) {
      std::string what = describe((*grads)[g]);
      std::string label = g.getName().str();
      if (g.getCount() > 1)
        label += " x" + std::to_string(g.getCount());
      if (!runs.empty() && runs.back().second == what)
        runs.back().first += ", " + label;
      else
        runs.push_back({label, what});
    }
    if (runs.size() == 1) {
      os << runs.front().second;
      if (runs.front().second == "no backward")
        os << (isFrozen(part) ? " (no trainable layer upstream)" : "");
    } else {
      llvm::ListSeparator sep("; ");
      for (auto &[label, what] : runs)
        os << sep << label << ": " << what;
    }
    os << "\n";
  };
  for (Operation *part : partsOf(job.model)) {
    summarize(part);
    if (ProjectorOp proj = projectorOf(job.model, nameOf(part)))
      summarize(proj);
  }

  PartitionPolicy policy = pipeline.getPolicy();
  double bottleneck = pipeline.getBottleneck().convertToDouble();
  os << "\npipeline: " << stringifyPartitionPolicy(policy) << " partition, "
     << stringifyEncoderLayout(pipeline.getLayout()) << ", "
     << pipeline.getMicrobatches() << " microbatches, " << pipeline.getGpus()
     << " GPUs per replica\n";
  os << "  bottleneck " << ms(bottleneck) << " ms (F+B of the slowest stage), "
     << "estimated iteration " << ms(pipeline.getIteration().convertToDouble())
     << " ms\n\n";

  // The table.
  struct Row {
    std::string cells[10];
  };
  std::vector<Row> rows;
  rows.push_back({{"stage", "part", "layers", "F ms", "Bw ms", "Bd ms",
                   "recompute ms", "F+B ms", "memory", "why"}});
  llvm::StringMap<int64_t> stageCounts;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>())
    ++stageCounts[stage.getPart()];
  for (auto stage : pipeline.getBody().front().getOps<StageOp>()) {
    Operation *part =
        SymbolTable::lookupSymbolIn(job.model, stage.getPartAttr());
    double fwd = stage.getFwd().convertToDouble();
    double bw = stage.getBwdW().convertToDouble();
    double bd = stage.getBwdD().convertToDouble();
    double total = fwd + stage.getBackward();
    ModuleParallelOp mp = parallelOf(job, stage.getPart());

    SmallVector<std::string> why;
    // What backward runs, and why.
    bool frozen = part && isFrozen(part);
    // A frozen part's own layers compute no weight gradients; without
    // input gradients they run no backward at all (what rides with them,
    // a trainable projector, may).
    // The frozen analysis' flags, not the (possibly rounded or profiled)
    // times, say which backward runs.
    bool passesGrads = false;
    if (part)
      part->walk([&](LayersOp group) {
        passesGrads |= group->hasAttr("needs_input_grad") ||
                       group->hasAttr("needs_input_grad_after_first");
      });
    if (frozen && !passesGrads)
      why.push_back("frozen, upstream of every trainable layer: no backward");
    else if (frozen)
      why.push_back("frozen, passes input gradients to trainable layers "
                    "upstream");
    else
      why.push_back("trains");
    if (auto with = stage.getWith())
      for (StringRef extra : with->getAsValueRange<StringAttr>()) {
        size_t dot = extra.find('.');
        if (dot == StringRef::npos)
          continue;
        ProjectorOp proj = projectorOf(job.model, stage.getPart());
        if (proj && !proj.getFrozen() && frozen) {
          why.push_back("+ trainable projector '" +
                        extra.take_front(dot).str() + "' (weight grad)");
          break;
        }
      }
    // Where the boundaries come from.
    int64_t count = stageCounts[stage.getPart()];
    std::string placement;
    if (count == 1)
      placement = "the part's only stage";
    else if (policy == PartitionPolicy::FrozenAware)
      placement = "balanced on F+B";
    else if (policy == PartitionPolicy::FrozenUnaware)
      placement = "balanced as if every layer trained (frozen_unaware)";
    else if (policy == PartitionPolicy::Uniform)
      placement = "equal block counts (uniform)";
    else
      placement = "explicit stages";
    if (std::abs(total - bottleneck) < 5e-4)
      placement += ": the bottleneck, " + ms(total) + " ms";
    else if (count > 1 && (policy == PartitionPolicy::FrozenAware ||
                           policy == PartitionPolicy::FrozenUnaware))
      placement += ": bottleneck " + ms(bottleneck) + " ms";
    why.push_back(placement);
    if (mp && mp.getPp() == 0)
      why.push_back("pp = auto chose " + std::to_string(count) +
                    (count == 1 ? " stage" : " stages"));

    Row row;
    row.cells[0] = stage.getSymName().str();
    row.cells[1] = stage.getPart().str();
    row.cells[2] = "[" + std::to_string(stage.getBegin()) + ", " +
                   std::to_string(stage.getEnd()) + ")";
    row.cells[3] = ms(fwd);
    row.cells[4] = ms(bw);
    row.cells[5] = ms(bd);
    row.cells[6] = ms(stage.getRecompute().convertToDouble());
    row.cells[7] = ms(total);
    if (auto memory = stage.getMemory()) {
      std::string s;
      llvm::raw_string_ostream os(s);
      if (*memory < 1024)
        os << *memory << " MiB";
      else
        os << llvm::format("%.2f", static_cast<double>(*memory) / 1024.0)
           << " GiB";
      row.cells[8] = s;
    } else {
      row.cells[8] = "-";
    }
    row.cells[9] = llvm::join(why, "; ");
    rows.push_back(std::move(row));
  }
  size_t widths[10] = {};
  for (const Row &row : rows)
    for (size_t c = 0; c < 10; ++c)
      widths[c] = std::max(widths[c], row.cells[c].size());
  for (const Row &row : rows) {
    for (size_t c = 0; c < 10; ++c) {
      // Numbers right-aligned, text left-aligned, no trailing blanks.
      bool numeric = c >= 3 && c <= 8;
      if (c == 9) {
        os << row.cells[c];
        break;
      }
      if (numeric)
        os.indent(widths[c] - row.cells[c].size()) << row.cells[c];
      else
        os << row.cells[c] << std::string(widths[c] - row.cells[c].size(), ' ');
      os << "  ";
    }
    os << "\n";
  }
  return success();
}
