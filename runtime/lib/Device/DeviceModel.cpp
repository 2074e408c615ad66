//===- DeviceModel.cpp - the LLM's layers and weights on the device -------===//
//
// Which models the device executor runs (the rest is refused, naming the
// layer), their parameters uploaded from the CPU model (same initial
// weights), and every buffer of one microbatch allocated once.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include "mllm/runtime/exec/Trainer.h"

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
  if (plan.train.precision != "bf16")
    return refuse("precision " + plan.train.precision +
                  " (it trains in bf16: train { precision = bf16; })");
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
    if (step.recompute())
      return refuse("recomputation in '" + l.name +
                    "' (it keeps every activation)");
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

  return llvm::Error::success();
}

void DeviceTrainer::Impl::carveWeights(Carver &c) {
  for (auto &p : params) {
    c.take(p->master, p->n);
    c.take(p->value, p->n);
  }
}

void DeviceTrainer::Impl::carveGrads(Carver &c) {
  for (auto &p : params)
    c.take(p->grad, p->n);
}

void DeviceTrainer::Impl::carveMoments(Carver &c) {
  for (auto &p : params) {
    c.take(p->expAvg, p->n);
    c.take(p->expAvgSq, p->n);
  }
}

void DeviceTrainer::Impl::carveSaved(Carver &c) {
  const int64_t R = rows;
  for (DeviceLayer &l : layers) {
    const LayerConfig &cf = l.config;
    const int64_t H = cf.hidden;
    if (l.kind != LayerKind::Embedding)
      c.take(l.x, R * H);
    if (l.kind == LayerKind::Norm) {
      c.take(l.mean1, R);
      c.take(l.rstd1, R);
    }
    if (l.kind == LayerKind::Head) {
      c.take(l.logits, R * cf.vocab);
      c.take(l.rowLse, R);
    }
    if (l.kind != LayerKind::Block)
      continue;
    const int64_t q = cf.heads * cf.headDim, k = cf.kvHeads * cf.headDim;
    for (bf16 **a : {&l.xn1, &l.xn2, &l.h})
      c.take(*a, R * H);
    for (float **a : {&l.mean1, &l.rstd1, &l.mean2, &l.rstd2})
      c.take(*a, R);
    c.take(l.q, R * q);
    c.take(l.o, R * q);
    c.take(l.k, R * k);
    c.take(l.v, R * k);
    c.take(l.lse, R * cf.heads);
    c.take(l.u, R * (l.gated ? 2 : 1) * cf.ffn);
    c.take(l.a, R * cf.ffn);
  }
  c.take(batch.ids, R);
  c.take(batch.targets, R);
  c.take(batch.positions, R);
}

void DeviceTrainer::Impl::carveScratch(Carver &c) {
  int64_t hidden = 0, qw = 0, kw = 0, ffnIn = 0, ffn = 0, vocab = 0;
  for (const DeviceLayer &l : layers) {
    const LayerConfig &cf = l.config;
    hidden = std::max(hidden, cf.hidden);
    vocab = std::max(vocab, l.kind == LayerKind::Head ? cf.vocab : 0);
    if (l.kind != LayerKind::Block)
      continue;
    qw = std::max(qw, cf.heads * cf.headDim);
    kw = std::max(kw, cf.kvHeads * cf.headDim);
    ffn = std::max(ffn, cf.ffn);
    ffnIn = std::max(ffnIn, (l.gated ? 2 : 1) * cf.ffn);
  }
  Scratch &s = scratch;
  for (bf16 **a : {&s.dy, &s.dx, &s.dxn, &s.dh})
    c.take(*a, rows * hidden);
  c.take(s.dO, rows * qw);
  c.take(s.dq, rows * qw);
  c.take(s.dk, rows * kw);
  c.take(s.dv, rows * kw);
  c.take(s.da, rows * ffn);
  c.take(s.du, rows * ffnIn);
  c.take(s.dlogits, rows * vocab);
  c.take(s.lossSum, 1);
  c.take(s.count, 1);
}

llvm::Error DeviceTrainer::Impl::bind(sched::BufferKind kind, int64_t mb,
                                      int64_t action,
                                      void (Impl::*carve)(Carver &)) {
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

llvm::Error DeviceTrainer::Impl::allocate() {
  rows = model->sequences * model->seqLen;
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
  program = exec::oneProcessProgram(replicas * plan.data.microbatches,
                                    /*trains=*/true);
  memory = sched::planMemory(program, sizes);
  if (llvm::Error e =
          check(arena.allocate(static_cast<size_t>(memory.arenaBytes)),
                "allocating the arena"))
    return e;
  bytes = memory.arenaBytes;
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
  gradRegion = params.front()->grad;
  gradFloats = grads.bytes() / static_cast<int64_t>(sizeof(float));
  if (llvm::Error e =
          bind(sched::BufferKind::OptimizerState, -1, -1, &Impl::carveMoments))
    return e;

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
      if (rc == cudaSuccess)
        rc = cudaMemset(a, 0, p->n * sizeof(float));
    if (rc != cudaSuccess)
      return check(Status::error(cudaGetErrorString(rc)),
                   "uploading '" + p->name + "'");
  }
  return llvm::Error::success();
}
