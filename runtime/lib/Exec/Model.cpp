//===- Model.cpp - the model of a plan on the CPU backend -----------------===//
#include "mllm/runtime/exec/Model.h"

#include "mllm/runtime/exec/Steps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <unistd.h>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

char RefusalError::ID = 0;

namespace {

llvm::Error refuse(const llvm::Twine &message, llvm::StringRef part = "") {
  return llvm::make_error<RefusalError>(
      part.str(), ("the CPU backend cannot run this plan: " + message).str());
}

/// The name of layer `i` of a group: `PART.GROUP` for a single layer,
/// `PART.GROUP.I` in a group of several.
std::string layerName(llvm::StringRef part, const PlanLayerGroup &g,
                      int64_t i) {
  std::string name = (part + "." + g.name).str();
  if (g.count > 1)
    name += "." + std::to_string(i);
  return name;
}

/// Bytes of physical memory, 0 when unknown.
int64_t physicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<int64_t>(pages) * size : 0;
}

/// A quick upper-bound-ish parameter count of one layer, for the memory
/// check before anything is built (the layers count exactly once built).
/// In double: a hand-edited plan's sizes may overflow int64 products.
double approximateParams(llvm::StringRef kind, const LayerConfig &c) {
  auto d = [](int64_t x) { return static_cast<double>(x); };
  const double h = d(c.hidden), f = d(c.ffn);
  if (kind == "token_embedding")
    return (d(c.vocab) + d(c.positions)) * h;
  if (kind == "lm_head")
    return c.tied ? 0 : d(c.vocab) * h;
  if (kind == "transformer_block" || kind == "conformer_block") {
    double attn = h * (d(c.heads) + 2 * d(c.kvHeads)) * d(c.headDim) +
                  d(c.heads) * d(c.headDim) * h;
    return attn + (c.gated ? 3 : 2) * h * f + 4 * h * (1 + d(c.convKernel));
  }
  if (kind == "patch_embedding")
    return d(c.channels) * d(c.temporalPatch) * d(c.patch) * d(c.patch) * h +
           d(c.positions) * h;
  if (kind == "audio_frontend")
    return 3 * d(c.melBins) * h + 3 * h * h + d(c.positions) * h;
  if (kind == "linear")
    return d(c.in) * d(c.out);
  if (kind == "mlp")
    return d(c.in) * h + h * d(c.out);
  return 2 * h;
}

class Builder {
public:
  Builder(Model &model, const Plan &plan, uint64_t seed,
          const Model::Keep &keep, const Model::Sharding *sharding)
      : model(model), plan(plan), seed(seed), keep(keep), sharding(sharding) {}

  llvm::Error build();

private:
  llvm::Error buildLayout();
  llvm::Error buildEncoder(const PlanPart &part, EncoderGeometry &geo,
                           Chain &chain);
  llvm::Error buildLLM(const PlanPart &part, Chain &chain);
  /// A step for layer `i` of `group`, its parameters registered.
  llvm::Expected<std::unique_ptr<LayerStep>>
  makeStep(llvm::StringRef part, const PlanLayerGroup &group, int64_t i,
           cpu::PartKind kind, cpu::Batch<float> geometry);
  /// Whether any step of `chain` accumulates weight gradients.
  static bool trains(Chain &chain) {
    for (size_t i = 0; i < chain.size(); ++i)
      if (chain.step(i).weightGrad())
        return true;
    return false;
  }

  /// Adds `step` to `chain`, noting whether it starts a partition unit.
  void add(Chain &chain, std::unique_ptr<Step> step, bool opensUnit) {
    opens.push_back(opensUnit);
    if (cpu::Layer<float> *layer = step->layer()) {
      for (cpu::Param<float> *p : layer->params()) {
        // A TP shard counts as its whole parameter, so every rank reports
        // the model's count, the one-process run's.
        int64_t n = 1;
        for (int64_t d : cpu::fullShape(p->shard, p->value.shape))
          n *= d;
        model.totalParams += n;
        if (!p->grad.data.empty())
          model.trainableParams += n;
      }
      int64_t unit = -1;
      for (bool o : opens)
        unit += o ? 1 : 0;
      unit = std::max<int64_t>(unit, 0);
      // A tied LM head reads the embedding on the last unit's stage too.
      bool tiedToHead = layer->kind() == "token_embedding" && tiedHead &&
                        keep && keep(chain.part(), lastUnit(chain.part()));
      if (keep && !keep(chain.part(), unit) && !tiedToHead)
        for (cpu::Param<float> *p : layer->params()) {
          std::vector<float>().swap(p->value.data);
          std::vector<float>().swap(p->grad.data);
        }
    }
    chain.add(std::move(step));
  }
  int64_t lastUnit(llvm::StringRef part) const {
    const PlanPart *p = plan.findPart(part);
    return p ? p->blocks - 1 : 0;
  }
  /// Turns the unit openers of the chain just built into its step units.
  void finishUnits() {
    std::vector<int64_t> units;
    int64_t unit = -1;
    for (bool o : opens) {
      unit += o ? 1 : 0;
      units.push_back(std::max<int64_t>(unit, 0));
    }
    model.stepUnits.push_back(std::move(units));
    opens.clear();
  }
  static bool hasBlocks(const PlanPart &part) {
    return llvm::any_of(part.groups, [](const PlanLayerGroup &g) {
      return isPartitionBlockKind(g.kind);
    });
  }

  Model &model;
  const Plan &plan;
  uint64_t seed;
  const Model::Keep &keep;
  const Model::Sharding *sharding;
  bool tiedHead = false;
  std::vector<bool> opens;
};

llvm::Expected<std::unique_ptr<LayerStep>>
Builder::makeStep(llvm::StringRef part, const PlanLayerGroup &group, int64_t i,
                  cpu::PartKind kind, cpu::Batch<float> geometry) {
  std::string name = layerName(part, group, i);
  cpu::TensorShard shard;
  if (sharding)
    if (auto it = sharding->tp.find(part.str()); it != sharding->tp.end())
      shard = it->second;
  if (std::string why = cpu::checkLayer(group.kind, group.config, kind, shard);
      !why.empty())
    return refuse("layer group '" + part + "." + group.name + "' (" +
                  group.kind + "): " + why);
  auto layer = cpu::makeLayer<float>(group.kind, group.config, kind,
                                     group.weightGrad, shard);
  if (!layer)
    return refuse("layer group '" + part + "." + group.name +
                  "': " + llvm::toString(layer.takeError()));
  for (cpu::Param<float> *p : (*layer)->params()) {
    cpu::initParam(*p, name + "." + p->name, seed);
    model.params.push_back({name + "." + p->name, p});
  }
  LayerStep::Flags flags;
  flags.weightGrad = group.weightGrad;
  flags.inputGrad = group.inputGradAt(i);
  flags.recompute = group.recompute;
  return std::make_unique<LayerStep>(name, std::move(*layer),
                                     std::move(geometry), flags);
}

llvm::Error Builder::buildLayout() {
  llvm::Expected<kernels::SequenceSpec> spec = sequenceSpec(plan);
  if (!spec)
    return spec.takeError();
  if (std::string why = kernels::checkSequenceSpec(*spec); !why.empty())
    return refuse("the data layout: " + why);
  model.layout = kernels::buildSequenceLayout(*spec, &model.spans);
  model.seqLen = model.layout.size();
  if (model.seqLen != plan.data.seqLen)
    return refuse("the data layout gives " + llvm::Twine(model.seqLen) +
                  " tokens per sequence, the plan " +
                  llvm::Twine(plan.data.seqLen));
  model.sequences = plan.data.microbatchSize;
  // RoPE/ALiBi positions restart with every packed sample; the next-token
  // targets are kernels::targetPositions'.
  model.positions.assign(model.seqLen, 0);
  std::vector<int64_t> sampleStart;
  for (const kernels::LayoutSpan &s : model.spans) {
    if (static_cast<int64_t>(sampleStart.size()) <= s.sample)
      sampleStart.resize(s.sample + 1, -1);
    if (sampleStart[s.sample] < 0)
      sampleStart[s.sample] = s.start;
    for (int64_t t = s.start; t < s.start + s.length; ++t)
      model.positions[t] = t - sampleStart[s.sample];
  }
  model.countedTokensPerSequence =
      static_cast<int64_t>(kernels::targetPositions(model.spans).size());
  return llvm::Error::success();
}

llvm::Error Builder::buildEncoder(const PlanPart &part, EncoderGeometry &geo,
                                  Chain &chain) {
  geo.name = part.name;
  const PlanInput *input = plan.data.findInput(part.name);
  if (!input || input->items == 0)
    return refuse("encoder '" + part.name + "' has no items in the data layout",
                  part.name);
  if (!part.projector)
    return refuse("encoder '" + part.name + "' has no projector", part.name);
  const PlanProjector &proj = *part.projector;
  geo.itemsPerSample = input->items;
  geo.items = model.sequences * plan.data.packing * input->items;
  geo.llmTokensPerItem = input->tokens;

  // The input layer decides the encoder's sequences: one per image, one
  // per 30 s window of audio.
  if (part.groups.empty() || part.groups.front().count != 1)
    return refuse("encoder '" + part.name + "' needs one input layer",
                  part.name);
  const PlanLayerGroup &first = part.groups.front();
  bool classToken = false;
  if (first.kind == "patch_embedding") {
    const LayerConfig &c = first.config;
    geo.windows = 1;
    geo.mediaPerSequence =
        c.channels * c.temporalPatch * c.imageHeight * c.imageWidth;
    classToken = c.classToken;
  } else if (first.kind == "audio_frontend") {
    const LayerConfig &c = first.config;
    geo.mediaPerSequence = c.frames * c.melBins;
  } else {
    return refuse("encoder '" + part.name + "' starts with a '" + first.kind +
                  "' layer, not a patch embedding or an audio front end");
  }
  // The input layer first: its output fixes the encoder's geometry.
  auto inputStep = makeStep(part.name, first, 0, cpu::PartKind::Encoder, {});
  if (!inputStep)
    return inputStep.takeError();
  int64_t perWindow = (*inputStep)->layer()->outputTokens(0);
  int64_t kept = perWindow - (classToken ? 1 : 0);
  if (first.kind == "audio_frontend")
    geo.windows =
        std::max<int64_t>(1, input->encoderTokensPerItem(proj.merge) / kept);
  int64_t sequences = geo.items * geo.windows;
  cpu::Batch<float> inputGeometry;
  inputGeometry.sequences = sequences;
  (*inputStep)->setGeometry(inputGeometry);
  (*inputStep)->mediaOf = part.name;
  bool blocks = hasBlocks(part);
  add(chain, std::move(*inputStep), !blocks);

  cpu::Batch<float> geometry;
  geometry.sequences = sequences;
  geometry.tokens = perWindow;
  for (const PlanLayerGroup &g : part.groups) {
    if (&g == &first || g.kind == "attention_pool")
      continue; // The pooling head is not on the way to the LLM.
    for (int64_t i = 0; i < g.count; ++i) {
      auto step = makeStep(part.name, g, i, cpu::PartKind::Encoder, geometry);
      if (!step)
        return step.takeError();
      add(chain, std::move(*step), !blocks || isPartitionBlockKind(g.kind));
    }
  }

  // The hand-over to the projector, per item (an item's windows are
  // consecutive sequences, so their tokens are the item's tokens in order).
  int64_t tokensPerItem = geo.windows * perWindow;
  if (classToken && geo.windows != 1)
    return refuse("encoder '" + part.name + "': a class token per window",
                  part.name);
  auto handOver = std::make_unique<ProjectorInputStep>(
      part.name + ".merge", geo.items, tokensPerItem, part.width, proj.merge,
      classToken, trains(chain));
  int64_t merged = handOver->outputTokens();
  // Where the plan has the encoder's own count (the merge pads it), that
  // count sizes its stages' messages: the layers must give it exactly.
  int64_t own = tokensPerItem - (classToken ? 1 : 0);
  if (merged != input->tokens ||
      (input->encoderTokens > 0 && own != input->encoderTokens)) {
    // The planner prices any resolution; the layers run at their own.
    bool image = first.kind == "patch_embedding";
    std::string at =
        image ? llvm::formatv(" at its own image size ({0} x {1} pixels)",
                              first.config.imageWidth, first.config.imageHeight)
                    .str()
              : std::string();
    std::string fix =
        image ? "an encoder runs at the input size its parameters were "
                "made for: set the data block's 'image' (or "
                "'tokens') of '" +
                    part.name +
                    "' to the encoder's, or the encoder's "
                    "'image' to the data's"
              : "an audio encoder runs whole windows: set the data block's "
                "'duration' (or 'tokens') of '" +
                    part.name + "' to whole windows";
    std::string counts =
        merged != input->tokens
            ? llvm::formatv("{0} LLM tokens per item{1}, the data layout {2}",
                            merged, at, input->tokens)
                  .str()
            : llvm::formatv("{0} tokens per item{1} (before the projector's "
                            "merge), the data layout {2}",
                            own, at, input->encoderTokens)
                  .str();
    return refuse("encoder '" + part.name + "' gives " + counts + "; " + fix,
                  part.name);
  }
  add(chain, std::move(handOver), false);
  cpu::Batch<float> projGeometry;
  projGeometry.sequences = geo.items;
  projGeometry.tokens = merged;
  for (const PlanLayerGroup &g : proj.groups)
    for (int64_t i = 0; i < g.count; ++i) {
      auto step =
          makeStep(proj.name, g, i, cpu::PartKind::Encoder, projGeometry);
      if (!step)
        return step.takeError();
      add(chain, std::move(*step), false); // Projectors ride along.
    }
  return llvm::Error::success();
}

llvm::Error Builder::buildLLM(const PlanPart &part, Chain &chain) {
  model.vocab = 0;
  cpu::Batch<float> geometry;
  geometry.sequences = model.sequences;
  geometry.tokens = model.seqLen;
  geometry.positions = model.positions;
  if (sharding && sharding->cp.group) {
    // A CP rank's layers see its tokens of each sequence; attention reads
    // the whole layout and positions at their global indices.
    model.contextParallel = sharding->cp;
    model.localTokens = sharding->cp.tokens[sharding->cp.group->rank()];
    geometry.tokens = static_cast<int64_t>(model.localTokens.size());
    geometry.cp = &model.contextParallel;
  }
  cpu::Param<float> *embedding = nullptr;
  bool embeddingTrains = false;
  bool blocks = hasBlocks(part);
  // Token ids in, logits over the same ids out: the targets are the
  // embedded ids.
  if (part.groups.empty() || part.groups.front().kind != "token_embedding")
    return refuse("the LLM '" + part.name +
                  "' does not start with a token embedding");
  for (const PlanLayerGroup &g : part.groups)
    if (g.kind == "lm_head" &&
        g.config.vocab < part.groups.front().config.vocab)
      return refuse("the LM head '" + part.name + "." + g.name + "' has " +
                    llvm::Twine(g.config.vocab) +
                    " logits, fewer than the token embedding's vocabulary "
                    "of " +
                    llvm::Twine(part.groups.front().config.vocab));
  for (const PlanLayerGroup &g : part.groups)
    for (int64_t i = 0; i < g.count; ++i) {
      cpu::Batch<float> b = geometry;
      // Attention reads the sequence's mask; the embedding and the head
      // need none.
      if (g.kind == "transformer_block" || g.kind == "conformer_block")
        b.layout = &model.layout;
      auto step = makeStep(part.name, g, i, cpu::PartKind::LLM, b);
      if (!step)
        return step.takeError();
      (*step)->followsBatchLayout = true;
      cpu::Layer<float> *layer = (*step)->layer();
      if (g.kind == "token_embedding") {
        for (cpu::Param<float> *p : layer->params())
          if (p->name == "weight")
            embedding = p;
        embeddingTrains = g.weightGrad;
        model.vocab = g.config.vocab;
      }
      if (layer->isTied()) {
        if (!embedding)
          return refuse("the LM head of '" + part.name +
                        "' is tied but the part has no token embedding");
        if (llvm::Error e = layer->bindTiedWeight(embedding))
          return refuse("the tied LM head of '" + part.name +
                        "': " + llvm::toString(std::move(e)));
        model.tiedEmbedding = embedding;
      }
      add(chain, std::move(*step), !blocks || isPartitionBlockKind(g.kind));
      if (g.kind == "token_embedding" && !model.encoders.empty()) {
        std::vector<std::string> names;
        std::vector<int64_t> items;
        std::vector<bool> needsGrad;
        for (size_t e = 0; e < model.encoders.size(); ++e) {
          names.push_back(model.encoders[e].name);
          items.push_back(model.encoders[e].itemsPerSample);
          needsGrad.push_back(trains(*model.chains[e]));
        }
        model.fanInStep = static_cast<int64_t>(chain.size());
        auto fanIn = std::make_unique<FanInStep>(
            part.name + ".fan_in", model.sequences, model.seqLen, model.spans,
            names, items, needsGrad, embeddingTrains);
        if (!model.localTokens.empty())
          fanIn->setLocalTokens(model.localTokens);
        std::vector<int64_t> perItem;
        for (const EncoderGeometry &g : model.encoders)
          perItem.push_back(g.llmTokensPerItem);
        fanIn->setTokensPerItem(std::move(perItem));
        add(chain, std::move(fanIn), false);
      }
    }
  if (chain.size() == 0 || !chain.step(chain.size() - 1).layer() ||
      chain.step(chain.size() - 1).layer()->kind() != "lm_head")
    return refuse("the LLM '" + part.name + "' does not end in an LM head");
  return llvm::Error::success();
}

llvm::Error Builder::build() {
  // Everything the backend refuses is found before anything is allocated.
  double params = 0, trainable = 0, widest = 0;
  for (const PlanPart &part : plan.parts) {
    cpu::PartKind kind =
        part.isLLM ? cpu::PartKind::LLM : cpu::PartKind::Encoder;
    auto check = [&](llvm::StringRef owner,
                     const std::vector<PlanLayerGroup> &groups) -> llvm::Error {
      for (const PlanLayerGroup &g : groups) {
        if (g.kind == "attention_pool")
          continue;
        if (std::string why = cpu::checkLayer(g.kind, g.config, kind);
            !why.empty())
          return refuse("layer group '" + owner + "." + g.name + "' (" +
                            g.kind + "): " + why,
                        part.name);
        const LayerConfig &c = g.config;
        // A sample may fill the sequence: positions up to seq_len - 1.
        if (g.kind == "token_embedding" && c.position == "learned" &&
            c.positions < plan.data.seqLen)
          return refuse("layer group '" + owner + "." + g.name +
                            "': its learned position table has " +
                            std::to_string(c.positions) +
                            " rows, and sequences have " +
                            std::to_string(plan.data.seqLen) +
                            " tokens; raise the LLM's max_positions",
                        part.name);
        double n = static_cast<double>(g.count) * approximateParams(g.kind, c);
        params += n;
        if (g.weightGrad)
          trainable += n;
        widest = std::max({widest, static_cast<double>(c.hidden),
                           static_cast<double>(c.ffn),
                           static_cast<double>(c.vocab)});
      }
      return llvm::Error::success();
    };
    if (llvm::Error e = check(part.name, part.groups))
      return e;
    if (part.projector)
      if (llvm::Error e = check(part.projector->name, part.projector->groups))
        return e;
  }
  // fp32 weights, and gradients plus two moments where they train; and, as
  // a floor of the activations, one fp32 tensor of a microbatch's tokens
  // at the widest layer (the logits, at the vocabulary).
  double bytes = 4.0 * params + 12.0 * trainable +
                 4.0 * static_cast<double>(plan.data.microbatchSize) *
                     static_cast<double>(plan.data.seqLen) * widest;
  double available = static_cast<double>(physicalMemory());
  if (available > 0 && bytes > 0.8 * available)
    return refuse(llvm::formatv("the model needs about {0:f1} GiB for its "
                                "weights, gradients, optimizer state and "
                                "activations in fp32, and this machine has "
                                "{1:f1} GiB; shrink the spec (fewer or "
                                "smaller layers, shorter sequences) for a "
                                "CPU run",
                                bytes / (1 << 30), available / (1 << 30))
                      .str());
  if (llvm::Error e = buildLayout())
    return e;
  for (const PlanLayerGroup &g : plan.llm().groups)
    tiedHead |= g.kind == "lm_head" && g.config.tied;
  for (const PlanPart &part : plan.parts) {
    auto chain = std::make_unique<Chain>(part.name);
    if (part.isLLM) {
      model.chains.push_back(std::move(chain));
      if (llvm::Error e = buildLLM(part, *model.chains.back()))
        return e;
      finishUnits();
    } else {
      EncoderGeometry geo;
      if (llvm::Error e = buildEncoder(part, geo, *chain))
        return e;
      model.encoders.push_back(geo);
      model.chains.push_back(std::move(chain));
      finishUnits();
    }
  }
  return llvm::Error::success();
}

} // namespace

llvm::Expected<std::unique_ptr<Model>> Model::build(const Plan &plan,
                                                    uint64_t seed,
                                                    const Keep &keep,
                                                    const Sharding *sharding) {
  std::unique_ptr<Model> model(new Model(plan));
  Builder builder(*model, plan, seed, keep, sharding);
  if (llvm::Error e = builder.build())
    return std::move(e);
  return std::move(model);
}

cpu::Param<float> *Model::findParam(llvm::StringRef name) const {
  for (const NamedParam &p : params)
    if (p.name == name)
      return p.param;
  return nullptr;
}

std::pair<size_t, size_t> Model::stepsOfUnits(size_t chain, int64_t begin,
                                              int64_t end) const {
  const std::vector<int64_t> &units = stepUnits[chain];
  size_t first = units.size(), last = 0;
  for (size_t i = 0; i < units.size(); ++i)
    if (units[i] >= begin && units[i] < end) {
      first = std::min(first, i);
      last = i + 1;
    }
  if (first >= last)
    return {0, 0};
  return {first, last};
}
