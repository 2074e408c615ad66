//===- Arch.cpp - architectures from families and instances ---------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mllm;
using namespace mllm::sema;

//===----------------------------------------------------------------------===//
// Architectures: family / instance inheritance
//===----------------------------------------------------------------------===//

std::optional<spec::Arch> sema::builtinArch(llvm::StringRef name) {
  if (name == "decoder")
    return spec::Arch::Decoder;
  if (name == "vision_encoder")
    return spec::Arch::VisionEncoder;
  if (name == "audio_encoder")
    return spec::Arch::AudioEncoder;
  return std::nullopt;
}

Schema sema::archSchema(spec::Arch arch) {
  switch (arch) {
  case spec::Arch::Decoder:
    return decoderSchema();
  case spec::Arch::VisionEncoder:
    return visionSchema();
  case spec::Arch::AudioEncoder:
    return audioSchema();
  }
  return {};
}

static const char *archName(spec::Arch arch) {
  switch (arch) {
  case spec::Arch::Decoder:
    return "decoder";
  case spec::Arch::VisionEncoder:
    return "vision_encoder";
  case spec::Arch::AudioEncoder:
    return "audio_encoder";
  }
  return "?";
}

std::optional<Sema::Chain> Sema::chainOf(const ast::Block &decl) {
  auto cached = chains.find(&decl);
  if (cached != chains.end())
    return cached->second;
  if (!resolving.insert(&decl).second) {
    diags.error(decl.base.range)
        << "'" << decl.name.name << "' inherits from itself";
    return std::nullopt;
  }
  std::optional<Chain> result;
  llvm::StringRef kind = decl.kind.name;
  if (decl.base.empty()) {
    diags.error(decl.name.range)
        << kind << " '" << decl.name.name << "' needs a base, e.g. '" << kind
        << " " << decl.name.name << " : decoder { ... }'";
  } else if (auto arch = builtinArch(decl.base.name)) {
    result = Chain{*arch, {&decl}};
  } else if (const ast::Block *base = findDecl(decl.base.name)) {
    llvm::StringRef baseKind = base->kind.name;
    if (baseKind == "hardware" ||
        (kind == "family" && baseKind == "instance")) {
      auto diag = diags.error(decl.base.range)
                  << kind << " '" << decl.name.name << "' cannot extend "
                  << baseKind << " '" << base->name.name << "'";
      diags.note(diag, base->name.range, baseKind.str() + " declared here");
    } else if (auto baseChain = chainOf(*base)) {
      result = *baseChain;
      result->blocks.push_back(&decl);
    }
  } else {
    std::vector<std::string> names = declNames("");
    for (const char *b : {"decoder", "vision_encoder", "audio_encoder"})
      names.push_back(b);
    diags.error(decl.base.range) << "unknown base '" << decl.base.name << "'"
                                 << suggest(decl.base.name, names);
  }
  resolving.erase(&decl);
  if (result)
    for (const ast::Block *b : result->blocks)
      checkBlock(*b, {archSchema(result->arch)}, {},
                 b->kind.name + " '" + b->name.name + "' (" +
                     archName(result->arch) + ")");
  chains[&decl] = result;
  return result;
}

/// Encoders list gelu first: "gelu|swiglu|geglu|relu|silu".
static const spec::Activation encoderActivations[] = {
    spec::Activation::GELU, spec::Activation::SwiGLU, spec::Activation::GeGLU,
    spec::Activation::ReLU, spec::Activation::SiLU};

std::optional<spec::ArchConfig> Sema::readArch(const Chain &chain,
                                               const ast::Block *site,
                                               llvm::StringRef name,
                                               bool complete) {
  Schema schema = archSchema(chain.arch);
  const ast::Block &decl = *chain.blocks.back();
  Fields f(*this, ("instance '" + decl.name.name + "'"));
  for (const ast::Block *b : chain.blocks)
    f.add(*b, schema);
  if (site)
    f.add(*site, schema);

  spec::ArchConfig c;
  c.arch = chain.arch;
  c.instance = name.str();
  bool ok = true;
  if (complete) {
    for (const char *req : {"layers", "hidden", "ffn", "heads"})
      ok &= f.require(req);
    if (c.arch == spec::Arch::Decoder)
      ok &= f.require("vocab");
    if (c.arch == spec::Arch::VisionEncoder) {
      ok &= f.require("patch");
      ok &= f.require("image");
    }
  }
  // Bounds far above any real network keep parameter counts within int64
  // (Bounds.h); the partitioner's work grows with layers x stages.
  constexpr int64_t dim = bounds::kMaxWidth, count = bounds::kMaxCount;
  ok &= f.readInt("layers", c.layers, 1, bounds::kMaxLayers);
  ok &= f.readInt("hidden", c.hidden, 1, dim);
  ok &= f.readInt("ffn", c.ffn, 1, dim);
  ok &= f.readInt("heads", c.heads, 1, count);
  c.kvHeads = c.heads;
  ok &= f.readInt("kv_heads", c.kvHeads, 1, count);
  ok &= f.readInt("head_dim", c.headDim, 1, dim);
  ok &= f.readBool("qkv_bias", c.qkvBias) && f.readBool("bias", c.bias);

  switch (c.arch) {
  case spec::Arch::Decoder:
    c.maxPositions = 131072;
    c.ropeTheta = 10000;
    ok &= f.readInt("vocab", c.vocab, 1, bounds::kMaxVocab);
    ok &= f.readEnum("norm", "rmsnorm|layernorm", c.norm);
    ok &= f.readEnum("activation", "swiglu|geglu|gelu|relu|silu", c.activation);
    {
      int pos = 0;
      ok &= f.readChoice("position", "rope|learned|alibi|none", pos);
      static const spec::Position positions[] = {
          spec::Position::RoPE, spec::Position::Learned, spec::Position::ALiBi,
          spec::Position::None};
      c.position = positions[pos];
    }
    ok &= f.readInt("max_positions", c.maxPositions);
    ok &= f.readFloat("rope_theta", c.ropeTheta, 0, true);
    ok &= f.readBool("tie_embeddings", c.tieEmbeddings);
    break;
  case spec::Arch::VisionEncoder: {
    c.norm = spec::Norm::LayerNorm;
    c.activation = spec::Activation::GELU;
    c.position = spec::Position::Learned;
    c.channels = 3;
    ok &= f.readInt("patch", c.patch, 1, count);
    ok &= f.readSize2D("image", c.imageWidth, c.imageHeight);
    ok &= f.readInt("channels", c.channels, 1, count);
    ok &= f.readInt("temporal_patch", c.temporalPatch, 1, count);
    int norm = 0, act = 0, pos = 0;
    ok &= f.readChoice("norm", "layernorm|rmsnorm", norm);
    c.norm = norm ? spec::Norm::RMSNorm : spec::Norm::LayerNorm;
    ok &= f.readChoice("activation", "gelu|swiglu|geglu|relu|silu", act);
    c.activation = encoderActivations[act];
    ok &= f.readChoice("position", "learned|rope|none", pos);
    static const spec::Position positions[] = {
        spec::Position::Learned, spec::Position::RoPE, spec::Position::None};
    c.position = positions[pos];
    ok &= f.readBool("class_token", c.classToken);
    ok &= f.readBool("pooling_head", c.poolingHead);
    if (ok && complete && (c.imageWidth < c.patch || c.imageHeight < c.patch)) {
      diags.error(f.get("image")->value->range)
          << "image " << c.imageWidth << "x" << c.imageHeight
          << " is smaller than one " << c.patch << "-pixel patch";
      ok = false;
    }
    break;
  }
  case spec::Arch::AudioEncoder: {
    c.norm = spec::Norm::LayerNorm;
    c.activation = spec::Activation::GELU;
    c.position = spec::Position::Sinusoidal;
    c.melBins = 80;
    c.maxFrames = 1500;
    c.downsample = 2;
    c.hopSeconds = 0.01;
    c.convKernel = 31;
    ok &= f.readInt("mel_bins", c.melBins, 1, count);
    ok &= f.readInt("max_frames", c.maxFrames, 1, 1 << 24);
    ok &= f.readInt("downsample", c.downsample, 1, count);
    ok &= f.readDim("hop", c.hopSeconds, Dim::Time);
    ok &= f.readEnum("block", "transformer|conformer", c.block);
    ok &= f.readInt("conv_kernel", c.convKernel, 1, count);
    int norm = 0, act = 0, pos = 0;
    ok &= f.readChoice("norm", "layernorm|rmsnorm", norm);
    c.norm = norm ? spec::Norm::RMSNorm : spec::Norm::LayerNorm;
    ok &= f.readChoice("activation", "gelu|swiglu|geglu|relu|silu", act);
    c.activation = encoderActivations[act];
    ok &= f.readChoice("position", "sinusoidal|learned|rope|none", pos);
    static const spec::Position positions[] = {
        spec::Position::Sinusoidal, spec::Position::Learned,
        spec::Position::RoPE, spec::Position::None};
    c.position = positions[pos];
    break;
  }
  }
  if (!ok)
    return std::nullopt;
  if (!complete)
    return c;

  // The values below may combine an instance's (in a library) with the
  // part's overrides: a note points at each override involved, or the
  // error would read as a broken library.
  auto noteOverrides = [&](mlir::InFlightDiagnostic &diag,
                           std::initializer_list<llvm::StringRef> names,
                           const ast::Field *at) {
    if (site)
      for (const ast::Field &field : site->fields)
        if (&field != at && llvm::is_contained(names, field.name.name))
          diags.note(diag, field.name.range,
                     "'" + field.name.name + "' is set here, at the part");
  };
  // Head geometry.
  if (c.heads % c.kvHeads != 0) {
    const ast::Field *at = f.get("kv_heads");
    auto diag = diags.error(at ? at->value->range : f.where())
                << "kv_heads " << c.kvHeads << " does not divide heads "
                << c.heads << "; grouped-query attention shares each kv head "
                << "among a whole number of query heads";
    noteOverrides(diag, {"heads", "kv_heads"}, at);
    return std::nullopt;
  }
  if (c.headDim == 0) {
    if (c.hidden % c.heads != 0) {
      const ast::Field *at = f.get("heads");
      auto diag = diags.error(at->value->range)
                  << "hidden " << c.hidden << " is not divisible by heads "
                  << c.heads << "; set head_dim explicitly";
      noteOverrides(diag, {"hidden", "heads"}, at);
      return std::nullopt;
    }
    c.headDim = c.hidden / c.heads;
  }
  // Attention width is bounded like the other widths, so parameter counts
  // stay within int64.
  if (c.heads * c.headDim > bounds::kMaxWidth) {
    const ast::Field *at = f.get("head_dim");
    auto diag = diags.error(at ? at->value->range : f.where())
                << "heads x head_dim = " << c.heads * c.headDim
                << " exceeds the largest supported attention width "
                << bounds::kMaxWidth;
    noteOverrides(diag, {"heads", "head_dim"}, at);
    return std::nullopt;
  }
  // The position table of a vision encoder has a row per patch, the audio
  // front end a frame per hop: one integer of the IR each.
  if (c.arch == spec::Arch::VisionEncoder &&
      (c.imageWidth / c.patch) * (c.imageHeight / c.patch) > bounds::kMaxInt) {
    const ast::Field *at = f.get("image");
    diags.error(at ? at->value->range : f.where())
        << "image " << c.imageWidth << "x" << c.imageHeight << " in " << c.patch
        << "-pixel patches has "
        << (c.imageWidth / c.patch) * (c.imageHeight / c.patch)
        << " patches; the limit is " << bounds::kMaxInt;
    return std::nullopt;
  }
  // A frame per hop of 16 kHz audio needs at least one sample; a hop
  // longer than a second is no mel spectrogram. (100us is 9.99...e-5 in
  // doubles: the bounds allow for the rounding.)
  if (c.arch == spec::Arch::AudioEncoder &&
      !(c.hopSeconds >= 1e-4 * (1 - 1e-9) && c.hopSeconds <= 1 + 1e-9)) {
    const ast::Field *at = f.get("hop");
    diags.error(at ? at->value->range : f.where())
        << "hop must be between 0.1ms and 1s (the time between mel frames; "
           "Whisper's is 10ms)";
    return std::nullopt;
  }
  if (c.arch == spec::Arch::AudioEncoder &&
      c.maxFrames * c.downsample > bounds::kMaxInt) {
    const ast::Field *at = f.get("max_frames");
    diags.error(at ? at->value->range : f.where())
        << "max_frames " << c.maxFrames << " x downsample " << c.downsample
        << " = " << c.maxFrames * c.downsample << " input frames; the limit is "
        << bounds::kMaxInt;
    return std::nullopt;
  }
  return c;
}

bool Sema::checkFamily(const ast::Block &decl) {
  auto chain = chainOf(decl);
  return chain && readArch(*chain, nullptr, decl.name.name, false);
}

std::optional<spec::ArchConfig> Sema::resolveInstance(const ast::Block &decl) {
  if (auto it = instances.find(&decl); it != instances.end())
    return it->second;
  std::optional<spec::ArchConfig> config;
  if (auto chain = chainOf(decl))
    config = readArch(*chain, nullptr, decl.name.name);
  instances[&decl] = config;
  return config;
}

bool Sema::resolveArchAt(const ast::Block &site, llvm::StringRef role,
                         spec::ArchConfig &config) {
  if (site.base.empty()) {
    diags.error(site.kind.range)
        << role << " needs an instance: '" << site.kind.name
        << (site.name.empty() ? "" : " " + site.name.name)
        << " : NAME { ... }'";
    return false;
  }
  const ast::Block *decl = findDecl(site.base.name);
  if (decl && decl->kind.name == "hardware") {
    auto diag = diags.error(site.base.range)
                << "'" << site.base.name
                << "' is a hardware profile, not an instance; a part takes "
                   "an instance of an architecture ('llm : llama3_2_1b')";
    diags.note(diag, decl->name.range, "hardware profile declared here");
    return false;
  }
  if (!decl) {
    std::vector<std::string> names = declNames("instance");
    std::string hint = suggest(site.base.name, names);
    auto diag = diags.error(site.base.range)
                << "unknown instance '" << site.base.name << "'" << hint;
    if (hint.empty())
      if (std::string module = stdlibModuleDeclaring(site.base.name);
          !module.empty())
        diags.note(diag, site.base.range,
                   "'" + site.base.name +
                       "' is declared in the standard "
                       "library's " +
                       module + ".mllm: add 'import " + module + ";'");
    return false;
  }
  if (decl->kind.name == "family") {
    auto diag = diags.error(site.base.range)
                << "'" << site.base.name
                << "' is a family; use one of its instances";
    diags.note(diag, decl->name.range, "family declared here");
    return false;
  }
  auto chain = chainOf(*decl);
  if (!chain)
    return false;
  // Check the instance itself once, on its own, so its errors point at it.
  if (!resolveInstance(*decl))
    return false;
  auto c = readArch(*chain, &site, decl->name.name);
  if (!c)
    return false;
  config = *c;
  return true;
}

std::optional<spec::Hardware> Sema::resolveHardware(const ast::Block &decl) {
  checkBlock(decl, {hardwareSchema()}, {}, "hardware '" + decl.name.name + "'");
  if (!decl.base.empty()) {
    if (once(&decl.base))
      diags.error(decl.base.range)
          << "hardware profiles do not inherit; write every field of '"
          << decl.name.name << "'";
    return std::nullopt;
  }
  Fields f(*this, "hardware '" + decl.name.name + "'");
  f.add(decl, hardwareSchema());
  spec::Hardware h;
  h.name = decl.name.name;
  h.interNodeBandwidth = 200e9 / 8;
  bool ok = true;
  for (const char *req :
       {"peak_bf16", "memory", "memory_bandwidth", "intra_node_bandwidth"})
    ok &= f.require(req);
  ok &= f.readDim("peak_bf16", h.peakFlops, Dim::Flops);
  ok &= f.readBytes("memory", h.memory);
  ok &= f.readDim("memory_bandwidth", h.memoryBandwidth, Dim::Bandwidth);
  ok &= f.readDim("intra_node_bandwidth", h.intraNodeBandwidth, Dim::Bandwidth);
  ok &= f.readDim("inter_node_bandwidth", h.interNodeBandwidth, Dim::Bandwidth);
  if (!ok)
    return std::nullopt;
  return h;
}
