//===- Sema.cpp - declarations, fields and architectures ------------------===//
//
// Collects the declarations of all files, checks every block against its
// schema, resolves family/instance inheritance into architecture configs and
// drives the job analysis (Job.cpp).
//
//===----------------------------------------------------------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mllm;
using namespace mllm::sema;

/// Integers beyond 2^53 are not exact in the evaluator's doubles; nothing in
/// a spec needs them.
static constexpr double kMaxInt = 9007199254740992.0;

//===----------------------------------------------------------------------===//
// Fields
//===----------------------------------------------------------------------===//

void Fields::add(const ast::Block &block, Schema schema) {
  for (const ast::Field &field : block.fields)
    if (lookup(schema, field.name.name))
      fields[field.name.name] = &field;
  last = block.range;
}

const ast::Field *Fields::get(llvm::StringRef name) const {
  auto it = fields.find(name);
  return it == fields.end() ? nullptr : it->second;
}

bool Fields::require(llvm::StringRef name) {
  if (has(name))
    return true;
  if (sema.onceKey(std::to_string((uintptr_t)last.Start.getPointer()) +
                   name.str()))
    sema.diags.error(last) << context << " is missing required field '" << name
                           << "'";
  return false;
}

Value Fields::value(llvm::StringRef name) {
  const ast::Field *field = get(name);
  if (!field)
    return Value();
  // Each field is evaluated (and its errors reported) once, however many
  // instances inherit it.
  auto it = sema.values.find(field);
  if (it == sema.values.end())
    it = sema.values.try_emplace(field, evaluate(*field->value, sema.diags))
             .first;
  return it->second;
}

void Fields::typeError(llvm::StringRef name, const Value &value,
                       llvm::StringRef expected) {
  const ast::Field *field = get(name);
  if (!sema.once(&field->value))
    return;
  sema.diags.error(value.range.isValid() ? value.range : field->range)
      << "field '" << name << "' expects " << expected << ", got "
      << value.describe();
}

bool Fields::readInt(llvm::StringRef name, int64_t &out, int64_t min,
                     int64_t max) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Number || v.dim != Dim::None || !v.isInteger) {
    typeError(name, v, "an integer");
    return false;
  }
  if (v.number > (double)max) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range) << "field '" << name << "' must be at most "
                                << max << ", got " << formatNumber(v.number);
    return false;
  }
  if (v.number < (double)min) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range) << "field '" << name << "' must be at least "
                                << min << ", got " << formatNumber(v.number);
    return false;
  }
  out = (int64_t)v.number;
  return true;
}

bool Fields::readFloat(llvm::StringRef name, double &out, double min,
                       bool exclusive) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Number || v.dim != Dim::None) {
    typeError(name, v, "a number");
    return false;
  }
  if (exclusive ? !(v.number > min) : !(v.number >= min)) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range)
          << "field '" << name << "' must be "
          << (exclusive ? "greater than " : "at least ") << formatNumber(min);
    return false;
  }
  out = v.number;
  return true;
}

bool Fields::readBool(llvm::StringRef name, bool &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Ident || (v.text != "true" && v.text != "false")) {
    typeError(name, v, "true or false");
    return false;
  }
  out = v.text == "true";
  return true;
}

bool Fields::readDim(llvm::StringRef name, double &out, Dim dim) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Number || v.dim != dim) {
    std::string expected = describe(dim);
    if (v.kind == Value::Kind::Number && v.dim == Dim::None)
      expected += dim == Dim::Bytes       ? " (add a unit: 48GiB)"
                  : dim == Dim::Bandwidth ? " (add a unit: 200Gbps, 600GB/s)"
                  : dim == Dim::Flops     ? " (add a unit: 312TFLOPS)"
                                          : " (add a unit: 30s, 10ms)";
    typeError(name, v, expected);
    return false;
  }
  if (!(v.number > 0)) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range) << "field '" << name << "' must be positive";
    return false;
  }
  out = v.number;
  return true;
}

bool Fields::readBytes(llvm::StringRef name, int64_t &out) {
  double bytes = (double)out;
  if (!readDim(name, bytes, Dim::Bytes))
    return false;
  if (bytes > kMaxInt) {
    if (sema.once(&get(name)->name))
      sema.diags.error(get(name)->value->range)
          << "field '" << name << "' is too large";
    return false;
  }
  out = (int64_t)std::llround(bytes);
  return true;
}

bool Fields::readChoice(llvm::StringRef name, llvm::StringRef choices,
                        int &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  llvm::SmallVector<llvm::StringRef> options;
  choices.split(options, '|');
  std::string list;
  for (size_t i = 0; i < options.size(); ++i)
    list += (i ? (i + 1 == options.size() ? " or " : ", ") : "") +
            ("'" + options[i] + "'").str();
  if (v.kind != Value::Kind::Ident) {
    typeError(name, v, "one of " + list);
    return false;
  }
  for (size_t i = 0; i < options.size(); ++i)
    if (v.text == options[i]) {
      out = (int)i;
      return true;
    }
  if (sema.once(&get(name)->value)) {
    std::vector<std::string> names(options.begin(), options.end());
    sema.diags.error(v.range)
        << "'" << v.text << "' is not a valid " << name << "; expected " << list
        << Sema::suggest(v.text, names);
  }
  return false;
}

bool Fields::readIntList(llvm::StringRef name, std::vector<int64_t> &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::List) {
    typeError(name, v, "a list of integers like [4, 4]");
    return false;
  }
  std::vector<int64_t> result;
  for (const Value &e : v.elems) {
    if (e.kind != Value::Kind::Number || e.dim != Dim::None || !e.isInteger ||
        e.number < 1 || e.number > kMaxInt) {
      if (sema.once(&get(name)->value))
        sema.diags.error(e.range)
            << "'" << name << "' entries must be positive integers";
      return false;
    }
    result.push_back((int64_t)e.number);
  }
  out = std::move(result);
  return true;
}

bool Fields::readSize2D(llvm::StringRef name, int64_t &width, int64_t &height) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  auto positiveInt = [](const Value &e) {
    return e.kind == Value::Kind::Number && e.dim == Dim::None && e.isInteger &&
           e.number >= 1 && e.number <= (1 << 20);
  };
  if (positiveInt(v)) {
    width = height = (int64_t)v.number;
    return true;
  }
  if (v.kind == Value::Kind::List && v.elems.size() == 2 &&
      positiveInt(v.elems[0]) && positiveInt(v.elems[1])) {
    width = (int64_t)v.elems[0].number;
    height = (int64_t)v.elems[1].number;
    return true;
  }
  typeError(name, v, "a positive size like 384 or [1280, 720]");
  return false;
}

bool Fields::readRecompute(llvm::StringRef name, spec::Recompute &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind == Value::Kind::Ident) {
    if (v.text == "true" || v.text == "full") {
      out = spec::Recompute::Full;
      return true;
    }
    if (v.text == "false" || v.text == "none") {
      out = spec::Recompute::None;
      return true;
    }
    if (v.text == "selective") {
      out = spec::Recompute::Selective;
      return true;
    }
  }
  typeError(name, v, "true, false, 'full', 'selective' or 'none'");
  return false;
}

bool Fields::readName(llvm::StringRef name, Value &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Ident) {
    typeError(name, v, "a name");
    return false;
  }
  out = v;
  return true;
}

//===----------------------------------------------------------------------===//
// Block checks
//===----------------------------------------------------------------------===//

std::string Sema::suggest(llvm::StringRef name,
                          llvm::ArrayRef<std::string> candidates) {
  std::string best;
  unsigned bestDist = std::max<unsigned>(2, name.size() / 3) + 1;
  for (const std::string &c : candidates) {
    unsigned d = name.edit_distance(c, true, bestDist);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

void Sema::checkBlock(const ast::Block &block, llvm::ArrayRef<Schema> schemas,
                      llvm::ArrayRef<llvm::StringRef> nestedKinds,
                      llvm::StringRef context) {
  if (!once(&block.fields))
    return;
  std::vector<std::string> known;
  for (Schema s : schemas)
    for (const FieldSpec &f : s)
      known.push_back(f.name);
  llvm::StringMap<const ast::Field *> seen;
  for (const ast::Field &field : block.fields) {
    llvm::StringRef name = field.name.name;
    if (!llvm::is_contained(known, name)) {
      bool isBlock = llvm::is_contained(nestedKinds, name);
      auto diag = diags.error(field.name.range)
                  << "unknown field '" << name << "' in " << context;
      if (isBlock)
        diag << "; '" << name << "' is a block: write '" << name
             << " ... { ... }'";
      else
        diag << suggest(name, known);
      continue;
    }
    auto [it, inserted] = seen.try_emplace(name, &field);
    if (!inserted) {
      auto diag = diags.error(field.name.range)
                  << "field '" << name << "' is set twice in " << context;
      diags.note(diag, it->second->name.range, "previously set here");
    }
  }
  // "*" means the caller checks nested blocks itself (they are named after
  // model parts).
  if (llvm::is_contained(nestedKinds, "*"))
    return;
  for (const auto &nested : block.blocks) {
    llvm::StringRef kind = nested->kind.name;
    if (llvm::is_contained(nestedKinds, kind))
      continue;
    auto diag = diags.error(nested->kind.range)
                << "unexpected block '" << kind << "' in " << context;
    if (llvm::is_contained(known, kind))
      diag << "; '" << kind << "' is a field: write '" << kind << " = ...;'";
    else if (nestedKinds.empty())
      diag << "; this block takes fields only";
    else
      diag << suggest(kind, std::vector<std::string>(nestedKinds.begin(),
                                                     nestedKinds.end()));
  }
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

static const llvm::StringRef topKinds[] = {"family",   "instance", "hardware",
                                           "model",    "data",     "cluster",
                                           "parallel", "train"};

std::vector<std::string> Sema::declNames(llvm::StringRef kind) const {
  std::vector<std::string> out;
  for (const auto &entry : decls)
    if (kind.empty() || entry.second->kind.name == kind)
      out.push_back(entry.first().str());
  std::sort(out.begin(), out.end());
  return out;
}

void Sema::collect() {
  for (const auto &file : program.files) {
    for (const auto &blockPtr : file->blocks) {
      const ast::Block &block = *blockPtr;
      llvm::StringRef kind = block.kind.name;
      if (!llvm::is_contained(topKinds, kind)) {
        std::vector<std::string> kinds(std::begin(topKinds),
                                       std::end(topKinds));
        diags.error(block.kind.range)
            << "unknown declaration '" << kind << "'" << suggest(kind, kinds);
        continue;
      }
      if (kind == "family" || kind == "instance" || kind == "hardware") {
        if (block.name.empty()) {
          diags.error(block.kind.range)
              << "'" << kind << "' needs a name: " << kind << " NAME "
              << (kind == "hardware" ? "{ ... }" : ": BASE { ... }");
          continue;
        }
        auto [it, inserted] = decls.try_emplace(block.name.name, &block);
        if (!inserted) {
          auto diag = diags.error(block.name.range)
                      << "redefinition of '" << block.name.name << "'";
          diags.note(diag, it->second->name.range,
                     "previous definition is here");
        }
        continue;
      }
      const ast::Block **slot = kind == "model"      ? &model
                                : kind == "data"     ? &data
                                : kind == "cluster"  ? &cluster
                                : kind == "parallel" ? &parallel
                                                     : &train;
      if (*slot) {
        auto diag = diags.error(block.kind.range)
                    << "second '" << kind << "' block; a program has one";
        diags.note(diag, (*slot)->kind.range,
                   "first '" + kind.str() + "' block is here");
        continue;
      }
      *slot = &block;
    }
  }
}

static std::optional<spec::Arch> builtinArch(llvm::StringRef name) {
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
  // Bounds far above any real network keep parameter counts within int64.
  constexpr int64_t dim = 1 << 20, count = 1 << 16;
  ok &= f.readInt("layers", c.layers, 1, count);
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
    ok &= f.readInt("vocab", c.vocab, 1, 1 << 24);
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

  // Head geometry.
  if (c.heads % c.kvHeads != 0) {
    const ast::Field *at = f.get("kv_heads");
    auto diag = diags.error(at ? at->value->range : f.where())
                << "kv_heads " << c.kvHeads << " does not divide heads "
                << c.heads << "; grouped-query attention shares each kv head "
                << "among a whole number of query heads";
    return std::nullopt;
  }
  if (c.headDim == 0) {
    if (c.hidden % c.heads != 0) {
      diags.error(f.get("heads")->value->range)
          << "hidden " << c.hidden << " is not divisible by heads " << c.heads
          << "; set head_dim explicitly";
      return std::nullopt;
    }
    c.headDim = c.hidden / c.heads;
  }
  // Attention width is bounded like the other widths, so parameter counts
  // stay within int64.
  if (c.heads * c.headDim > (1 << 20)) {
    const ast::Field *at = f.get("head_dim");
    diags.error(at ? at->value->range : f.where())
        << "heads x head_dim = " << c.heads * c.headDim
        << " exceeds the largest supported attention width " << (1 << 20);
    return std::nullopt;
  }
  return c;
}

bool Sema::checkFamily(const ast::Block &decl) {
  auto chain = chainOf(decl);
  return chain && readArch(*chain, nullptr, decl.name.name, false);
}

std::optional<spec::ArchConfig> Sema::resolveInstance(const ast::Block &decl) {
  auto chain = chainOf(decl);
  if (!chain)
    return std::nullopt;
  return readArch(*chain, nullptr, decl.name.name);
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
  if (!decl || decl->kind.name == "hardware") {
    std::vector<std::string> names = declNames("instance");
    diags.error(site.base.range) << "unknown instance '" << site.base.name
                                 << "'" << suggest(site.base.name, names);
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

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

std::optional<spec::Job> Sema::run(bool requireJob, spec::Library *library) {
  collect();
  // Every declaration is checked, used or not, so a library cannot rot.
  for (const auto &file : program.files)
    for (const auto &block : file->blocks) {
      auto it = decls.find(block->name.name);
      if (it == decls.end() || it->second != block.get())
        continue;
      if (block->kind.name == "hardware") {
        if (auto h = resolveHardware(*block); h && library)
          library->hardware[h->name] = *h;
      } else if (block->kind.name == "instance") {
        if (auto c = resolveInstance(*block); c && library)
          library->instances[c->instance] = *c;
      } else {
        (void)checkFamily(*block);
      }
    }

  spec::Job job;
  job.file = program.main().path;
  if (requireJob) {
    llvm::SMLoc start = llvm::SMLoc::getFromPointer(
        diags.getSourceMgr()
            .getMemoryBuffer(program.main().bufferId)
            ->getBufferStart());
    for (auto [block, kind] :
         {std::pair{model, "model"}, {data, "data"}, {cluster, "cluster"}})
      if (!block)
        diags.error(start) << "no '" << kind
                           << "' block; a job needs 'model', 'data' and "
                              "'cluster' blocks (see docs/language.md)";
    // Each block is checked as far as what it depends on is valid, so one
    // run reports as many independent errors as possible.
    bool clusterOk = cluster && resolveCluster(*cluster, job.cluster);
    if (model && resolveModel(*model, job.model)) {
      bool dataOk = resolveData(data, job);
      if (dataOk && clusterOk)
        resolveParallel(parallel, job);
    }
    resolveTrain(train, job.train);
  }
  if (diags.numErrors() != 0)
    return std::nullopt;
  return job;
}

std::optional<spec::Job> mllm::analyze(const Program &program,
                                       Diagnostics &diags, bool requireJob,
                                       spec::Library *library) {
  unsigned before = diags.numErrors();
  sema::Sema sema(program, diags);
  auto job = sema.run(requireJob, library);
  if (diags.numErrors() != before)
    return std::nullopt;
  return job;
}
