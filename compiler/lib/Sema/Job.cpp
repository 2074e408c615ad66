//===- Job.cpp - model, data, cluster, parallel and train blocks ----------===//
//
// Resolves the job blocks against the declarations and checks everything
// that needs no cost model: projector widths, token counts, world size,
// divisibility of heads by TP, pipeline depth, CP degree, explicit stages.
//
//===----------------------------------------------------------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace mllm;
using namespace mllm::sema;

//===----------------------------------------------------------------------===//
// model
//===----------------------------------------------------------------------===//

static bool readProjector(Sema &sema, const ast::Block *block,
                          const spec::Encoder &enc, const spec::LLM &llm,
                          spec::Projector &p) {
  p.kind = spec::ProjectorKind::MLP;
  p.hidden = llm.config.hidden;
  p.loc = enc.loc;
  bool ok = true;
  if (block) {
    p.loc = block->range;
    sema.checkBlock(*block, {projectorSchema()}, {},
                    "projector of '" + enc.name + "'", Sema::Named);
    if (block->name.name == "linear")
      p.kind = spec::ProjectorKind::Linear;
    else if (block->name.name != "mlp") {
      sema.diags.error(block->name.empty() ? block->kind.range
                                           : block->name.range)
          << "projector kind must be 'linear' or 'mlp'"
          << (block->name.empty() ? ": write 'projector mlp { ... }'"
                                  : ", got '" + block->name.name + "'");
      return false;
    }
    Fields f(sema, "projector of '" + enc.name + "'");
    f.add(*block, projectorSchema());
    ok &= f.readBool("frozen", p.frozen);
    ok &= f.readInt("hidden", p.hidden, 1, bounds::kMaxWidth);
    ok &= f.readInt("merge", p.merge, 1, bounds::kMaxCount);
    int act = 0;
    ok &= f.readChoice("activation", "gelu|relu|silu", act);
    static const spec::Activation acts[] = {
        spec::Activation::GELU, spec::Activation::ReLU, spec::Activation::SiLU};
    p.activation = acts[act];
    if (p.kind == spec::ProjectorKind::Linear && f.has("hidden")) {
      sema.diags.error(f.get("hidden")->name.range)
          << "a linear projector has no hidden layer; use 'projector mlp'";
      ok = false;
    }
    p.in = enc.config.hidden * p.merge;
    p.out = llm.config.hidden;
    // The merged features are one layer's width, bounded like the others.
    if (ok && p.in > bounds::kMaxWidth) {
      const ast::Field *merge = f.get("merge");
      sema.diags.error(merge ? merge->value->range : p.loc)
          << "projector input width " << p.in << " (hidden "
          << enc.config.hidden << " x merge " << p.merge
          << ") exceeds the largest supported width " << bounds::kMaxWidth;
      return false;
    }
    int64_t in = p.in, out = p.out;
    if (ok && f.readInt("in", in) && in != p.in) {
      auto diag = sema.diags.error(f.get("in")->value->range)
                  << "projector input width " << in
                  << " does not match encoder '" << enc.name
                  << "', which produces " << p.in << " features (hidden "
                  << enc.config.hidden << " x merge " << p.merge << ")";
      sema.diags.note(diag, enc.loc, "encoder declared here");
      ok = false;
    }
    if (ok && f.readInt("out", out) && out != p.out) {
      auto diag = sema.diags.error(f.get("out")->value->range)
                  << "projector output width " << out
                  << " does not match the LLM's hidden size " << p.out;
      sema.diags.note(diag, llm.loc, "LLM declared here");
      ok = false;
    }
  } else {
    p.in = enc.config.hidden;
    p.out = llm.config.hidden;
  }
  return ok;
}

bool Sema::resolveModel(const ast::Block &block, spec::Model &model) {
  checkBlock(block, {modelSchema()}, {"encoder", "llm"}, "model", Named);
  Fields f(*this, "model");
  f.add(block, modelSchema());
  spec::Recompute defaultRecompute = spec::Recompute::None;
  bool ok = f.readRecompute("recompute", defaultRecompute);
  model.name = block.name.empty() ? "model" : block.name.name;
  model.loc = block.range;

  llvm::StringMap<llvm::SMRange> names;
  auto claim = [&](const ast::Ident &name) {
    auto [it, inserted] = names.try_emplace(name.name, name.range);
    if (!inserted) {
      auto diag = diags.error(name.range)
                  << "duplicate part name '" << name.name << "' in model";
      diags.note(diag, it->second, "first used here");
      return false;
    }
    return true;
  };

  // The LLM first: projectors are checked against its width.
  const ast::Block *llmBlock = nullptr;
  for (const auto &nested : block.blocks) {
    if (nested->kind.name != "llm")
      continue;
    if (llmBlock) {
      auto diag = diags.error(nested->kind.range)
                  << "a model has exactly one 'llm'";
      diags.note(diag, llmBlock->kind.range, "first 'llm' is here");
      ok = false;
      continue;
    }
    llmBlock = nested.get();
  }
  if (!llmBlock) {
    diags.error(block.kind.range)
        << "model '" << model.name
        << "' has no 'llm'; add 'llm : INSTANCE { ... }'";
    return false;
  }
  spec::LLM &llm = model.llm;
  llm.name = llmBlock->name.empty() ? "llm" : llmBlock->name.name;
  llm.loc = llmBlock->range;
  llm.recompute = defaultRecompute;
  if (!llmBlock->name.empty())
    claim(llmBlock->name);
  else
    names.try_emplace("llm", llmBlock->kind.range);
  checkBlock(*llmBlock, {partSiteSchema(), decoderSchema()}, {},
             "llm '" + llm.name + "'");
  // A bad llm still lets the encoders be checked (all but their
  // projectors, which are checked against its width).
  bool llmOk = resolveArchAt(*llmBlock, "the llm", llm.config);
  if (llmOk && llm.config.arch != spec::Arch::Decoder) {
    diags.error(llmBlock->base.range)
        << "the llm must be a decoder instance, but '" << llmBlock->base.name
        << "' is an encoder";
    llmOk = false;
  }
  ok &= llmOk;
  if (llmOk) {
    Fields site(*this, "llm '" + llm.name + "'");
    site.add(*llmBlock, partSiteSchema());
    ok &= site.readBool("frozen", llm.frozen);
    ok &= site.readRecompute("recompute", llm.recompute);
  }

  for (const auto &nested : block.blocks) {
    if (nested->kind.name != "encoder")
      continue;
    const ast::Block &eb = *nested;
    if (eb.name.empty()) {
      diags.error(eb.kind.range)
          << "an encoder needs a name (its modality): 'encoder vision : "
             "INSTANCE { ... }'";
      ok = false;
      continue;
    }
    if (!claim(eb.name)) {
      ok = false;
      continue;
    }
    // The projector's symbol is derived from the encoder's name.
    if (!claim({eb.name.name + "_projector", eb.name.range})) {
      ok = false;
      continue;
    }
    spec::Encoder enc;
    enc.name = eb.name.name;
    enc.loc = eb.range;
    enc.recompute = defaultRecompute;
    if (!resolveArchAt(eb, "encoder '" + enc.name + "'", enc.config)) {
      ok = false;
      continue;
    }
    if (enc.config.arch == spec::Arch::Decoder) {
      diags.error(eb.base.range)
          << "encoder '" << enc.name << "' uses '" << eb.base.name
          << "', a decoder; encoders must be vision_encoder or "
             "audio_encoder instances";
      ok = false;
      continue;
    }
    checkBlock(eb, {partSiteSchema(), archSchema(enc.config.arch)},
               {"projector"}, "encoder '" + enc.name + "'");
    Fields site(*this, "encoder '" + enc.name + "'");
    site.add(eb, partSiteSchema());
    ok &= site.readBool("frozen", enc.frozen);
    ok &= site.readRecompute("recompute", enc.recompute);
    const ast::Block *proj = nullptr;
    for (const auto &pb : eb.blocks) {
      if (pb->kind.name != "projector")
        continue;
      if (proj) {
        auto diag = diags.error(pb->kind.range)
                    << "encoder '" << enc.name << "' has a second projector";
        diags.note(diag, proj->kind.range, "first projector is here");
        ok = false;
        continue;
      }
      proj = pb.get();
    }
    if (llmOk)
      ok &= readProjector(*this, proj, enc, llm, enc.projector);
    model.encoders.push_back(std::move(enc));
  }
  return ok;
}

//===----------------------------------------------------------------------===//
// data
//===----------------------------------------------------------------------===//

/// Tokens one item contributes before the projector's merge.
static int64_t encoderTokens(const spec::ArchConfig &c, int64_t width,
                             int64_t height, double seconds) {
  if (c.arch == spec::Arch::VisionEncoder)
    return (width / c.patch) * (height / c.patch);
  // Audio is cut into windows the encoder always fills (Whisper pads to 30s).
  double window = c.windowSeconds();
  double windows = std::max(1.0, std::ceil(seconds / window - 1e-9));
  // Saturate: the caller rejects absurd sequence lengths.
  return (int64_t)std::min(windows * c.maxFrames, 1e15);
}

bool Sema::resolveData(const ast::Block *block, spec::Job &job) {
  if (!block)
    return false;
  spec::Data &d = job.data;
  const spec::Model &model = job.model;
  d.loc = block->range;
  checkBlock(*block, {dataSchema()}, {"*"}, "data", Bare);
  Fields f(*this, "data");
  f.add(*block, dataSchema());
  bool ok = f.require("text_tokens");
  ok &= f.require("microbatches");
  ok &= f.readInt("text_tokens", d.textTokens, 0);
  ok &= f.readInt("packing", d.packing, 1, bounds::kMaxPacking);
  ok &= f.readInt("microbatch_size", d.microbatchSize, 1,
                  bounds::kMaxMicrobatchSize);
  // Schedules list every microbatch of every stage.
  ok &= f.readInt("microbatches", d.microbatches, 1, bounds::kMaxMicrobatches);
  int textMask = 0;
  ok &= f.readChoice("text_mask", "causal|prefix_lm", textMask);
  d.textMask = textMask ? spec::Mask::PrefixLM : spec::Mask::Causal;

  std::vector<std::string> encoderNames;
  for (const spec::Encoder &e : model.encoders)
    encoderNames.push_back(e.name);
  llvm::StringMap<const ast::Block *> byName;
  for (const auto &nested : block->blocks) {
    llvm::StringRef name = nested->kind.name;
    if (!llvm::is_contained(encoderNames, name)) {
      auto diag = diags.error(nested->kind.range)
                  << "'" << name << "' is not an encoder of model '"
                  << model.name << "'";
      if (name == model.llm.name)
        diag << "; the LLM reads the text: its tokens are 'text_tokens'";
      else if (std::string hint = suggest(name, encoderNames); !hint.empty())
        diag << hint;
      else if (encoderNames.empty())
        diag << "; the model has no encoders";
      else
        diag << "; its encoders are " << llvm::join(encoderNames, ", ");
      ok = false;
      continue;
    }
    auto [it, inserted] = byName.try_emplace(name, nested.get());
    if (!inserted) {
      auto diag = diags.error(nested->kind.range)
                  << "second data block for '" << name << "'";
      diags.note(diag, it->second->kind.range, "first one is here");
      ok = false;
    }
  }

  // Doubles: absurd inputs must produce an error, not int64 overflow.
  double perSample = (double)d.textTokens;
  for (const spec::Encoder &enc : model.encoders) {
    spec::ModalityInput in;
    in.encoder = enc.name;
    in.loc = enc.loc;
    const spec::ArchConfig &c = enc.config;
    bool isVision = c.arch == spec::Arch::VisionEncoder;
    int64_t width = c.imageWidth, height = c.imageHeight;
    double seconds = isVision ? 0 : c.windowSeconds();
    const ast::Block *mb = byName.lookup(enc.name);
    int64_t fixed = 0;
    if (mb) {
      in.loc = mb->range;
      std::string context = "data for '" + enc.name + "'";
      checkBlock(*mb, {modalitySchema()}, {}, context, Bare);
      Fields m(*this, context);
      m.add(*mb, modalitySchema());
      const char *wrong = isVision ? "duration" : "image";
      if (m.has(wrong)) {
        diags.error(m.get(wrong)->name.range)
            << "'" << wrong << "' does not apply to "
            << (isVision ? "vision" : "audio") << " encoder '" << enc.name
            << "'; use '" << (isVision ? "image" : "duration") << "'";
        ok = false;
      }
      const char *derived = isVision ? "image" : "duration";
      if (m.has("tokens") && m.has(derived)) {
        auto diag = diags.error(m.get("tokens")->name.range)
                    << "give either 'tokens' or '" << derived << "', not both";
        diags.note(diag, m.get(derived)->name.range, "also given here");
        ok = false;
      }
      ok &= m.readInt("tokens", fixed);
      ok &= isVision ? m.readSize2D("image", width, height)
                     : m.readDim("duration", seconds, Dim::Time);
      if (isVision && (width < c.patch || height < c.patch)) {
        diags.error(m.get("image")->value->range)
            << "image " << width << "x" << height << " is smaller than one "
            << c.patch << "-pixel patch of '" << c.instance << "'";
        ok = false;
      }
      ok &= m.readInt("items", in.items, 1, bounds::kMaxItems);
      int mask = 0;
      ok &= m.readChoice("mask", "bidirectional|causal", mask);
      in.mask = mask ? spec::Mask::Causal : spec::Mask::Bidirectional;
      if (m.has("placement")) {
        Value v = m.value("placement");
        if (!v.valid()) {
          ok = false;
        } else if (v.kind == Value::Kind::Ident && v.text == "prepend") {
          in.placement = spec::Placement::Prepend;
        } else if (v.kind == Value::Kind::Ident && v.text == "append") {
          in.placement = spec::Placement::Append;
        } else if (v.kind == Value::Kind::Call && v.text == "at") {
          in.placement = spec::Placement::At;
          for (const Value &e : v.elems) {
            if (e.kind != Value::Kind::Number || e.dim != Dim::None ||
                e.number < 0 || e.number > 1) {
              diags.error(e.range) << "positions are fractions of the text "
                                      "between 0 and 1";
              ok = false;
              break;
            }
            in.positions.push_back(e.number);
          }
          if (ok && in.positions.empty()) {
            diags.error(v.range) << "'at' needs at least one position, "
                                    "e.g. at(0.5)";
            ok = false;
          } else if (ok && in.positions.size() != 1 &&
                     (int64_t)in.positions.size() != in.items) {
            diags.error(v.range)
                << "'at' lists " << in.positions.size() << " positions for "
                << in.items << " items; give one position or one per item";
            ok = false;
          }
        } else {
          m.typeError("placement", v, "prepend, append or at(f, ...)");
          ok = false;
        }
      }
    }
    in.encoderTokens = fixed ? fixed : encoderTokens(c, width, height, seconds);
    // The encoder pads its output to whole merge groups (Qwen2-VL resizes
    // images to multiples of the merged patch).
    int64_t merge = enc.projector.merge;
    in.tokens = (in.encoderTokens + merge - 1) / merge;
    perSample += (double)in.tokens * (double)in.items;
    d.inputs.push_back(std::move(in));
  }
  double seqLen = perSample * (double)d.packing;
  // Bounds every token product of the cost model and the schedule (tokens
  // per microbatch x hidden x bytes) well inside int64.
  constexpr double kMaxTokens = double(bounds::kMaxTokensPerMicrobatch);
  if (ok && seqLen * (double)d.microbatchSize > kMaxTokens) {
    diags.error(block->kind.range)
        << "a microbatch of " << formatNumber(d.microbatchSize) << " x "
        << formatNumber(seqLen) << " tokens is too large to plan (limit "
        << formatNumber(kMaxTokens) << ")";
    return false;
  }
  d.seqLen = (int64_t)seqLen;
  if (ok && d.seqLen == 0) {
    diags.error(block->kind.range)
        << "a sample has no tokens; set text_tokens or add modality data";
    ok = false;
  }
  // A learned table has no row for a later position (a sample may fill the
  // sequence, and its positions run to seq_len - 1); RoPE, ALiBi and
  // sinusoidal positions extrapolate, so there it is a warning.
  if (ok && d.seqLen > model.llm.config.maxPositions) {
    if (model.llm.config.position == spec::Position::Learned) {
      diags.error(block->kind.range)
          << "sequences of " << d.seqLen << " tokens exceed the LLM's "
          << "learned position table of " << model.llm.config.maxPositions
          << " rows (max_positions); raise max_positions to at least "
          << d.seqLen << " or shorten the sequence";
      return false;
    }
    diags.warning(block->kind.range)
        << "sequences of " << d.seqLen << " tokens exceed the LLM's "
        << "max_positions " << model.llm.config.maxPositions;
  }
  return ok;
}

//===----------------------------------------------------------------------===//
// cluster
//===----------------------------------------------------------------------===//

bool Sema::resolveCluster(const ast::Block &block, spec::Cluster &cluster) {
  checkBlock(block, {clusterSchema()}, {}, "cluster", Bare);
  Fields f(*this, "cluster");
  f.add(block, clusterSchema());
  cluster.loc = block.range;
  bool ok = f.require("nodes");
  ok &= f.require("gpus_per_node");
  ok &= f.require("gpu");
  ok &= f.readInt("nodes", cluster.nodes, 1, bounds::kMaxNodes);
  ok &= f.readInt("gpus_per_node", cluster.gpusPerNode, 1,
                  bounds::kMaxGpusPerNode);
  // A plan lists every rank.
  if (ok && cluster.worldSize() > bounds::kMaxWorldSize) {
    diags.error(block.kind.range)
        << "a cluster of " << cluster.worldSize() << " GPUs (" << cluster.nodes
        << " nodes x " << cluster.gpusPerNode << ") exceeds the limit of "
        << bounds::kMaxWorldSize << " GPUs";
    ok = false;
  }
  Value gpu;
  ok &= f.readName("gpu", gpu);
  if (gpu.valid()) {
    const ast::Block *decl = findDecl(gpu.text);
    if (decl && decl->kind.name != "hardware") {
      auto diag =
          diags.error(gpu.range)
          << "'" << gpu.text << "' is "
          << (decl->kind.name == "instance" ? "an instance" : "a family")
          << ", not a hardware profile; 'gpu' takes a profile "
             "('gpu = h100_sxm')";
      diags.note(diag, decl->name.range, "'" + gpu.text + "' declared here");
      ok = false;
    } else if (!decl) {
      std::vector<std::string> names = declNames("hardware");
      auto diag = diags.error(gpu.range)
                  << "unknown hardware profile '" << gpu.text << "'"
                  << suggest(gpu.text, names);
      if (names.empty())
        diags.note(diag, gpu.range,
                   "no profile is declared; add 'import hardware;'");
      ok = false;
    } else if (auto h = resolveHardware(*decl)) {
      cluster.gpu = *h;
      cluster.intraNodeBandwidth = h->intraNodeBandwidth;
      cluster.interNodeBandwidth = h->interNodeBandwidth;
    } else {
      ok = false;
    }
  }
  ok &= f.readDim("intra_node_bandwidth", cluster.intraNodeBandwidth,
                  Dim::Bandwidth);
  ok &= f.readDim("inter_node_bandwidth", cluster.interNodeBandwidth,
                  Dim::Bandwidth);
  return ok;
}

//===----------------------------------------------------------------------===//
// train
//===----------------------------------------------------------------------===//

bool Sema::resolveTrain(const ast::Block *block, spec::Train &train) {
  if (!block)
    return true;
  train.loc = block->range;
  checkBlock(*block, {trainSchema()}, {}, "train", Bare);
  Fields f(*this, "train");
  f.add(*block, trainSchema());
  bool ok = f.readInt("steps", train.steps);
  ok &= f.readDialectEnum("optimizer", train.optimizer);
  ok &= f.readFloat("lr", train.lr, 0, true);
  // 1e5 for 1e-5: every step would move the weights by about lr.
  if (const ast::Field *lr = f.get("lr"); lr && train.lr > 1) {
    // As written (1.0000001 is not "1"), in the fewest digits that read
    // back the same.
    char written[32];
    for (int digits = 6; digits <= 17; ++digits) {
      std::snprintf(written, sizeof(written), "%.*g", digits, train.lr);
      if (std::strtod(written, nullptr) == train.lr)
        break;
    }
    auto diag = diags.warning(lr->value->range)
                << "lr " << std::string(written)
                << " is above 1, where training diverges (learning rates are "
                   "usually 1e-5 to 1e-3)";
    // A sign lost from the exponent: 1e5 for 1e-5.
    double exponent = std::log10(train.lr);
    if (exponent == std::round(exponent) && exponent >= 2 && exponent <= 8)
      diag << "; did you mean " << formatNumber(1 / train.lr) << "?";
  }
  ok &= f.readFloat("weight_decay", train.weightDecay, 0, false);
  ok &= f.readDialectEnum("precision", train.precision);
  ok &= f.readInt("seed", train.seed, 0);
  return ok;
}
