//===- RankActions.cpp - a rank's program, action by action ---------------===//
#include "RankImpl.h"

#include "mllm/runtime/PlanMemory.h"
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <chrono>
#include <csignal>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;
using detail::setActivity;
using sched::ActionKind;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static std::string dims(llvm::ArrayRef<int64_t> shape) {
  return "[" +
         llvm::join(llvm::map_range(
                        shape, [](int64_t d) { return std::to_string(d); }),
                    ", ") +
         "]";
}

/// The dims of a message's tensor: the plan's, except for the LLM's
/// activations under CP, which are this rank's share of the tokens (the
/// plan's shape is the even share; an assignment balanced for the mask
/// gives some ranks more).
static std::vector<int64_t> tensorDims(const Model &model, const FlowKey &key,
                                       const sched::TensorShape &planned,
                                       const MicrobatchData &data) {
  bool llmCut = key.chain == static_cast<int64_t>(model.chains.size()) - 1;
  if (!llmCut || model.localTokens.empty() || planned.dims.size() != 2)
    return planned.dims;
  // A batch with its own CP split (BatchSplit.h) gives this rank its share.
  size_t local = data.cp ? data.cp->tokens[data.cp->group->rank()].size()
                         : model.localTokens.size();
  return {model.sequences * static_cast<int64_t>(local), planned.dims[1]};
}

/// The keys of action `a` of this rank's program.
static std::vector<FlowKey> messageKeys(const Model &model,
                                        const RankRunner::Impl &s,
                                        const sched::Action &a) {
  bool outgoing =
      a.kind == ActionKind::SendActivation || a.kind == ActionKind::RecvGrad;
  std::vector<FlowKey> keys =
      outgoing ? s.flow().sends : s.flowOfStage(a.peer).sends;
  if (sched::isGradMessage(a.kind)) {
    std::vector<FlowKey> need;
    for (const FlowKey &k : keys)
      if (model.chains[k.chain]->hasBackward(0, k.step))
        need.push_back(k);
    // setUp() checked that one of the two matches the plan.
    if (need.size() == a.shape.size())
      return need;
  }
  return keys;
}

llvm::Error RankRunner::run(size_t index) {
  Impl &s = *impl;
  const sched::Action &a = s.prog->actions[index];
  int64_t mb = a.microbatch;
  // Every microbatch's state was made (with its data) when the step began.
  auto state = [&]() -> MbState & { return s.mbs[mb]; };
  auto waitAll = [&](std::vector<PendingRecv> &pending,
                     MbState &m) -> llvm::Error {
    for (PendingRecv &p : pending) {
      double waitStart = s.tracing ? s.now() : 0;
      for (size_t i = 0; i < p.requests.size(); ++i) {
        setActivity("waiting at action %zu (%s) for rank %lld", p.action,
                    describeAction(*s.graph, s.prog->actions[p.action]).c_str(),
                    static_cast<long long>(p.sources[i]));
        if (llvm::Error e = p.requests[i]->wait())
          return fail(
              llvm::formatv("action {0} ({1}): {2}", p.action,
                            describeAction(*s.graph, s.prog->actions[p.action]),
                            llvm::toString(std::move(e)))
                  .str());
      }
      if (s.tracing) {
        const sched::Action &a = s.prog->actions[p.action];
        RankEvent ev;
        ev.stage = s.prog->stage;
        ev.kind = static_cast<int32_t>(a.kind);
        ev.microbatch = a.microbatch;
        ev.peer = a.peer;
        ev.rank = s.rank;
        ev.start = waitStart;
        ev.end = s.lastWaitEnd = s.now();
        s.events->push_back(ev);
      }
      bool grad = sched::isGradMessage(s.prog->actions[p.action].kind);
      for (size_t i = 0; i < p.buffers.size(); ++i) {
        const float *src = p.buffers[i].data();
        for (size_t k = 0; k < p.keys.size(); ++k) {
          Activation t(p.shapes[k]);
          std::copy_n(src, t.numel(), t.ptr());
          src += t.numel();
          if (!grad) {
            m.shapes[p.keys[k]] = p.shapes[k];
            m.received.push_back(p.keys[k]);
            m.held[p.keys[k]] = std::move(t);
            continue;
          }
          // CP receivers each send their tokens' share: summed.
          auto [it, fresh] = m.grad.try_emplace(p.keys[k], std::move(t));
          if (!fresh)
            for (int64_t j = 0; j < it->second.numel(); ++j)
              it->second.data[j] += t.data[j];
        }
      }
    }
    pending.clear();
    return llvm::Error::success();
  };
  // The output gradient of every range, once the gradients arrived.
  auto gradients = [&](MbState &m) -> llvm::Error {
    if (m.gradsReady)
      return llvm::Error::success();
    if (llvm::Error e = waitAll(s.pendingGrad[mb], m))
      return e;
    const StageFlow &flow = s.flow();
    size_t llm = model.chains.size() - 1;
    for (size_t r = 0; r < flow.ranges.size(); ++r) {
      const StageRange &range = flow.ranges[r];
      if (range.chain == llm && range.last == model.llm().size()) {
        m.dOut[r] = Activation(); // The loss starts the gradient.
        continue;
      }
      auto it = m.grad.find({static_cast<int64_t>(range.chain),
                             static_cast<int64_t>(range.last)});
      if (it != m.grad.end())
        m.dOut[r] = it->second;
    }
    m.gradsReady = true;
    return llvm::Error::success();
  };

  switch (a.kind) {
  case ActionKind::Forward: {
    MbState &m = state();
    if (llvm::Error e = waitAll(s.pendingAct[mb], m))
      return e;
    size_t llm = model.chains.size() - 1;
    for (const StageRange &r : s.flow().ranges) {
      Chain &chain = *model.chains[r.chain];
      Activation in, out;
      auto take = [&](FlowKey key, Activation &into) -> llvm::Error {
        auto it = m.held.find(key);
        if (it == m.held.end())
          return fail("forward of microbatch " + llvm::Twine(mb) +
                      ": the input of '" + chain.part() +
                      "' has not arrived (internal error)");
        into = std::move(it->second);
        m.held.erase(it);
        return llvm::Error::success();
      };
      if (r.first > 0)
        if (llvm::Error e = take(
                {static_cast<int64_t>(r.chain), static_cast<int64_t>(r.first)},
                in))
          return e;
      if (r.chain == llm && model.fanInStep >= static_cast<int64_t>(r.first) &&
          model.fanInStep < static_cast<int64_t>(r.last))
        for (size_t e = 0; e < llm; ++e)
          if (llvm::Error err =
                  take({static_cast<int64_t>(e),
                        static_cast<int64_t>(model.chains[e]->size())},
                       m.ctx.encoderOut[model.chains[e]->part()]))
            return err;
      chain.forward(mb, m.ctx, r.first, r.last, in, out);
      if (!m.ctx.commError.empty())
        return fail(m.ctx.commError);
      if (r.chain == llm && r.last == chain.size()) {
        s.loss += m.ctx.loss;
        continue;
      }
      FlowKey key{static_cast<int64_t>(r.chain), static_cast<int64_t>(r.last)};
      m.shapes[key] = out.shape;
      m.held[key] = std::move(out);
    }
    return llvm::Error::success();
  }
  case ActionKind::SendActivation:
  case ActionKind::SendGrad: {
    MbState &m = state();
    bool grad = a.kind == ActionKind::SendGrad;
    std::vector<FlowKey> keys = messageKeys(model, s, a);
    PostedSend send;
    send.action = index;
    send.release = s.sendRelease[index];
    for (size_t k = 0; k < keys.size(); ++k) {
      std::vector<int64_t> want =
          tensorDims(model, keys[k], a.shape[k], m.data);
      Activation zeros;
      const Activation *t = nullptr;
      if (!grad) {
        auto it = m.held.find(keys[k]);
        if (it == m.held.end())
          return fail("microbatch " + llvm::Twine(mb) +
                      ": a tensor to send was not computed (internal error)");
        t = &it->second;
      } else {
        auto it = m.gradOut.find(keys[k]);
        if (it != m.gradOut.end()) {
          t = &it->second;
        } else {
          // No gradient for it (a full backward of the linear baseline).
          zeros = Activation(m.shapes[keys[k]]);
          t = &zeros;
        }
      }
      if (t->shape != want)
        return fail(llvm::formatv("the runtime's tensor {0} of this message "
                                  "is {1} but the plan's is {2}",
                                  k, dims(t->shape), dims(want))
                        .str());
      send.buffer.insert(send.buffer.end(), t->data.begin(), t->data.end());
    }
    if (!grad)
      for (const FlowKey &k : keys) {
        if (llvm::is_contained(m.received, k))
          m.passed.insert(k);
        m.held.erase(k);
      }
    const sched::StageInfo &peer = s.info(a.peer);
    send.destinations =
        grad ? s.gradDestinations(peer) : s.actDestinations(peer);
    for (int64_t r : send.destinations) {
      auto req =
          comm.isend(send.buffer.data(),
                     static_cast<int64_t>(send.buffer.size() * sizeof(float)),
                     static_cast<int>(r), a.tag);
      if (!req)
        return req.takeError();
      send.requests.push_back(std::move(*req));
    }
    s.sends.push_back(std::move(send));
    return llvm::Error::success();
  }
  case ActionKind::RecvActivation:
  case ActionKind::RecvGrad: {
    bool grad = a.kind == ActionKind::RecvGrad;
    PendingRecv p;
    p.action = index;
    p.peerStage = a.peer;
    p.keys = messageKeys(model, s, a);
    int64_t floats = 0;
    for (size_t k = 0; k < a.shape.size(); ++k) {
      p.shapes.push_back(
          tensorDims(model, p.keys[k], a.shape[k], state().data));
      int64_t n = 1;
      for (int64_t d : p.shapes.back())
        n *= d;
      floats += n;
    }
    const sched::StageInfo &peer = s.info(a.peer);
    p.sources = grad ? s.gradSources(peer) : s.actSources(peer);
    for (int64_t r : p.sources) {
      p.buffers.emplace_back(static_cast<size_t>(floats));
      auto req = comm.irecv(p.buffers.back().data(),
                            floats * static_cast<int64_t>(sizeof(float)),
                            static_cast<int>(r), a.tag);
      if (!req)
        return req.takeError();
      p.requests.push_back(std::move(*req));
    }
    (grad ? s.pendingGrad : s.pendingAct)[mb].push_back(std::move(p));
    return llvm::Error::success();
  }
  case ActionKind::BackwardInput: {
    MbState &m = state();
    if (llvm::Error e = gradients(m))
      return e;
    size_t llm = model.chains.size() - 1;
    const StageFlow &flow = s.flow();
    // A gradient that a later range of this program produces for an earlier
    // one (a chain stage: the LLM's first layers and the encoder's last)
    // stays on the rank: it is that range's output gradient.
    auto keepLocal = [&](size_t upTo) {
      for (size_t q = 0; q < upTo; ++q) {
        const StageRange &earlier = flow.ranges[q];
        auto it = m.gradOut.find({static_cast<int64_t>(earlier.chain),
                                  static_cast<int64_t>(earlier.last)});
        if (it == m.gradOut.end())
          continue;
        m.dOut[q] = std::move(it->second);
        m.gradOut.erase(it);
      }
    };
    // Downstream ranges first, so that their gradients reach the ranges
    // upstream of them.
    for (size_t r = flow.ranges.size(); r-- > 0;) {
      const StageRange &range = flow.ranges[r];
      Chain &chain = *model.chains[range.chain];
      if (!m.dOut[r] || !chain.hasBackward(range.first, range.last))
        continue;
      Activation dIn;
      chain.backwardInput(mb, m.ctx, range.first, range.last, *m.dOut[r], dIn);
      if (!m.ctx.commError.empty())
        return fail(m.ctx.commError);
      if (range.first > 0 && !dIn.data.empty())
        m.gradOut[{static_cast<int64_t>(range.chain),
                   static_cast<int64_t>(range.first)}] = std::move(dIn);
      if (range.chain == llm &&
          model.fanInStep >= static_cast<int64_t>(range.first) &&
          model.fanInStep < static_cast<int64_t>(range.last))
        for (size_t e = 0; e < llm; ++e) {
          auto it = m.ctx.encoderGrad.find(model.chains[e]->part());
          if (it != m.ctx.encoderGrad.end())
            m.gradOut[{static_cast<int64_t>(e),
                       static_cast<int64_t>(model.chains[e]->size())}] =
                std::move(it->second);
        }
      keepLocal(r);
    }
    // Tensors that only passed through go back as they came.
    for (const FlowKey &k : m.passed) {
      auto it = m.grad.find(k);
      if (it != m.grad.end())
        m.gradOut[k] = it->second;
    }
    return llvm::Error::success();
  }
  case ActionKind::BackwardWeight: {
    MbState &m = state();
    if (llvm::Error e = gradients(m))
      return e;
    const StageFlow &flow = s.flow();
    for (size_t r = 0; r < flow.ranges.size(); ++r) {
      const StageRange &range = flow.ranges[r];
      Chain &chain = *model.chains[range.chain];
      if (!m.dOut[r] || !chain.hasBackward(range.first, range.last))
        continue;
      chain.backwardWeight(mb, m.ctx, range.first, range.last, *m.dOut[r]);
      if (!m.ctx.commError.empty())
        return fail(m.ctx.commError);
    }
    return llvm::Error::success();
  }
  case ActionKind::AllReduceGrads: {
    if (!s.gradSync)
      return llvm::Error::success();
    std::vector<float> flat;
    for (const Optimizer::Slot &slot : optimizer.slots())
      flat.insert(flat.end(), slot.param->grad.data.begin(),
                  slot.param->grad.data.end());
    setActivity("in the gradient all-reduce (action %zu)", index);
    if (llvm::Error e = s.gradSync->allReduceSum(
            flat.data(), static_cast<int64_t>(flat.size())))
      return e;
    const float *src = flat.data();
    for (Optimizer::Slot &slot : optimizer.slots()) {
      std::copy_n(src, slot.param->grad.data.size(), slot.param->grad.ptr());
      src += slot.param->grad.data.size();
    }
    return llvm::Error::success();
  }
  case ActionKind::OptimizerStep: {
    if (s.tied) {
      // The embedding's and the tied head's copies see the sum of both
      // stages' gradients, so they stay equal.
      cpu::Param<float> &p = *model.tiedEmbedding;
      setActivity("summing the tied embedding's gradient (action %zu)", index);
      if (llvm::Error e = s.tied->allReduceSum(
              p.grad.ptr(), static_cast<int64_t>(p.grad.data.size())))
        return e;
    }
    optimizer.step(done + 1);
    return llvm::Error::success();
  }
  }
  return llvm::Error::success();
}

/// `e` of action `index` as a RankError naming the rank, stage and action.
llvm::Error RankRunner::actionError(size_t index, llvm::Error e) const {
  const Impl &s = *impl;
  std::string message = llvm::toString(std::move(e));
  if (!llvm::StringRef(message).starts_with("action "))
    message =
        llvm::formatv("action {0} ({1}): {2}", index,
                      describeAction(*s.graph, s.prog->actions[index]), message)
            .str();
  return llvm::make_error<RankError>(s.rank, "stage '" + s.stage->name + "', " +
                                                 message);
}

llvm::Error RankRunner::runAction(size_t i) {
  Impl &s = *impl;
  if (i >= s.prog->actions.size())
    return llvm::make_error<RankError>(
        s.rank,
        llvm::formatv("stage '{0}' has no action {1}", s.stage->name, i).str());
  if (faultRank == s.rank && faultAction == static_cast<int64_t>(i) &&
      done == 0)
    std::raise(SIGKILL);
  setActivity("at action %zu (%s)", i,
              describeAction(*s.graph, s.prog->actions[i]).c_str());
  double begin = s.tracing ? s.now() : 0;
  s.lastWaitEnd = begin;
  if (llvm::Error e = run(i))
    return actionError(i, std::move(e));
  if (llvm::Error e = waitSends(static_cast<int64_t>(i)))
    return e;
  const sched::Action &a = s.prog->actions[i];
  if (s.tracing &&
      (sched::isCompute(a.kind) || a.kind == ActionKind::AllReduceGrads)) {
    RankEvent ev;
    ev.stage = s.prog->stage;
    ev.kind = static_cast<int32_t>(a.kind);
    ev.microbatch = a.microbatch;
    ev.rank = s.rank;
    ev.start = std::max(begin, s.lastWaitEnd);
    ev.end = s.now();
    events.push_back(ev);
  }
  return llvm::Error::success();
}

llvm::Error RankRunner::waitSends(int64_t at) {
  Impl &s = *impl;
  auto due = [&](const PostedSend &send) {
    return at < 0 || send.release == at;
  };
  int64_t last = static_cast<int64_t>(s.prog->actions.size()) - 1;
  for (PostedSend &send : s.sends) {
    if (!due(send))
      continue;
    sendFreedAt[static_cast<int64_t>(send.action)] = at < 0 ? last : at;
    for (size_t i = 0; i < send.requests.size(); ++i) {
      setActivity("waiting for the send of action %zu to rank %lld",
                  send.action, static_cast<long long>(send.destinations[i]));
      if (llvm::Error e = send.requests[i]->wait())
        return actionError(send.action, std::move(e));
    }
  }
  llvm::erase_if(s.sends, due);
  return llvm::Error::success();
}

const sched::PipelineGraph &RankRunner::graph() const {
  return model.plan().schedule->graph;
}
const std::vector<sched::Program> &RankRunner::programs() const {
  return model.plan().schedule->programs;
}
const std::string &RankRunner::scheduleKind() const {
  return model.plan().schedule->kind;
}
int64_t RankRunner::programIndex() const { return impl->program; }
sched::MemoryPlan RankRunner::memoryPlan() const {
  // Planned once, with the send releases the rank keeps (what
  // programMemoryPlan computes again from every program).
  if (!plannedMemory) {
    const Plan &plan = model.plan();
    plannedMemory = sched::planMemory(
        *impl->prog, stageSizes(plan, *impl->stage), impl->sendRelease);
  }
  return *plannedMemory;
}
int64_t RankRunner::recordedArena() const {
  const std::vector<int64_t> &recorded = model.plan().schedule->arenaBytes;
  auto i = static_cast<size_t>(impl->program);
  return i < recorded.size() ? recorded[i] : -1;
}
llvm::Error RankRunner::makeError(const llvm::Twine &message) const {
  return llvm::make_error<RankError>(impl->rank, message.str());
}
int RankRunner::rank() const { return impl->rank; }
std::string RankRunner::describe() const {
  return "'" + impl->stage->name + "'";
}

llvm::Expected<StepStats> RankRunner::step() {
  Impl &s = *impl;
  auto start = std::chrono::steady_clock::now();
  optimizer.zeroGrads();
  s.loss = 0;
  CPSplitStats cpStats;
  // Every microbatch's data first (a data loader's prefetch), so that the
  // actions, and a trace of them, hold only the work of the schedule.
  for (int64_t mb = 0; mb < model.plan().data.microbatches; ++mb) {
    MbState &m = s.mbs[mb];
    auto got = data.get(done, s.coord.d, mb);
    if (!got)
      return llvm::make_error<RankError>(
          s.rank, "reading microbatch " + std::to_string(mb) + " of step " +
                      std::to_string(done + 1) + ": " +
                      llvm::toString(got.takeError()));
    m.data = localData(std::move(*got));
    m.ctx.data = &m.data;
    m.dOut.resize(s.flow().ranges.size());
  }
  s.tracing = tracing;
  if (tracing) {
    events.clear();
    s.events = &events;
    if (llvm::Error e = comm.barrier())
      return llvm::make_error<RankError>(s.rank, llvm::toString(std::move(e)));
    s.t0 = std::chrono::steady_clock::now();
  }
  if (driver) {
    if (llvm::Error e = driver->runActions(*this))
      return std::move(e);
  } else {
    for (size_t i = 0; i < s.prog->actions.size(); ++i)
      if (llvm::Error e = runAction(i))
        return std::move(e);
  }
  // Posted sends complete before their buffers go.
  if (llvm::Error e = waitSends(-1))
    return e;
  if (checkPlan)
    for (const sched::Buffer &b : memoryPlan().buffers) {
      if (b.kind != sched::BufferKind::SendAct &&
          b.kind != sched::BufferKind::SendGrad)
        continue;
      auto it = sendFreedAt.find(b.action);
      int64_t freed = it == sendFreedAt.end() ? -1 : it->second;
      if (freed != b.last)
        return makeError(llvm::formatv(
            "stage '{0}': the buffer of send action {1} was freed at action "
            "{2} but the static memory plan frees it at action {3}",
            s.stage->name, b.action, freed, b.last));
    }
  sendFreedAt.clear();
  tracing = s.tracing = false;
  for (auto &[mb, m] : s.mbs)
    for (const StageRange &r : s.flow().ranges)
      model.chains[r.chain]->release(mb);
  for (const auto &[mb, m] : s.mbs)
    if (const BatchLayout *layout = m.data.layout.get();
        layout && !layout->cpTokens.empty())
      cpStats.add(*layout);
  s.mbs.clear();
  s.pendingAct.clear();
  s.pendingGrad.clear();

  double loss = s.lossRank ? s.loss : 0.0;
  setActivity("summing the loss after the iteration");
  if (llvm::Error e = s.world->allReduceSum(&loss, 1))
    return llvm::make_error<RankError>(
        s.rank, "summing the loss: " + llvm::toString(std::move(e)));
  ++done;
  const Plan &plan = model.plan();
  StepStats stats;
  stats.cp = cpStats;
  stats.step = done;
  stats.loss = loss;
  stats.tokens =
      plan.job.dp * plan.data.microbatches * model.sequences * model.seqLen;
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  setActivity("between iterations");
  return stats;
}

llvm::Error RankRunner::save(llvm::StringRef dir) {
  Impl &s = *impl;
  llvm::SmallString<256> partial(dir), final(dir), shard;
  llvm::sys::path::append(partial,
                          "." + checkpointName(done, true) + ".partial");
  llvm::sys::path::append(final, checkpointName(done, true));
  auto error = [&](const llvm::Twine &m) {
    return llvm::make_error<RankError>(s.rank, "checkpoint: " + m.str());
  };
  setActivity("writing the checkpoint of step %lld",
              static_cast<long long>(done));
  // Rank 0 prepares the directory; everyone writes; rank 0 renames it into
  // place only when every rank reported success.
  double ok = 1;
  if (s.rank == 0) {
    llvm::sys::fs::remove_directories(partial);
    if (std::error_code ec = llvm::sys::fs::create_directories(partial)) {
      ok = 0;
      llvm::errs() << "rank 0: cannot create '" << partial
                   << "': " << ec.message() << "\n";
    }
  }
  if (llvm::Error e = comm.barrier())
    return error(llvm::toString(std::move(e)));
  std::string why;
  if (s.coord.d == 0 && s.coord.c == 0 && !owned.empty()) {
    // TP shards are assembled into whole tensors (each rank's runs of a
    // zero tensor, summed over the TP group), written by TP rank 0: a
    // checkpoint does not depend on the parallel layout.
    std::vector<CheckpointTensor> tensors = checkpointTensors(owned, optimizer);
    std::map<std::string, const cpu::Param<float> *> byName;
    for (const NamedParam &p : owned)
      byName["model." + p.name] = p.param;
    for (const Optimizer::Slot &slot : optimizer.slots()) {
      byName["optim." + slot.name + ".exp_avg"] = slot.param;
      byName["optim." + slot.name + ".exp_avg_sq"] = slot.param;
    }
    std::vector<std::vector<float>> whole;
    whole.reserve(tensors.size());
    for (CheckpointTensor &t : tensors) {
      const cpu::Param<float> *p = byName[t.name];
      if (!p || p->shard.dim < 0 || !s.tp)
        continue;
      std::vector<int64_t> shape = cpu::fullShape(p->shard, p->value.shape);
      int64_t n = 1;
      for (int64_t d : shape)
        n *= d;
      whole.emplace_back(static_cast<size_t>(n), 0.0f);
      for (const cpu::ShardRun &r : cpu::shardRuns(p->shard, p->value.shape))
        std::copy_n(t.data.data() + r.local, r.length,
                    whole.back().data() + r.full);
      if (llvm::Error e = s.tp->allReduceSum(whole.back().data(), n))
        return error("assembling '" + t.name +
                     "' over the TP group: " + llvm::toString(std::move(e)));
      t.shape = shape;
      t.data = whole.back();
    }
    if (s.coord.t == 0) {
      shard = partial;
      llvm::sys::path::append(
          shard, llvm::formatv("rank-{0:d5}.safetensors", s.rank).str());
      if (llvm::Error e = writeCheckpointTensors(
              shard, model.plan(), tensors,
              {done, seed, modelSignature(model), data.identity()})) {
        why = llvm::toString(std::move(e));
        ok = 0;
      }
    }
  }
  double all = ok;
  if (llvm::Error e = s.world->allReduceSum(&all, 1))
    return error(llvm::toString(std::move(e)));
  if (!why.empty())
    return error(why);
  if (all != comm.worldSize())
    return error("another rank failed to write its shard; nothing was "
                 "written for step " +
                 llvm::Twine(done));
  if (s.rank == 0) {
    llvm::sys::fs::remove_directories(final);
    if (std::error_code ec = llvm::sys::fs::rename(partial, final))
      why = "renaming '" + partial.str().str() + "': " + ec.message();
  }
  if (llvm::Error e = comm.barrier())
    return error(llvm::toString(std::move(e)));
  if (!why.empty())
    return error(why);
  return llvm::Error::success();
}

llvm::Error RankRunner::load(llvm::StringRef path) {
  auto restored = readCheckpoint(path, model.plan(), owned, optimizer,
                                 modelSignature(model));
  if (!restored)
    return llvm::make_error<RankError>(impl->rank,
                                       llvm::toString(restored.takeError()));
  if (llvm::Error e = checkSameData(*restored, data.identity(), path))
    return llvm::make_error<RankError>(impl->rank,
                                       llvm::toString(std::move(e)));
  done = restored->step;
  resharded = restored->otherPlan;
  return llvm::Error::success();
}

llvm::Expected<std::vector<RankEvent>> RankRunner::gatherTrace() {
  Impl &s = *impl;
  int world = comm.worldSize();
  int64_t mine = static_cast<int64_t>(events.size()), most = 0;
  std::vector<int64_t> counts(world);
  if (llvm::Error e =
          s.world->allGatherBytes(&mine, sizeof(mine), counts.data()))
    return std::move(e);
  for (int64_t c : counts)
    most = std::max(most, c);
  std::vector<RankEvent> padded(events);
  padded.resize(most);
  std::vector<RankEvent> all(static_cast<size_t>(most) * world);
  if (most > 0)
    if (llvm::Error e = s.world->allGatherBytes(
            padded.data(), most * static_cast<int64_t>(sizeof(RankEvent)),
            all.data()))
      return std::move(e);
  std::vector<RankEvent> result;
  if (s.rank == 0)
    for (int r = 0; r < world; ++r)
      result.insert(result.end(), all.begin() + r * most,
                    all.begin() + r * most + counts[r]);
  return std::move(result);
}

MicrobatchData RankRunner::localData(MicrobatchData full) const {
  if (model.localTokens.empty())
    return full;
  // Under CP the LLM's layers read this rank's tokens of each sequence: of
  // the batch's own split when it has one (real data), else the plan's.
  const std::vector<int64_t> *tokens = &model.localTokens;
  if (full.layout && !full.layout->cpTokens.empty()) {
    auto cp = std::make_shared<cpu::ContextParallel>();
    cp->group = model.contextParallel.group;
    cp->tokens = full.layout->cpTokens;
    tokens = &cp->tokens[cp->group->rank()];
    full.cp = std::move(cp);
  }
  auto pick = [&](const std::vector<int64_t> &all) {
    std::vector<int64_t> mine;
    if (all.empty())
      return mine;
    for (int64_t b = 0; b < model.sequences; ++b)
      for (int64_t t : *tokens)
        mine.push_back(all[b * model.seqLen + t]);
    return mine;
  };
  full.tokenIds = pick(full.tokenIds);
  full.targets = pick(full.targets);
  return full;
}
