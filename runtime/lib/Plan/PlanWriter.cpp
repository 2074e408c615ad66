//===- PlanWriter.cpp - a Plan as YAML, through yaml-cpp's emitter --------===//
//
// Block style for the sections, flow style for small records (a layer
// group, an action, a rank layout) so that a plan stays readable and
// diffable. Numbers are written in their shortest form that reads back to
// the same double, so write -> read -> write is byte-identical.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/PlanIO.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/SHA256.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace mllm;
using namespace mllm::runtime;

namespace {

/// The shortest decimal form of `v` that parses back to `v`, without an
/// exponent for the magnitudes plans hold.
std::string number(double v) {
  char buffer[64];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v)
      break;
  }
  if (v != 0 && std::fabs(v) >= 1e-4 && std::fabs(v) < 1e16) {
    // The same significant digits in fixed notation.
    int exponent = static_cast<int>(std::floor(std::log10(std::fabs(v))));
    char fixed[64];
    std::snprintf(fixed, sizeof(fixed), "%.*f",
                  std::max(0, precision - 1 - exponent), v);
    if (std::strtod(fixed, nullptr) == v)
      std::snprintf(buffer, sizeof(buffer), "%s", fixed);
  }
  std::string s = buffer;
  // Keep it a float for YAML readers that type scalars ("1" -> "1.0").
  if (s.find_first_of(".eEni") == std::string::npos)
    s += ".0";
  return s;
}

class Writer {
public:
  explicit Writer(bool withHash) : withHash(withHash) {}

  std::string write(const Plan &plan, llvm::StringRef contentHash);

private:
  YAML::Emitter out;
  bool withHash;

  void key(const char *k) { out << YAML::Key << k << YAML::Value; }
  void str(const char *k, const std::string &v) {
    key(k);
    out << YAML::DoubleQuoted << v;
  }
  void word(const char *k, const std::string &v) {
    key(k);
    out << v;
  }
  void integer(const char *k, int64_t v) {
    key(k);
    out << v;
  }
  void real(const char *k, double v) {
    key(k);
    out << number(v);
  }
  void boolean(const char *k, bool v) {
    key(k);
    out << (v ? "true" : "false");
  }
  void intList(const char *k, const std::vector<int64_t> &v) {
    key(k);
    out << YAML::Flow << YAML::BeginSeq;
    for (int64_t x : v)
      out << x;
    out << YAML::EndSeq;
  }
  void strList(const char *k, const std::vector<std::string> &v) {
    key(k);
    out << YAML::Flow << YAML::BeginSeq;
    for (const std::string &x : v)
      out << YAML::DoubleQuoted << x;
    out << YAML::EndSeq;
  }

  void job(const PlanJob &j);
  void train(const PlanTrain &t);
  void data(const PlanData &d);
  void config(const LayerConfig &c);
  void groups(const std::vector<PlanLayerGroup> &groups);
  void part(const PlanPart &p);
  void stage(const PlanStage &s);
  void rankLayout(const RankLayout &r);
  void cpAssignment(const PlanCPAssignment &a);
  void shape(const sched::MessageShape &shape);
  void schedule(const PlanSchedule &s, int64_t worldSize);
  void program(const PlanSchedule &s, size_t index);
  void action(const PlanSchedule &s, const sched::Action &a,
              const sched::ComputeCollectives &c);
};

void Writer::job(const PlanJob &j) {
  key("job");
  out << YAML::BeginMap;
  str("spec", j.spec);
  str("model", j.model);
  integer("world_size", j.worldSize);
  integer("nodes", j.nodes);
  integer("gpus_per_node", j.gpusPerNode);
  str("gpu", j.gpu);
  integer("gpu_memory_bytes", j.gpuMemoryBytes);
  real("peak_flops", j.peakFlops);
  real("memory_bandwidth", j.memoryBandwidth);
  real("intra_node_bandwidth", j.intraNodeBandwidth);
  real("inter_node_bandwidth", j.interNodeBandwidth);
  integer("dp", j.dp);
  word("layout", j.layout);
  word("partition", j.partition);
  word("cp_balance", j.cpBalance);
  out << YAML::EndMap;
}

void Writer::train(const PlanTrain &t) {
  key("train");
  out << YAML::BeginMap;
  integer("steps", t.steps);
  word("optimizer", t.optimizer);
  real("lr", t.lr);
  real("weight_decay", t.weightDecay);
  word("precision", t.precision);
  integer("seed", t.seed);
  out << YAML::EndMap;
}

void Writer::data(const PlanData &d) {
  key("data");
  out << YAML::BeginMap;
  integer("text_tokens", d.textTokens);
  integer("packing", d.packing);
  integer("seq_len", d.seqLen);
  integer("microbatch_size", d.microbatchSize);
  integer("microbatches", d.microbatches);
  word("text_mask", d.textMask);
  key("inputs");
  if (d.inputs.empty())
    out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const PlanInput &in : d.inputs) {
    out << YAML::Flow << YAML::BeginMap;
    str("encoder", in.encoder);
    integer("tokens", in.tokens);
    integer("items", in.items);
    word("placement", in.placement);
    if (!in.positions.empty()) {
      key("positions");
      out << YAML::Flow << YAML::BeginSeq;
      for (double p : in.positions)
        out << number(p);
      out << YAML::EndSeq;
    }
    word("mask", in.mask);
    if (in.encoderTokens > 0)
      integer("encoder_tokens", in.encoderTokens);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
}

void Writer::config(const LayerConfig &c) {
  key("config");
  out << YAML::Flow << YAML::BeginMap;
  for (const LayerConfigKey &k : layerConfigKeys()) {
    if (!k.isSet(c))
      continue;
    switch (k.type) {
    case LayerConfigKey::Int:
      integer(k.name, c.*k.intField);
      break;
    case LayerConfigKey::Bool:
      boolean(k.name, c.*k.boolField);
      break;
    case LayerConfigKey::Float:
      real(k.name, c.*k.floatField);
      break;
    case LayerConfigKey::String:
      word(k.name, c.*k.stringField);
      break;
    }
  }
  out << YAML::EndMap;
}

void Writer::groups(const std::vector<PlanLayerGroup> &groups) {
  key("groups");
  out << YAML::BeginSeq;
  for (const PlanLayerGroup &g : groups) {
    out << YAML::Flow << YAML::BeginMap;
    str("name", g.name);
    word("kind", g.kind);
    integer("count", g.count);
    boolean("weight_grad", g.weightGrad);
    word("input_grad", g.inputGrad);
    boolean("recompute", g.recompute);
    config(g.config);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void Writer::part(const PlanPart &p) {
  out << YAML::BeginMap;
  str("name", p.name);
  word("kind", p.isLLM ? "llm" : "encoder");
  str("instance", p.instance);
  if (!p.isLLM)
    word("modality", p.modality);
  integer("width", p.width);
  boolean("frozen", p.frozen);
  word("recompute", p.recompute);
  integer("tp", p.tp);
  integer("pp", p.pp);
  boolean("pp_auto", p.ppAuto);
  integer("cp", p.cp);
  integer("blocks", p.blocks);
  integer("tokens", p.tokens);
  integer("attention_span", p.attentionSpan);
  groups(p.groups);
  if (p.projector) {
    key("projector");
    out << YAML::BeginMap;
    str("name", p.projector->name);
    word("kind", p.projector->kind);
    integer("merge", p.projector->merge);
    boolean("frozen", p.projector->frozen);
    groups(p.projector->groups);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

void Writer::rankLayout(const RankLayout &r) {
  out << YAML::Flow << YAML::BeginMap;
  integer("first", r.first);
  integer("dp", r.dp);
  integer("cp", r.cp);
  integer("tp", r.tp);
  integer("dp_stride", r.dpStride);
  integer("cp_stride", r.cpStride);
  integer("tp_stride", r.tpStride);
  out << YAML::EndMap;
}

void Writer::stage(const PlanStage &s) {
  out << YAML::BeginMap;
  str("name", s.name);
  str("part", s.part);
  integer("index", s.index);
  intList("layers", {s.begin, s.end});
  strList("with", s.with);
  real("fwd_ms", s.fwdMs);
  real("bwd_weight_ms", s.bwdWeightMs);
  real("bwd_input_ms", s.bwdInputMs);
  real("recompute_ms", s.recomputeMs);
  if (s.memory) {
    key("memory_mib");
    out << YAML::Flow << YAML::BeginMap;
    integer("total", s.memory->total);
    integer("weights", s.memory->weights);
    integer("grads", s.memory->grads);
    integer("optimizer", s.memory->optimizer);
    if (s.memory->transit > 0)
      integer("transit", s.memory->transit);
    integer("activations", s.memory->activations);
    if (s.memory->sends > 0)
      integer("sends", s.memory->sends);
    integer("in_flight", s.memory->inFlight);
    out << YAML::EndMap;
  }
  if (s.ranks) {
    key("ranks");
    rankLayout(*s.ranks);
  }
  out << YAML::EndMap;
}

void Writer::cpAssignment(const PlanCPAssignment &a) {
  out << YAML::BeginMap;
  str("part", a.part);
  integer("cp", a.cp);
  word("policy", a.policy);
  boolean("optimal", a.optimal);
  integer("tokens", a.tokens);
  integer("block", a.block);
  integer("key_tile", a.keyTile);
  if (a.tokenWeight > 0)
    real("token_weight", a.tokenWeight);
  key("ranks");
  out << YAML::BeginSeq;
  for (const auto &ranges : a.ranks) {
    out << YAML::Flow << YAML::BeginSeq;
    for (auto [begin, end] : ranges)
      out << YAML::Flow << YAML::BeginSeq << begin << end << YAML::EndSeq;
    out << YAML::EndSeq;
  }
  out << YAML::EndSeq;
  intList("workload", a.workload);
  real("imbalance", a.imbalance);
  out << YAML::EndMap;
}

void Writer::shape(const sched::MessageShape &shape) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const sched::TensorShape &t : shape) {
    out << YAML::Flow << YAML::BeginMap;
    intList("dims", t.dims);
    word("dtype", t.elementType);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void Writer::program(const PlanSchedule &sch, size_t index) {
  const sched::StageInfo &s = sch.graph.stages[index];
  const sched::Program &p = sch.programs[index];
  auto names = [&](const std::vector<int> &stages) {
    std::vector<std::string> out;
    for (int i : stages)
      out.push_back(sch.graph.stages[i].name);
    return out;
  };
  RankLayout ranks = s.rankLayout();
  out << YAML::BeginMap;
  str("name", s.name);
  integer("stage", p.stage);
  str("part", s.part);
  boolean("llm", s.isLLM);
  integer("max_in_flight", p.maxInFlight);
  key("ranks");
  rankLayout(ranks);
  strList("prev", names(s.prev));
  strList("next", names(s.next));
  key("grad_to_prev");
  out << YAML::Flow << YAML::BeginSeq;
  for (bool g : s.gradToPrev)
    out << (g ? "true" : "false");
  out << YAML::EndSeq;
  key("cost_s");
  out << YAML::Flow << YAML::BeginMap;
  real("fwd", s.fwd);
  real("bwd_input", s.bwdInput);
  real("bwd_weight", s.bwdWeight);
  real("recompute", s.recompute);
  real("unaware_backward", s.unawareBackward);
  out << YAML::EndMap;
  boolean("needs_input_grad", s.needsInputGrad);
  boolean("needs_weight_grad", s.needsWeightGrad);
  key("memory_bytes");
  out << YAML::Flow << YAML::BeginMap;
  integer("static", s.staticBytes);
  integer("activations", s.activationBytesPerMicrobatch);
  integer("capacity", s.memoryCapacity);
  out << YAML::EndMap;
  if (index < sch.arenaBytes.size())
    integer("arena_bytes", sch.arenaBytes[index]);
  integer("trainable_params", s.trainableParams);
  key("output");
  out << YAML::Flow << YAML::BeginMap;
  integer("bytes", s.outputBytes);
  integer("grad_bytes", s.gradientBytes());
  key("shape");
  shape(s.outputShape);
  if (!s.outputGradShape.empty()) {
    key("grad_shape");
    shape(s.outputGradShape);
  }
  out << YAML::EndMap;
  // The communicator groups follow from the ranks; they are written for
  // readers that do not derive them, and checked when read.
  key("groups");
  out << YAML::BeginMap;
  auto groupList = [&](const char *name,
                       const std::vector<std::vector<int64_t>> &groups) {
    key(name);
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto &g : groups) {
      out << YAML::Flow << YAML::BeginSeq;
      for (int64_t r : g)
        out << r;
      out << YAML::EndSeq;
    }
    out << YAML::EndSeq;
  };
  groupList("replicas", ranks.replicaGroups());
  groupList("tp", ranks.tpGroups());
  groupList("cp", ranks.cpGroups());
  groupList("grad_sync", ranks.gradSyncGroups());
  out << YAML::EndMap;
  key("actions");
  out << YAML::BeginSeq;
  std::vector<sched::ComputeCollectives> collectives =
      sched::computeCollectives(s, p);
  // Runs of repeated blocks as one `repeat` entry each (Schedule.h).
  for (const sched::ActionRun &run :
       sched::findActionRuns(p.actions, collectives)) {
    if (run.times == 1) {
      action(sch, p.actions[run.begin], collectives[run.begin]);
      continue;
    }
    out << YAML::Flow << YAML::BeginMap;
    integer("repeat", run.times);
    key("actions");
    out << YAML::Flow << YAML::BeginSeq;
    for (size_t i = run.begin; i < run.begin + run.length; ++i)
      action(sch, p.actions[i], collectives[i]);
    out << YAML::EndSeq;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
}

void Writer::action(const PlanSchedule &sch, const sched::Action &a,
                    const sched::ComputeCollectives &c) {
  out << YAML::Flow << YAML::BeginMap;
  word("op", sched::actionMnemonic(a.kind));
  if (sched::perMicrobatch(a.kind))
    integer("mb", a.microbatch);
  if (sched::isCompute(a.kind) && a.kind != sched::ActionKind::OptimizerStep) {
    std::vector<std::string> names;
    if (c.tpAllReduce)
      names.push_back("tp_all_reduce");
    if (c.cpAllGather)
      names.push_back("cp_all_gather");
    if (c.cpReduceScatter)
      names.push_back("cp_reduce_scatter");
    if (!names.empty()) {
      key("collectives");
      out << YAML::Flow << YAML::BeginSeq;
      for (const std::string &n : names)
        out << n;
      out << YAML::EndSeq;
    }
  }
  if (sched::isComm(a.kind)) {
    str("peer", sch.graph.stages[a.peer].name);
    integer("tag", a.tag);
    key("shape");
    shape(a.shape);
  }
  if (sched::isComm(a.kind) || a.kind == sched::ActionKind::AllReduceGrads)
    integer("bytes", a.bytes);
  if (a.kind == sched::ActionKind::AllReduceGrads)
    word("group", "grad_sync");
  out << YAML::EndMap;
}

void Writer::schedule(const PlanSchedule &s, int64_t worldSize) {
  const sched::PipelineGraph &g = s.graph;
  key("schedule");
  out << YAML::BeginMap;
  word("kind", s.kind);
  integer("microbatches", g.microbatches);
  integer("gpus_per_node", g.gpusPerNode);
  real("intra_node_bandwidth", g.intraNodeBandwidth);
  real("inter_node_bandwidth", g.interNodeBandwidth);
  real("peak_flops", g.peakFlops);
  real("flops_per_iteration", g.flopsPerIteration);
  integer("tokens_per_iteration", g.tokensPerIteration);
  // Every rank of the world, unused ones (-1) at the end included.
  std::vector<int64_t> rankProgram = s.rankProgram();
  if (static_cast<int64_t>(rankProgram.size()) < worldSize)
    rankProgram.resize(static_cast<size_t>(worldSize), -1);
  intList("rank_program", rankProgram);
  key("programs");
  out << YAML::BeginSeq;
  for (size_t i = 0; i < s.programs.size(); ++i)
    program(s, i);
  out << YAML::EndSeq;
  out << YAML::EndMap;
}

std::string Writer::write(const Plan &plan, llvm::StringRef contentHash) {
  out.SetIndent(2);
  out << YAML::Comment("mllmc plan; the schema is docs/plan-format.md");
  out << YAML::BeginMap;
  integer("version", plan.version);
  if (withHash) {
    key("hash");
    out << YAML::Flow << YAML::BeginMap;
    word("spec", plan.specHash.empty() ? "none" : plan.specHash);
    word("plan", contentHash.str());
    out << YAML::EndMap;
  }
  job(plan.job);
  train(plan.train);
  data(plan.data);
  key("parts");
  out << YAML::BeginSeq;
  for (const PlanPart &p : plan.parts)
    part(p);
  out << YAML::EndSeq;
  key("pipeline");
  out << YAML::BeginMap;
  integer("gpus_per_replica", plan.pipeline.gpusPerReplica);
  real("bottleneck_ms", plan.pipeline.bottleneckMs);
  real("iteration_ms", plan.pipeline.iterationMs);
  out << YAML::EndMap;
  key("stages");
  out << YAML::BeginSeq;
  for (const PlanStage &s : plan.stages)
    stage(s);
  out << YAML::EndSeq;
  key("cp_assignments");
  if (plan.cpAssignments.empty())
    out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const PlanCPAssignment &a : plan.cpAssignments)
    cpAssignment(a);
  out << YAML::EndSeq;
  if (plan.schedule)
    schedule(*plan.schedule, plan.job.worldSize);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

} // namespace

std::string mllm::runtime::planContentHash(const Plan &plan) {
  std::string body = Writer(/*withHash=*/false).write(plan, "");
  std::array<uint8_t, 32> digest = llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(body.data()), body.size()));
  return llvm::toHex(digest, /*LowerCase=*/true);
}

std::string mllm::runtime::writePlan(const Plan &plan) {
  return Writer(/*withHash=*/true).write(plan, planContentHash(plan));
}
