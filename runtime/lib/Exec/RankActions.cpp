//===- RankActions.cpp - a rank's program, action by action ---------------===//
#include "RankImpl.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <csignal>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;
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

/// A cut of the LLM carries `localTokens` rows per sequence.
static std::vector<int64_t> shareDims(const Model &model, const FlowKey &key,
                                      const sched::TensorShape &planned,
                                      int64_t localTokens) {
  bool llmCut = key.chain == static_cast<int64_t>(model.chains.size()) - 1;
  if (!llmCut || planned.dims.size() != 2)
    return planned.dims;
  return {model.sequences * localTokens, planned.dims[1]};
}

std::vector<int64_t> exec::messageTensorDims(const Model &model,
                                             const FlowKey &key,
                                             const sched::TensorShape &planned,
                                             const MicrobatchData &data) {
  // A batch with its own CP split (BatchSplit.h), or generation's new
  // tokens (KeyCache.h), gives this rank its share.
  if (data.cp)
    return shareDims(
        model, key, planned,
        static_cast<int64_t>(data.cp->tokens[data.cp->group->rank()].size()));
  return messageTensorDims(model, key, planned,
                           static_cast<int64_t>(model.localTokens.size()));
}

std::vector<int64_t> exec::messageTensorDims(const Model &model,
                                             const FlowKey &key,
                                             const sched::TensorShape &planned,
                                             int64_t localTokens) {
  if (model.localTokens.empty())
    return planned.dims;
  return shareDims(model, key, planned, localTokens);
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

/// The dims of each tensor of action `a`'s message (one copy of it).
static std::vector<std::vector<int64_t>>
messageDims(const Model &model, const RankRunner::Impl &s,
            const sched::Action &a, const std::vector<FlowKey> &keys,
            const MicrobatchData &data) {
  std::vector<std::vector<int64_t>> shapes;
  for (size_t k = 0; k < a.shape.size(); ++k)
    shapes.push_back(messageTensorDims(model, keys[k], a.shape[k], data));
  return shapes;
}

static int64_t numel(llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<int64_t> exec::messageFloats(const Model &model,
                                         const RankRunner::Impl &s) {
  std::vector<int64_t> floats(s.prog->actions.size(), 0);
  for (size_t i = 0; i < floats.size(); ++i) {
    const sched::Action &a = s.prog->actions[i];
    if (!sched::isComm(a.kind))
      continue;
    auto m = s.mbs.find(a.microbatch);
    if (m == s.mbs.end())
      continue;
    for (const std::vector<int64_t> &shape :
         messageDims(model, s, a, messageKeys(model, s, a), m->second.data))
      floats[i] += numel(shape);
    if (sched::isRecv(a.kind)) {
      floats[i] *=
          static_cast<int64_t>(s.peersOf(s.info(a.peer), a.kind).size());
    }
  }
  return floats;
}

std::vector<int64_t> exec::messagePeers(const sched::StageInfo &stage,
                                        const RankLayout::Coord &coord,
                                        const sched::StageInfo &peer,
                                        ActionKind kind) {
  std::vector<int64_t> r;
  RankLayout l = peer.rankLayout();
  switch (kind) {
  case ActionKind::SendActivation: // every receiver pairing with this rank
    for (int64_t c = 0; c < peer.cp; ++c)
      for (int64_t t = 0; t < peer.tp; ++t)
        if (c % stage.cp == coord.c && t % stage.tp == coord.t)
          r.push_back(l.rank(coord.d, c, t));
    break;
  case ActionKind::RecvActivation:
    r.push_back(l.rank(coord.d, coord.c % peer.cp, coord.t % peer.tp));
    break;
  case ActionKind::SendGrad: // the senders whose activation this rank got
    for (int64_t c = 0; c < peer.cp; ++c)
      for (int64_t t = 0; t < peer.tp; ++t)
        if (c == coord.c % peer.cp && t % stage.tp == coord.t)
          r.push_back(l.rank(coord.d, c, t));
    break;
  case ActionKind::RecvGrad:
    for (int64_t c = 0; c < peer.cp; ++c)
      if (c % stage.cp == coord.c)
        r.push_back(l.rank(coord.d, c, coord.t % peer.tp));
    break;
  default:
    break;
  }
  return r;
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
      for (size_t i = 0; i < p.sources.size(); ++i) {
        const float *src = p.buffer + static_cast<int64_t>(i) * p.floats;
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
      if (llvm::Error e = s.messages.release(static_cast<int64_t>(p.action),
                                             static_cast<int64_t>(index)))
        return e;
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
      FlowKey outKey{static_cast<int64_t>(r.chain),
                     static_cast<int64_t>(r.last)};
      std::map<FlowKey, Activation> *kept =
          r.chain == llm ? nullptr : m.encoderOutputs;
      const Activation *reused = nullptr;
      if (kept)
        if (auto it = kept->find(outKey); it != kept->end())
          reused = &it->second;
      if (reused) {
        out = *reused; // The sample's media did not change.
      } else {
        chain.forward(mb, m.ctx, r.first, r.last, in, out);
        if (!m.ctx.commError.empty())
          return fail(m.ctx.commError);
        if (kept) {
          (*kept)[outKey] = out;
          ++s.generationWork.encoderRuns;
        }
      }
      if (r.chain == llm && r.last == chain.size()) {
        s.loss += m.ctx.loss;
        continue;
      }
      m.shapes[outKey] = out.shape;
      m.held[outKey] = std::move(out);
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
    std::vector<std::vector<int64_t>> wants =
        messageDims(model, s, a, keys, m.data);
    for (const std::vector<int64_t> &want : wants)
      send.floats += numel(want);
    auto buffer = s.messages.take(static_cast<int64_t>(index),
                                  static_cast<int64_t>(index), send.floats);
    if (!buffer)
      return buffer.takeError();
    send.buffer = *buffer;
    float *dst = send.buffer;
    for (size_t k = 0; k < keys.size(); ++k) {
      const std::vector<int64_t> &want = wants[k];
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
      dst = std::copy(t->data.begin(), t->data.end(), dst);
    }
    // The message holds the tensors from now on.
    for (const FlowKey &k : keys) {
      if (grad) {
        m.gradOut.erase(k);
        continue;
      }
      if (llvm::is_contained(m.received, k))
        m.passed.insert(k);
      m.held.erase(k);
    }
    const sched::StageInfo &peer = s.info(a.peer);
    send.destinations = s.peersOf(peer, a.kind);
    for (int64_t r : send.destinations) {
      auto req = comm.isend(send.buffer,
                            send.floats * static_cast<int64_t>(sizeof(float)),
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
    p.shapes = messageDims(model, s, a, p.keys, state().data);
    for (const std::vector<int64_t> &shape : p.shapes)
      p.floats += numel(shape);
    const sched::StageInfo &peer = s.info(a.peer);
    p.sources = s.peersOf(peer, a.kind);
    auto buffer = s.messages.take(
        static_cast<int64_t>(index), static_cast<int64_t>(index),
        p.floats * static_cast<int64_t>(p.sources.size()));
    if (!buffer)
      return buffer.takeError();
    p.buffer = *buffer;
    for (size_t i = 0; i < p.sources.size(); ++i) {
      auto req = comm.irecv(p.buffer + static_cast<int64_t>(i) * p.floats,
                            p.floats * static_cast<int64_t>(sizeof(float)),
                            static_cast<int>(p.sources[i]), a.tag);
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
  // The microbatch's received gradients end with its last backward.
  if (sched::isBackward(a.kind)) {
    auto last = s.lastBackward.find(a.microbatch);
    if (last != s.lastBackward.end() && last->second == static_cast<int64_t>(i))
      if (auto m = s.mbs.find(a.microbatch); m != s.mbs.end()) {
        m->second.grad.clear();
        for (std::optional<Activation> &d : m->second.dOut)
          d.reset();
      }
  }
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
    for (size_t i = 0; i < send.requests.size(); ++i) {
      setActivity("waiting for the send of action %zu to rank %lld",
                  send.action, static_cast<long long>(send.destinations[i]));
      if (llvm::Error e = send.requests[i]->wait())
        return actionError(send.action, std::move(e));
    }
    if (llvm::Error e = s.messages.release(static_cast<int64_t>(send.action),
                                           at < 0 ? last : at))
      return actionError(send.action, std::move(e));
  }
  llvm::erase_if(s.sends, due);
  return llvm::Error::success();
}
