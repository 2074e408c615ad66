//===- DeviceRank.cpp - one GPU of a pipeline -----------------------------===//
//
// DeviceRankRunner: a rank's program of the plan, action by action, on the
// device state of DeviceTrainer::Impl restricted to the steps of its stage.
//
//===----------------------------------------------------------------------===//
#include "DeviceRankImpl.h"

#include "mllm/runtime/SendRelease.h"
#include "mllm/runtime/exec/BatchSplit.h"
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;
using sched::ActionKind;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Error DeviceTrainer::Impl::forwardStage(size_t chain, const bf16 *in,
                                              bf16 *out, double *lossSum) {
  std::vector<DeviceLayer> &held = layersOf(chain);
  const bool llm = &held == &layers;
  DeviceEncoder *encoder = llm ? nullptr : &encoders[chain];
  DeviceLayer &first = held.front();
  if (encoder && encoder->idle)
    return llvm::Error::success();
  if (in)
    MLLM_TRY(check(cudaStatus(cudaMemcpyAsync(
                       first.x, in, first.rows * first.width * sizeof(bf16),
                       cudaMemcpyDeviceToDevice, stream)),
                   "the received activation of '" + first.name + "'"));
  // An encoder's projected tokens are kept in its `out` (then sent).
  bf16 *last = encoder && encoder->ends ? encoder->out : out;
  for (size_t i = 0; i < held.size(); ++i) {
    bf16 *to = i + 1 < held.size() ? held[i + 1].x : last;
    MLLM_TRY(forwardLayer(held[i], to, lossSum));
    if (llm && i == 0 && fanInHere())
      MLLM_TRY(fanInForward(to));
  }
  if (encoder && encoder->ends && out)
    MLLM_TRY(check(cudaStatus(cudaMemcpyAsync(
                       out, encoder->out,
                       encoder->outRows * encoder->outWidth * sizeof(bf16),
                       cudaMemcpyDeviceToDevice, stream)),
                   "the tokens of '" + encoder->name + "'"));
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::backwardStage(size_t chain, const bf16 *dOut,
                                               bf16 *dIn) {
  std::vector<DeviceLayer> &held = layersOf(chain);
  const bool llm = &held == &layers;
  DeviceEncoder *encoder = llm ? nullptr : &encoders[chain];
  const DeviceLayer &last = held.back();
  if (dOut)
    MLLM_TRY(check(
        cudaStatus(cudaMemcpyAsync(scratch.dy, dOut,
                                   last.outRows * last.outWidth * sizeof(bf16),
                                   cudaMemcpyDeviceToDevice, stream)),
        "the received gradient of '" + last.name + "'"));
  bool reachedInput = true;
  for (size_t i = held.size(); i-- > 0;) {
    DeviceLayer &l = held[i];
    if (!l.trains && !l.inputGrad) {
      reachedInput = false;
      break;
    }
    // The last layer's output was sent: its recomputation writes it to
    // the workspace's dx, free until the backward.
    if (l.recompute)
      MLLM_TRY(forwardLayer(l,
                            i + 1 < held.size()        ? held[i + 1].x
                            : encoder && encoder->ends ? encoder->out
                                                       : scratch.dx,
                            nullptr));
    MLLM_TRY(backwardLayer(l));
    MLLM_TRY(gradientsDone(l));
    if (llm && i == 1 && fanInHere())
      MLLM_TRY(fanInBackward(scratch.dy, held[0].trains));
  }
  if (!dIn)
    return llvm::Error::success();
  const DeviceLayer &first = held.front();
  const size_t bytes = first.rows * first.width * sizeof(bf16);
  if (reachedInput && first.inputGrad)
    return check(cudaStatus(cudaMemcpyAsync(dIn, scratch.dy, bytes,
                                            cudaMemcpyDeviceToDevice, stream)),
                 "the gradient of '" + first.name + "''s input");
  // The plan sends a gradient this stage does not compute.
  return check(cudaStatus(cudaMemsetAsync(dIn, 0, bytes, stream)),
               "the gradient of '" + first.name + "''s input");
}

llvm::Error DeviceRankRunner::Impl::actionError(size_t index,
                                                llvm::Error e) const {
  return error(
      llvm::formatv("stage '{0}', action {1} ({2}): {3}",
                    graph().stages[program.stage].name, index,
                    sched::describeAction(graph(), program.actions[index]),
                    llvm::toString(std::move(e)))
          .str());
}

std::vector<exec::FlowKey>
DeviceRankRunner::Impl::keysOf(const sched::Action &a) const {
  // A message carries what its sender sends on; a gradient those of them
  // that get one.
  const bool outgoing =
      a.kind == ActionKind::SendActivation || a.kind == ActionKind::RecvGrad;
  int64_t program = place.program;
  if (!outgoing)
    for (size_t i = 0; i < plan->schedule->programs.size(); ++i)
      if (plan->schedule->programs[i].stage == a.peer)
        program = static_cast<int64_t>(i);
  std::vector<exec::FlowKey> keys = flows[program].sends;
  if (!sched::isGradMessage(a.kind))
    return keys;
  std::vector<exec::FlowKey> need;
  for (const exec::FlowKey &k : keys)
    if (model->chains[k.chain]->hasBackward(0, k.step))
      need.push_back(k);
  return need.size() == a.shape.size() ? need : keys;
}

void DeviceRankRunner::Impl::sizeMessages() {
  // Under CP the LLM's activation between two of its stages is this rank's
  // share of the tokens, more or fewer rows than the plan's even share:
  // the arena and the posts take the rank's size, as the CPU runner's
  // buffers do. When batches bring their own split that size is the
  // largest share (its first rows hold the microbatch's), so that both
  // ends post one size for every microbatch (docs/cuda.md §9).
  const int64_t local = dev.cpPerBatch
                            ? dev.cpMostTokens
                            : static_cast<int64_t>(model->localTokens.size());
  for (sched::Action &a : program.actions) {
    if (!sched::isComm(a.kind))
      continue;
    std::vector<exec::FlowKey> keys = keysOf(a);
    // checkMessages() reports a message of other tensors.
    if (keys.size() != a.shape.size())
      continue;
    std::vector<sched::TensorShape> tensors = a.shape.tensors();
    int64_t bytes = 0;
    for (size_t j = 0; j < keys.size(); ++j) {
      tensors[j].dims =
          exec::messageTensorDims(*model, keys[j], a.shape[j], local);
      bytes += tensors[j].bytes();
    }
    // The plan's shapes are shared between messages: a copy only when
    // this rank's differ.
    if (bytes != a.bytes || tensors != a.shape.tensors()) {
      a.shape = sched::MessageShape(std::move(tensors));
      a.bytes = bytes;
    }
  }
}

llvm::Error DeviceRankRunner::Impl::checkMessages() {
  // What each message carries here, in bf16: a held chain's activation at
  // a cut ([rows, width] of the layer on its far side), an encoder's
  // projected tokens from the stage that makes them to the one with the
  // fan-in, or their gradients.
  const size_t llm = model->chains.size() - 1;
  for (size_t i = 0; i < program.actions.size(); ++i) {
    const sched::Action &a = program.actions[i];
    if (!sched::isComm(a.kind))
      continue;
    std::vector<exec::FlowKey> keys = keysOf(a);
    if (keys.size() != a.shape.size())
      return actionError(
          i, fail(llvm::formatv("the plan's message has {0} tensors, the "
                                "device executor {1} (internal error)",
                                a.shape.size(), keys.size())));
    const bool upstream =
        a.kind == ActionKind::RecvActivation || a.kind == ActionKind::SendGrad;
    Message m;
    int64_t at = 0;
    for (size_t j = 0; j < keys.size(); ++j) {
      Part p;
      p.chain = static_cast<size_t>(keys[j].chain);
      p.step = static_cast<size_t>(keys[j].step);
      p.tokens = p.chain < llm && p.step == model->chains[p.chain]->size();
      p.offset = at;
      std::optional<exec::StageRange> range = dev.heldRange(p.chain);
      int64_t rows = 0, width = 0;
      bool ours = false;
      if (p.tokens) {
        const DeviceEncoder &e = dev.encoders[p.chain];
        ours = upstream ? dev.fanInHere() : e.ends;
        rows = e.outRows;
        width = e.outWidth;
      } else if (range && upstream && p.step == range->first) {
        const DeviceLayer &first = dev.layersOf(p.chain).front();
        ours = true;
        rows = first.rows;
        width = first.width;
      } else if (range && !upstream && p.step == range->last) {
        const DeviceLayer &last = dev.layersOf(p.chain).back();
        ours = true;
        rows = last.outRows;
        width = last.outWidth;
      }
      // Neither made nor read here: passed on in the plan's own shape
      // (checked below to be received and sent in the same microbatch).
      p.pass = !ours;
      const int64_t bytes =
          p.pass ? a.shape[j].bytes()
                 : rows * width * static_cast<int64_t>(sizeof(bf16));
      p.bytes = bytes;
      if (a.shape[j].elementBytes != 2 || a.shape[j].bytes() != bytes)
        return actionError(
            i, fail(llvm::formatv("tensor {0} of the message is {1} bytes "
                                  "in the plan (under CP, this rank's "
                                  "share); the device executor's is [{2}, "
                                  "{3}] in bf16 ({4} bytes)",
                                  j, a.shape[j].bytes(), rows, width, bytes)));
      at += bytes;
      m.parts.push_back(p);
    }
    m.offset = -1;
    for (const sched::Buffer &b : dev.memory.buffers)
      if (b.action == static_cast<int64_t>(i) &&
          b.kind != sched::BufferKind::Workspace)
        m.offset = b.offset;
    if (m.offset < 0 || at != a.bytes)
      return actionError(
          i, fail("the static memory plan has no buffer for it (internal)"));
    messages[static_cast<int64_t>(i)] = std::move(m);
    comms[{a.kind, a.microbatch}].push_back(static_cast<int64_t>(i));
  }
  // A tensor passed on is received and sent on in the same microbatch, and
  // a gradient received for one is sent back.
  for (size_t i = 0; i < program.actions.size(); ++i) {
    const sched::Action &a = program.actions[i];
    auto it = messages.find(static_cast<int64_t>(i));
    if (it == messages.end() || a.kind == ActionKind::SendGrad)
      continue;
    const ActionKind other =
        a.kind == ActionKind::RecvActivation   ? ActionKind::SendActivation
        : a.kind == ActionKind::SendActivation ? ActionKind::RecvActivation
                                               : ActionKind::SendGrad;
    for (const Part &p : it->second.parts)
      if (p.pass && !passPart(other, a.microbatch, p))
        return actionError(
            i, fail("the message carries a tensor this stage neither makes, "
                    "reads nor passes on (internal error)"));
  }
  return llvm::Error::success();
}

DeviceRankRunner::DeviceRankRunner(std::unique_ptr<Impl> impl)
    : impl(std::move(impl)) {}
DeviceRankRunner::~DeviceRankRunner() {
  if (impl)
    impl->drain();
}

llvm::Error DeviceRankRunner::Impl::endIteration() {
  if (llvm::Error e = waitSends(-1)) {
    drain();
    return e;
  }
  if (!recvs.empty()) {
    drain();
    return error("a received message was never used (internal error)");
  }
  mbs.clear();
  return llvm::Error::success();
}

void DeviceRankRunner::Impl::drain() {
  failed = true;
  for (ShardCollectives *c : {dev.tp, dev.cp})
    if (c)
      llvm::consumeError(c->finish());
  sends.clear();
  recvs.clear();
  mbs.clear();
  dev.drainSums();
}

llvm::Expected<std::unique_ptr<DeviceRankRunner>>
DeviceRankRunner::create(const Plan &plan, uint64_t seed,
                         const RankGroups &groups,
                         const exec::RankRunner::DataFactory &makeData) {
  auto impl = std::make_unique<Impl>();
  Impl &s = *impl;
  s.plan = &plan;
  s.groups = groups;
  const int rank = groups.messages->worldRank();
  s.place.rank = rank;
  if (llvm::Error e = exec::agreeOnPlan(plan, *groups.world, rank))
    return s.error(llvm::toString(std::move(e)));
  auto place = placeRank(plan, rank);
  if (!place)
    return s.error(llvm::toString(place.takeError()));
  s.place = std::move(*place);
  const std::vector<sched::Program> &programs = plan.schedule->programs;
  s.program = programs[s.place.program];
  const sched::StageInfo &stage = s.graph().stages[s.program.stage];
  if (s.place.replicas.size() > 1 && (!groups.gradients || !groups.replicas))
    return s.error("the stage's replicas need their groups (internal error)");
  if (!s.place.tied.empty() && !groups.tied)
    return s.error("the tied head needs its group (internal error)");
  const int64_t tp = static_cast<int64_t>(s.place.shards.size());
  if (tp > 1 &&
      (!groups.shards || !groups.shardsHost || groups.shards->size() != tp ||
       groups.shards->rank() != s.place.coord.t))
    return s.error("the stage's TP group is not its shards' (internal error)");
  const int64_t cp = static_cast<int64_t>(s.place.contexts.size());
  if (cp > 1 && (!groups.contexts || !groups.contextsHost ||
                 groups.contexts->size() != cp ||
                 groups.contexts->rank() != s.place.coord.c))
    return s.error("the stage's CP group is not its ranks' (internal error)");
  // The rank's share of the model: its stage's weights, as the CPU
  // RankRunner's.
  exec::Model::Keep keep = [&plan, rank](llvm::StringRef part, int64_t unit) {
    for (const PlanStage &st : plan.stages)
      if (st.part == part && st.ranks && st.ranks->coordOf(rank) &&
          unit >= st.begin && unit < st.end)
        return true;
    return false;
  };
  // A stage's parts are split alike over its TP group.
  exec::Model::Sharding sharding;
  if (tp > 1) {
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(stage.part).split(parts, '+');
    for (llvm::StringRef part : parts)
      sharding.tp[part.str()] = {s.place.coord.t, tp, groups.shardsHost};
  }
  if (cp > 1) {
    auto shares = exec::contextShares(plan, stage);
    if (!shares)
      return s.error(llvm::toString(shares.takeError()));
    sharding.cp.group = groups.contextsHost;
    sharding.cp.tokens = std::move(*shares);
  }
  auto model = exec::Model::build(plan, seed, keep, &sharding);
  if (!model)
    return s.error(llvm::toString(model.takeError()));
  s.model = std::move(*model);
  auto data = makeData(*s.model);
  if (!data)
    return s.error(llvm::toString(data.takeError()));
  s.data = std::move(*data);
  auto flows = exec::planFlows(*s.model);
  if (!flows)
    return s.error(llvm::toString(flows.takeError()));
  s.flows = std::move(*flows);
  // Real data splits every batch on its own (exec/BatchSplit.h): the arena
  // and the messages hold the largest share any split gives this rank.
  if (cp > 1 && s.data->splitsPerBatch()) {
    const PlanCPAssignment *assignment = exec::llmAssignment(plan);
    if (!assignment)
      return s.error("the LLM's CP split has no assignment in the plan");
    auto most = exec::largestShare(*assignment);
    if (!most)
      return s.error(llvm::toString(most.takeError()));
    s.dev.cpPerBatch = true;
    s.dev.cpMostTokens = *most;
  }
  s.sizeMessages();
  const exec::StageFlow &flow = s.flows[s.place.program];
  const size_t llm = s.model->chains.size() - 1;
  if (flow.ranges.empty())
    return s.error("stage '" + stage.name + "' holds no layers");
  DeviceTrainer::Impl &d = s.dev;
  d.model = s.model.get();
  d.data = s.data.get();
  d.rankProgram = &s.program;
  d.releases = sched::sendReleases(s.graph(), programs,
                                   static_cast<size_t>(s.place.program));
  d.held = flow.ranges;
  // A receive from several ranks (a gradient from every CP rank of the
  // next stage) holds a copy per source in the arena.
  for (size_t i = 0; i < s.program.actions.size(); ++i)
    if (sched::isRecv(s.program.actions[i].kind))
      if (size_t n = s.peersOf(s.program.actions[i]).size(); n > 1)
        d.messageCopies[static_cast<int64_t>(i)] = static_cast<int64_t>(n);
  if (tp > 1) {
    d.tp = groups.shards;
    d.tpRank = s.place.coord.t;
    d.tpSize = tp;
  }
  if (cp > 1)
    d.cp = groups.contexts;
  d.replicas = 1;
  d.firstReplica = s.place.coord.d;
  if (s.place.replicas.size() > 1) {
    d.parallel.index = static_cast<int>(llvm::find(s.place.replicas, rank) -
                                        s.place.replicas.begin());
    d.parallel.processes = static_cast<int>(s.place.replicas.size());
    d.parallel.gradients = groups.gradients;
    d.parallel.host = groups.replicas;
    d.parallel.bucketBytes = groups.bucketBytes;
  }
  s.holdsHead =
      d.heldRange(llm) && d.heldRange(llm)->last >= s.model->llm().size();
  // A microbatch's backward runs at its first backward action (a stage
  // whose first layer needs no input gradient has only backward_weight).
  for (size_t i = 0; i < s.program.actions.size(); ++i) {
    const sched::Action &a = s.program.actions[i];
    if (sched::isBackward(a.kind) && !s.backwardAt.count(a.microbatch)) {
      s.backwardAt[a.microbatch] = static_cast<int64_t>(i);
      s.lastBackward = std::max(s.lastBackward, static_cast<int64_t>(i));
    }
  }
  auto made = [&]() -> llvm::Error {
    MLLM_TRY(check(cudaStatus(cudaStreamCreate(&d.stream)), "a CUDA stream"));
    MLLM_TRY(check(d.gemm.init(), "cuBLASLt"));
    MLLM_TRY(d.build());
    return d.allocate();
  }();
  if (made)
    return s.wrap(std::move(made));
  MLLM_TRY(s.checkMessages());
  for (auto &p : d.params) {
    s.owned.push_back({p->name, p->host});
    if (!s.place.tied.empty() && p->host == s.model->tiedEmbedding)
      s.tied = p.get();
  }
  if (!s.place.tied.empty() && (!s.tied || !s.tied->trains))
    return s.error("the tied embedding is not on this rank (internal error)");
  // mllm-run's compiled step function, when it set a factory.
  s.steps = s.programRunner();
  auto driver = exec::makeStepDriver(*s.steps);
  if (!driver)
    return driver.takeError();
  s.driver = std::move(*driver);
  return std::unique_ptr<DeviceRankRunner>(
      new DeviceRankRunner(std::move(impl)));
}

llvm::Error DeviceRankRunner::Impl::waitRecv(int64_t action) {
  auto it = recvs.find(action);
  if (it == recvs.end())
    return fail(llvm::formatv("the message of action {0} was not received "
                              "first (internal error)",
                              action));
  const double start = tracing ? now() : 0;
  std::vector<std::unique_ptr<Request>> requests = std::move(it->second);
  recvs.erase(it);
  {
    const sched::Action &a = program.actions[static_cast<size_t>(action)];
    std::vector<int64_t> from = peersOf(a);
    exec::setActivity("waiting at action %lld (%s) for rank %lld",
                      static_cast<long long>(action),
                      sched::describeAction(graph(), a).c_str(),
                      static_cast<long long>(from.empty() ? -1 : from[0]));
  }
  for (auto &request : requests)
    if (llvm::Error e = request->wait())
      return actionError(static_cast<size_t>(action), std::move(e));
  // Several sources' copies (the CP ranks' shares of a gradient) are
  // summed into the first, which the action's parts point into.
  const sched::Action &received = program.actions[static_cast<size_t>(action)];
  const int64_t n = received.bytes / static_cast<int64_t>(sizeof(bf16));
  for (size_t j = 1; j < requests.size(); ++j)
    MLLM_TRY(check(kernels::cuda::addInPlace(
                       buffer(action), buffer(action) + j * n, n, dev.stream),
                   "summing the copies of a received gradient"));
  if (tracing) {
    const sched::Action &a = program.actions[static_cast<size_t>(action)];
    exec::RankEvent ev = event(a, start);
    ev.peer = a.peer;
    ev.end = lastWaitEnd = now();
    events.push_back(ev);
  }
  return llvm::Error::success();
}

llvm::Error DeviceRankRunner::Impl::waitSends(int64_t at) {
  for (Posted &p : sends)
    if (at < 0 || p.release == at) {
      exec::setActivity("waiting for the send of action %lld",
                        static_cast<long long>(p.action));
      if (llvm::Error e = p.request->wait())
        return actionError(static_cast<size_t>(p.action), std::move(e));
    }
  llvm::erase_if(sends,
                 [&](const Posted &p) { return at < 0 || p.release == at; });
  return llvm::Error::success();
}

llvm::Error DeviceRankRunner::Impl::run(size_t index) {
  const sched::Action &a = program.actions[index];
  const int64_t mb = a.microbatch, at = static_cast<int64_t>(index);
  auto bindMicrobatch = [&]() -> llvm::Error {
    // Its CP split sizes the LLM's buffers (a round of generation's
    // share: its new tokens).
    if (auto cache = roundCaches.find(mb); cache != roundCaches.end())
      dev.useShare(*cache->second, mbs.at(mb).cp->tokens);
    else
      MLLM_TRY(dev.useSplit(exec::cpSplit(*model, mbs.at(mb))));
    if (dev.savedInWorkspace)
      MLLM_TRY(dev.bind(sched::BufferKind::Workspace, -1, at,
                        &DeviceTrainer::Impl::carveForwardOnly));
    else {
      MLLM_TRY(dev.bind(sched::BufferKind::Saved, mb, -1,
                        &DeviceTrainer::Impl::carveSaved));
      MLLM_TRY(dev.bind(sched::BufferKind::Workspace, -1, at,
                        &DeviceTrainer::Impl::carveScratch));
    }
    // Its token arrays are in its saved buffer; the per-batch attention and
    // embedding-gradient plans are made again (another microbatch's may
    // have replaced them since its forward).
    return dev.loadBatch(mbs.at(mb));
  };
  switch (a.kind) {
  case ActionKind::Forward: {
    MLLM_TRY(bindMicrobatch());
    // The held chains' inputs, and the encoders' tokens for the fan-in.
    std::map<size_t, const bf16 *> inputs;
    std::map<size_t, bf16 *> outputs;
    for (int64_t r : commsOf(ActionKind::RecvActivation, mb)) {
      MLLM_TRY(waitRecv(r));
      for (const Part &p : messages.at(r).parts) {
        if (p.pass)
          continue;
        if (!p.tokens) {
          inputs[p.chain] = partOf(r, p);
          continue;
        }
        DeviceEncoder &e = dev.encoders[p.chain];
        MLLM_TRY(check(
            cudaStatus(cudaMemcpyAsync(e.out, partOf(r, p),
                                       e.outRows * e.outWidth * sizeof(bf16),
                                       cudaMemcpyDeviceToDevice, dev.stream)),
            "the received tokens of '" + e.name + "'"));
      }
    }
    for (int64_t r : commsOf(ActionKind::SendActivation, mb))
      for (const Part &p : messages.at(r).parts) {
        if (!p.pass) {
          outputs[p.chain] = partOf(r, p);
          continue;
        }
        // Sent on as it came.
        int64_t from = -1;
        const Part *in = passPart(ActionKind::RecvActivation, mb, p, &from);
        MLLM_TRY(check(
            cudaStatus(cudaMemcpyAsync(partOf(r, p), partOf(from, *in), p.bytes,
                                       cudaMemcpyDeviceToDevice, dev.stream)),
            "a tensor passed on"));
      }
    // In the flow's order: a chain stage's encoder before its LLM (an idle
    // encoder's tokens, which no row of the round takes, are not made).
    for (const exec::StageRange &range : dev.held)
      MLLM_TRY(dev.forwardStage(range.chain, inputs[range.chain],
                                outputs[range.chain], dev.hostLosses + mb));
    return llvm::Error::success();
  }
  case ActionKind::BackwardInput:
  case ActionKind::BackwardWeight: {
    // Both gradients at once, at the microbatch's first backward action.
    if (backwardAt.at(mb) != at)
      return llvm::Error::success();
    MLLM_TRY(bindMicrobatch());
    // The gradients of the held chains' outputs (a cut's or an encoder's
    // tokens'), and where their inputs' gradients go.
    std::map<size_t, const bf16 *> dOuts;
    std::map<size_t, bf16 *> dIns;
    for (int64_t r : commsOf(ActionKind::RecvGrad, mb)) {
      MLLM_TRY(waitRecv(r));
      for (const Part &p : messages.at(r).parts)
        if (!p.pass)
          dOuts[p.chain] = partOf(r, p);
    }
    for (int64_t r : commsOf(ActionKind::SendGrad, mb))
      for (const Part &p : messages.at(r).parts) {
        if (!p.pass) {
          if (!p.tokens)
            dIns[p.chain] = partOf(r, p);
          continue;
        }
        // A tensor passed on sends back the gradient it got, or zeros.
        int64_t from = -1;
        const Part *in = passPart(ActionKind::RecvGrad, mb, p, &from);
        MLLM_TRY(check(
            cudaStatus(
                in ? cudaMemcpyAsync(partOf(r, p), partOf(from, *in), p.bytes,
                                     cudaMemcpyDeviceToDevice, dev.stream)
                   : cudaMemsetAsync(partOf(r, p), 0, p.bytes, dev.stream)),
            "the gradient of a tensor passed on"));
      }
    dev.lastMicrobatch = at == lastBackward;
    const size_t llm = model->chains.size() - 1;
    // Downstream first: the LLM's fan-in gives a chain stage's encoder its
    // gradient (its dOut).
    for (size_t k = dev.held.size(); k-- > 0;) {
      const size_t chain = dev.held[k].chain;
      const bf16 *dOut = dOuts[chain];
      const bool head = chain == llm && holdsHead;
      if (!dOut && chain < llm && dev.fanInHere() && dev.encoders[chain].trains)
        dOut = dev.encoders[chain].dOut;
      if (dOut || head) {
        MLLM_TRY(dev.backwardStage(chain, dOut, dIns[chain]));
        continue;
      }
      // No gradient reaches it; a gradient the plan sends on is zero.
      if (bf16 *dIn = dIns[chain]) {
        const DeviceLayer &first = dev.layersOf(chain).front();
        MLLM_TRY(check(
            cudaStatus(cudaMemsetAsync(
                dIn, 0, first.rows * first.width * sizeof(bf16), dev.stream)),
            "the gradient of '" + first.name + "''s input"));
      }
    }
    // The fan-in left the encoders' tokens' gradients in their dOut.
    for (int64_t r : commsOf(ActionKind::SendGrad, mb))
      for (const Part &p : messages.at(r).parts)
        if (p.tokens && !p.pass) {
          DeviceEncoder &e = dev.encoders[p.chain];
          MLLM_TRY(check(
              cudaStatus(cudaMemcpyAsync(partOf(r, p), e.dOut,
                                         e.outRows * e.outWidth * sizeof(bf16),
                                         cudaMemcpyDeviceToDevice, dev.stream)),
              "the gradient of '" + e.name + "''s tokens"));
        }
    return llvm::Error::success();
  }
  case ActionKind::SendActivation:
  case ActionKind::SendGrad:
  case ActionKind::RecvActivation:
  case ActionKind::RecvGrad: {
    // The buffer's bytes are written by the stream (a send) or may still
    // be read by it as an earlier buffer's (a receive): the stream first.
    MLLM_TRY(check(cudaStatus(cudaStreamSynchronize(dev.stream)),
                   "the work before the message"));
    const bool send = sched::isSend(a.kind);
    // A send goes to every rank of the peer stage pairing with this one (a
    // stage of higher tp has several); a receive comes from one, or a
    // gradient from every CP rank, each into its own copy.
    const std::vector<int64_t> peers = peersOf(a);
    const int64_t copies = send ? 1 : static_cast<int64_t>(peers.size());
    dev.highWater =
        std::max(dev.highWater, messages.at(at).offset + copies * a.bytes);
    for (size_t j = 0; j < peers.size(); ++j) {
      const int peer = static_cast<int>(peers[j]);
      bf16 *into = buffer(at) + (send ? 0 : j * a.bytes / sizeof(bf16));
      auto request = send ? groups.messages->isend(into, a.bytes, peer, a.tag)
                          : groups.messages->irecv(into, a.bytes, peer, a.tag);
      if (!request)
        return request.takeError();
      if (send)
        sends.push_back({at, dev.releases[index], std::move(*request)});
      else
        recvs[at].push_back(std::move(*request));
    }
    return llvm::Error::success();
  }
  case ActionKind::AllReduceGrads:
    exec::setActivity("in the gradient all-reduce (action %zu)", index);
    return dev.finishGradientSums();
  case ActionKind::OptimizerStep: // step() takes it.
    return llvm::Error::success();
  }
  return llvm::Error::success();
}

llvm::Error DeviceRankRunner::Impl::stepAction(size_t i) {
  const sched::Action &a = program.actions[i];
  const double begin = tracing ? now() : 0;
  lastWaitEnd = begin;
  exec::setActivity("at action %zu (%s)", i,
                    sched::describeAction(graph(), a).c_str());
  llvm::Error e = run(i);
  // Its TP and CP collectives, waited for with their deadline before the
  // host may wait for the stream (a message, an upload, a trace).
  for (ShardCollectives *c : {dev.tp, dev.cp})
    if (!e && c)
      e = c->finish();
  // A traced compute action: the GPU's work inside its event.
  const bool computed =
      sched::isCompute(a.kind) && a.kind != ActionKind::OptimizerStep &&
      (!sched::isBackward(a.kind) ||
       backwardAt.at(a.microbatch) == static_cast<int64_t>(i));
  if (!e && tracing && (computed || a.kind == ActionKind::AllReduceGrads)) {
    e = check(cudaStatus(cudaStreamSynchronize(dev.stream)), "tracing");
    exec::RankEvent ev = event(a, std::max(begin, lastWaitEnd));
    ev.end = now();
    events.push_back(ev);
  }
  if (!e)
    e = waitSends(static_cast<int64_t>(i));
  if (!e)
    return llvm::Error::success();
  drain();
  return e.isA<exec::RankError>() ? std::move(e) : actionError(i, std::move(e));
}

llvm::Expected<double> DeviceRankRunner::accumulateGradients() {
  Impl &s = *impl;
  DeviceTrainer::Impl &d = s.dev;
  MLLM_TRY(s.checkIdle());
  // Stages that resumed from different checkpoints would pair messages of
  // different steps: every rank compares its step count first.
  MLLM_TRY(agreeOnStart());
  if (llvm::Error e = d.agreeOnStart())
    return s.wrap(std::move(e));
  s.tracing = s.traceNext;
  s.traceNext = false;
  s.events.clear();
  if (s.tracing) {
    // Every rank's clock starts together.
    double one = 1;
    if (llvm::Error e = s.groups.world->allReduceSum(&one, 1))
      return s.error("starting the traced step: " +
                     llvm::toString(std::move(e)));
    s.t0 = std::chrono::steady_clock::now();
  }
  MLLM_TRY(s.wrap(d.zeroGrads()));
  d.postedFrom = d.gradFloats;
  std::vector<double> scales;
  s.cpStats = exec::CPSplitStats();
  for (int64_t mb = 0; mb < s.plan->data.microbatches; ++mb) {
    auto got = s.data->get(d.done, s.place.coord.d, mb);
    if (!got)
      return s.error("reading microbatch " + llvm::Twine(mb) + " of step " +
                     llvm::Twine(d.done + 1) + ": " +
                     llvm::toString(got.takeError()));
    scales.push_back(got->lossScale);
    if (const exec::BatchLayout *layout = got->layout.get();
        layout && !layout->cpTokens.empty())
      s.cpStats.add(*layout);
    s.mbs[mb] = std::move(*got);
  }
  if (s.driver) {
    // The compiled step function calls stepAction for each action; after a
    // failure it calls no other. Code that does not match the plan stops
    // without an action's failure: the rank drains as after one.
    if (llvm::Error e = s.driver->runActions(*s.steps)) {
      s.drain();
      return std::move(e);
    }
  } else {
    for (size_t i = 0; i < s.program.actions.size(); ++i)
      MLLM_TRY(s.stepAction(i));
  }
  MLLM_TRY(s.endIteration());
  // Sums the program did not end at an all_reduce_grads action.
  if (llvm::Error e = d.finishGradientSums()) {
    s.drain();
    return s.wrap(std::move(e));
  }
  MLLM_TRY(s.wrap(check(cudaStatus(cudaStreamSynchronize(d.stream)),
                        "the step's microbatches")));
  // Every shard of a TP head has the whole loss: the first counts it.
  double loss = 0;
  if (s.holdsHead && s.place.coord.t == 0)
    for (size_t mb = 0; mb < scales.size(); ++mb)
      loss += d.hostLosses[mb] * scales[mb];
  // The head's copy of a tied embedding and the embedding's see the sum of
  // both gradients, so the two stay equal.
  if (s.tied)
    if (llvm::Error e = s.groups.tied->allReduceSum(
            s.tied->grad, static_cast<int64_t>(s.tied->n)))
      return s.error("summing the tied embedding's gradient: " +
                     llvm::toString(std::move(e)));
  exec::setActivity("summing the loss after the iteration");
  if (llvm::Error e = s.groups.world->allReduceSum(&loss, 1))
    return s.error("summing the loss: " + llvm::toString(std::move(e)));
  return loss;
}

llvm::Error DeviceRankRunner::agreeOnStart() {
  Impl &s = *impl;
  if (s.stepsAgreed)
    return llvm::Error::success();
  exec::setActivity("comparing the ranks' steps");
  if (llvm::Error e = exec::agreeOnStep(*s.groups.world, s.dev.done))
    return s.error(llvm::toString(std::move(e)));
  s.stepsAgreed = true;
  return llvm::Error::success();
}

void DeviceRankRunner::traceNextStep() { impl->traceNext = true; }

llvm::Expected<std::vector<exec::RankEvent>> DeviceRankRunner::gatherTrace() {
  auto all = exec::gatherRankEvents(*impl->groups.world, impl->events);
  if (!all)
    return impl->error("gathering the trace: " +
                       llvm::toString(all.takeError()));
  return all;
}

llvm::Expected<exec::StepStats> DeviceRankRunner::step() {
  Impl &s = *impl;
  auto start = std::chrono::steady_clock::now();
  auto loss = accumulateGradients();
  if (!loss)
    return loss.takeError();
  MLLM_TRY(s.wrap(s.dev.optimizerStep()));
  MLLM_TRY(s.wrap(
      check(cudaStatus(cudaStreamSynchronize(s.dev.stream)), "the step")));
  ++s.dev.done;
  exec::setActivity("between iterations");
  exec::StepStats stats;
  stats.step = s.dev.done;
  stats.loss = *loss;
  stats.cp = s.cpStats;
  stats.tokens = s.plan->job.dp * s.plan->data.microbatches *
                 s.model->sequences * s.model->seqLen;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return stats;
}

llvm::Error DeviceRankRunner::downloadGradients() {
  return impl->dev.downloadGradients();
}
llvm::Error DeviceRankRunner::downloadParams() {
  return impl->dev.downloadParams();
}
llvm::Error DeviceRankRunner::uploadParams() {
  return impl->wrap(impl->dev.fromHost(nullptr));
}

llvm::Error DeviceRankRunner::save(llvm::StringRef dir, uint64_t seed) {
  Impl &s = *impl;
  DeviceTrainer::Impl &d = s.dev;
  exec::setActivity("writing the checkpoint of step %lld",
                    static_cast<long long>(d.done));
  exec::Optimizer &optimizer = d.hostOptimizer(s.owned);
  MLLM_TRY(s.wrap(d.toHost(optimizer)));
  // Every replica and CP rank holds the same weights: replica 0's CP rank
  // 0 writes (TP shards assembled whole).
  std::function<llvm::Error(llvm::StringRef)> write;
  if (s.place.coord.d == 0 && s.place.coord.c == 0)
    write = [&](llvm::StringRef shard) {
      return exec::writeTensorParallelCheckpoint(
          shard, *s.plan, s.owned, optimizer,
          {d.done, seed, exec::modelSignature(*s.model), s.data->identity()},
          s.groups.shardsHost);
    };
  return exec::writeShardedCheckpoint(*s.groups.world, s.place.rank, dir,
                                      d.done, write);
}

llvm::Error DeviceRankRunner::load(llvm::StringRef path) {
  impl->stepsAgreed = false;
  return impl->wrap(impl->dev.load(path, impl->owned));
}

bool DeviceRankRunner::loadedOtherPlan() const { return impl->dev.resharded; }

exec::Model &DeviceRankRunner::model() { return *impl->model; }
const std::vector<exec::NamedParam> &DeviceRankRunner::params() const {
  return impl->owned;
}
int64_t DeviceRankRunner::stepsDone() const { return impl->dev.done; }
void DeviceRankRunner::setAttentionKernel(
    kernels::cuda::AttentionKernel kernel) {
  impl->dev.attentionKernel = kernel;
}
const sched::Program &DeviceRankRunner::program() const {
  return impl->program;
}

std::vector<cuda::P2PMessage> DeviceRankRunner::messages() const {
  return impl->messagesOf([](const sched::Action &) { return true; });
}

std::vector<cuda::P2PMessage> DeviceRankRunner::Impl::messagesOf(
    llvm::function_ref<bool(const sched::Action &)> posts) const {
  std::vector<cuda::P2PMessage> mine;
  for (const sched::Action &a : program.actions) {
    if (!sched::isComm(a.kind) || !posts(a))
      continue;
    // The peers run() posts to, in its order.
    for (int64_t peer : peersOf(a)) {
      cuda::P2PMessage m;
      m.from = sched::isSend(a.kind) ? place.rank : static_cast<int>(peer);
      m.to = sched::isSend(a.kind) ? static_cast<int>(peer) : place.rank;
      m.tag = a.tag;
      m.bytes = a.bytes;
      mine.push_back(m);
    }
  }
  return mine;
}
const sched::MemoryPlan &DeviceRankRunner::memoryPlan() const {
  return impl->dev.memory;
}
int64_t DeviceRankRunner::measuredArenaBytes() const {
  return impl->dev.highWater;
}
int64_t DeviceRankRunner::gradientSumsPosted() const {
  return impl->dev.bucketsPosted;
}
