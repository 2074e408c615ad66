//===- Schedule.cpp - messages, action text and the schedule verifier
//------===//
//
// The pieces of the schedule model every consumer shares: message sizes and
// tags, how an action is described in messages, and verifySchedule(), the
// proof that a set of programs pairs every send with its receive and
// terminates (sends asynchronous, receives blocking).
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/Schedule.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <map>
#include <tuple>

using namespace mllm::sched;

char ScheduleError::ID = 0;

const char *mllm::sched::toString(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return "forward";
  case ActionKind::BackwardInput:
    return "backward_input";
  case ActionKind::BackwardWeight:
    return "backward_weight";
  case ActionKind::SendActivation:
    return "send_activation";
  case ActionKind::RecvActivation:
    return "recv_activation";
  case ActionKind::SendGrad:
    return "send_grad";
  case ActionKind::RecvGrad:
    return "recv_grad";
  case ActionKind::AllReduceGrads:
    return "all_reduce_grads";
  case ActionKind::OptimizerStep:
    return "optimizer_step";
  }
  return "?";
}

namespace {
const std::pair<ActionKind, const char *> mnemonics[] = {
    {ActionKind::Forward, "forward"},
    {ActionKind::BackwardInput, "backward_input"},
    {ActionKind::BackwardWeight, "backward_weight"},
    {ActionKind::SendActivation, "send_act"},
    {ActionKind::RecvActivation, "recv_act"},
    {ActionKind::SendGrad, "send_grad"},
    {ActionKind::RecvGrad, "recv_grad"},
    {ActionKind::AllReduceGrads, "all_reduce_grads"},
    {ActionKind::OptimizerStep, "optimizer_step"}};
} // namespace

const char *mllm::sched::actionMnemonic(ActionKind kind) {
  for (auto [k, name] : mnemonics)
    if (k == kind)
      return name;
  return "?";
}

std::optional<ActionKind> mllm::sched::parseActionMnemonic(llvm::StringRef s) {
  for (auto [k, name] : mnemonics)
    if (s == name)
      return k;
  return std::nullopt;
}

int64_t TensorShape::bytes() const {
  int64_t n = elementBytes;
  for (int64_t d : dims)
    n *= d;
  return n;
}

std::string mllm::sched::partStageName(llvm::StringRef part, int64_t index) {
  return (part + "_s" + llvm::Twine(index)).str();
}

std::optional<int64_t> mllm::sched::partStageIndex(llvm::StringRef name) {
  size_t at = name.rfind("_s");
  if (at == llvm::StringRef::npos)
    return std::nullopt;
  llvm::StringRef digits = name.drop_front(at + 2);
  if (digits.empty() || !llvm::all_of(digits, llvm::isDigit))
    return std::nullopt;
  int64_t index;
  if (digits.getAsInteger(10, index))
    return std::nullopt;
  return index;
}

int64_t mllm::sched::messageBytes(const MessageShape &shape) {
  int64_t n = 0;
  for (const TensorShape &t : shape)
    n += t.bytes();
  return n;
}

std::string mllm::sched::formatShape(const MessageShape &shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleave(
      shape, os,
      [&](const TensorShape &t) {
        os << "[";
        llvm::interleaveComma(t.dims, os);
        os << "] x " << t.elementType;
      },
      " + ");
  return text;
}

MessageShape::MessageShape(std::vector<TensorShape> tensors) {
  if (!tensors.empty())
    list = std::make_shared<const std::vector<TensorShape>>(std::move(tensors));
}

const std::vector<TensorShape> &MessageShape::tensors() const {
  static const std::vector<TensorShape> none;
  return list ? *list : none;
}

void MessageShape::push_back(TensorShape tensor) {
  std::vector<TensorShape> copy = tensors();
  copy.push_back(std::move(tensor));
  list = std::make_shared<const std::vector<TensorShape>>(std::move(copy));
}

MessageShape mllm::sched::opaqueShape(int64_t bytes) {
  TensorShape t;
  t.dims = {bytes};
  t.elementType = "i8";
  t.elementBytes = 1;
  return {t};
}

ComputeCollectives mllm::sched::computeCollectives(const StageInfo &stage,
                                                   const Program &program,
                                                   size_t index) {
  const Action &action = program.actions[index];
  bool tp = stage.tp > 1, cp = stage.cp > 1;
  ComputeCollectives c;
  switch (action.kind) {
  case ActionKind::Forward:
    c.tpAllReduce = tp;
    c.cpAllGather = cp;
    break;
  case ActionKind::BackwardInput:
    c.tpAllReduce = tp;
    c.cpAllGather = c.cpReduceScatter = cp;
    break;
  case ActionKind::BackwardWeight: {
    bool inputBackward = llvm::any_of(program.actions, [&](const Action &a) {
      return a.kind == ActionKind::BackwardInput &&
             a.microbatch == action.microbatch;
    });
    c.cpAllGather = c.cpReduceScatter = cp && !inputBackward;
    break;
  }
  default:
    break;
  }
  return c;
}

std::vector<ComputeCollectives>
mllm::sched::computeCollectives(const StageInfo &stage,
                                const Program &program) {
  // computeCollectives(stage, program, i) for every i, in one pass: the
  // per-action form scans the program for a weight backward's input
  // backward, which is quadratic over a whole program.
  std::vector<char> inputBackward;
  for (const Action &a : program.actions)
    if (a.kind == ActionKind::BackwardInput && a.microbatch >= 0) {
      if (static_cast<size_t>(a.microbatch) >= inputBackward.size())
        inputBackward.resize(a.microbatch + 1, 0);
      inputBackward[a.microbatch] = 1;
    }
  bool tp = stage.tp > 1, cp = stage.cp > 1;
  std::vector<ComputeCollectives> out(program.actions.size());
  for (size_t i = 0; i < program.actions.size(); ++i) {
    const Action &a = program.actions[i];
    ComputeCollectives &c = out[i];
    if (a.kind == ActionKind::Forward) {
      c.tpAllReduce = tp;
      c.cpAllGather = cp;
    } else if (a.kind == ActionKind::BackwardInput) {
      c.tpAllReduce = tp;
      c.cpAllGather = c.cpReduceScatter = cp;
    } else if (a.kind == ActionKind::BackwardWeight) {
      bool input = a.microbatch >= 0 &&
                   static_cast<size_t>(a.microbatch) < inputBackward.size() &&
                   inputBackward[a.microbatch];
      c.cpAllGather = c.cpReduceScatter = cp && !input;
    }
  }
  return out;
}

int64_t mllm::sched::messageTag(ActionKind kind, int32_t microbatch) {
  bool grad = kind == ActionKind::SendGrad || kind == ActionKind::RecvGrad;
  return 2 * static_cast<int64_t>(microbatch) + (grad ? 1 : 0);
}

namespace {

bool validStage(const PipelineGraph &g, int s) {
  return s >= 0 && static_cast<size_t>(s) < g.stages.size();
}

} // namespace

//===----------------------------------------------------------------------===//
// Verification
//===----------------------------------------------------------------------===//

namespace {
std::string stageName(const PipelineGraph &g, int s) {
  if (validStage(g, s) && !g.stages[s].name.empty())
    return "'" + g.stages[s].name + "'";
  return "stage " + std::to_string(s);
}
} // namespace

std::string mllm::sched::describeAction(const PipelineGraph &graph,
                                        const Action &a) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << toString(a.kind);
  if (perMicrobatch(a.kind))
    os << " microbatch " << a.microbatch;
  if (isSend(a.kind))
    os << " to " << stageName(graph, a.peer);
  else if (isRecv(a.kind))
    os << " from " << stageName(graph, a.peer);
  if (isComm(a.kind) || a.kind == ActionKind::AllReduceGrads)
    os << ", " << a.bytes << " bytes";
  return text;
}

llvm::Error mllm::sched::verifySchedule(const PipelineGraph &graph,
                                        const std::vector<Program> &programs) {
  size_t n = graph.stages.size();
  int64_t m = graph.microbatches;
  auto fail = [](const std::string &msg, int stage = -1, int64_t action = -1) {
    return llvm::make_error<ScheduleError>(msg, stage, action);
  };
  auto name = [&](int s) { return stageName(graph, s); };
  auto describe = [&](const Action &a) { return describeAction(graph, a); };
  auto where = [&](int s, size_t i) {
    return "stage " + name(s) + ": action " + std::to_string(i) + " (" +
           describe(programs[s].actions[i]) + ") ";
  };
  if (programs.size() != n)
    return fail("the schedule has " + std::to_string(programs.size()) +
                " programs for " + std::to_string(n) + " stages");

  // 1. Ranges.
  for (size_t si = 0; si < n; ++si) {
    int s = static_cast<int>(si);
    const Program &prog = programs[s];
    if (prog.stage != s)
      return fail("program " + std::to_string(si) + " is labelled stage " +
                  std::to_string(prog.stage));
    for (size_t i = 0; i < prog.actions.size(); ++i) {
      const Action &a = prog.actions[i];
      if (perMicrobatch(a.kind) && (a.microbatch < 0 || a.microbatch >= m))
        return fail(where(s, i) + "is outside microbatches [0, " +
                        std::to_string(m) + ")",
                    s, static_cast<int64_t>(i));
      if (isComm(a.kind) && (!validStage(graph, a.peer) || a.peer == s))
        return fail(where(s, i) + "has no valid peer", s,
                    static_cast<int64_t>(i));
      if (!isComm(a.kind))
        continue;
      // Activations go to later stages, gradients to earlier ones (the
      // sched ops' verifiers check the same on IR).
      bool towardsLater = isSend(a.kind) != isGradMessage(a.kind);
      if ((a.peer > s) != towardsLater)
        return fail(where(s, i) + "names " + name(a.peer) +
                        (a.peer > s ? ", a later" : ", an earlier") +
                        " stage; activations go to later stages and "
                        "gradients to earlier ones",
                    s, static_cast<int64_t>(i));
      if (!a.shape.empty() && messageBytes(a.shape) != a.bytes)
        return fail(where(s, i) + "has a shape of " +
                        std::to_string(messageBytes(a.shape)) +
                        " bytes but transfers " + std::to_string(a.bytes) +
                        " bytes",
                    s, static_cast<int64_t>(i));
    }
  }

  // 2. Matching: per link (sender, receiver, activation or gradient), the
  // sends and the receives list the same microbatches and sizes in the same
  // order.
  using Link = std::tuple<int, int, bool>;
  std::map<Link,
           std::pair<std::vector<const Action *>, std::vector<const Action *>>>
      links;
  for (size_t s = 0; s < n; ++s)
    for (const Action &a : programs[s].actions) {
      if (isSend(a.kind))
        links[{static_cast<int>(s), a.peer, isGradMessage(a.kind)}]
            .first.push_back(&a);
      else if (isRecv(a.kind))
        links[{a.peer, static_cast<int>(s), isGradMessage(a.kind)}]
            .second.push_back(&a);
    }
  for (auto &[link, lists] : links) {
    auto [from, to, grad] = link;
    const std::vector<const Action *> &out = lists.first, &in = lists.second;
    std::string what = grad ? "gradient" : "activation";
    size_t common = std::min(out.size(), in.size()), i = 0;
    while (i < common && out[i]->microbatch == in[i]->microbatch)
      ++i;
    std::string counts = " (" + std::to_string(out.size()) + " sends, " +
                         std::to_string(in.size()) + " receives)";
    // One message per microbatch and tag (matched in order below, the
    // receives are then unique too).
    std::vector<char> sent(m, 0);
    std::vector<int64_t> tags;
    tags.reserve(out.size());
    for (const Action *a : out) {
      if (sent[a->microbatch]++)
        return fail("stage " + name(from) + " sends the " + what +
                        " of microbatch " + std::to_string(a->microbatch) +
                        " to " + name(to) + " twice",
                    from);
      tags.push_back(a->tag);
    }
    llvm::sort(tags);
    if (auto twice = std::adjacent_find(tags.begin(), tags.end());
        twice != tags.end())
      return fail("stage " + name(from) + " sends two " + what + "s to " +
                      name(to) + " with tag " + std::to_string(*twice) +
                      "; a tag names one message between a pair of stages",
                  from);
    if (out.size() > in.size())
      return fail("stage " + name(from) + " sends the " + what +
                      " of microbatch " + std::to_string(out[i]->microbatch) +
                      " to " + name(to) + ", which never receives it" + counts,
                  from);
    if (in.size() > out.size())
      return fail("stage " + name(to) + " waits for the " + what +
                      " of microbatch " + std::to_string(in[i]->microbatch) +
                      " from " + name(from) + ", which never sends it" + counts,
                  to);
    if (i < common)
      return fail("stage " + name(to) + " receives the " + what +
                      " of microbatch " + std::to_string(in[i]->microbatch) +
                      " as message " + std::to_string(i) + " from " +
                      name(from) + ", which sends microbatch " +
                      std::to_string(out[i]->microbatch) + " there (the " +
                      what + "s are received out of order)",
                  to);
    for (i = 0; i < common; ++i)
      if (out[i]->bytes != in[i]->bytes)
        return fail(
            "stage " + name(to) + " receives " + std::to_string(in[i]->bytes) +
                " bytes for the " + what + " of microbatch " +
                std::to_string(in[i]->microbatch) + " from " + name(from) +
                ", which sends " + std::to_string(out[i]->bytes) +
                " bytes (size mismatch)",
            to);
    for (i = 0; i < common; ++i)
      if (out[i]->tag != in[i]->tag)
        return fail("stage " + name(to) + " receives the " + what +
                        " of microbatch " + std::to_string(in[i]->microbatch) +
                        " from " + name(from) + " with tag " +
                        std::to_string(in[i]->tag) +
                        ", which sends it with tag " +
                        std::to_string(out[i]->tag) + " (tag mismatch)",
                    to);
    for (i = 0; i < common; ++i)
      if (out[i]->shape != in[i]->shape)
        return fail("stage " + name(to) + " receives the " + what +
                        " of microbatch " + std::to_string(in[i]->microbatch) +
                        " from " + name(from) + " as " +
                        formatShape(in[i]->shape) + ", which sends it as " +
                        formatShape(out[i]->shape) + " (shape mismatch)",
                    to);
  }

  // 3. Each program's dependency order and in-flight microbatches.
  for (size_t si = 0; si < n; ++si) {
    int s = static_cast<int>(si);
    const Program &prog = programs[s];
    const StageInfo &info = graph.stages[s];
    std::string who = "stage " + name(s) + ": ";
    std::vector<int64_t> fwd(m, -1), bd(m, -1), bw(m, -1), lastBwd(m, -1);
    std::vector<char> gradIn(m, 0);
    int64_t allReduce = -1, optimizer = -1, lastBackward = -1;
    for (size_t i = 0; i < prog.actions.size(); ++i) {
      const Action &a = prog.actions[i];
      int32_t j = a.microbatch;
      auto pos = static_cast<int64_t>(i);
      switch (a.kind) {
      case ActionKind::Forward:
        if (fwd[j] >= 0)
          return fail(where(s, i) + "repeats the forward of microbatch " +
                          std::to_string(j),
                      s, static_cast<int64_t>(i));
        fwd[j] = pos;
        break;
      case ActionKind::BackwardInput:
      case ActionKind::BackwardWeight: {
        std::vector<int64_t> &seen =
            a.kind == ActionKind::BackwardInput ? bd : bw;
        if (fwd[j] < 0)
          return fail(where(s, i) + "comes before the forward of microbatch " +
                          std::to_string(j),
                      s, static_cast<int64_t>(i));
        if (seen[j] >= 0)
          return fail(where(s, i) + "repeats a backward of microbatch " +
                          std::to_string(j),
                      s, static_cast<int64_t>(i));
        seen[j] = lastBwd[j] = lastBackward = pos;
        break;
      }
      case ActionKind::RecvActivation:
        if (fwd[j] >= 0)
          return fail(where(s, i) + "comes after the forward that needs it", s,
                      static_cast<int64_t>(i));
        break;
      case ActionKind::SendActivation:
        if (fwd[j] < 0)
          return fail(where(s, i) + "comes before the forward that computes it",
                      s, static_cast<int64_t>(i));
        break;
      case ActionKind::RecvGrad:
        if (bd[j] >= 0 || bw[j] >= 0)
          return fail(where(s, i) + "comes after the backward that needs it", s,
                      static_cast<int64_t>(i));
        gradIn[j] = 1;
        break;
      case ActionKind::SendGrad:
        if (bd[j] < 0)
          return fail(where(s, i) +
                          "comes before the backward_input that computes it",
                      s, static_cast<int64_t>(i));
        break;
      case ActionKind::AllReduceGrads:
        if (allReduce >= 0)
          return fail(where(s, i) + "repeats the gradient all-reduce", s,
                      static_cast<int64_t>(i));
        allReduce = pos;
        break;
      case ActionKind::OptimizerStep:
        if (optimizer >= 0)
          return fail(where(s, i) + "repeats the optimizer step", s,
                      static_cast<int64_t>(i));
        optimizer = pos;
        if (allReduce < 0 && info.dp * info.cp > 1 && lastBackward >= 0 &&
            info.trainableParams > 0)
          return fail(where(s, i) +
                          "comes without a gradient all-reduce over dp x cp",
                      s, static_cast<int64_t>(i));
        break;
      }
    }
    for (int64_t j = 0; j < m; ++j) {
      if (fwd[j] < 0)
        return fail(who + "never runs the forward of microbatch " +
                        std::to_string(j),
                    s);
      if (gradIn[j] && lastBwd[j] < 0)
        return fail(who + "receives the gradient of microbatch " +
                        std::to_string(j) + " but runs no backward for it",
                    s);
      // What the stage's layers need (the frozen analysis): a program
      // without it trains another model, with no error at run time.
      if (info.needsWeightGrad && bw[j] < 0)
        return fail(who +
                        "computes weight gradients (needs_weight_grad) "
                        "but runs no backward_weight for microbatch " +
                        std::to_string(j),
                    s);
      if (info.needsInputGrad && bd[j] < 0)
        return fail(who +
                        "passes input gradients (needs_input_grad) but "
                        "runs no backward_input for microbatch " +
                        std::to_string(j),
                    s);
    }
    if (info.needsWeightGrad && info.trainableParams > 0 && m > 0 &&
        optimizer < 0)
      return fail(who + "trains " + std::to_string(info.trainableParams) +
                      " parameters but never steps the optimizer",
                  s);
    if ((allReduce >= 0 || optimizer >= 0) &&
        std::none_of(bw.begin(), bw.end(), [](int64_t p) { return p >= 0; }))
      return fail(who +
                      (allReduce >= 0 ? "all-reduces gradients"
                                      : "steps the optimizer") +
                      " but computes no weight gradients",
                  s);
    if (allReduce >= 0 && allReduce < lastBackward)
      return fail(who + "all-reduces gradients before its last backward", s);
    if (optimizer >= 0 && (optimizer < lastBackward || optimizer < allReduce))
      return fail(who + "steps the optimizer before its gradients are ready",
                  s);
    // Microbatches held: from the forward to the last backward (one without
    // a backward is held during its forward only).
    if (prog.maxInFlight > 0) {
      std::vector<int64_t> delta(prog.actions.size() + 1, 0);
      for (int64_t j = 0; j < m; ++j) {
        ++delta[fwd[j]];
        --delta[(lastBwd[j] >= 0 ? lastBwd[j] : fwd[j]) + 1];
      }
      int64_t held = 0;
      for (size_t i = 0; i < prog.actions.size(); ++i) {
        held += delta[i];
        if (held > prog.maxInFlight)
          return fail(who + "holds " + std::to_string(held) +
                          " microbatches at action " + std::to_string(i) +
                          " (" + describe(prog.actions[i]) +
                          ") but its cap is " +
                          std::to_string(prog.maxInFlight),
                      s, static_cast<int64_t>(i));
      }
    }
  }

  // 4. Execution with asynchronous sends: a send is posted and the stage
  // goes on; a receive waits until its link has carried a message it has
  // not taken yet (step 2 proved that it is the matching one); computes
  // never wait.
  std::map<Link, std::pair<size_t, size_t>> posted; // Sends, receives.
  auto linkOf = [](int s, const Action &a) -> Link {
    return isSend(a.kind) ? Link{s, a.peer, isGradMessage(a.kind)}
                          : Link{a.peer, s, isGradMessage(a.kind)};
  };
  std::vector<size_t> pc(n, 0);
  auto done = [&](size_t s) { return pc[s] >= programs[s].actions.size(); };
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t s = 0; s < n; ++s) {
      const std::vector<Action> &acts = programs[s].actions;
      while (!done(s)) {
        const Action &a = acts[pc[s]];
        if (isSend(a.kind)) {
          ++posted[linkOf(static_cast<int>(s), a)].first;
        } else if (isRecv(a.kind)) {
          auto &[sent, received] = posted[linkOf(static_cast<int>(s), a)];
          if (received == sent)
            break;
          ++received;
        }
        ++pc[s];
        progress = true;
      }
    }
  }
  size_t first = 0;
  while (first < n && done(first))
    ++first;
  if (first == n)
    return llvm::Error::success();
  // Every stuck stage waits at a receive whose sender is stuck too (a
  // finished sender has posted all its sends, and step 2 matched them).
  // Follow who waits for whom from the first stuck stage to the cycle of
  // blocked receives, and report it.
  std::vector<char> seen(n, 0);
  size_t s = first;
  while (!seen[s]) {
    seen[s] = 1;
    size_t q = static_cast<size_t>(programs[s].actions[pc[s]].peer);
    if (done(q))
      break;
    s = q;
  }
  const Action &a = programs[s].actions[pc[s]];
  int q = a.peer;
  std::string peerState =
      done(q) ? name(q) + " has finished"
              : name(q) + " waits at action " + std::to_string(pc[q]) + " (" +
                    describe(programs[q].actions[pc[q]]) + ")";
  return fail("deadlock: stage " + name(static_cast<int>(s)) +
                  " is stuck at action " + std::to_string(pc[s]) + " (" +
                  describe(a) + ") waiting for " + name(q) +
                  ", which has not " + "sent it yet; " + peerState +
                  " (a cycle of receives that wait for each other)",
              static_cast<int>(s), static_cast<int64_t>(pc[s]));
}

//===----------------------------------------------------------------------===//
// Repeated runs of actions
//===----------------------------------------------------------------------===//

bool mllm::sched::shiftedEqual(const Action &a, const ComputeCollectives &ca,
                               const Action &b, const ComputeCollectives &cb,
                               int64_t k) {
  if (a.kind != b.kind || !perMicrobatch(a.kind) || a.microbatch < 0 ||
      b.microbatch != a.microbatch + k || a.peer != b.peer ||
      a.bytes != b.bytes || a.shape != b.shape ||
      ca.tpAllReduce != cb.tpAllReduce || ca.cpAllGather != cb.cpAllGather ||
      ca.cpReduceScatter != cb.cpReduceScatter)
    return false;
  return a.tag < 0 ? b.tag == a.tag : b.tag == a.tag + 2 * k;
}

std::vector<ActionRun> mllm::sched::findActionRuns(
    const std::vector<Action> &actions,
    const std::vector<ComputeCollectives> &collectives) {
  std::vector<ActionRun> runs;
  size_t n = actions.size();
  auto equal = [&](size_t i, size_t j, int64_t k) {
    return shiftedEqual(actions[i], collectives[i], actions[j], collectives[j],
                        k);
  };
  for (size_t i = 0; i < n;) {
    ActionRun best{i, 1, 1};
    for (size_t length = 1; length <= kMaxActionRunLength && i + length < n;
         ++length) {
      if (!equal(i, i + length, 1)) // The block cannot repeat at all.
        continue;
      // Whole repetitions of actions[i, i + length).
      int64_t times = 1;
      for (;; ++times) {
        size_t start = i + static_cast<size_t>(times) * length;
        if (start + length > n)
          break;
        bool same = true;
        for (size_t j = 0; j < length && same; ++j)
          same = equal(i + j, start + j, times);
        if (!same)
          break;
      }
      if (times >= kMinActionRepeat &&
          static_cast<size_t>(times) * length >
              static_cast<size_t>(best.times) * best.length)
        best = {i, length, times};
    }
    runs.push_back(best);
    i += best.length * static_cast<size_t>(best.times);
  }
  return runs;
}
