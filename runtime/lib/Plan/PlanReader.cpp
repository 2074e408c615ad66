//===- PlanReader.cpp - a Plan from YAML, checked -------------------------===//
//
// yaml-cpp parses; everything after that is ours: every key is looked up
// with its type, every error points at the node it is about
// (FILE:LINE:COL), and the plan is checked for consistency before anyone
// runs it. yaml-cpp reports syntax errors by exception, so this file is built
// with exceptions; nothing else in the runtime is.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/Balance.h"
#include "mllm/runtime/PlanGroups.h"
#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/ReadFile.h"

#include "YamlDocuments.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/MemoryBuffer.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <set>

using namespace mllm;
using namespace mllm::runtime;

namespace {

/// Thrown inside the reader to stop at the first error; caught in
/// readPlan().
struct ReadError {
  std::string message;
};

class Reader {
public:
  Reader(llvm::StringRef file, const PlanReadLimits &limits)
      : file(file.str()), limits(limits) {}

  Plan read(const YAML::Node &root);
  [[noreturn]] void fail(const YAML::Mark &mark, const llvm::Twine &message) {
    std::string text = file;
    if (!mark.is_null())
      text += ":" + std::to_string(mark.line + 1) + ":" +
              std::to_string(mark.column + 1);
    throw ReadError{text + ": error: " + message.str()};
  }
  [[noreturn]] void fail(const YAML::Node &node, const llvm::Twine &message) {
    fail(node.Mark(), message);
  }

private:
  std::string file;
  PlanReadLimits limits;
  /// Marks of every program and action, to locate schedule errors.
  std::vector<YAML::Mark> programMarks;
  std::vector<std::vector<YAML::Mark>> actionMarks;

  // Typed access. `what` names the enclosing record in messages.
  YAML::Node map(const YAML::Node &node, const char *what) {
    if (!node.IsMap())
      fail(node, std::string("'") + what + "' must be a mapping");
    return node;
  }
  YAML::Node seq(const YAML::Node &node, const char *what) {
    if (!node.IsSequence())
      fail(node, std::string("'") + what + "' must be a list");
    return node;
  }
  /// Every key of `node` must be one of `keys`.
  /// ... and none twice (yaml-cpp keeps the first copy silently).
  void onlyKeys(const YAML::Node &node, const char *what,
                std::initializer_list<const char *> keys) {
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string k = it->first.Scalar();
      if (!seen.insert(k).second)
        fail(it->first, "a second '" + k + "' in '" + what + "'");
      bool known = false;
      for (const char *key : keys)
        known |= k == key;
      if (!known)
        fail(it->first, "unknown key '" + k + "' in '" + what + "'");
    }
  }
  YAML::Node need(const YAML::Node &node, const char *key, const char *what) {
    YAML::Node value = node[key];
    if (!value.IsDefined() || value.IsNull())
      fail(node, std::string("'") + what + "' has no '" + key + "'");
    return value;
  }
  int64_t toInt(const YAML::Node &v, const char *key) {
    int64_t x;
    if (!v.IsScalar() || llvm::StringRef(v.Scalar()).getAsInteger(10, x))
      fail(v, std::string("'") + key + "' must be an integer");
    return x;
  }
  double toReal(const YAML::Node &v, const char *key) {
    double x;
    if (!v.IsScalar() || llvm::StringRef(v.Scalar()).getAsDouble(x) ||
        std::isnan(x))
      fail(v, std::string("'") + key + "' must be a number");
    return x;
  }
  bool toBool(const YAML::Node &v, const char *key) {
    if (v.IsScalar() && v.Scalar() == "true")
      return true;
    if (v.IsScalar() && v.Scalar() == "false")
      return false;
    fail(v, std::string("'") + key + "' must be true or false");
  }
  std::string toStr(const YAML::Node &v, const char *key) {
    if (!v.IsScalar())
      fail(v, std::string("'") + key + "' must be a string");
    return v.Scalar();
  }
  int64_t integer(const YAML::Node &n, const char *key, const char *what,
                  int64_t min = INT64_MIN, int64_t max = INT64_MAX) {
    YAML::Node v = need(n, key, what);
    int64_t x = toInt(v, key);
    if (x < min)
      fail(v, std::string("'") + key + "' must be at least " +
                  std::to_string(min) + ", got " + std::to_string(x));
    if (x > max)
      fail(v, std::string("'") + key + "' may be at most " +
                  std::to_string(max) + ", got " + std::to_string(x));
    return x;
  }
  /// A stage's memory terms add up to its total, as mllm.stage's verifier
  /// checks them: the runtime reports the total and sizes by the terms, so
  /// a plan edited in one place only would disagree with itself.
  void checkMemoryTotal(const YAML::Node &m, const PlanStageMemory &mem) {
    int64_t perMicrobatch = 0, held = 0, sum = 0;
    bool overflow =
        llvm::AddOverflow(mem.activations, mem.sends, perMicrobatch);
    overflow = overflow || llvm::MulOverflow(perMicrobatch, mem.inFlight, held);
    for (int64_t term :
         {mem.weights, mem.grads, mem.optimizer, mem.transit, held})
      overflow = overflow || llvm::AddOverflow(sum, term, sum);
    if (overflow)
      fail(m, "the 'memory_mib' terms are too large to add up");
    if (sum != mem.total)
      fail(m["total"],
           "'total' is " + std::to_string(mem.total) +
               " MiB but weights + grads + optimizer + transit + (activations "
               "+ sends) x in_flight is " +
               std::to_string(sum) + " MiB; correct the total or the terms");
  }
  /// Costs, rates and sizes: finite and not negative.
  double real(const YAML::Node &n, const char *key, const char *what) {
    YAML::Node v = need(n, key, what);
    double x = toReal(v, key);
    if (!std::isfinite(x) || x < 0)
      fail(v, std::string("'") + key + "' must be a finite number >= 0");
    return x;
  }
  /// A rate the times divide by (as mllm.cluster's verifier requires): 0
  /// made every time infinite and the MFU 0.
  double rate(const YAML::Node &n, const char *key, const char *what) {
    YAML::Node v = need(n, key, what);
    double x = toReal(v, key);
    if (!std::isfinite(x) || x <= 0)
      fail(v, std::string("'") + key + "' must be a finite number > 0");
    return x;
  }
  bool boolean(const YAML::Node &n, const char *key, const char *what) {
    return toBool(need(n, key, what), key);
  }
  std::string str(const YAML::Node &n, const char *key, const char *what) {
    return toStr(need(n, key, what), key);
  }
  std::string oneOf(const YAML::Node &n, const char *key, const char *what,
                    std::initializer_list<const char *> values) {
    YAML::Node v = need(n, key, what);
    std::string s = toStr(v, key);
    std::string list;
    for (const char *value : values) {
      if (s == value)
        return s;
      list += list.empty() ? value : std::string(", ") + value;
    }
    fail(v, "'" + s + "' is not a valid '" + key + "' (expected " + list + ")");
  }
  std::vector<int64_t> intList(const YAML::Node &n, const char *key,
                               const char *what) {
    YAML::Node v = seq(need(n, key, what), key);
    std::vector<int64_t> out;
    for (const YAML::Node &x : v)
      out.push_back(toInt(x, key));
    return out;
  }

  PlanJob job(const YAML::Node &n);
  PlanTrain train(const YAML::Node &n);
  PlanData data(const YAML::Node &n);
  LayerConfig config(const YAML::Node &n);
  std::vector<PlanLayerGroup> groups(const YAML::Node &n);
  PlanPart part(const YAML::Node &n);
  RankLayout rankLayout(const YAML::Node &n, const char *what);
  PlanStage stage(const YAML::Node &n);
  PlanCPAssignment cpAssignment(const YAML::Node &n);
  sched::MessageShape shape(const YAML::Node &n);
  PlanSchedule schedule(const YAML::Node &n, const Plan &plan);
  void check(const Plan &plan, const YAML::Node &root);
};

PlanJob Reader::job(const YAML::Node &n) {
  map(n, "job");
  onlyKeys(n, "job",
           {"spec", "model", "world_size", "nodes", "gpus_per_node", "gpu",
            "gpu_memory_bytes", "peak_flops", "memory_bandwidth",
            "intra_node_bandwidth", "inter_node_bandwidth", "dp", "layout",
            "partition", "cp_balance"});
  PlanJob j;
  j.spec = str(n, "spec", "job");
  j.model = str(n, "model", "job");
  j.worldSize = integer(n, "world_size", "job", 1);
  j.nodes = integer(n, "nodes", "job", 1);
  j.gpusPerNode = integer(n, "gpus_per_node", "job", 1);
  j.gpu = str(n, "gpu", "job");
  j.gpuMemoryBytes = integer(n, "gpu_memory_bytes", "job", 0);
  j.peakFlops = rate(n, "peak_flops", "job");
  j.memoryBandwidth = rate(n, "memory_bandwidth", "job");
  j.intraNodeBandwidth = rate(n, "intra_node_bandwidth", "job");
  j.interNodeBandwidth = rate(n, "inter_node_bandwidth", "job");
  j.dp = integer(n, "dp", "job", 1, limits.maxWorldSize);
  j.layout = oneOf(n, "layout", "job",
                   {"encoders_parallel", "encoders_colocated", "chain"});
  j.partition = str(n, "partition", "job");
  j.cpBalance = str(n, "cp_balance", "job");
  if (j.worldSize > limits.maxWorldSize)
    fail(n["world_size"], "world size " + std::to_string(j.worldSize) +
                              " exceeds the reader's limit of " +
                              std::to_string(limits.maxWorldSize));
  if (j.worldSize != j.nodes * j.gpusPerNode)
    fail(n["world_size"], "world size " + std::to_string(j.worldSize) +
                              " is not nodes x gpus_per_node = " +
                              std::to_string(j.nodes * j.gpusPerNode));
  return j;
}

PlanTrain Reader::train(const YAML::Node &n) {
  map(n, "train");
  onlyKeys(n, "train",
           {"steps", "optimizer", "lr", "weight_decay", "precision", "seed"});
  PlanTrain t;
  t.steps = integer(n, "steps", "train", 0);
  t.optimizer = oneOf(n, "optimizer", "train", {"adamw", "adam", "sgd"});
  t.lr = toReal(need(n, "lr", "train"), "lr");
  if (!(t.lr > 0) || !std::isfinite(t.lr))
    fail(n["lr"], "'lr' must be a finite number > 0");
  t.weightDecay = real(n, "weight_decay", "train");
  t.precision = oneOf(n, "precision", "train", {"bf16", "fp16", "fp32"});
  t.seed = integer(n, "seed", "train", 0);
  return t;
}

PlanData Reader::data(const YAML::Node &n) {
  map(n, "data");
  onlyKeys(n, "data",
           {"text_tokens", "packing", "seq_len", "microbatch_size",
            "microbatches", "text_mask", "inputs"});
  PlanData d;
  d.textTokens = integer(n, "text_tokens", "data", 0);
  d.packing = integer(n, "packing", "data", 1);
  d.seqLen = integer(n, "seq_len", "data", 1, limits.maxTokensPerMicrobatch);
  d.microbatchSize =
      integer(n, "microbatch_size", "data", 1, limits.maxMicrobatchSize);
  d.microbatches =
      integer(n, "microbatches", "data", 1, limits.maxMicrobatches);
  if (d.seqLen > limits.maxTokensPerMicrobatch / d.microbatchSize)
    fail(n["seq_len"], "microbatch_size x seq_len may be at most " +
                           std::to_string(limits.maxTokensPerMicrobatch));
  d.textMask =
      oneOf(n, "text_mask", "data", {"causal", "prefix_lm", "bidirectional"});
  for (const YAML::Node &in : seq(need(n, "inputs", "data"), "inputs")) {
    map(in, "inputs");
    onlyKeys(in, "input",
             {"encoder", "tokens", "items", "placement", "positions", "mask",
              "encoder_tokens"});
    PlanInput i;
    i.encoder = str(in, "encoder", "input");
    i.tokens = integer(in, "tokens", "input", 1);
    i.items = integer(in, "items", "input", 0);
    i.placement = oneOf(in, "placement", "input", {"prepend", "append", "at"});
    if (in["positions"])
      for (const YAML::Node &p : seq(in["positions"], "positions"))
        i.positions.push_back(toReal(p, "positions"));
    i.mask = oneOf(in, "mask", "input", {"bidirectional", "causal"});
    if (in["encoder_tokens"])
      i.encoderTokens = integer(in, "encoder_tokens", "input", 1,
                                limits.maxTokensPerMicrobatch);
    d.inputs.push_back(std::move(i));
  }
  return d;
}

LayerConfig Reader::config(const YAML::Node &n) {
  map(n, "config");
  LayerConfig c;
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string k = it->first.Scalar();
    const LayerConfigKey *key = findLayerConfigKey(k);
    if (!key)
      fail(it->first, "unknown layer config key '" + k + "'");
    // A copy: yaml-cpp's iterator returns its pair by value, so a reference
    // to `second` would outlive it (ASan: stack-use-after-scope).
    YAML::Node v = it->second;
    switch (key->type) {
    case LayerConfigKey::Int:
      c.*key->intField = toInt(v, key->name);
      if (c.*key->intField < 0 || c.*key->intField > limits.maxConfigInt)
        fail(v, std::string("'") + key->name + "' must be in [0, " +
                    std::to_string(limits.maxConfigInt) + "]");
      break;
    case LayerConfigKey::Bool:
      c.*key->boolField = toBool(v, key->name);
      break;
    case LayerConfigKey::Float:
      c.*key->floatField = toReal(v, key->name);
      if (!std::isfinite(c.*key->floatField) || c.*key->floatField < 0)
        fail(v, std::string("'") + key->name +
                    "' must be a finite number, at least 0");
      if (key->floatField == &LayerConfig::hop && c.hop != 0 &&
          !(c.hop >= 1e-4 * (1 - 1e-9) && c.hop <= 1 + 1e-9))
        fail(v, "'hop' must be between 0.0001 and 1 (seconds between mel "
                "frames)");
      break;
    case LayerConfigKey::String:
      c.*key->stringField = toStr(v, key->name);
      break;
    }
  }
  return c;
}

std::vector<PlanLayerGroup> Reader::groups(const YAML::Node &n) {
  std::vector<PlanLayerGroup> out;
  for (const YAML::Node &g : seq(n, "groups")) {
    map(g, "group");
    onlyKeys(g, "group",
             {"name", "kind", "count", "weight_grad", "input_grad", "recompute",
              "config"});
    PlanLayerGroup group;
    group.name = str(g, "name", "group");
    YAML::Node kind = need(g, "kind", "group");
    group.kind = toStr(kind, "kind");
    if (!llvm::is_contained(layerKindNames(), group.kind))
      fail(kind, "unknown layer kind '" + group.kind + "'");
    group.count = integer(g, "count", "group", 1, limits.maxLayers);
    group.weightGrad = boolean(g, "weight_grad", "group");
    group.inputGrad =
        oneOf(g, "input_grad", "group", {"all", "after_first", "none"});
    group.recompute = boolean(g, "recompute", "group");
    group.config = config(need(g, "config", "group"));
    for (llvm::StringRef key : requiredLayerConfigKeys(group.kind)) {
      const LayerConfigKey *k = findLayerConfigKey(key);
      if (k && group.config.*k->intField <= 0)
        fail(g, "a '" + group.kind + "' group needs a positive '" + key.str() +
                    "' in its config");
    }
    for (const PlanLayerGroup &other : out)
      if (other.name == group.name)
        fail(g, "a second group named '" + group.name + "'");
    out.push_back(std::move(group));
  }
  return out;
}

PlanPart Reader::part(const YAML::Node &n) {
  map(n, "parts");
  onlyKeys(n, "part",
           {"name", "kind", "instance", "modality", "width", "frozen",
            "recompute", "tp", "pp", "pp_auto", "cp", "blocks", "tokens",
            "attention_span", "groups", "projector"});
  PlanPart p;
  p.name = str(n, "name", "part");
  p.isLLM = oneOf(n, "kind", "part", {"encoder", "llm"}) == "llm";
  p.instance = str(n, "instance", "part");
  if (!p.isLLM)
    p.modality = oneOf(n, "modality", "part", {"image", "audio"});
  p.width = integer(n, "width", "part", 1);
  p.frozen = boolean(n, "frozen", "part");
  p.recompute = oneOf(n, "recompute", "part", {"none", "full", "selective"});
  p.tp = integer(n, "tp", "part", 1);
  p.pp = integer(n, "pp", "part", 1);
  p.ppAuto = boolean(n, "pp_auto", "part");
  p.cp = integer(n, "cp", "part", 1);
  p.blocks = integer(n, "blocks", "part", 0);
  p.tokens = integer(n, "tokens", "part", 0);
  p.attentionSpan = integer(n, "attention_span", "part", 0);
  p.groups = groups(need(n, "groups", "part"));
  // The stages cut a part with blocks between its blocks: 'blocks' counts
  // them, and the runtime builds the groups' layers.
  int64_t blockLayers = 0;
  for (const PlanLayerGroup &g : p.groups)
    if (isPartitionBlockKind(g.kind))
      blockLayers += g.count;
  if (blockLayers > 0 && blockLayers != p.blocks)
    fail(n["blocks"], "part '" + p.name + "' has " +
                          std::to_string(blockLayers) +
                          " blocks in its groups but 'blocks' is " +
                          std::to_string(p.blocks) +
                          ": its stages cut it by blocks; edit both (and the "
                          "stages), or compile the spec again");
  // Every layer of a part works at its width: a hidden of another size
  // ended in the CPU layers' fatal error, without a location.
  YAML::Node list = need(n, "groups", "part");
  for (size_t i = 0; i < p.groups.size(); ++i)
    if (p.groups[i].config.hidden > 0 && p.groups[i].config.hidden != p.width)
      fail(list[i], "group '" + p.groups[i].name + "' has hidden " +
                        std::to_string(p.groups[i].config.hidden) +
                        " but its part '" + p.name + "' is " +
                        std::to_string(p.width) + " wide");
  if (YAML::Node proj = n["projector"]) {
    map(proj, "projector");
    onlyKeys(proj, "projector", {"name", "kind", "merge", "frozen", "groups"});
    PlanProjector pr;
    pr.name = str(proj, "name", "projector");
    pr.kind = oneOf(proj, "kind", "projector", {"linear", "mlp"});
    pr.merge = integer(proj, "merge", "projector", 1);
    pr.frozen = boolean(proj, "frozen", "projector");
    pr.groups = groups(need(proj, "groups", "projector"));
    p.projector = std::move(pr);
  }
  return p;
}

RankLayout Reader::rankLayout(const YAML::Node &n, const char *what) {
  map(n, what);
  onlyKeys(n, what,
           {"first", "dp", "cp", "tp", "dp_stride", "cp_stride", "tp_stride"});
  RankLayout r;
  r.first = integer(n, "first", what, 0);
  r.dp = integer(n, "dp", what, 1);
  r.cp = integer(n, "cp", what, 1);
  r.tp = integer(n, "tp", what, 1);
  r.dpStride = integer(n, "dp_stride", what, 1);
  r.cpStride = integer(n, "cp_stride", what, 1);
  r.tpStride = integer(n, "tp_stride", what, 1);
  // Bounded before anything multiplies them.
  for (int64_t x :
       {r.first, r.dp, r.cp, r.tp, r.dpStride, r.cpStride, r.tpStride})
    if (x > limits.maxWorldSize)
      fail(n, std::string("'") + what + "' holds a value beyond the world");
  if (r.end() > limits.maxWorldSize || r.size() > limits.maxWorldSize)
    fail(n, std::string("'") + what + "' holds ranks beyond the world");
  return r;
}

PlanStage Reader::stage(const YAML::Node &n) {
  map(n, "stages");
  onlyKeys(n, "stage",
           {"name", "part", "index", "layers", "with", "fwd_ms",
            "bwd_weight_ms", "bwd_input_ms", "recompute_ms", "memory_mib",
            "ranks"});
  PlanStage s;
  s.name = str(n, "name", "stage");
  s.part = str(n, "part", "stage");
  s.index = integer(n, "index", "stage", 0);
  std::vector<int64_t> layers = intList(n, "layers", "stage");
  if (layers.size() != 2 || layers[0] < 0 || layers[1] <= layers[0])
    fail(n["layers"], "'layers' must be [begin, end) with begin < end");
  s.begin = layers[0];
  s.end = layers[1];
  for (const YAML::Node &w : seq(need(n, "with", "stage"), "with"))
    s.with.push_back(toStr(w, "with"));
  s.fwdMs = real(n, "fwd_ms", "stage");
  s.bwdWeightMs = real(n, "bwd_weight_ms", "stage");
  s.bwdInputMs = real(n, "bwd_input_ms", "stage");
  s.recomputeMs = real(n, "recompute_ms", "stage");
  if (YAML::Node m = n["memory_mib"]) {
    map(m, "memory_mib");
    onlyKeys(m, "memory_mib",
             {"total", "weights", "grads", "optimizer", "transit",
              "activations", "sends", "in_flight"});
    PlanStageMemory mem;
    mem.total = integer(m, "total", "memory_mib", 0);
    mem.weights = integer(m, "weights", "memory_mib", 0);
    mem.grads = integer(m, "grads", "memory_mib", 0);
    mem.optimizer = integer(m, "optimizer", "memory_mib", 0);
    mem.activations = integer(m, "activations", "memory_mib", 0);
    mem.inFlight = integer(m, "in_flight", "memory_mib", 0);
    if (m["sends"])
      mem.sends = integer(m, "sends", "memory_mib", 0);
    if (m["transit"])
      mem.transit = integer(m, "transit", "memory_mib", 0);
    checkMemoryTotal(m, mem);
    s.memory = mem;
  }
  if (YAML::Node r = n["ranks"])
    s.ranks = rankLayout(r, "ranks");
  return s;
}

PlanCPAssignment Reader::cpAssignment(const YAML::Node &n) {
  map(n, "cp_assignments");
  onlyKeys(n, "cp_assignment",
           {"part", "cp", "policy", "optimal", "tokens", "block", "key_tile",
            "token_weight", "ranks", "workload", "imbalance"});
  PlanCPAssignment a;
  a.part = str(n, "part", "cp_assignment");
  a.cp = integer(n, "cp", "cp_assignment", 1);
  a.policy = str(n, "policy", "cp_assignment");
  a.optimal = boolean(n, "optimal", "cp_assignment");
  a.tokens = integer(n, "tokens", "cp_assignment", 1);
  a.block = integer(n, "block", "cp_assignment", 1);
  a.keyTile = integer(n, "key_tile", "cp_assignment", 1);
  if (n["token_weight"]) {
    a.tokenWeight = real(n, "token_weight", "cp_assignment");
    if (a.tokenWeight > kMaxTokenWeight)
      fail(n["token_weight"],
           "'token_weight' must be at most " + std::to_string(kMaxTokenWeight));
  }
  YAML::Node ranks = seq(need(n, "ranks", "cp_assignment"), "ranks");
  for (const YAML::Node &rank : ranks) {
    auto &ranges = a.ranks.emplace_back();
    for (const YAML::Node &range : seq(rank, "ranks")) {
      if (!range.IsSequence() || range.size() != 2)
        fail(range, "a token range must be [start, end)");
      int64_t b = toInt(range[0], "ranks"), e = toInt(range[1], "ranks");
      if (b < 0 || e <= b || e > a.tokens)
        fail(range, "token range [" + std::to_string(b) + ", " +
                        std::to_string(e) + ") is not inside [0, " +
                        std::to_string(a.tokens) + ")");
      ranges.push_back({b, e});
    }
  }
  if (static_cast<int64_t>(a.ranks.size()) != a.cp)
    fail(ranks, "'ranks' lists " + std::to_string(a.ranks.size()) +
                    " ranks for cp " + std::to_string(a.cp));
  a.workload = intList(n, "workload", "cp_assignment");
  a.imbalance = real(n, "imbalance", "cp_assignment");
  return a;
}

sched::MessageShape Reader::shape(const YAML::Node &n) {
  sched::MessageShape out;
  for (const YAML::Node &t : seq(n, "shape")) {
    map(t, "shape");
    onlyKeys(t, "shape", {"dims", "dtype"});
    sched::TensorShape ts;
    ts.dims = intList(t, "dims", "shape");
    for (int64_t d : ts.dims)
      if (d < 0 || d > (int64_t(1) << 40))
        fail(t, "a dimension of " + std::to_string(d) + " is out of range");
    YAML::Node dtype = need(t, "dtype", "shape");
    ts.elementType = toStr(dtype, "dtype");
    llvm::StringRef e = ts.elementType;
    if (e == "bf16" || e == "f16")
      ts.elementBytes = 2;
    else if (e == "f32")
      ts.elementBytes = 4;
    else if (e == "f64")
      ts.elementBytes = 8;
    else if (e == "i8")
      ts.elementBytes = 1;
    else
      fail(dtype, "unknown element type '" + ts.elementType + "'");
    out.push_back(std::move(ts));
  }
  return out;
}

PlanSchedule Reader::schedule(const YAML::Node &n, const Plan &plan) {
  map(n, "schedule");
  onlyKeys(n, "schedule",
           {"kind", "microbatches", "gpus_per_node", "intra_node_bandwidth",
            "inter_node_bandwidth", "peak_flops", "flops_per_iteration",
            "tokens_per_iteration", "rank_program", "programs"});
  PlanSchedule s;
  sched::PipelineGraph &g = s.graph;
  s.kind = str(n, "kind", "schedule");
  g.microbatches = integer(n, "microbatches", "schedule", 1);
  if (g.microbatches != plan.data.microbatches)
    fail(n["microbatches"], "the schedule has " +
                                std::to_string(g.microbatches) +
                                " microbatches but the data section " +
                                std::to_string(plan.data.microbatches));
  g.gpusPerNode = integer(n, "gpus_per_node", "schedule", 1);
  g.intraNodeBandwidth = real(n, "intra_node_bandwidth", "schedule");
  g.interNodeBandwidth = real(n, "inter_node_bandwidth", "schedule");
  g.peakFlops = real(n, "peak_flops", "schedule");
  // Copies of the job's: an edit of one copy is simulated by one tool and
  // run by another (found editing plans by hand).
  auto sameAsJob = [&](const char *key, double here, double job) {
    auto formatNumber = [](double v) {
      char text[32];
      std::snprintf(text, sizeof(text), "%.17g", v);
      return std::string(text);
    };
    if (here != job)
      fail(n[key], std::string("the schedule's '") + key + "' is " +
                       formatNumber(here) + " but the job's is " +
                       formatNumber(job) +
                       ": the plan keeps both copies; edit both, or compile "
                       "the spec again");
  };
  sameAsJob("gpus_per_node", static_cast<double>(g.gpusPerNode),
            static_cast<double>(plan.job.gpusPerNode));
  sameAsJob("intra_node_bandwidth", g.intraNodeBandwidth,
            plan.job.intraNodeBandwidth);
  sameAsJob("inter_node_bandwidth", g.interNodeBandwidth,
            plan.job.interNodeBandwidth);
  sameAsJob("peak_flops", g.peakFlops, plan.job.peakFlops);
  g.flopsPerIteration = real(n, "flops_per_iteration", "schedule");
  g.tokensPerIteration = integer(n, "tokens_per_iteration", "schedule", 0);

  YAML::Node programs = seq(need(n, "programs", "schedule"), "programs");
  llvm::StringMap<int> index;
  for (const YAML::Node &p : programs) {
    map(p, "programs");
    std::string name = str(p, "name", "program");
    if (!index.try_emplace(name, static_cast<int>(index.size())).second)
      fail(p["name"], "a second program named '" + name + "'");
  }
  auto stageOf = [&](const YAML::Node &v, const char *key) {
    std::string name = toStr(v, key);
    auto it = index.find(name);
    if (it == index.end())
      fail(v, "'" + name + "' is not a program of the schedule");
    return it->second;
  };
  int64_t actionsSeen = 0;
  std::vector<int64_t> arenas;
  for (const YAML::Node &p : programs) {
    onlyKeys(p, "program",
             {"name", "stage", "part", "llm", "max_in_flight", "ranks", "prev",
              "next", "grad_to_prev", "cost_s", "needs_input_grad",
              "needs_weight_grad", "memory_bytes", "arena_bytes",
              "trainable_params", "output", "groups", "actions"});
    sched::StageInfo info;
    sched::Program prog;
    int here = static_cast<int>(g.stages.size());
    programMarks.push_back(p.Mark());
    info.name = str(p, "name", "program");
    prog.stage = static_cast<int>(integer(p, "stage", "program", 0));
    if (prog.stage != here)
      fail(p["stage"], "program '" + info.name + "' is stage " +
                           std::to_string(prog.stage) + " but listed " +
                           std::to_string(here) + "th");
    info.part = str(p, "part", "program");
    info.isLLM = boolean(p, "llm", "program");
    prog.maxInFlight = integer(p, "max_in_flight", "program", 0);
    RankLayout ranks = rankLayout(need(p, "ranks", "program"), "ranks");
    if (ranks.tpStride != 1 || ranks.cpStride != ranks.tp)
      fail(p["ranks"], "a program's ranks must be laid out TP innermost "
                       "(tp_stride 1, cp_stride tp)");
    if (ranks.end() > plan.job.worldSize)
      fail(p["ranks"], "program '" + info.name + "' runs on ranks up to " +
                           std::to_string(ranks.end() - 1) + " of a world of " +
                           std::to_string(plan.job.worldSize));
    info.firstRank = ranks.first;
    info.dp = ranks.dp;
    info.dpStride = ranks.dpStride;
    info.cp = ranks.cp;
    info.tp = ranks.tp;
    for (const YAML::Node &v : seq(need(p, "prev", "program"), "prev"))
      info.prev.push_back(stageOf(v, "prev"));
    for (const YAML::Node &v : seq(need(p, "next", "program"), "next"))
      info.next.push_back(stageOf(v, "next"));
    for (const YAML::Node &v :
         seq(need(p, "grad_to_prev", "program"), "grad_to_prev"))
      info.gradToPrev.push_back(toBool(v, "grad_to_prev"));
    if (info.gradToPrev.size() != info.prev.size())
      fail(p["grad_to_prev"], "'grad_to_prev' needs one entry per 'prev'");
    YAML::Node cost = map(need(p, "cost_s", "program"), "cost_s");
    onlyKeys(
        cost, "cost_s",
        {"fwd", "bwd_input", "bwd_weight", "recompute", "unaware_backward"});
    info.fwd = real(cost, "fwd", "cost_s");
    info.bwdInput = real(cost, "bwd_input", "cost_s");
    info.bwdWeight = real(cost, "bwd_weight", "cost_s");
    info.recompute = real(cost, "recompute", "cost_s");
    info.unawareBackward = real(cost, "unaware_backward", "cost_s");
    info.needsInputGrad = boolean(p, "needs_input_grad", "program");
    info.needsWeightGrad = boolean(p, "needs_weight_grad", "program");
    YAML::Node mem = map(need(p, "memory_bytes", "program"), "memory_bytes");
    onlyKeys(mem, "memory_bytes", {"static", "activations", "capacity"});
    info.staticBytes = integer(mem, "static", "memory_bytes", 0);
    info.activationBytesPerMicrobatch =
        integer(mem, "activations", "memory_bytes", 0);
    info.memoryCapacity = integer(mem, "capacity", "memory_bytes", 0);
    if (info.memoryCapacity != plan.job.gpuMemoryBytes)
      fail(mem["capacity"],
           "program '" + info.name + "' has a capacity of " +
               std::to_string(info.memoryCapacity) +
               " bytes but the job's GPUs have " +
               std::to_string(plan.job.gpuMemoryBytes) +
               " ('gpu_memory_bytes'): the plan keeps both copies; edit "
               "both, or compile the spec again");
    arenas.push_back(p["arena_bytes"] ? integer(p, "arena_bytes", "program", 0)
                                      : -1);
    info.trainableParams = integer(p, "trainable_params", "program", 0);
    YAML::Node output = map(need(p, "output", "program"), "output");
    onlyKeys(output, "output", {"bytes", "grad_bytes", "shape", "grad_shape"});
    info.outputBytes = integer(output, "bytes", "output", 0);
    int64_t gradBytes = integer(output, "grad_bytes", "output", 0);
    info.outputShape = shape(need(output, "shape", "output"));
    if (YAML::Node gs = output["grad_shape"])
      info.outputGradShape = shape(gs);
    if (gradBytes != info.outputBytes)
      info.outputGradBytes = gradBytes;
    // The groups must be the ones the ranks give.
    YAML::Node groups = map(need(p, "groups", "program"), "groups");
    onlyKeys(groups, "groups", {"replicas", "tp", "cp", "grad_sync"});
    auto checkGroups = [&](const char *name,
                           const std::vector<std::vector<int64_t>> &expected) {
      YAML::Node v = seq(need(groups, name, "groups"), name);
      std::vector<std::vector<int64_t>> got;
      for (const YAML::Node &group : v) {
        auto &ranksOf = got.emplace_back();
        for (const YAML::Node &r : seq(group, name))
          ranksOf.push_back(toInt(r, name));
      }
      if (got != expected)
        fail(v, std::string("the '") + name +
                    "' groups do not match the program's ranks");
    };
    checkGroups("replicas", ranks.replicaGroups());
    checkGroups("tp", ranks.tpGroups());
    checkGroups("cp", ranks.cpGroups());
    checkGroups("grad_sync", ranks.gradSyncGroups());

    auto &marks = actionMarks.emplace_back();
    // One action of the file (a plain entry or one of a repeat's block).
    auto parseAction = [&](const YAML::Node &a) {
      map(a, "actions");
      onlyKeys(a, "action",
               {"op", "mb", "collectives", "peer", "tag", "shape", "bytes",
                "group"});
      sched::Action action;
      YAML::Node op = need(a, "op", "action");
      std::optional<sched::ActionKind> kind =
          sched::parseActionMnemonic(toStr(op, "op"));
      if (!kind)
        fail(op, "unknown action '" + op.Scalar() + "'");
      action.kind = *kind;
      if (sched::perMicrobatch(action.kind)) {
        int64_t mb = integer(a, "mb", "action", 0);
        if (mb >= g.microbatches)
          fail(a["mb"], "microbatch " + std::to_string(mb) +
                            " is outside [0, " +
                            std::to_string(g.microbatches) + ")");
        action.microbatch = static_cast<int32_t>(mb);
      }
      if (sched::isComm(action.kind)) {
        action.peer = stageOf(need(a, "peer", "action"), "peer");
        action.tag = integer(a, "tag", "action", 0);
        action.shape = shape(need(a, "shape", "action"));
      }
      if (sched::isComm(action.kind) ||
          action.kind == sched::ActionKind::AllReduceGrads) {
        action.bytes = integer(a, "bytes", "action", 0);
        if (sched::isComm(action.kind) &&
            sched::messageBytes(action.shape) != action.bytes)
          fail(a["bytes"],
               "the message holds " + std::to_string(action.bytes) +
                   " bytes but its shape " + sched::formatShape(action.shape) +
                   " gives " +
                   std::to_string(sched::messageBytes(action.shape)));
      }
      return action;
    };
    auto count = [&](const YAML::Node &a, int64_t n) {
      actionsSeen += n;
      if (actionsSeen > limits.maxActions)
        fail(a, "more than " + std::to_string(limits.maxActions) +
                    " actions: the reader's limit");
    };
    for (const YAML::Node &a : seq(need(p, "actions", "program"), "actions")) {
      if (!a.IsMap() || !a["repeat"]) {
        count(a, 1);
        marks.push_back(a.Mark());
        prog.actions.push_back(parseAction(a));
        continue;
      }
      // `times` copies of a block, the k-th with microbatches + k and tags
      // + 2k (docs/plan-format.md, "Repeated actions").
      onlyKeys(a, "repeat", {"repeat", "actions"});
      int64_t times = integer(a, "repeat", "repeat", 1);
      std::vector<std::pair<sched::Action, YAML::Mark>> block;
      for (const YAML::Node &b : seq(need(a, "actions", "repeat"), "actions")) {
        sched::Action action = parseAction(b);
        if (!sched::perMicrobatch(action.kind))
          fail(b, std::string("a repeated block holds per-microbatch actions "
                              "only, not '") +
                      sched::actionMnemonic(action.kind) + "'");
        block.push_back({std::move(action), b.Mark()});
      }
      if (block.empty())
        fail(a, "a repeated block needs actions");
      if (times > limits.maxActions ||
          times * static_cast<int64_t>(block.size()) > limits.maxActions)
        count(a, limits.maxActions + 1);
      count(a, times * static_cast<int64_t>(block.size()));
      for (int64_t k = 0; k < times; ++k)
        for (const auto &[action, mark] : block) {
          sched::Action copy = action;
          if (copy.microbatch + k >= g.microbatches)
            fail(a, "repetition " + std::to_string(k) +
                        " of this block "
                        "reaches microbatch " +
                        std::to_string(copy.microbatch + k) + ", outside [0, " +
                        std::to_string(g.microbatches) + ")");
          copy.microbatch += static_cast<int32_t>(k);
          if (copy.tag >= 0)
            copy.tag += 2 * k;
          marks.push_back(mark);
          prog.actions.push_back(std::move(copy));
        }
    }
    g.stages.push_back(std::move(info));
    s.programs.push_back(std::move(prog));
  }
  // Recorded for every program or for none.
  if (llvm::any_of(arenas, [](int64_t a) { return a >= 0; })) {
    for (size_t i = 0; i < arenas.size(); ++i)
      if (arenas[i] < 0)
        fail(programMarks[i], "program '" + g.stages[i].name +
                                  "' has no 'arena_bytes' but others do");
    s.arenaBytes = std::move(arenas);
  }
  // Which program each rank runs, and no rank in two programs.
  std::vector<int64_t> expected = s.rankProgram();
  std::vector<int64_t> recorded = intList(n, "rank_program", "schedule");
  std::vector<int> seen(static_cast<size_t>(plan.job.worldSize), -1);
  for (size_t i = 0; i < g.stages.size(); ++i)
    for (int64_t r : g.stages[i].rankLayout().ranks()) {
      if (seen[r] >= 0)
        fail(programMarks[i], "rank " + std::to_string(r) + " runs both '" +
                                  g.stages[seen[r]].name + "' and '" +
                                  g.stages[i].name + "'");
      seen[r] = static_cast<int>(i);
    }
  expected.resize(static_cast<size_t>(plan.job.worldSize), -1);
  // Plans written before the list covered the whole world stop at the last
  // rank with a program: the rest run none.
  if (recorded.size() < expected.size())
    recorded.resize(expected.size(), -1);
  if (recorded != expected)
    fail(n["rank_program"],
         "'rank_program' does not match the programs' ranks");
  // The programs pair up and terminate.
  if (llvm::Error error = sched::verifySchedule(g, s.programs)) {
    std::string message;
    YAML::Mark mark = n.Mark();
    llvm::handleAllErrors(
        std::move(error),
        [&](const sched::ScheduleError &e) {
          message = e.message;
          if (e.stage >= 0 &&
              static_cast<size_t>(e.stage) < programMarks.size())
            mark = e.action >= 0 && static_cast<size_t>(e.action) <
                                        actionMarks[e.stage].size()
                       ? actionMarks[e.stage][e.action]
                       : programMarks[e.stage];
        },
        [&](const llvm::ErrorInfoBase &e) { message = e.message(); });
    fail(mark, "the schedule is inconsistent: " + message);
  }
  return s;
}

Plan Reader::read(const YAML::Node &root) {
  if (!root.IsMap())
    fail(root, "a plan must be a YAML mapping (docs/plan-format.md)");
  Plan plan;
  YAML::Node version = need(root, "version", "plan");
  plan.version = toInt(version, "version");
  if (plan.version != kPlanVersion)
    fail(version, "plan version " + std::to_string(plan.version) +
                      " is not supported: this build reads version " +
                      std::to_string(kPlanVersion) +
                      "; compile the spec again with this build's mllmc");
  onlyKeys(root, "plan",
           {"version", "hash", "job", "train", "data", "parts", "pipeline",
            "stages", "cp_assignments", "schedule"});
  if (YAML::Node hash = root["hash"]) {
    map(hash, "hash");
    onlyKeys(hash, "hash", {"spec", "plan"});
    plan.specHash = str(hash, "spec", "hash");
    plan.planHash = str(hash, "plan", "hash");
  }
  plan.job = job(need(root, "job", "plan"));
  plan.train = train(need(root, "train", "plan"));
  plan.data = data(need(root, "data", "plan"));
  YAML::Node parts = seq(need(root, "parts", "plan"), "parts");
  llvm::StringSet<> names;
  for (const YAML::Node &p : parts) {
    plan.parts.push_back(part(p));
    if (!names.insert(plan.parts.back().name).second)
      fail(p, "a second part named '" + plan.parts.back().name + "'");
  }
  if (plan.parts.empty() || !plan.parts.back().isLLM ||
      llvm::count_if(plan.parts, [](const PlanPart &p) { return p.isLLM; }) !=
          1)
    fail(parts, "'parts' must list the encoders, then exactly one LLM");
  if (std::optional<PlanGroupIssue> issue = checkPlanGroups(plan)) {
    // (A YAML::Node assigned to refers the tree's node to another: none is.)
    const YAML::Node part = parts[issue->where.part];
    const YAML::Node groups =
        issue->where.projector ? part["projector"]["groups"] : part["groups"];
    fail(groups[issue->where.group], issue->message);
  }
  for (const PlanInput &in : plan.data.inputs) {
    const PlanPart *p = plan.findPart(in.encoder);
    if (!p || p->isLLM)
      fail(root["data"], "input '" + in.encoder + "' is not an encoder");
    // The encoder's own count pads to the LLM's by the merge.
    int64_t merge = p->projector ? p->projector->merge : 1;
    if (in.encoderTokens > 0 &&
        (in.encoderTokens + merge - 1) / merge != in.tokens)
      fail(root["data"],
           "input '" + in.encoder + "' has encoder_tokens " +
               std::to_string(in.encoderTokens) + ", which merge " +
               std::to_string(merge) + " pads to " +
               std::to_string((in.encoderTokens + merge - 1) / merge) +
               " tokens, not " + std::to_string(in.tokens) +
               "; compile the spec again");
  }
  // seq_len is what the layout gives, not a setting: an edited one was
  // simulated as written and refused only when a run built the layout.
  if (llvm::Expected<kernels::SequenceSpec> spec = sequenceSpec(plan)) {
    if (std::string why = kernels::checkSequenceSpec(*spec); !why.empty())
      fail(root["data"], "the data layout: " + why);
    int64_t length = kernels::sequenceLength(*spec);
    if (length != plan.data.seqLen)
      fail(root["data"]["seq_len"],
           "'seq_len' is " + std::to_string(plan.data.seqLen) +
               " but the data layout gives " + std::to_string(length) +
               " tokens per sequence (packing x (text_tokens + each "
               "input's tokens x items)); compile the spec again");
  } else {
    fail(root["data"], llvm::toString(spec.takeError()));
  }
  YAML::Node pipeline = map(need(root, "pipeline", "plan"), "pipeline");
  onlyKeys(pipeline, "pipeline",
           {"gpus_per_replica", "bottleneck_ms", "iteration_ms"});
  plan.pipeline.gpusPerReplica =
      integer(pipeline, "gpus_per_replica", "pipeline", 0);
  plan.pipeline.bottleneckMs = real(pipeline, "bottleneck_ms", "pipeline");
  plan.pipeline.iterationMs = real(pipeline, "iteration_ms", "pipeline");
  YAML::Node stages = seq(need(root, "stages", "plan"), "stages");
  // Where each part's next stage starts: its index and first unit.
  llvm::StringMap<std::pair<int64_t, int64_t>> next;
  for (const YAML::Node &s : stages) {
    plan.stages.push_back(stage(s));
    const PlanStage &st = plan.stages.back();
    const PlanPart *p = plan.findPart(st.part);
    if (!p)
      fail(s["part"], "stage '" + st.name + "' belongs to '" + st.part +
                          "', which is not a part");
    if (st.end > p->blocks)
      fail(s["layers"], "stage '" + st.name + "' holds units up to " +
                            std::to_string(st.end) + " of the " +
                            std::to_string(p->blocks) + " of '" + p->name +
                            "'");
    // A part's stages cover its units once, in order (as mllm.pipeline's
    // verifier requires): an edited plan that left a unit out trained
    // without it.
    auto &[index, begin] = next[st.part];
    if (st.index != index)
      fail(s["index"], "stage '" + st.name + "' is stage " +
                           std::to_string(st.index) + " of '" + st.part +
                           "', but it follows " + std::to_string(index) +
                           " of its stages; list a part's stages in order");
    if (st.begin != begin)
      fail(s["layers"],
           "stage '" + st.name + "' starts at unit " +
               std::to_string(st.begin) + " of '" + st.part + "', but " +
               (index == 0
                    ? std::string("a part's first stage starts at 0")
                    : "the stage before it ends at " + std::to_string(begin)) +
               ": a part's stages cover its units once, in order");
    ++index;
    begin = st.end;
    // Every stage runs on each of the job's replicas: a dp of its own
    // would train another batch than the data's (dp x microbatches).
    if (st.ranks && st.ranks->dp != plan.job.dp)
      fail(s["ranks"],
           "stage '" + st.name + "' has " + std::to_string(st.ranks->dp) +
               " replicas but the job's dp is " + std::to_string(plan.job.dp));
    if (st.ranks && st.ranks->end() > plan.job.worldSize)
      fail(s["ranks"], "stage '" + st.name +
                           "' runs on ranks beyond the "
                           "world of " +
                           std::to_string(plan.job.worldSize));
  }
  for (const PlanPart &p : plan.parts)
    if (int64_t end = next.lookup(p.name).second; end != p.blocks)
      fail(stages, "the stages of '" + p.name + "' end at unit " +
                       std::to_string(end) + " of its " +
                       std::to_string(p.blocks) +
                       ": a part's stages cover its units once, in order");
  for (const YAML::Node &a :
       seq(need(root, "cp_assignments", "plan"), "cp_assignments"))
    plan.cpAssignments.push_back(cpAssignment(a));
  if (YAML::Node s = root["schedule"])
    plan.schedule = schedule(s, plan);
  if (!plan.planHash.empty() && plan.planHash != planContentHash(plan))
    fail(root["hash"], "the plan's content does not match its recorded hash "
                       "(the file was edited): compile the spec again, or "
                       "delete the 'hash' line to accept the edits");
  return plan;
}

/// Nesting depth of the YAML text (block indentation plus flow brackets),
/// bounded before yaml-cpp recurses into it.
int64_t nestingDepth(llvm::StringRef text) {
  int64_t worst = 0, flow = 0;
  std::vector<size_t> indents;
  while (!text.empty()) {
    auto [line, rest] = text.split('\n');
    text = rest;
    size_t indent = line.find_first_not_of(' ');
    if (indent == llvm::StringRef::npos || line[indent] == '#')
      continue;
    // "- " items nest one level deeper than their dash.
    size_t content = indent;
    while (line.substr(content).starts_with("- "))
      content += 2;
    if (flow == 0) {
      while (!indents.empty() && indents.back() >= indent)
        indents.pop_back();
      indents.push_back(indent);
    }
    bool quoted = false;
    for (char c : line.substr(content)) {
      if (c == '"')
        quoted = !quoted;
      else if (!quoted && (c == '[' || c == '{'))
        ++flow;
      else if (!quoted && (c == ']' || c == '}'))
        flow = flow > 0 ? flow - 1 : 0;
      worst = std::max<int64_t>(
          worst,
          static_cast<int64_t>(indents.size() + (content - indent) / 2) + flow);
    }
  }
  return worst;
}

} // namespace

llvm::Expected<Plan> mllm::runtime::readPlan(llvm::StringRef text,
                                             llvm::StringRef fileName,
                                             const PlanReadLimits &limits) {
  auto error = [&](const std::string &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
  if (static_cast<int64_t>(text.size()) > limits.maxBytes)
    return error(fileName.str() + ": error: the plan is larger than " +
                 std::to_string(limits.maxBytes) + " bytes");
  if (nestingDepth(text) > limits.maxNesting)
    return error(fileName.str() + ": error: the plan nests deeper than " +
                 std::to_string(limits.maxNesting) + " levels");
  Reader reader(fileName, limits);
  try {
    // One plan per file: a second YAML document (mllmc --split-input-file
    // --emit=plan writes one per chunk) would otherwise be ignored. Counted
    // by events, not YAML::LoadAll, which can loop forever (YamlDocuments.h).
    std::string yaml = text.str();
    size_t documents = countYamlDocuments(yaml);
    if (documents > 1)
      return error(fileName.str() + ": error: the file holds " +
                   std::to_string(documents) +
                   " plans (YAML documents separated by '---'); a plan file "
                   "holds one: compile the chunk you want on its own");
    return reader.read(documents == 0 ? YAML::Node() : YAML::Load(yaml));
  } catch (const ReadError &e) {
    return error(e.message);
  } catch (const YAML::Exception &e) {
    std::string message = fileName.str();
    if (!e.mark.is_null())
      message += ":" + std::to_string(e.mark.line + 1) + ":" +
                 std::to_string(e.mark.column + 1);
    return error(message + ": error: " + e.msg);
  }
}

llvm::Expected<Plan> mllm::runtime::readPlanFile(llvm::StringRef path,
                                                 const PlanReadLimits &limits) {
  auto buffer = readFileAtMost(path, static_cast<uint64_t>(limits.maxBytes));
  if (!buffer)
    return llvm::createStringError(
        buffer.getError(),
        path.str() + ": error: " + buffer.getError().message());
  return readPlan((*buffer)->getBuffer(), path, limits);
}

bool mllm::runtime::looksLikePlan(llvm::StringRef text) {
  while (!text.empty()) {
    auto [line, rest] = text.split('\n');
    text = rest;
    llvm::StringRef t = line.trim();
    if (t.empty() || t.starts_with("#"))
      continue;
    return t.starts_with("version:");
  }
  return false;
}
