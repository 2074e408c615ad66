//===- DeviceTrainer.cpp - training a plan's LLM on one GPU ---------------===//
#include "DeviceImpl.h"

#include "mllm/runtime/cpu/LayerParts.h"

#include "mllm/runtime/exec/RankRunner.h"
#include "mllm/runtime/exec/Steps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/xxhash.h"

#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
namespace kc = mllm::kernels::cuda;
using sched::ActionKind;

/// Copies `host` to `to`, which holds `capacity` values.
template <typename T>
static llvm::Error put(T *to, int64_t capacity, const std::vector<T> &host,
                       cudaStream_t stream, const char *what) {
  if (static_cast<int64_t>(host.size()) > capacity)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the batch's %s (%zu values) exceed the plan's %lld", what, host.size(),
        static_cast<long long>(capacity));
  return check(
      cudaStatus(cudaMemcpyAsync(to, host.data(), host.size() * sizeof(T),
                                 cudaMemcpyHostToDevice, stream)),
      llvm::Twine("uploading the batch's ") + what);
}

DeviceTrainer::Impl::~Impl() {
  if (stream)
    cudaStreamDestroy(stream);
  if (hostLosses)
    cudaFreeHost(hostLosses);
}

/// A layer of `kind` attends within the chain's sequences (a block).
static bool attends(llvm::StringRef kind) {
  return kind == "transformer_block" || kind == "conformer_block";
}

llvm::Error DeviceTrainer::Impl::loadBatch(const exec::MicrobatchData &given) {
  // Under CP the LLM reads this rank's tokens of each sequence, of the
  // split its buffers were bound for (useSplit).
  // A round of generation with a key cache brings its share (useShare):
  // the new tokens only, the sequence's layout up to the last of them.
  const bool round = given.cp != nullptr;
  if (round && (!cp || given.cp->tokens != cpShares))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "a round of generation whose share the buffers were not bound for "
        "(internal error)");
  std::optional<exec::MicrobatchData> share;
  if (cp && !round) {
    if (exec::cpSplit(*model, given) != cpShares)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "the microbatch's buffers were bound for another CP split "
          "(internal error)");
    const size_t whole = static_cast<size_t>(model->sequences * model->seqLen);
    if (given.tokenIds.size() != whole || given.targets.size() != whole)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "the batch does not have the plan's %lld x %lld tokens",
          static_cast<long long>(model->sequences),
          static_cast<long long>(model->seqLen));
    // The share without the media, which the encoders read from `given`:
    // a microbatch is bound twice (forward and backward), and its images
    // can be the largest part of it.
    exec::MicrobatchData text;
    text.tokenIds = given.tokenIds;
    text.targets = given.targets;
    text.lossScale = given.lossScale;
    text.layout = given.layout;
    share = exec::localShare(*model, std::move(text));
  }
  const exec::MicrobatchData &data = share ? *share : given;
  // A pipeline stage of an encoder reads its media only; the fan-in's
  // stage its encoders' rows.
  for (size_t e = 0; e < encoders.size(); ++e)
    if (!encoders[e].layers.empty() || fanInHere())
      MLLM_TRY(loadEncoder(encoders[e], given, data, e));
  if (layers.empty())
    return llvm::Error::success();
  batch.sequences = model->sequences;
  batch.tokens = cp ? static_cast<int64_t>(cpLocal().size()) : model->seqLen;
  batch.lossScale = data.lossScale;
  // The LLM's declared mask and positions, or the batch's own.
  const cpu::Batch<float> *geometry = nullptr;
  for (size_t i = 0; i < model->llm().size() && !geometry; ++i)
    if (cpu::Layer<float> *layer = model->llm().step(i).layer();
        layer && attends(layer->kind()))
      geometry = model->llm().step(i).layerGeometry();
  if (!geometry || !geometry->layout)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the LLM's blocks have no attention mask");
  const kernels::TokenLayout *layout = geometry->layout;
  std::vector<int64_t> positions = geometry->positions;
  if (data.layout) {
    layout = &data.layout->tokens;
    positions = data.layout->positions;
  }
  if (positions.empty()) {
    positions.resize(static_cast<size_t>(model->seqLen));
    std::iota(positions.begin(), positions.end(), int64_t(0));
  }
  // The kernel's ALiBi distance is the token indices' (the CPU's rule).
  for (const DeviceLayer &l : layers)
    if (l.slopes) {
      std::string why =
          cpu::alibiPositionsProblem(*layout, geometry->policy, positions);
      if (!why.empty())
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "'%s': %s", l.name.c_str(), why.c_str());
      break;
    }
  if (cp) { // this rank's tokens' positions
    std::vector<int64_t> mine;
    for (int64_t t : cpLocal())
      mine.push_back(positions[t]);
    positions = std::move(mine);
  }
  if (static_cast<int64_t>(layout->size()) !=
          (round ? batch.keys : model->seqLen) ||
      static_cast<int64_t>(data.tokenIds.size()) != batch.rows() ||
      static_cast<int64_t>(data.targets.size()) != batch.rows())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the batch does not have the plan's %lld x %lld tokens",
        static_cast<long long>(batch.sequences),
        static_cast<long long>(model->seqLen));
  // The kernels read ids and targets as given: one outside the vocabulary
  // would gather another row (or, split over TP, none) instead of failing
  // as the CPU layers do.
  const bool holdsEmbedding = layers.front().kind == LayerKind::Embedding,
             holdsHead = layers.back().kind == LayerKind::Head;
  for (int64_t r = 0; r < batch.rows(); ++r) {
    const int64_t id = data.tokenIds[r], target = data.targets[r];
    const bool badId = holdsEmbedding && (id < 0 || id >= model->vocab);
    if (badId || (holdsHead && target != kernels::cpu::kIgnoreIndex &&
                  (target < 0 || target >= model->vocab)))
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "%s %lld of sequence %lld, token %lld, is outside the vocabulary "
          "of %lld",
          badId ? "token id" : "target",
          static_cast<long long>(badId ? id : target),
          static_cast<long long>(r / batch.tokens),
          static_cast<long long>(cp ? cpLocal()[r % batch.tokens]
                                    : r % batch.tokens),
          static_cast<long long>(model->vocab));
  }
  if (llvm::Error e = put(batch.ids, rows, data.tokenIds, stream, "token ids"))
    return e;
  if (llvm::Error e = put(batch.targets, rows, data.targets, stream, "targets"))
    return e;
  if (llvm::Error e =
          put(batch.positions, rows, positions, stream, "positions"))
    return e;
  batch.hostIds = data.tokenIds;
  // The declared mask's plan is made once; a batch with its own layout
  // gets its own.
  if (data.layout || !batch.declaredAttention) {
    kc::AttentionTokens tokens =
        kc::AttentionTokens::whole(*layout, geometry->policy);
    if (cp) { // this rank's queries, every rank's keys
      tokens.qPos = cpLocal().data();
      tokens.qLen = batch.tokens;
      tokens.kPos = cpKeys.data();
      tokens.kLen = batch.keys;
    }
    if (llvm::Error e =
            check(kc::prepareAttention(tokens, batch.attention, stream),
                  "planning the attention"))
      return e;
    batch.declaredAttention = !data.layout;
  }
  // A learned position table reads the sequence's positions.
  if (const DeviceParam *table = layers.front().maybe("pos_weight")) {
    const int64_t limit = layers.front().config.positions;
    batch.hostPositionIds.clear();
    for (int64_t s = 0; s < batch.sequences; ++s)
      for (int64_t p : positions) {
        if (p < 0 || p >= limit)
          return llvm::createStringError(
              llvm::inconvertibleErrorCode(),
              "position %lld is outside the learned table '%s' of %lld rows",
              static_cast<long long>(p), table->name.c_str(),
              static_cast<long long>(limit));
        batch.hostPositionIds.push_back(p);
      }
    if (llvm::Error e = put(batch.positionIds, rows, batch.hostPositionIds,
                            stream, "position ids"))
      return e;
    if (table->trains)
      if (llvm::Error e =
              check(kc::prepareEmbeddingGrad(batch.hostPositionIds, limit,
                                             batch.positionGrad, stream),
                    "planning the position table's gradient"))
        return e;
  }
  // A pipeline stage without the embedding reads no token ids.
  if (layers.front().kind != LayerKind::Embedding ||
      !layers.front().param("weight").trains)
    return llvm::Error::success();
  const DeviceLayer &embedding = layers.front();
  if (embedding.split) // this shard's rows only
    return check(kc::prepareEmbeddingGradSlice(
                     batch.hostIds, embedding.vocabFirst,
                     embedding.config.vocab, batch.embeddingGrad, stream),
                 "planning the embedding's gradient");
  return check(kc::prepareEmbeddingGrad(batch.hostIds, embedding.config.vocab,
                                        batch.embeddingGrad, stream),
               "planning the embedding's gradient");
}

llvm::Error DeviceTrainer::Impl::loadEncoder(DeviceEncoder &e,
                                             const exec::MicrobatchData &data,
                                             const exec::MicrobatchData &local,
                                             size_t index) {
  auto media = data.media.find(e.name);
  // A round of generation whose new tokens hold none of the encoder's
  // rows comes without media: the encoder does not run (and the fan-in
  // places none of its tokens).
  e.idle = false;
  if (media == data.media.end() && data.cp) {
    if (fanInHere())
      MLLM_TRY(loadFanIn(e, local, index));
    e.idle = !fanInHere() || e.copies == 0;
    if (e.idle)
      return llvm::Error::success();
  }
  if (media == data.media.end() ||
      static_cast<int64_t>(media->second.size()) != e.mediaValues)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the batch does not have the plan's %lld values of '%s' media",
        static_cast<long long>(e.mediaValues), e.name.c_str());
  // The input layer's media (a pipeline stage may hold later layers).
  DeviceLayer *input = e.layers.empty() ? nullptr : &e.layers.front();
  if (input &&
      (input->kind == LayerKind::Patch || input->kind == LayerKind::Audio)) {
    hostMedia.resize(media->second.size());
    for (size_t j = 0; j < hostMedia.size(); ++j)
      hostMedia[j] = __float2bfloat16(media->second[j]);
    MLLM_TRY(put(input->media, e.mediaValues, hostMedia, stream, "media"));
  }
  if (fanInHere())
    MLLM_TRY(loadFanIn(e, local, index));
  // The encoder's mask is the same for every microbatch: planned once.
  if (e.seq.declaredAttention || e.seq.sequences == 0)
    return llvm::Error::success();
  const cpu::Batch<float> *geometry = nullptr;
  for (size_t i = 0; i < model->chains[index]->size() && !geometry; ++i)
    if (cpu::Layer<float> *layer = model->chains[index]->step(i).layer();
        layer && attends(layer->kind()))
      geometry = model->chains[index]->step(i).layerGeometry();
  if (!geometry)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the encoder '%s' has no blocks (internal)",
                                   e.name.c_str());
  // No layout: every token sees every token of its item (as the CPU
  // layers' SequenceContext).
  kernels::TokenLayout all;
  if (!geometry->layout)
    all.words.assign(static_cast<size_t>(e.seq.tokens),
                     kernels::modalityWord(0));
  if (llvm::Error err = check(
          kc::prepareAttention(
              kc::AttentionTokens::whole(
                  geometry->layout ? *geometry->layout : all, geometry->policy),
              e.seq.attention, stream),
          "planning the attention of '" + e.name + "'"))
    return err;
  e.seq.declaredAttention = true;
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::loadFanIn(DeviceEncoder &e,
                                           const exec::MicrobatchData &data,
                                           size_t index) {
  // Which rows of the encoder's output go to which rows of the sequences:
  // the CPU fan-in's runs, one index per row.
  auto *fanIn = dynamic_cast<const exec::FanInStep *>(
      &model->llm().step(static_cast<size_t>(model->fanInStep)));
  if (!fanIn)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the LLM has no fan-in step (internal)");
  std::vector<int64_t> from, to;
  for (const exec::FanInStep::Run &r : fanIn->runs(&data))
    if (r.encoder == static_cast<int64_t>(index))
      for (int64_t k = 0; k < r.length; ++k) {
        if (r.src + k >= e.outRows || r.row + k >= rows)
          return llvm::createStringError(
              llvm::inconvertibleErrorCode(),
              "the fan-in of '%s' reads past its %lld tokens (internal)",
              e.name.c_str(), static_cast<long long>(e.outRows));
        from.push_back(r.src + k);
        to.push_back(r.row + k);
      }
  e.copies = static_cast<int64_t>(from.size());
  MLLM_TRY(put(e.fromRows, rows, from, stream, "fan-in rows"));
  return put(e.toRows, rows, to, stream, "fan-in rows");
}

llvm::Error DeviceTrainer::Impl::agreeOnStart() {
  if (parallel.processes == 1 || startAgreed)
    return llvm::Error::success();
  // The weights the device holds are the host model's until the first step
  // (create() and load() upload them): every process must hold the same.
  // Also how each sums its gradients: different bucket plans would post
  // collectives of different sizes (a hang or a wrong sum).
  struct Start {
    int64_t step;
    uint64_t weights;
    int64_t gradFloats, bucketBytes;
    uint64_t buckets;
  } mine{done, 0, gradFloats, parallel.bucketBytes, finalFrom.size()};
  // The bucket boundaries in order (the map's keys are addresses, whose
  // order differs between processes).
  std::vector<int64_t> boundaries;
  for (const auto &[layer, offset] : finalFrom)
    boundaries.push_back(offset);
  llvm::sort(boundaries);
  for (int64_t offset : boundaries)
    mine.buckets = mine.buckets * 31 + static_cast<uint64_t>(offset);
  for (const exec::NamedParam &p : model->params) {
    llvm::ArrayRef<float> values = p.param->value.data;
    mine.weights = llvm::xxh3_64bits(llvm::ArrayRef<uint8_t>(
                       reinterpret_cast<const uint8_t *>(values.data()),
                       values.size() * sizeof(float))) ^
                   (mine.weights * 0x9E3779B97F4A7C15ull);
  }
  std::vector<Start> all(static_cast<size_t>(parallel.processes));
  if (llvm::Error e =
          parallel.host->allGatherBytes(&mine, sizeof(Start), all.data()))
    return e;
  for (int r = 1; r < parallel.processes; ++r) {
    if (all[r].gradFloats != all[0].gradFloats ||
        all[r].bucketBytes != all[0].bucketBytes ||
        all[r].buckets != all[0].buckets)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "the data-parallel processes sum their gradients differently: "
          "process %d posts %lld floats in buckets of %lld bytes, process 0 "
          "%lld in buckets of %lld bytes; run every process with the same "
          "plan and settings",
          r, static_cast<long long>(all[r].gradFloats),
          static_cast<long long>(all[r].bucketBytes),
          static_cast<long long>(all[0].gradFloats),
          static_cast<long long>(all[0].bucketBytes));
    if (all[r].step != all[0].step || all[r].weights != all[0].weights)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "the data-parallel processes do not start from the same state: "
          "process 0 is at step %lld, process %d at step %lld%s; give every "
          "process the same --init file and --checkpoint-dir (on a shared "
          "file system)",
          static_cast<long long>(all[0].step), r,
          static_cast<long long>(all[r].step),
          all[r].step == all[0].step ? " with other weights" : "");
  }
  startAgreed = true;
  return llvm::Error::success();
}

int64_t DeviceTrainer::Impl::actionOf(sched::ActionKind kind,
                                      int64_t mb) const {
  for (size_t i = 0; i < program.actions.size(); ++i)
    if (program.actions[i].kind == kind && program.actions[i].microbatch == mb)
      return static_cast<int64_t>(i);
  return -1;
}

llvm::Error DeviceTrainer::Impl::zeroGrads() {
  // The padding too: the processes sum the whole region.
  if (gradFloats == 0)
    return llvm::Error::success();
  return check(cudaStatus(cudaMemsetAsync(gradRegion, 0,
                                          gradFloats * sizeof(float), stream)),
               "clearing the gradients");
}

llvm::Error DeviceTrainer::Impl::optimizerStep() {
  std::vector<kc::AdamWTensor> tensors;
  for (auto &p : params) {
    if (!p->trains)
      continue;
    kc::AdamWTensor t;
    t.param = p->master;
    t.grad = p->grad;
    t.expAvg = p->expAvg;
    t.expAvgSq = p->expAvgSq;
    t.paramBf16 = p->value;
    t.n = p->n;
    tensors.push_back(t);
  }
  if (tensors.empty())
    return llvm::Error::success();
  return check(kc::adamwStep(tensors, done + 1, adam, stream),
               "the optimizer step");
}

DeviceTrainer::DeviceTrainer(std::unique_ptr<Impl> impl)
    : impl(std::move(impl)) {}
DeviceTrainer::~DeviceTrainer() = default;

llvm::Expected<std::unique_ptr<DeviceTrainer>>
DeviceTrainer::create(exec::Model &model, exec::DataSource &data,
                      const DataParallel &parallel) {
  auto impl = std::make_unique<Impl>();
  impl->model = &model;
  impl->data = &data;
  impl->parallel = parallel;
  const int64_t dp = model.plan().job.dp;
  if (parallel.processes < 1 || dp % parallel.processes != 0 ||
      parallel.index < 0 || parallel.index >= parallel.processes)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "--backend=cuda: %d data-parallel processes do not divide the plan's "
        "%lld replicas (start a number of processes that divides it)",
        parallel.processes, static_cast<long long>(dp));
  if (parallel.processes > 1 && (!parallel.gradients || !parallel.host))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "data parallelism across processes needs its groups (internal error)");
  impl->replicas = dp / parallel.processes;
  impl->firstReplica = parallel.index * impl->replicas;
  if (llvm::Error e =
          check(cudaStatus(cudaStreamCreate(&impl->stream)), "a CUDA stream"))
    return std::move(e);
  if (llvm::Error e = check(impl->gemm.init(), "cuBLASLt"))
    return std::move(e);
  if (llvm::Error e = impl->build())
    return std::move(e);
  if (llvm::Error e = impl->allocate())
    return std::move(e);
  return std::unique_ptr<DeviceTrainer>(new DeviceTrainer(std::move(impl)));
}

llvm::Error DeviceTrainer::Impl::stepAction(size_t index) {
  const sched::Action &a = program.actions[index];
  const int64_t id = a.microbatch, at = static_cast<int64_t>(index),
                microbatches = model->plan().data.microbatches;
  exec::setActivity("at action %zu (%s microbatch %lld) of step %lld", index,
                    sched::actionMnemonic(a.kind), static_cast<long long>(id),
                    static_cast<long long>(done + 1));
  switch (a.kind) {
  case ActionKind::Forward: {
    // Read while the GPU runs the microbatch before (the uploads from
    // pageable memory wait for the stream; the read need not).
    auto got =
        data->get(done, firstReplica + id / microbatches, id % microbatches);
    if (!got)
      return got.takeError();
    stepScales[static_cast<size_t>(id)] = got->lossScale;
    // The microbatch's saved activations and the action's workspace at
    // their places in the arena.
    MLLM_TRY(bind(sched::BufferKind::Saved, id, -1, &Impl::carveSaved));
    MLLM_TRY(bind(sched::BufferKind::Workspace, -1, at, &Impl::carveScratch));
    MLLM_TRY(loadBatch(*got));
    return forward(hostLosses + id);
  }
  case ActionKind::BackwardInput: {
    // This executor runs both backwards here.
    MLLM_TRY(bind(sched::BufferKind::Workspace, -1, at, &Impl::carveScratch));
    lastMicrobatch = id + 1 == replicas * microbatches;
    llvm::Error e = backward();
    if (e)
      drainSums(); // buckets posted before the failure
    return e;
  }
  case ActionKind::BackwardWeight: // ran with the backward_input
  case ActionKind::OptimizerStep:  // step() takes it, after the loss
    return llvm::Error::success();
  default:
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("action {0} ({1}) has no meaning in the one-process run",
                      index, sched::actionMnemonic(a.kind))
            .str());
  }
}

llvm::Expected<double> DeviceTrainer::accumulateGradients() {
  Impl &s = *impl;
  MLLM_TRY(s.agreeOnStart());
  MLLM_TRY(s.zeroGrads());
  s.postedFrom = s.gradFloats;
  const int64_t count = s.replicas * s.model->plan().data.microbatches;
  s.stepScales.assign(static_cast<size_t>(count), 0);
  // mllm-run's compiled step function, when it set a factory.
  if (!s.steps) {
    std::unique_ptr<exec::ProgramRunner> steps = s.programRunner();
    auto driver = exec::makeStepDriver(*steps);
    if (!driver)
      return driver.takeError();
    s.steps = std::move(steps);
    s.driver = std::move(*driver);
  }
  if (s.driver) {
    if (llvm::Error e = s.driver->runActions(*s.steps)) {
      s.drainSums(); // code that does not match the program stops early
      return std::move(e);
    }
  } else {
    for (size_t i = 0; i < s.program.actions.size(); ++i)
      MLLM_TRY(s.stepAction(i));
  }
  MLLM_TRY(check(cudaStatus(cudaStreamSynchronize(s.stream)),
                 "the step's microbatches"));
  double loss = 0;
  for (int64_t id = 0; id < count; ++id)
    loss += s.hostLosses[id] * s.stepScales[static_cast<size_t>(id)];
  MLLM_TRY(s.reduceOverProcesses(loss));
  return loss;
}

llvm::Expected<exec::StepStats> DeviceTrainer::step() {
  Impl &s = *impl;
  auto start = std::chrono::steady_clock::now();
  auto loss = accumulateGradients();
  if (!loss)
    return loss.takeError();
  if (llvm::Error e = s.optimizerStep())
    return std::move(e);
  if (llvm::Error e =
          check(cudaStatus(cudaStreamSynchronize(s.stream)), "the step"))
    return std::move(e);
  ++s.done;
  exec::setActivity("between iterations");
  const Plan &plan = s.model->plan();
  exec::StepStats stats;
  stats.step = s.done;
  stats.loss = *loss;
  stats.tokens = plan.job.dp * plan.data.microbatches * s.model->sequences *
                 s.model->seqLen;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}

llvm::Error DeviceTrainer::downloadGradients() {
  return impl->downloadGradients();
}

llvm::Error DeviceTrainer::Impl::downloadGradients() {
  for (auto &p : params) {
    if (!p->trains)
      continue;
    std::vector<float> &grads = p->host->grad.data;
    grads.resize(static_cast<size_t>(p->n));
    if (llvm::Error e = check(
            cudaStatus(cudaMemcpy(grads.data(), p->grad, p->n * sizeof(float),
                                  cudaMemcpyDeviceToHost)),
            "downloading the gradient of '" + p->name + "'"))
      return e;
  }
  return llvm::Error::success();
}

int64_t DeviceTrainer::stepsDone() const { return impl->done; }

llvm::Expected<exec::EvalStats> DeviceTrainer::evaluate(exec::EvalSet &set) {
  Impl &s = *impl;
  exec::setActivity("evaluating the held-out set");
  auto start = std::chrono::steady_clock::now();
  cpu::HeadEval counted;
  // Each batch runs as microbatch 0's forward: its buffers, then the
  // forward with the head stopping at its logits' statistics.
  const int64_t forwardAction = s.actionOf(ActionKind::Forward, 0);
  // Data-parallel processes take every processes-th batch each.
  const int64_t processes = s.parallel.processes;
  for (int64_t k = s.parallel.index; k < set.batchCount(); k += processes) {
    auto d = set.batch(k);
    if (!d)
      return d.takeError();
    MLLM_TRY(s.bind(sched::BufferKind::Saved, 0, -1, &Impl::carveSaved));
    MLLM_TRY(s.bind(sched::BufferKind::Workspace, -1, forwardAction,
                    &Impl::carveScratch));
    MLLM_TRY(s.loadBatch(*d));
    s.evaluating = true;
    llvm::Error e = s.forward(s.hostLosses);
    s.evaluating = false;
    if (e)
      return std::move(e);
    MLLM_TRY(s.countEvaluation(d->targets, counted));
  }
  if (processes > 1)
    if (llvm::Error e = exec::sumCounts(*s.parallel.host, counted))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "summing the evaluation over the "
                                     "processes: " +
                                         llvm::toString(std::move(e)));
  return exec::evalStats(counted, set, s.done, start);
}
int64_t DeviceTrainer::deviceBytes() const { return impl->bytes; }
const sched::MemoryPlan &DeviceTrainer::memoryPlan() const {
  return impl->memory;
}
int64_t DeviceTrainer::measuredArenaBytes() const { return impl->highWater; }
int64_t DeviceTrainer::gradientSumsPosted() const {
  return impl->bucketsPosted;
}

void DeviceTrainer::setAttentionKernel(kernels::cuda::AttentionKernel kernel) {
  impl->attentionKernel = kernel;
}

llvm::Error DeviceTrainer::downloadParams() { return impl->downloadParams(); }

llvm::Error DeviceTrainer::Impl::downloadParams() {
  for (auto &p : params) {
    std::vector<float> &values = p->host->value.data;
    values.resize(static_cast<size_t>(p->n));
    if (llvm::Error e = check(cudaStatus(cudaMemcpy(values.data(), p->master,
                                                    p->n * sizeof(float),
                                                    cudaMemcpyDeviceToHost)),
                              "downloading '" + p->name + "'"))
      return e;
  }
  return llvm::Error::success();
}
