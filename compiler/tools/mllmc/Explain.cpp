//===- Explain.cpp - the --explain report ---------------------------------===//
//
// Reads the IR after the compile pipeline (mllm.pipeline with its stages)
// and the frozen analysis (JobModel.h), so it prints exactly what the passes
// decided.
//
//===----------------------------------------------------------------------===//
#include "Explain.h"

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Plan/CPSplit.h"
#include "mllm/Plan/JobModel.h"
#include "mllm/Plan/Memory.h"
#include "mllm/Sched/FromIR.h"
#include "mllm/Sched/Generate.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"

#include <algorithm>

using namespace mlir;
using namespace mllm;

namespace {

std::string ms(double value) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%.3f", value);
  return s;
}

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

} // namespace

SmallVector<std::string>
mllm::cappedStages(PipelineOp pipeline, const runtime::PlanSchedule *schedule) {
  SmallVector<std::string> capped;
  auto stages = llvm::to_vector(pipeline.getBody().front().getOps<StageOp>());
  if (stages.empty())
    return capped;
  // What each stage's program holds under memory-aware multimodal 1F1B:
  // the generator carries caps down (plan::WarmupShare), so its programs
  // say. A merged stage is one program: a chain stage "vision_s1+llm_s0",
  // colocated encoders' stage s "vision+audio_s0" (FromIR.cpp).
  llvm::StringMap<int64_t> holds;
  auto record = [&](const sched::PipelineGraph &graph,
                    llvm::ArrayRef<sched::Program> programs) {
    for (auto [info, program] : llvm::zip(graph.stages, programs)) {
      SmallVector<StringRef> names;
      StringRef(info.name).split(names, '+');
      auto suffixOf = [](StringRef name) {
        return sched::partStageIndex(name) ? name.substr(name.rfind("_s"))
                                           : StringRef();
      };
      StringRef shared = suffixOf(names.back());
      for (StringRef name : names)
        holds[suffixOf(name).empty() ? (name + shared).str() : name.str()] =
            program.maxInFlight;
    }
  };
  if (schedule && schedule->kind == "multimodal_1f1b") {
    record(schedule->graph, schedule->programs);
  } else if (llvm::Expected<sched::PipelineGraph> graph =
                 sched::buildPipelineGraph(
                     pipeline->getParentOfType<mlir::ModuleOp>())) {
    record(*graph, sched::generateSchedule(
                       *graph, sched::ScheduleKind::MultimodalOneFOneB));
  } else {
    llvm::consumeError(graph.takeError()); // The stages' own caps then.
  }
  llvm::StringMap<int64_t> counts, index;
  for (StageOp stage : stages)
    ++counts[stage.getPart()];
  StringRef llm = stages.back().getPart(); // The LLM's stages come last.
  int64_t llmStages = counts[llm];
  // A chain is one linear pipeline over its GPU groups.
  int64_t groups = 0;
  for (StageOp stage : stages)
    groups += stage.getColocated() ? 0 : 1;
  bool chain = pipeline.getLayout() == EncoderLayout::Chain;
  int64_t g = -1;
  for (StageOp stage : stages) {
    int64_t i = index[stage.getPart()]++;
    g += stage.getColocated() ? 0 : 1;
    bool isLLM = stage.getPart() == llm;
    // What 1F1B's warm-up wants, what its memory allows, what it holds.
    int64_t wanted =
        chain ? plan::inFlightDepth(true, g, groups, groups,
                                    pipeline.getMicrobatches())
              : plan::inFlightDepth(isLLM, i, counts[stage.getPart()],
                                    llmStages, pipeline.getMicrobatches());
    auto inFlight = stage.getInFlight();
    int64_t own = inFlight ? std::min<int64_t>(*inFlight, wanted) : wanted;
    bool backward =
        stage.getBwdW().convertToDouble() + stage.getBwdD().convertToDouble() >
        0;
    int64_t held = own;
    auto it = holds.find(stage.getSymName());
    if (backward && it != holds.end())
      held = std::min(held, it->second);
    if (held >= wanted)
      continue;
    std::string text = stage.getSymName().str() + " " + std::to_string(held) +
                       " of " + std::to_string(wanted);
    if (held < own)
      text += own < wanted ? " (its memory allows " + std::to_string(own) +
                                 "; an earlier stage's cap holds it back)"
                           : " (an earlier stage's cap holds it back)";
    capped.push_back(text);
  }
  return capped;
}

namespace {

/// How far the search over every cut went: whether the plan is the best
/// the cost model knows of, and if not, why not.
void explainSearch(PipelineOp pipeline, raw_ostream &os) {
  std::optional<SearchCoverage> search = pipeline.getSearch();
  if (!search)
    return;
  int64_t priced = pipeline.getPriced().value_or(0);
  os << "  cut search: " << priced << (priced == 1 ? " plan" : " plans")
     << " priced; ";
  switch (*search) {
  case SearchCoverage::Every:
    os << "every cut of the stage counts tried that could estimate faster "
          "was priced, so no cut of them beats this plan\n";
    return;
  case SearchCoverage::PerPart:
    os << "each part's cuts were searched with the others' held, not all "
          "of their combinations (too many for the budget): a joint change "
          "may estimate faster\n";
    return;
  case SearchCoverage::Colocated:
    os << "the colocated encoders' joint cut is not searched (their "
          "min-max cut or its least-memory variant), so another may "
          "estimate faster; the other parts' cuts are the best with it "
          "held\n";
    return;
  case SearchCoverage::TooLarge:
    os << (pipeline.getLayout() == EncoderLayout::Chain ? "the chain is"
                                                        : "a part is")
       << " too large for the exact search (more than 512 layers, or "
          "stages x layers^2 above 2 x 10^7) and keeps its min-max or "
          "memory cut, so another may estimate faster\n";
    return;
  case SearchCoverage::Budget:
    os << "the search stopped at its budget (docs/plan-format.md, \"Every "
          "cut\"): a cut it did not reach may estimate faster; "
          "--search-budget raises it\n";
    return;
  }
}

/// The capped stages and what that costs the estimate.
void explainMemoryCaps(PipelineOp pipeline,
                       const runtime::PlanSchedule *schedule, raw_ostream &os) {
  SmallVector<std::string> capped = cappedStages(pipeline, schedule);
  if (capped.empty())
    return;
  os << "  memory caps the microbatches in flight (held of what 1F1B's "
        "warm-up wants): "
     << llvm::join(capped, ", ")
     << "; the estimate waits for their round trips\n";
}

/// The CP split of the LLM and the rank whose times the stages carry.
void explainContextParallel(const JobModel &job, raw_ostream &os) {
  const PartInfo &llm = job.parts.back();
  if (llm.cp <= 1 || !llm.cpSplit)
    return;
  const plan::CPSplit &split = *llm.cpSplit;
  os << "  context parallelism: '" << llm.name << "' cp " << split.cp << ", "
     << runtime::policyName(split.policy);
  // What lpt and ilp balanced (uniform and zigzag ignore the work).
  if (split.tokenWeight > 0 && (split.policy == runtime::BalancePolicy::Lpt ||
                                split.policy == runtime::BalancePolicy::Ilp))
    os << " (tiles + " << llvm::format("%.3g", split.tokenWeight)
       << " x tokens)";
  os << ": tokens per rank ["
     << llvm::join(llvm::map_range(split.tokens,
                                   [](int64_t t) { return std::to_string(t); }),
                   ", ")
     << "], attention tiles ["
     << llvm::join(llvm::map_range(split.workload,
                                   [](int64_t w) { return std::to_string(w); }),
                   ", ")
     << "] (max/mean " << llvm::format("%.4f", split.imbalance())
     << "); stage times are rank " << llm.cpRank << "'s, the slowest ("
     << split.tokens[llm.cpRank] << " tokens, "
     << llvm::format("%.1f", 100 * split.attentionShare(llm.cpRank))
     << "% of the attention)\n";
}

/// "TP/CP collectives 1.234 ms" of a stage's F+B (the analytic model's), or
/// "" without any.
std::string collectives(const JobModel &job, StageOp stage) {
  for (const PartInfo &part : job.parts) {
    if (part.name != stage.getPart())
      continue;
    double comm = 0;
    for (uint64_t u = stage.getBegin();
         u < stage.getEnd() && u < part.units.size(); ++u) {
      const UnitCost &unit = part.units[u];
      comm += unit.fwdComm + unit.igradComm +
              (unit.recompute > 0 ? unit.fwdComm : 0);
    }
    if (comm <= 0)
      return "";
    std::string what = part.tp > 1 && part.cp > 1 ? "TP and CP"
                       : part.tp > 1              ? "TP"
                                                  : "CP";
    return "F+B includes " + ms(comm * 1e3) + " ms of " + what + " collectives";
  }
  return "";
}

} // namespace

//===----------------------------------------------------------------------===//
// --explain
//===----------------------------------------------------------------------===//

LogicalResult mllm::printExplain(ModuleOp module, raw_ostream &os,
                                 const runtime::PlanSchedule *schedule) {
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
     << " ms\n";
  explainSearch(pipeline, os);
  explainMemoryCaps(pipeline, schedule, os);
  FailureOr<JobModel> model = buildJobModel(module, JobModelOptions());
  if (succeeded(model))
    explainContextParallel(*model, os);
  os << "\n";

  // The table.
  constexpr size_t kColumns = 11;
  struct Row {
    std::string cells[kColumns];
  };
  std::vector<Row> rows;
  rows.push_back({{"stage", "part", "layers", "ranks", "F ms", "Bw ms", "Bd ms",
                   "recompute ms", "F+B ms", "memory", "why"}});
  llvm::StringMap<int64_t> stageCounts;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>())
    ++stageCounts[stage.getPart()];
  // Layout chain balances chain stages (a stage and the colocated ones
  // after it): each stage's chain stage, and per chain stage its F+B and
  // pieces.
  bool chain = pipeline.getLayout() == EncoderLayout::Chain;
  SmallVector<int64_t> chainOf;
  SmallVector<std::pair<double, int64_t>> chainStages;
  for (auto stage : pipeline.getBody().front().getOps<StageOp>()) {
    if (!stage.getColocated() || chainStages.empty())
      chainStages.push_back({0.0, 0});
    chainStages.back().first +=
        stage.getFwd().convertToDouble() + stage.getBackward();
    ++chainStages.back().second;
    chainOf.push_back(static_cast<int64_t>(chainStages.size()) - 1);
  }
  StageOp previous;
  size_t index = 0;
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
      why.push_back("frozen, no trainable layer upstream: no backward");
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
    if (count == 1 && !chain)
      placement = "the part's only stage";
    else if (policy == PartitionPolicy::FrozenAware)
      placement = "balanced on F+B";
    else if (policy == PartitionPolicy::FrozenUnaware)
      placement = "balanced as if every layer trained (frozen_unaware)";
    else if (policy == PartitionPolicy::Uniform)
      placement = "equal block counts (uniform)";
    else
      placement = "explicit stages";
    if (stage.getCutToFit())
      placement += ", moved off the fastest cut for memory";
    // The stage's terms and the bottleneck are each rounded to the
    // microsecond: their sum may differ from the bottleneck by up to five
    // half-microseconds.
    if (chain) {
      auto [chainTotal, pieces] = chainStages[chainOf[index]];
      placement += ": chain stage " + std::to_string(chainOf[index]) +
                   (pieces > 1 ? ", F+B " + ms(chainTotal) + " ms" : "");
      placement += std::abs(chainTotal - bottleneck) <= 2.5e-3 * pieces + 1e-9
                       ? ", the bottleneck"
                       : ", bottleneck " + ms(bottleneck) + " ms";
    } else if (std::abs(total - bottleneck) <= 2.5e-3 + 1e-9) {
      placement += ": the bottleneck, " + ms(total) + " ms";
    } else if (count > 1 && (policy == PartitionPolicy::FrozenAware ||
                             policy == PartitionPolicy::FrozenUnaware)) {
      placement += ": bottleneck " + ms(bottleneck) + " ms";
    }
    why.push_back(placement);
    if (mp && mp.getPp() == 0 && pipeline.getLayout() != EncoderLayout::Chain)
      why.push_back("pp = auto chose " + std::to_string(count) +
                    (count == 1 ? " stage" : " stages"));
    if (stage.getColocated() && previous)
      why.push_back("on the GPUs of " + previous.getSymName().str() +
                    " (one chain stage)");
    if (succeeded(model))
      if (std::string comm = collectives(*model, stage); !comm.empty())
        why.push_back(comm);
    previous = stage;
    ++index;

    Row row;
    row.cells[0] = stage.getSymName().str();
    row.cells[1] = stage.getPart().str();
    row.cells[2] = "[" + std::to_string(stage.getBegin()) + ", " +
                   std::to_string(stage.getEnd()) + ")";
    // The stage's GPUs, dp replicas of tp x cp each (mllm-rank-map).
    row.cells[3] = "-";
    if (auto first = stage.getFirstRank())
      if (auto end = stage.getEndRank())
        row.cells[3] =
            "[" + std::to_string(*first) + ", " + std::to_string(*end) + ")";
    row.cells[4] = ms(fwd);
    row.cells[5] = ms(bw);
    row.cells[6] = ms(bd);
    row.cells[7] = ms(stage.getRecompute().convertToDouble());
    row.cells[8] = ms(total);
    if (auto memory = stage.getMemory()) {
      std::string s;
      llvm::raw_string_ostream os(s);
      if (*memory < 1024)
        os << *memory << " MiB";
      else
        os << llvm::format("%.2f", static_cast<double>(*memory) / 1024.0)
           << " GiB";
      row.cells[9] = s;
    } else {
      row.cells[9] = "-";
    }
    row.cells[10] = llvm::join(why, "; ");
    rows.push_back(std::move(row));
  }
  size_t widths[kColumns] = {};
  for (const Row &row : rows)
    for (size_t c = 0; c < kColumns; ++c)
      widths[c] = std::max(widths[c], row.cells[c].size());
  for (const Row &row : rows) {
    for (size_t c = 0; c < kColumns; ++c) {
      // Numbers right-aligned, text left-aligned, no trailing blanks.
      bool numeric = c >= 4 && c <= 9;
      if (c == kColumns - 1) {
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
