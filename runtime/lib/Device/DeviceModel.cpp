//===- DeviceModel.cpp - the LLM's layers and weights on the device -------===//
//
// Which models the device executor runs (the rest is refused, naming the
// layer), their layers and parameters (the same initial weights as the CPU
// model's), and what each region of the arena holds.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include "mllm/runtime/cpu/LayerParts.h"
#include "mllm/runtime/cpu/ParallelParts.h"

#include "mllm/runtime/exec/Steps.h"
#include "mllm/runtime/exec/Trainer.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
namespace kc = mllm::kernels::cuda;

llvm::Error device::check(const Status &status, const llvm::Twine &what) {
  if (status.ok())
    return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 what + ": " + status.message());
}

static llvm::Error refuse(const llvm::Twine &what) {
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      "--backend=cuda does not run this model yet: " + what +
          " (it runs encoders of a patch embedding or a Whisper-style audio "
          "front end, transformer or conformer blocks and a norm with an MLP "
          "or linear projector, and LLMs of a token embedding, transformer "
          "blocks, a final norm and the LM head; train other models with the "
          "CPU backend)");
}

/// Why the device executor cannot run a layer of `kind` with `c` in the
/// LLM (`llm`) or an encoder, or "".
static std::string unsupported(llvm::StringRef kind, const LayerConfig &c,
                               bool llm) {
  if (kind == "token_embedding")
    return c.position == "sinusoidal" ? "a sinusoidal position table" : "";
  if (kind == "norm" || kind == "lm_head")
    return "";
  if (kind == "patch_embedding") {
    kernels::cpu::PatchShape s;
    s.channels = c.channels;
    s.frames = s.temporalPatch = c.temporalPatch;
    s.patch = c.patch;
    s.height = c.imageHeight;
    s.width = c.imageWidth;
    std::string why = kernels::cuda::checkPatchShape(s);
    if (!why.empty())
      return "images the patches do not tile (" + why + ")";
    if (!c.position.empty() && c.position != "learned" && c.position != "none")
      return c.position + " positions in the patch embedding";
    return "";
  }
  if (kind == "audio_frontend")
    return c.position == "learned" || c.position == "sinusoidal" ||
                   c.position == "none" || c.position.empty()
               ? ""
               : c.position + " positions in the audio front end";
  if (kind == "mlp" || kind == "linear") {
    if (kind == "mlp" && c.activation != "gelu" && c.activation != "relu" &&
        c.activation != "silu")
      return "the projector's " + c.activation + " activation";
    return "";
  }
  if (kind != "transformer_block" && kind != "conformer_block")
    return "a layer of kind " + kind.str();
  if (kind == "conformer_block" && c.position == "rope")
    return "RoPE in a conformer block";
  if (!c.position.empty() && c.position != "none" && c.position != "alibi" &&
      !(llm && c.position == "rope"))
    return c.position + " positions";
  if (c.activation != "swiglu" && c.activation != "geglu" &&
      c.activation != "gelu" && c.activation != "relu" &&
      c.activation != "silu")
    return "the " + c.activation + " activation";
  if (c.headDim != 64 && c.headDim != 128)
    return "head dimension " + std::to_string(c.headDim) +
           " (the attention kernels take 64 and 128)";
  return "";
}

llvm::Error DeviceTrainer::Impl::build() {
  const Plan &plan = model->plan();
  // Context parallelism needs its group: a rank of a parallel run.
  if (!model->localTokens.empty() && !cp)
    return refuse("context parallelism inside the process");

  if (plan.train.optimizer != "adamw")
    return refuse("the " + plan.train.optimizer + " optimizer");
  if (plan.train.precision != "bf16")
    return refuse("precision " + plan.train.precision +
                  " (it trains in bf16: train { precision = bf16; })");
  adam.lr = plan.train.lr;
  adam.weightDecay = plan.train.weightDecay;

  for (const exec::NamedParam &p : model->params)
    paramNames[p.param] = p.name;
  encoders.resize(model->encoders.size());
  // The LLM's width: what the projectors give the fan-in.
  const cpu::Layer<float> *embedding = model->llm().step(0).layer();
  const int64_t llmHidden = embedding && embedding->layerConfig()
                                ? embedding->layerConfig()->hidden
                                : 0;
  for (size_t e = 0; e < encoders.size(); ++e) {
    DeviceEncoder &d = encoders[e];
    const exec::EncoderGeometry &g = model->encoders[e];
    exec::Chain &chain = *model->chains[e];
    d.name = g.name;
    d.mediaValues = g.items * g.windows * g.mediaPerSequence;
    // A pipeline stage without its layers still knows its tokens' shape,
    // and whether they get a gradient (the fan-in's stage computes it).
    d.outRows = g.items * g.llmTokensPerItem;
    d.outWidth = llmHidden;
    d.trains = chain.hasBackward(0, chain.size());
    if (!holds(e))
      continue;
    const size_t first = heldRange(e)->first, last = heldRange(e)->last;
    if (llvm::Error err =
            buildChain(chain, /*llm=*/false, d.layers, &d.seq, first, last))
      return err;
    d.ends = last >= chain.size();
    if (d.ends && (d.outRows != d.layers.back().outRows ||
                   d.outWidth != d.layers.back().outWidth))
      return refuse("the encoder '" + g.name + "', whose projector gives " +
                    std::to_string(d.layers.back().outRows) + " x " +
                    std::to_string(d.layers.back().outWidth) +
                    " values where the LLM places " +
                    std::to_string(d.outRows) + " x " +
                    std::to_string(d.outWidth));
    if (first > 0)
      continue;
    // The data's media per microbatch fills the input layer's buffer.
    const DeviceLayer &in = d.layers.front();
    const LayerConfig &c = in.config;
    const int64_t reads = in.kind == LayerKind::Audio
                              ? in.items * c.frames * c.melBins
                              : in.items * c.channels * c.temporalPatch *
                                    c.imageHeight * c.imageWidth;
    if (reads != d.mediaValues)
      return refuse("the encoder '" + g.name + "', whose media (" +
                    std::to_string(d.mediaValues) +
                    " values per microbatch) its input layer does not read "
                    "whole (" +
                    std::to_string(reads) + ")");
  }
  const size_t llmIndex = model->chains.size() - 1;
  if (!holds(llmIndex))
    return llvm::Error::success();
  if (llvm::Error e =
          buildChain(model->llm(), /*llm=*/true, layers, &batch,
                     heldRange(llmIndex)->first, heldRange(llmIndex)->last))
    return e;
  // Under CP the queries are this rank's tokens, the keys every rank's.
  if (cp) {
    cpRank = static_cast<size_t>(model->contextParallel.group->rank());
    if (llvm::Error e = useSplit(model->contextParallel.tokens))
      return e;
    for (const DeviceLayer &l : layers)
      if (l.kind == LayerKind::Conformer)
        return refuse("a conformer block under context parallelism in '" +
                      l.name + "' (its convolution needs neighbouring tokens)");
  }
  // The encoders' gradients come out of the fan-in, after the first block:
  // the frozen analysis lets it pass them whenever an encoder trains.
  if (fanInHere())
    for (const DeviceEncoder &e : encoders)
      if (e.trains && (layers.size() < 2 || !layers[1].inputGrad))
        return refuse("a trained encoder '" + e.name +
                      "' behind an LLM that passes it no gradient");
  return llvm::Error::success();
}

void DeviceTrainer::Impl::setLocalRows(int64_t tokens) {
  // Every layer of the LLM keeps one row per token it holds.
  batch.tokens = tokens;
  rows = model->sequences * tokens;
  for (DeviceLayer &l : layers)
    l.rows = l.outRows = rows;
}

llvm::Error
DeviceTrainer::Impl::useSplit(const std::vector<std::vector<int64_t>> &split) {
  if (!cp)
    return llvm::Error::success();
  const int64_t most = cpPerBatch
                           ? cpMostTokens
                           : static_cast<int64_t>(model->localTokens.size());
  if (split.size() != model->contextParallel.tokens.size())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "a batch's CP split over %zu ranks on a stage of %zu (internal error)",
        split.size(), model->contextParallel.tokens.size());
  if (static_cast<int64_t>(split[cpRank].size()) > most)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "a batch's CP split gives this rank %zu tokens of each sequence, "
        "its buffers hold %lld%s",
        split[cpRank].size(), static_cast<long long>(most),
        cpPerBatch ? ""
                   : " (its data source splits batches on their own "
                     "without saying so: DataSource::splitsPerBatch)");
  // The keys keep their number (the whole sequence), not their order.
  takeShares(split);
  return llvm::Error::success();
}

void DeviceTrainer::Impl::takeShares(
    const std::vector<std::vector<int64_t>> &shares) {
  cpShares = shares;
  cpKeys.clear();
  for (const std::vector<int64_t> &share : cpShares)
    cpKeys.insert(cpKeys.end(), share.begin(), share.end());
  batch.keys = static_cast<int64_t>(cpKeys.size());
  setLocalRows(static_cast<int64_t>(cpLocal().size()));
}

void DeviceTrainer::Impl::useShare(
    ShardCollectives &cache, const std::vector<std::vector<int64_t>> &share) {
  sharing = true;
  cp = &cache;
  cpRank = 1;
  takeShares(share);
}

void DeviceTrainer::Impl::endShare() {
  sharing = false;
  cp = nullptr;
  cpRank = 0;
  cpShares.clear();
  cpKeys.clear();
  batch.keys = model->seqLen;
  setLocalRows(model->seqLen);
}

DeviceParam *DeviceTrainer::Impl::deviceParam(cpu::Param<float> *p) {
  for (auto &d : params)
    if (d->host == p)
      return d.get();
  auto d = std::make_unique<DeviceParam>();
  d->host = p;
  d->name = paramNames[p];
  d->n = p->value.numel();
  d->trains = p->trainable && !p->grad.data.empty();
  params.push_back(std::move(d));
  return params.back().get();
}

llvm::Error DeviceTrainer::Impl::buildChain(exec::Chain &chain, bool llm,
                                            std::vector<DeviceLayer> &out,
                                            Sequences *seq, size_t first,
                                            size_t last) {
  last = std::min(last, chain.size());
  for (size_t i = first; i < last; ++i) {
    exec::Step &step = chain.step(i);
    DeviceLayer l;
    l.name = step.name();
    l.trains = step.weightGrad();
    l.inputGrad = step.inputGrad();
    cpu::Layer<float> *layer = step.layer();
    if (!layer) {
      if (llm && static_cast<int64_t>(i) == model->fanInStep) {
        if (out.size() != 1 || out[0].kind != LayerKind::Embedding)
          return refuse("a fan-in that does not follow the token embedding");
        continue;
      }
      auto *handOver = dynamic_cast<exec::ProjectorInputStep *>(&step);
      if (llm || !handOver || out.empty())
        return refuse("the step '" + l.name + "'");
      const int64_t kept =
          handOver->inputTokens() - (handOver->dropsFirst() ? 1 : 0);
      if (kept % handOver->mergeFactor() != 0)
        return refuse("merging " + std::to_string(handOver->mergeFactor()) +
                      " tokens of " + std::to_string(kept) + " (padding) in '" +
                      l.name + "'");
      l.kind = LayerKind::ProjectorInput;
      l.itemTokens = handOver->inputTokens();
      l.classToken = handOver->dropsFirst();
      l.rows = out.back().outRows;
      l.width = out.back().outWidth;
      l.outRows = l.rows / l.itemTokens * kept / handOver->mergeFactor();
      l.outWidth = l.width * handOver->mergeFactor();
      out.push_back(std::move(l));
      continue;
    }
    if (!layer->layerConfig())
      return refuse("the step '" + l.name + "'");
    l.config = *layer->layerConfig();
    llvm::StringRef kind = layer->kind();
    std::string why = unsupported(kind, l.config, llm);
    if (!why.empty())
      return refuse(why + " in '" + l.name + "'");
    const cpu::Batch<float> *geometry = step.layerGeometry();
    if (!geometry)
      return refuse("the step '" + l.name + "'");
    if (kind == "token_embedding")
      l.kind = LayerKind::Embedding;
    else if (kind == "transformer_block")
      l.kind = LayerKind::Block;
    else if (kind == "norm")
      l.kind = LayerKind::Norm;
    else if (kind == "lm_head")
      l.kind = LayerKind::Head;
    else if (kind == "patch_embedding")
      l.kind = LayerKind::Patch;
    else if (kind == "audio_frontend")
      l.kind = LayerKind::Audio;
    else if (kind == "mlp")
      l.kind = LayerKind::Mlp;
    else if (kind == "conformer_block")
      l.kind = LayerKind::Conformer;
    else
      l.kind = LayerKind::Linear;
    // A pipeline stage's first layer reads what the previous stage sent.
    const bool firstHere = out.empty();
    if (llm && ((l.kind == LayerKind::Embedding) != (i == 0) ||
                (l.kind == LayerKind::Head) != (i + 1 == chain.size())))
      return refuse("the layer order around '" + l.name + "'");
    const bool input = l.kind == LayerKind::Patch || l.kind == LayerKind::Audio;
    if (!llm && (input != (i == 0) || l.kind == LayerKind::Embedding ||
                 l.kind == LayerKind::Head))
      return refuse("the layer order around '" + l.name + "'");
    l.rope = l.config.position == "rope";
    l.gated = l.config.activation == "swiglu" || l.config.activation == "geglu";
    // A tensor-parallel shard runs its own heads, feed-forward columns or
    // vocabulary rows (the split cpu::TensorShard gave its parameters,
    // checked by Model::build).
    if (tp && (l.kind == LayerKind::Block || l.kind == LayerKind::Conformer ||
               l.kind == LayerKind::Embedding || l.kind == LayerKind::Head)) {
      LayerConfig &cf = l.config;
      l.split = true;
      if (l.kind == LayerKind::Block || l.kind == LayerKind::Conformer) {
        cf.heads /= tpSize;
        cf.kvHeads /= tpSize;
        cf.ffn /= tpSize;
        l.headFirst = tpRank * cf.heads;
      } else {
        cpu::VocabRange range =
            cpu::vocabRange(cf.vocab, cpu::TensorShard{tpRank, tpSize});
        l.vocabFirst = range.begin;
        cf.vocab = range.size();
      }
    }
    // Rows of the input: the chain's sequences (items for an encoder),
    // then what each layer makes of them.
    if (firstHere) {
      l.rows = geometry->sequences * (input ? 1 : geometry->tokens);
      l.width = input ? 0 : l.config.hidden;
    } else {
      l.rows = out.back().outRows;
      l.width = out.back().outWidth;
    }
    if (l.kind == LayerKind::Patch) {
      l.items = geometry->sequences;
      l.classToken = l.config.classToken;
      l.grid = (l.config.imageHeight / l.config.patch) *
               (l.config.imageWidth / l.config.patch);
      l.outRows = l.items * layer->outputTokens(0);
    } else if (l.kind == LayerKind::Audio) {
      l.items = geometry->sequences; // windows
      l.outRows = l.items * layer->outputTokens(0);
    } else {
      l.outRows = l.rows;
    }
    // The head's output is the loss: no gradient flows into it.
    l.outWidth =
        l.kind == LayerKind::Head ? l.config.hidden : layer->outputWidth();
    if (l.kind == LayerKind::Block || l.kind == LayerKind::Conformer) {
      // Only blocks recompute; the other layers keep what they saved.
      l.recompute = step.recompute();
      if (seq->sequences == 0) {
        seq->sequences = geometry->sequences;
        seq->keys = seq->tokens = geometry->tokens;
      }
      if (geometry->sequences != seq->sequences ||
          geometry->tokens != seq->tokens || seq->rows() != l.rows)
        return refuse("blocks of different sequences in '" + l.name + "'");
      l.seq = seq;
    }
    // Each parameter trains or not on its own (a fixed sinusoidal table
    // in a trained front end).
    for (cpu::Param<float> *p : layer->params())
      l.params[p->name] = deviceParam(p); // "wq", "norm1.weight"
    if (layer->isTied()) {
      if (!model->tiedEmbedding)
        return refuse("a tied LM head without the embedding's weight");
      l.params["weight"] = deviceParam(model->tiedEmbedding);
      if (l.params["weight"]->trains != l.trains)
        return refuse("a tied LM head frozen unlike its embedding");
    }
    out.push_back(std::move(l));
  }
  const bool whole = first == 0 && last == chain.size();
  if (llm && whole && out.size() < 3)
    return refuse("an LLM of " + std::to_string(out.size()) + " layers");
  if (!llm && last == chain.size() &&
      (out.empty() || (out.back().kind != LayerKind::Mlp &&
                       out.back().kind != LayerKind::Linear)))
    return refuse("an encoder without a projector");
  return llvm::Error::success();
}

void DeviceTrainer::Impl::carveWeights(Carver &c) {
  for (auto &p : params) {
    c.take(p->master, p->n);
    c.take(p->value, p->n);
  }
  forEachLayer([&](DeviceLayer &l) {
    if (l.config.position == "alibi" &&
        (l.kind == LayerKind::Block || l.kind == LayerKind::Conformer))
      c.take(l.slopes, l.config.heads);
  });
}

void DeviceTrainer::Impl::carveGrads(Carver &c) {
  for (auto &p : params)
    if (p->trains)
      c.take(p->grad, p->n);
}

void DeviceTrainer::Impl::carveMoments(Carver &c) {
  for (auto &p : params)
    if (p->trains) {
      c.take(p->expAvg, p->n);
      c.take(p->expAvgSq, p->n);
    }
}

/// What one layer's forward keeps.
static void carveLayer(Carver &c, DeviceLayer &l) {
  const LayerConfig &cf = l.config;
  const int64_t R = l.rows, H = cf.hidden;
  switch (l.kind) {
  case LayerKind::Embedding:
    return;
  case LayerKind::Patch: {
    const int64_t pd = cf.channels * cf.temporalPatch * cf.patch * cf.patch;
    c.take(l.media, l.items * cf.channels * cf.temporalPatch * cf.imageHeight *
                        cf.imageWidth);
    c.take(l.patches, l.items * l.grid * pd);
    return;
  }
  case LayerKind::Audio: {
    const int64_t F = cf.frames, F2 = l.outRows / l.items;
    c.take(l.media, l.items * F * cf.melBins);
    c.take(l.u, l.items * F * H);
    c.take(l.g1, l.items * F * H);
    c.take(l.a, l.items * F2 * H); // conv2, before its GELU
    return;
  }
  case LayerKind::ProjectorInput:
  case LayerKind::Linear:
    c.take(l.x, R * l.width);
    return;
  case LayerKind::Mlp:
    c.take(l.x, R * l.width);
    c.take(l.u, R * cf.hidden);
    c.take(l.a, R * cf.hidden);
    return;
  case LayerKind::Norm:
    c.take(l.x, R * H);
    c.take(l.mean1, R);
    c.take(l.rstd1, R);
    return;
  case LayerKind::Head:
    c.take(l.x, R * H);
    c.take(l.logits, R * cf.vocab);
    c.take(l.rowLse, R);
    return;
  case LayerKind::Block:
  case LayerKind::Conformer:
    c.take(l.x, R * H);
    if (!l.recompute)
      carveBlockResults(c, l);
    return;
  }
}

void device::carveBlockResults(Carver &c, DeviceLayer &l) {
  if (l.kind == LayerKind::Conformer)
    return carveConformerResults(c, l);
  const LayerConfig &cf = l.config;
  const int64_t R = l.rows, H = cf.hidden;
  const int64_t q = cf.heads * cf.headDim, k = cf.kvHeads * cf.headDim;
  for (bf16 **a : {&l.xn1, &l.xn2, &l.h})
    c.take(*a, R * H);
  for (float **a : {&l.mean1, &l.rstd1, &l.mean2, &l.rstd2})
    c.take(*a, R);
  // Under CP the keys and values of every rank's tokens.
  const int64_t keyRows = l.seq->sequences * l.seq->keys;
  c.take(l.q, R * q);
  c.take(l.o, R * q);
  c.take(l.k, keyRows * k);
  c.take(l.v, keyRows * k);
  c.take(l.lse, R * cf.heads);
  c.take(l.u, R * (l.gated ? 2 : 1) * cf.ffn);
  c.take(l.a, R * cf.ffn);
}

void DeviceTrainer::Impl::carveSaved(Carver &c) {
  // A pipeline stage keeps an encoder's tokens where it makes them or
  // places them (the fan-in), its fan-in rows there only.
  const bool fanIn = fanInHere();
  for (DeviceEncoder &e : encoders) {
    for (DeviceLayer &l : e.layers)
      carveLayer(c, l);
    if (e.ends || fanIn)
      c.take(e.out, e.outRows * e.outWidth);
    if (fanIn) {
      c.take(e.fromRows, rows);
      c.take(e.toRows, rows);
    }
    if (!e.layers.empty())
      c.take(e.seq.positions, e.seq.tokens);
  }
  if (layers.empty())
    return;
  for (DeviceLayer &l : layers)
    carveLayer(c, l);
  c.take(batch.ids, rows);
  c.take(batch.targets, rows);
  c.take(batch.positions, rows);
  if (layers.front().maybe("pos_weight"))
    c.take(batch.positionIds, rows);
}

void DeviceTrainer::Impl::carveScratch(Carver &c) {
  // Each piece as large as the largest layer needs.
  int64_t hidden = 0, qw = 0, kw = 0, ffnIn = 0, ffn = 0, vocab = 0, norm = 0,
          cols = 0, splitHead = 0, allKeys = 0;
  auto visit = [&](const DeviceLayer &l) {
    const LayerConfig &cf = l.config;
    const int64_t R = l.rows;
    hidden = std::max({hidden, R * l.width, l.outRows * l.outWidth});
    norm = std::max(norm, cf.hidden);
    if (l.kind == LayerKind::Head) {
      vocab = std::max(vocab, R * cf.vocab);
      if (l.split)
        splitHead = std::max(splitHead, R);
    }
    if (l.kind == LayerKind::Audio) {
      const int64_t F = cf.frames, F2 = l.outRows / l.items;
      hidden = std::max(hidden, l.items * F * cf.hidden);
      cols = std::max(
          {cols, l.items * F * cf.melBins * 3, l.items * F2 * cf.hidden * 3});
    }
    if (l.kind == LayerKind::Mlp) {
      ffn = std::max(ffn, R * cf.hidden);
      ffnIn = std::max(ffnIn, R * cf.hidden);
    }
    if (l.kind == LayerKind::Conformer) // its GLU input gradient: [R, 2 hidden]
      ffnIn = std::max(ffnIn, R * 2 * cf.hidden);
    if (l.kind != LayerKind::Block && l.kind != LayerKind::Conformer)
      return;
    qw = std::max(qw, R * cf.heads * cf.headDim);
    kw = std::max(kw, R * cf.kvHeads * cf.headDim);
    if (cp && l.seq == &batch) // gathered (attentionForward)
      allKeys = std::max(allKeys, l.seq->sequences * l.seq->keys * cf.kvHeads *
                                      cf.headDim);
    ffn = std::max(ffn, R * cf.ffn);
    ffnIn = std::max(ffnIn, R * (l.gated ? 2 : 1) * cf.ffn);
  };
  for (const DeviceEncoder &e : encoders)
    for (const DeviceLayer &l : e.layers)
      visit(l);
  for (const DeviceLayer &l : layers)
    visit(l);
  Scratch &s = scratch;
  // A round of generation (useShare) runs forwards only: no gradients, so
  // its K/V staging (the keys of every token so far) fits where a whole
  // sequence's forward and backward plan theirs.
  auto grad = [&](auto *&p, int64_t count) {
    if (sharing)
      p = nullptr;
    else
      c.take(p, count);
  };
  for (bf16 **a : {&s.dy, &s.dxn, &s.dh})
    grad(*a, hidden);
  c.take(s.dx, hidden); // also the forward's positions and patch rows
  grad(s.dO, qw);
  grad(s.dq, qw);
  c.take(s.dk, kw);
  c.take(s.dv, kw);
  grad(s.dkAll, allKeys);
  grad(s.dvAll, allKeys);
  c.take(s.kStage, allKeys);
  c.take(s.vStage, allKeys);
  grad(s.da, ffn);
  grad(s.du, ffnIn);
  grad(s.dlogits, vocab);
  c.take(s.rowMax, splitHead);
  c.take(s.ceSums, 2 * splitHead);
  c.take(s.discard, 2 * norm);
  c.take(s.cols, cols);
  for (DeviceEncoder &e : encoders)
    if (e.ends || fanInHere())
      grad(e.dOut, e.outRows * e.outWidth);
  // The recomputing blocks' results, one block's at a time, all at the
  // same place.
  int64_t recomputed = 0;
  auto share = [&](DeviceLayer &l) {
    if (!l.recompute)
      return;
    Carver here = c;
    carveBlockResults(here, l);
    recomputed = std::max(recomputed, here.bytes() - c.bytes());
  };
  for (DeviceEncoder &e : encoders)
    for (DeviceLayer &l : e.layers)
      share(l);
  for (DeviceLayer &l : layers)
    share(l);
  c.skip(recomputed);
  c.take(s.lossSum, 1);
  c.take(s.count, 1);
}

llvm::Error DeviceTrainer::Impl::bind(sched::BufferKind kind, int64_t mb,
                                      int64_t action,
                                      void (Impl::*carve)(Carver &)) {
  // An empty region (no gradients when nothing trains) has no buffer.
  Carver measure;
  (this->*carve)(measure);
  if (measure.bytes() == 0)
    return llvm::Error::success();
  for (const sched::Buffer &b : memory.buffers) {
    if (b.kind != kind || (mb >= 0 && b.microbatch != mb) ||
        (action >= 0 && b.action != action))
      continue;
    Carver c(arena.data() + b.offset);
    (this->*carve)(c);
    if (c.bytes() > b.bytes)
      break;
    highWater = std::max(highWater, b.offset + c.bytes());
    return llvm::Error::success();
  }
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      "the static memory plan has no %s buffer for microbatch %lld, action "
      "%lld large enough (internal error)",
      sched::bufferKindName(kind), static_cast<long long>(mb),
      static_cast<long long>(action));
}

llvm::Error DeviceTrainer::Impl::reservePlans() {
  // The per-batch plans' device arrays, at the largest size a batch can
  // give them: a plan that grew later would cudaFree and cudaMalloc, which
  // wait for the whole device, NCCL's transfers in flight included.
  for (DeviceEncoder &e : encoders)
    if (e.seq.sequences > 0)
      MLLM_TRY(check(
          kc::reserveAttention(e.seq.attention, e.seq.tokens, e.seq.tokens),
          "reserving the attention plan of '" + e.name + "'"));
  if (layers.empty())
    return llvm::Error::success();
  // Under CP a rank's queries are its share (at most the largest), its keys
  // the whole sequence.
  const int64_t queries =
      cp ? (cpPerBatch ? cpMostTokens
                       : static_cast<int64_t>(model->localTokens.size()))
         : model->seqLen;
  MLLM_TRY(check(kc::reserveAttention(batch.attention, queries, model->seqLen),
                 "reserving the attention plan"));
  const int64_t tokens = model->sequences * queries;
  MLLM_TRY(check(kc::reserveEmbeddingGrad(batch.embeddingGrad, tokens),
                 "reserving the embedding's gradient plan"));
  // An evaluation's and a generation's per-row arrays at the head, for the
  // same reason (an evaluation runs between steps, transfers in flight).
  if (llvm::any_of(layers, [](const DeviceLayer &l) {
        return l.kind == LayerKind::Head;
      })) {
    const size_t rows = static_cast<size_t>(tokens);
    const char *what = "reserving the evaluation's arrays";
    MLLM_TRY(check(evalRowMax.reserve(rows), what));
    MLLM_TRY(check(evalSums.reserve(2 * rows), what));
    MLLM_TRY(check(evalArgmax.reserve(rows), what));
    MLLM_TRY(check(evalCandidates.reserve(rows * static_cast<size_t>(tpSize)),
                   what));
    MLLM_TRY(check(generated.reserve(1), what));
  }
  return check(kc::reserveEmbeddingGrad(batch.positionGrad, tokens),
               "reserving the position table's gradient plan");
}

llvm::Error DeviceTrainer::Impl::allocate() {
  // Under CP a microbatch's rows are this rank's tokens of each sequence.
  rows = model->sequences *
         (cp ? static_cast<int64_t>(model->localTokens.size()) : model->seqLen);
  if (!layers.empty() && rows != batch.rows())
    return refuse("an LLM whose blocks see other sequences than the plan's");
  // Batches split on their own: every buffer holds the largest share. The
  // rows stay there until a microbatch takes its split (the messages'
  // checks measure the layers at it).
  if (cpPerBatch)
    setLocalRows(cpMostTokens);
  // Every region's size, measured by the functions that later place it.
  sched::StageSizes sizes;
  Carver weights, grads, moments, saved, work;
  carveWeights(weights);
  carveGrads(grads);
  carveMoments(moments);
  carveSaved(saved);
  carveScratch(work);
  sizes.weights = weights.bytes();
  sizes.grads = grads.bytes();
  sizes.optimizer = moments.bytes();
  sizes.savedPerMicrobatch = saved.bytes();
  sizes.workspace = work.bytes();
  const Plan &plan = model->plan();
  // A pipeline rank's arena also holds its messages, where the plan's
  // lifetimes put them (sends until their releases).
  if (rankProgram) {
    program = *rankProgram;
    for (const auto &[action, copies] : messageCopies)
      program.actions[static_cast<size_t>(action)].bytes *= copies;
    savedInWorkspace =
        llvm::none_of(program.actions, [](const sched::Action &a) {
          return sched::isBackward(a.kind);
        });
    if (savedInWorkspace) {
      sizes.workspace += sizes.savedPerMicrobatch;
      sizes.savedPerMicrobatch = 0;
    }
    memory = sched::planMemory(program, sizes, releases);
  } else {
    program = exec::oneProcessProgram(replicas * plan.data.microbatches,
                                      /*trains=*/true);
    memory = sched::planMemory(program, sizes);
  }
  // The planner's memory check counts the plan's even CP share; batches
  // that split on their own need room for the largest (docs/cuda.md §9).
  const std::string largest =
      cpPerBatch
          ? llvm::formatv(" (sized for real data's per-batch CP splits: {0} "
                          "tokens of each sequence, the largest share a "
                          "split can give this rank, where the plan's is "
                          "{1})",
                          cpMostTokens, model->localTokens.size())
                .str()
          : std::string();
  if (llvm::Error e =
          check(arena.allocate(static_cast<size_t>(memory.arenaBytes)),
                llvm::formatv("allocating the arena of {0} bytes{1}",
                              memory.arenaBytes, largest)
                    .str()))
    return e;
  bytes = memory.arenaBytes;
  if (llvm::Error e = reservePlans())
    return e;
  // Pinned, so that each microbatch's loss comes back without a wait.
  size_t losses = static_cast<size_t>(
      std::max<int64_t>(1, replicas * plan.data.microbatches));
  if (cudaError_t rc = cudaMallocHost(reinterpret_cast<void **>(&hostLosses),
                                      losses * sizeof(double));
      rc != cudaSuccess)
    return check(Status::error(cudaGetErrorString(rc)),
                 "allocating the losses' host buffer");
  if (llvm::Error e =
          bind(sched::BufferKind::Weights, -1, -1, &Impl::carveWeights))
    return e;
  if (llvm::Error e = bind(sched::BufferKind::Grads, -1, -1, &Impl::carveGrads))
    return e;
  for (auto &p : params)
    if (p->trains && !gradRegion)
      gradRegion = p->grad;
  gradFloats = grads.bytes() / static_cast<int64_t>(sizeof(float));
  planBuckets();
  if (llvm::Error e =
          bind(sched::BufferKind::OptimizerState, -1, -1, &Impl::carveMoments))
    return e;

  // ALiBi's slopes, as the CPU layers compute them.
  cudaError_t slopesRc = cudaSuccess;
  forEachLayer([&](DeviceLayer &l) {
    if (!l.slopes || slopesRc != cudaSuccess)
      return;
    // A shard's heads' slopes among all heads'.
    std::vector<float> slopes =
        cpu::alibiSlopes(l.config.heads * (l.split ? tpSize : 1));
    slopesRc =
        cudaMemcpy(l.slopes, slopes.data() + l.headFirst,
                   l.config.heads * sizeof(float), cudaMemcpyHostToDevice);
  });
  if (slopesRc != cudaSuccess)
    return check(Status::error(cudaGetErrorString(slopesRc)),
                 "uploading the ALiBi slopes");
  // The same initial weights as the CPU model's; zero moments.
  for (auto &p : params) {
    const std::vector<float> &values = p->host->value.data;
    std::vector<bf16> rounded(values.size());
    for (size_t j = 0; j < values.size(); ++j)
      rounded[j] = __float2bfloat16(values[j]);
    cudaError_t rc =
        cudaMemcpy(p->master, values.data(), values.size() * sizeof(float),
                   cudaMemcpyHostToDevice);
    if (rc == cudaSuccess)
      rc = cudaMemcpy(p->value, rounded.data(), rounded.size() * sizeof(bf16),
                      cudaMemcpyHostToDevice);
    for (float *a : {p->expAvg, p->expAvgSq})
      if (rc == cudaSuccess && a)
        rc = cudaMemset(a, 0, p->n * sizeof(float));
    if (rc != cudaSuccess)
      return check(Status::error(cudaGetErrorString(rc)),
                   "uploading '" + p->name + "'");
  }
  return llvm::Error::success();
}
