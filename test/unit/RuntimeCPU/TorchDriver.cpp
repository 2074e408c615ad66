//===- TorchDriver.cpp - CPU layers' results for the PyTorch cross-check --===//
//
// For every case of LayerCases.cpp, in float: builds the layer, initialises
// it with initParam (written as init.NAME, which the script recomputes with
// the Python port), replaces the values by well-scaled random ones
// (param.NAME), runs forward, backwardInput and backwardWeight on random
// inputs and a random upstream gradient, and writes everything into
// OUTDIR/CASE.safetensors: batch.* (ids, media, targets, positions, mask
// words and segments), in, dout, out, din, grad.NAME, and the case in the
// metadata (kind, part, config as JSON with LayerConfig's key spellings,
// sequences, tokens, loss_scale, init prefix and seed).
//
// Usage: MLLMRuntimeCPUTorchDriver OUTDIR
//
//===----------------------------------------------------------------------===//

#include "LayerCases.h"

#include "mllm/runtime/SafeTensors.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>

using namespace mllm::runtime;
using namespace mllm::runtime::cpu;
using namespace mllm::runtime::cpu::test;

namespace {

constexpr uint64_t kInitSeed = 1234;

std::string configJson(const LayerConfig &c) {
  llvm::json::Object o;
  for (const LayerConfigKey &k : layerConfigKeys()) {
    if (!k.isSet(c))
      continue;
    switch (k.type) {
    case LayerConfigKey::Int:
      o[k.name] = c.*k.intField;
      break;
    case LayerConfigKey::Bool:
      o[k.name] = true;
      break;
    case LayerConfigKey::Float:
      o[k.name] = c.*k.floatField;
      break;
    case LayerConfigKey::String:
      o[k.name] = c.*k.stringField;
      break;
    }
  }
  std::string s;
  llvm::raw_string_ostream(s) << llvm::json::Value(std::move(o));
  return s;
}

/// Keeps every buffer the writer points into alive until the write.
struct Keep {
  std::vector<std::unique_ptr<std::vector<float>>> floats;
  std::vector<std::unique_ptr<std::vector<int64_t>>> ints;
  llvm::ArrayRef<float> f(std::vector<float> v) {
    floats.push_back(std::make_unique<std::vector<float>>(std::move(v)));
    return *floats.back();
  }
  llvm::ArrayRef<int64_t> i(std::vector<int64_t> v) {
    ints.push_back(std::make_unique<std::vector<int64_t>>(std::move(v)));
    return *ints.back();
  }
};

bool writeCase(const LayerCase &c, const std::string &dir) {
  auto made = makeLayer<float>(c.kind, c.config, c.part, /*trainable=*/true);
  if (!made) {
    llvm::errs() << c.name << ": " << llvm::toString(made.takeError()) << "\n";
    return false;
  }
  Layer<float> &layer = **made;
  SafeTensorsWriter w;
  Keep keep;
  for (Param<float> *p : layer.params()) {
    initParam(*p, c.name + "." + p->name, kInitSeed);
    w.add("init." + p->name, p->value.shape, keep.f(p->value.data));
  }
  TestRng rng(2024);
  randomizeParams(layer, rng);
  for (Param<float> *p : layer.params())
    w.add("param." + p->name, p->value.shape, p->value.data);
  CaseData<float> d;
  makeCaseData(c, layer, rng, d);
  const Batch<float> &b = d.batch;
  const LayerConfig &cfg = c.config;
  if (!d.tokenIds.empty())
    w.add("batch.token_ids", {static_cast<int64_t>(d.tokenIds.size())},
          llvm::ArrayRef<int64_t>(d.tokenIds));
  if (!d.targets.empty())
    w.add("batch.targets", {static_cast<int64_t>(d.targets.size())},
          llvm::ArrayRef<int64_t>(d.targets));
  if (c.kind == "patch_embedding")
    w.add("batch.media",
          {c.sequences, cfg.channels, cfg.temporalPatch, cfg.imageHeight,
           cfg.imageWidth},
          llvm::ArrayRef<float>(d.media));
  if (c.kind == "audio_frontend")
    w.add("batch.media", {c.sequences, cfg.frames, cfg.melBins},
          llvm::ArrayRef<float>(d.media));
  if (!b.positions.empty())
    w.add("batch.positions", {c.tokens}, llvm::ArrayRef<int64_t>(b.positions));
  if (b.layout) {
    std::vector<int64_t> words(b.layout->words.begin(), b.layout->words.end());
    std::vector<int64_t> segs;
    for (int64_t i = 0; i < b.layout->size(); ++i)
      segs.push_back(b.layout->segment(i));
    w.add("batch.words", {c.tokens}, keep.i(std::move(words)));
    w.add("batch.segments", {c.tokens}, keep.i(std::move(segs)));
  }
  if (!d.in.data.empty())
    w.add("in", d.in.shape, d.in.data);
  w.add("dout", d.dOut.shape, d.dOut.data);
  if (d.tiedWeight)
    w.add("tied.weight", d.tiedWeight->value.shape, d.tiedWeight->value.data);

  Tensor<float> out, dIn;
  auto state = layer.forward(b, d.in, out);
  layer.backwardInput(b, *state, d.dOut, dIn);
  layer.backwardWeight(b, *state, d.dOut);
  w.add("out", out.shape, out.data);
  if (!dIn.data.empty())
    w.add("din", dIn.shape, dIn.data);
  for (Param<float> *p : layer.params())
    if (p->trainable)
      w.add("grad." + p->name, p->grad.shape, p->grad.data);
  if (d.tiedWeight)
    w.add("grad.tied.weight", d.tiedWeight->grad.shape,
          d.tiedWeight->grad.data);

  char scale[32];
  std::snprintf(scale, sizeof(scale), "%.17g", c.lossScale);
  w.setMetadata("name", c.name);
  w.setMetadata("kind", c.kind);
  w.setMetadata("part", c.part == PartKind::LLM ? "llm" : "encoder");
  w.setMetadata("config", configJson(cfg));
  w.setMetadata("sequences", std::to_string(c.sequences));
  w.setMetadata("tokens", std::to_string(c.tokens));
  w.setMetadata("loss_scale", scale);
  w.setMetadata("init_prefix", c.name + ".");
  w.setMetadata("init_seed", std::to_string(kInitSeed));
  if (llvm::Error e = w.write(dir + "/" + c.name + ".safetensors")) {
    llvm::errs() << c.name << ": " << llvm::toString(std::move(e)) << "\n";
    return false;
  }
  llvm::outs() << c.name << "\n";
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    llvm::errs() << "usage: " << argv[0] << " OUTDIR\n";
    return 2;
  }
  bool ok = true;
  for (const LayerCase &c : layerCases())
    ok &= writeCase(c, argv[1]);
  return ok ? 0 : 1;
}
