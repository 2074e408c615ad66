//===- DeviceModel.cpp - the LLM's layers and weights on the device -------===//
//
// Which models the device executor runs (the rest is refused, naming the
// layer), their parameters uploaded from the CPU model (same initial
// weights), and every buffer of one microbatch allocated once.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

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
          " (it runs LLMs of token embedding, transformer blocks, a final "
          "norm and the LM head, every layer trained; train other models "
          "with the CPU backend)");
}

/// Why the device executor cannot run a layer of `kind` with `c`, or "".
static std::string unsupported(llvm::StringRef kind, const LayerConfig &c) {
  if (kind == "token_embedding")
    return c.position == "learned" || c.position == "sinusoidal"
               ? "a " + c.position + " position table"
               : "";
  if (kind == "norm" || kind == "lm_head")
    return "";
  if (kind != "transformer_block")
    return "a layer of kind " + kind.str();
  if (c.bias || c.qkvBias)
    return "biases";
  if (!c.position.empty() && c.position != "rope" && c.position != "none")
    return c.position + " positions";
  if (c.activation != "swiglu" && c.activation != "geglu" &&
      c.activation != "gelu")
    return "the " + c.activation + " activation";
  if (c.headDim != 64 && c.headDim != 128)
    return "head dimension " + std::to_string(c.headDim) +
           " (the attention kernels take 64 and 128)";
  return "";
}

llvm::Error DeviceTrainer::Impl::build() {
  const Plan &plan = model->plan();
  if (!model->encoders.empty())
    return refuse("the encoder '" + model->encoders.front().name + "'");
  if (!model->localTokens.empty())
    return refuse("context parallelism inside the process");
  if (plan.train.optimizer != "adamw")
    return refuse("the " + plan.train.optimizer + " optimizer");
  adam.lr = plan.train.lr;
  adam.weightDecay = plan.train.weightDecay;

  std::map<const cpu::Param<float> *, std::string> names;
  for (const exec::NamedParam &p : model->params)
    names[p.param] = p.name;
  std::map<const cpu::Param<float> *, DeviceParam *> uploaded;
  auto deviceParam = [&](cpu::Param<float> *p) -> DeviceParam * {
    auto it = uploaded.find(p);
    if (it != uploaded.end())
      return it->second;
    auto d = std::make_unique<DeviceParam>();
    d->host = p;
    d->name = names[p];
    d->n = p->value.numel();
    params.push_back(std::move(d));
    return uploaded[p] = params.back().get();
  };

  exec::Chain &llm = model->llm();
  for (size_t i = 0; i < llm.size(); ++i) {
    exec::Step &step = llm.step(i);
    cpu::Layer<float> *layer = step.layer();
    if (!layer || !layer->layerConfig())
      return refuse("the step '" + step.name() + "'");
    DeviceLayer l;
    l.name = step.name();
    l.config = *layer->layerConfig();
    llvm::StringRef kind = layer->kind();
    std::string why = unsupported(kind, l.config);
    if (!why.empty())
      return refuse(why + " in '" + l.name + "'");
    if (!step.weightGrad())
      return refuse("the frozen layer '" + l.name + "'");
    l.kind = kind == "token_embedding"     ? LayerKind::Embedding
             : kind == "transformer_block" ? LayerKind::Block
             : kind == "norm"              ? LayerKind::Norm
                                           : LayerKind::Head;
    if ((l.kind == LayerKind::Embedding) != (i == 0) ||
        (l.kind == LayerKind::Head) != (i + 1 == llm.size()))
      return refuse("the layer order around '" + l.name + "'");
    l.rope = l.config.position == "rope";
    l.gated = l.config.activation == "swiglu" || l.config.activation == "geglu";
    l.geglu = l.config.activation == "geglu";
    l.gelu = l.config.activation == "gelu";
    for (cpu::Param<float> *p : layer->params()) {
      if (!p->trainable || p->grad.data.empty())
        return refuse("the frozen parameter '" + names[p] + "'");
      l.params[p->name] = deviceParam(p); // "wq", "norm1.weight"
    }
    if (layer->isTied()) {
      if (!model->tiedEmbedding)
        return refuse("a tied LM head without the embedding's weight");
      l.params["weight"] = deviceParam(model->tiedEmbedding);
    }
    layers.push_back(std::move(l));
  }
  if (layers.size() < 3)
    return refuse("an LLM of " + std::to_string(layers.size()) + " layers");

  // The same initial weights as the CPU model's.
  for (auto &p : params) {
    std::vector<bf16> rounded(static_cast<size_t>(p->n));
    for (int64_t j = 0; j < p->n; ++j)
      rounded[j] = __float2bfloat16(p->host->value.data[j]);
    if (llvm::Error e = check(p->master.upload(p->host->value.data, stream),
                              "uploading '" + p->name + "'"))
      return e;
    if (llvm::Error e =
            check(p->value.upload(rounded, stream), "uploading " + p->name))
      return e;
    for (DeviceArray<float> *a : {&p->grad, &p->expAvg, &p->expAvgSq}) {
      if (llvm::Error e = check(a->allocate(static_cast<size_t>(p->n)),
                                "allocating the state of '" + p->name + "'"))
        return e;
      if (cudaError_t rc =
              cudaMemsetAsync(a->data(), 0, a->size() * sizeof(float), stream);
          rc != cudaSuccess)
        return check(Status::error(cudaGetErrorString(rc)),
                     "clearing the state of '" + p->name + "'");
    }
    bytes += p->n * static_cast<int64_t>(4 * sizeof(float) + sizeof(bf16));
  }
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::allocate() {
  rows = model->sequences * model->seqLen;
  auto sized = [&](auto &array, int64_t n, const llvm::Twine &what) {
    bytes += n * static_cast<int64_t>(sizeof(*array.data()));
    return check(array.allocate(static_cast<size_t>(n)), "allocating " + what);
  };
  int64_t hidden = 0, qw = 0, kw = 0, ffnIn = 0, ffn = 0, vocab = 0;
  for (DeviceLayer &l : layers) {
    const LayerConfig &c = l.config;
    const int64_t H = c.hidden;
    hidden = std::max(hidden, H);
    llvm::Error e = llvm::Error::success();
    auto add = [&](auto &array, int64_t n) {
      if (!e)
        e = sized(array, n, "the buffers of '" + l.name + "'");
    };
    if (l.kind != LayerKind::Embedding)
      add(l.x, rows * H);
    if (l.kind == LayerKind::Norm) {
      add(l.mean1, rows);
      add(l.rstd1, rows);
    }
    if (l.kind == LayerKind::Head) {
      vocab = std::max(vocab, c.vocab);
      add(l.logits, rows * c.vocab);
      add(l.rowLse, rows);
    }
    if (l.kind == LayerKind::Block) {
      const int64_t q = c.heads * c.headDim, k = c.kvHeads * c.headDim;
      const int64_t in = (l.gated ? 2 : 1) * c.ffn;
      qw = std::max(qw, q);
      kw = std::max(kw, k);
      ffnIn = std::max(ffnIn, in);
      ffn = std::max(ffn, c.ffn);
      for (DeviceArray<bf16> *a : {&l.xn1, &l.xn2, &l.h})
        add(*a, rows * H);
      for (DeviceArray<float> *a : {&l.mean1, &l.rstd1, &l.mean2, &l.rstd2})
        add(*a, rows);
      add(l.q, rows * q);
      add(l.o, rows * q);
      add(l.k, rows * k);
      add(l.v, rows * k);
      add(l.lse, rows * c.heads);
      add(l.u, rows * in);
      add(l.a, rows * c.ffn);
    }
    if (e)
      return e;
  }
  Scratch &s = scratch;
  for (auto [array, n] : {std::pair{&s.dy, hidden},
                          {&s.dx, hidden},
                          {&s.dxn, hidden},
                          {&s.dh, hidden},
                          {&s.dO, qw},
                          {&s.dq, qw},
                          {&s.dk, kw},
                          {&s.dv, kw},
                          {&s.da, ffn},
                          {&s.du, ffnIn},
                          {&s.dlogits, vocab}})
    if (llvm::Error e = sized(*array, rows * n, "the gradient buffers"))
      return e;
  if (llvm::Error e = sized(s.lossSum, 1, "the loss"))
    return e;
  if (llvm::Error e = sized(s.count, 1, "the loss"))
    return e;
  for (DeviceArray<int64_t> *a : {&batch.ids, &batch.targets, &batch.positions})
    if (llvm::Error e = sized(*a, rows, "the batch"))
      return e;
  return llvm::Error::success();
}
