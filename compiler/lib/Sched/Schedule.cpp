//===- Schedule.cpp - per-stage pipeline programs -------------------------===//
//
// The schedule rules.
//
// Compute order. Every stage runs one forward (F) per microbatch and, if it
// has a backward, one backward per microbatch: BackwardInput (Bd) when it
// computes input gradients, then BackwardWeight (Bw) when it computes weight
// gradients.
//  - MultimodalOneFOneB: 1F1B per stage. Warm-up w = min(depth, M) forwards,
//    depth = stages to the loss along the longest path (stageDepths), then
//    F(w+i), B(i) for i < M - w, then the remaining backwards. Frozen-aware:
//    a stage runs Bd iff it needs input gradients or sends a gradient to a
//    predecessor, Bw iff it needs weight gradients; a stage with neither runs
//    only its forwards (no warm-up, 1 microbatch in flight). Memory-aware:
//    with memoryCapacity > 0, maxInFlight = min(w + 1, floor((capacity -
//    static) / activations per microbatch)), at least 1, and w = maxInFlight
//    - 1. A stage cannot run more forwards ahead of its first backward than
//    a predecessor it sends gradients to (that predecessor would wait for the
//    gradient while this stage waits for its activation), so the reduced
//    warm-up carries downstream: w(t) = min(w(t), w(p)) over those
//    predecessors p, in topological order.
//  - LinearOneFOneB (Megatron-like): the stages as one chain in index order;
//    the activation on chain link i -> i+1 carries everything the graph sends
//    across that cut (a parallel encoder's output passes through the later
//    encoders' stages). Every stage runs Bd and Bw and sends its gradient
//    after both (one fused backward, as Megatron does). 1F1B with warm-up
//    min(P - i - 1, M); no memory cap.
//  - GPipe: frozen-aware like MultimodalOneFOneB, all forwards then all
//    backwards (in microbatch order); no memory cap (maxInFlight = M).
//  Frozen-aware kinds send the input gradient right after Bd, before Bw, so
//  the upstream stage does not wait for the weight gradients.
//  After its last backward a stage with trainable parameters all-reduces its
//  gradients (if dp x cp > 1) and steps its optimizer.
//
// Communication order. A stage receives an activation from every
// predecessor (in prev order) right before a forward and sends its output
// to every successor right after it; gradients go the other way, only on
// edges whose predecessor has a backward (gradToPrev): received right
// before the first backward action of the microbatch, sent right after the
// action that produces them. Sends are asynchronous (isend, as NCCL/MPI
// runtimes post them): a send never blocks its stage; a receive blocks
// until the matching send has been posted. So the steady state of a stage
// with warm-up w is the textbook one:
//   recv_act(j+w), F(j+w), send_act(j+w), recv_grad(j), Bd(j),
//   send_grad(j), Bw(j)
// and a forward never waits for a downstream backward.
//
// Messages. Every send/recv carries the tag messageTag(kind, microbatch)
// (2 x microbatch, + 1 for gradients) and the shape of its tensors: the
// sender's outputShape (gradients: gradientShape), for a cut of the linear
// baseline the shapes of every edge crossing it, in stage order. An edge
// whose tensors are unknown (or do not add up to its bytes) carries
// [bytes] x i8.
//
// Deadlock freedom. Only receives block, so a stuck run ends in a cycle of
// stages each waiting at a receive for the next (a finished stage has
// posted all its sends). The graph is an in-tree (every stage has at most
// one successor), so the cycle walks some edge p -> t back and forth: p
// waits at recv_grad(i) from t while t waits at recv_act(j) from p. p has
// run its forwards up to min(i + w(p), M - 1) and sent them, so j >= i +
// w(p) + 1; t has not run the backward of i, which precedes F(i + w(t) + 1)
// in t's program, so j <= i + w(t). Hence w(t) > w(p), but the warm-up
// never grows along a gradient edge (depth decreases towards the loss, the
// memory caps are carried downstream, GPipe and forward-only stages run all
// forwards first). verifySchedule checks this independently by running the
// programs.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/Schedule.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <tuple>

using namespace mllm::sched;

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

int64_t TensorShape::bytes() const {
  int64_t n = elementBytes;
  for (int64_t d : dims)
    n *= d;
  return n;
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

MessageShape mllm::sched::opaqueShape(int64_t bytes) {
  TensorShape t;
  t.dims = {bytes};
  t.elementType = "i8";
  t.elementBytes = 1;
  return {t};
}

int64_t mllm::sched::messageTag(ActionKind kind, int32_t microbatch) {
  bool grad = kind == ActionKind::SendGrad || kind == ActionKind::RecvGrad;
  return 2 * static_cast<int64_t>(microbatch) + (grad ? 1 : 0);
}

const char *mllm::sched::toString(ScheduleKind kind) {
  switch (kind) {
  case ScheduleKind::MultimodalOneFOneB:
    return "multimodal_1f1b";
  case ScheduleKind::LinearOneFOneB:
    return "linear_1f1b";
  case ScheduleKind::GPipe:
    return "gpipe";
  }
  return "?";
}

namespace {

bool isSend(ActionKind kind) {
  return kind == ActionKind::SendActivation || kind == ActionKind::SendGrad;
}
bool isRecv(ActionKind kind) {
  return kind == ActionKind::RecvActivation || kind == ActionKind::RecvGrad;
}
bool isComm(ActionKind kind) { return isSend(kind) || isRecv(kind); }
bool isGradMessage(ActionKind kind) {
  return kind == ActionKind::SendGrad || kind == ActionKind::RecvGrad;
}
bool perMicrobatch(ActionKind kind) {
  return kind != ActionKind::AllReduceGrads &&
         kind != ActionKind::OptimizerStep;
}
/// One stage as a schedule kind sees it.
struct Node {
  std::vector<int> prev, next;
  std::vector<int64_t> actBytes;  ///< Per prev: activation received.
  std::vector<int64_t> gradBytes; ///< Per prev: gradient sent back.
  std::vector<MessageShape> actShape, gradShape; ///< Per prev.
  std::vector<bool> gradToPrev;                  ///< Per prev.
  std::vector<int> gradFrom; ///< Successors sending gradients here.
  bool bi = false, bw = false;
  bool sendAfterInput = true; ///< Else after the whole backward.
  bool hasBackward() const { return bi || bw; }
};

bool validStage(const PipelineGraph &g, int s) {
  return s >= 0 && static_cast<size_t>(s) < g.stages.size();
}

bool hasBackwardFlags(const StageInfo &s) {
  return s.needsInputGrad || s.needsWeightGrad;
}

/// `shape` if it is known and holds `bytes`, else [bytes] x i8.
MessageShape shapeOf(const MessageShape &shape, int64_t bytes) {
  if (!shape.empty() && messageBytes(shape) == bytes)
    return shape;
  return opaqueShape(bytes);
}

/// The edges come from the `prev` lists (with `gradToPrev` aligned to them);
/// `next` is derived.
std::vector<Node> buildNodes(const PipelineGraph &g, ScheduleKind kind) {
  size_t n = g.stages.size();
  std::vector<Node> nodes(n);
  if (kind == ScheduleKind::LinearOneFOneB) {
    for (size_t i = 0; i + 1 < n; ++i) {
      // Everything the graph sends across the cut between i and i + 1.
      int64_t bytes = 0;
      MessageShape shape;
      for (size_t t = 0; t < n; ++t)
        for (int p : g.stages[t].prev)
          if (validStage(g, p) && static_cast<size_t>(p) <= i && t > i) {
            bytes += g.stages[p].outputBytes;
            MessageShape out =
                shapeOf(g.stages[p].outputShape, g.stages[p].outputBytes);
            shape.insert(shape.end(), out.begin(), out.end());
          }
      if (bytes == 0) {
        bytes = g.stages[i].outputBytes;
        shape = g.stages[i].outputShape;
      }
      shape = shapeOf(shape, bytes);
      Node &to = nodes[i + 1];
      to.prev = {static_cast<int>(i)};
      to.actBytes = {bytes};
      to.gradBytes = {bytes};
      to.actShape = {shape};
      to.gradShape = {shape};
      to.gradToPrev = {true};
    }
    for (Node &node : nodes) {
      node.bi = node.bw = true;
      node.sendAfterInput = false;
    }
  } else {
    for (size_t t = 0; t < n; ++t) {
      const StageInfo &s = g.stages[t];
      Node &node = nodes[t];
      for (size_t k = 0; k < s.prev.size(); ++k) {
        int p = s.prev[k];
        if (!validStage(g, p) || static_cast<size_t>(p) == t)
          continue;
        const StageInfo &ps = g.stages[p];
        node.prev.push_back(p);
        node.actBytes.push_back(ps.outputBytes);
        node.gradBytes.push_back(ps.gradientBytes());
        node.actShape.push_back(shapeOf(ps.outputShape, ps.outputBytes));
        node.gradShape.push_back(
            shapeOf(ps.gradientShape(), ps.gradientBytes()));
        // Missing entries: the predecessor's own flags decide.
        node.gradToPrev.push_back(k < s.gradToPrev.size()
                                      ? static_cast<bool>(s.gradToPrev[k])
                                      : hasBackwardFlags(ps));
      }
      node.bw = s.needsWeightGrad;
      node.bi = s.needsInputGrad || llvm::is_contained(node.gradToPrev, true);
    }
  }
  for (size_t t = 0; t < n; ++t)
    for (size_t k = 0; k < nodes[t].prev.size(); ++k) {
      Node &p = nodes[nodes[t].prev[k]];
      p.next.push_back(static_cast<int>(t));
      if (nodes[t].gradToPrev[k])
        p.gradFrom.push_back(static_cast<int>(t));
    }
  // A stage that receives a gradient runs a backward for it.
  for (Node &node : nodes)
    if (!node.gradFrom.empty() && !node.hasBackward())
      node.bi = true;
  return nodes;
}

/// Longest path (in edges) from every node to a node without successors.
std::vector<int64_t> depthsOf(const std::vector<Node> &nodes) {
  size_t n = nodes.size();
  std::vector<int64_t> depth(n, -1);
  std::vector<char> onStack(n, 0);
  std::function<int64_t(int)> visit = [&](int s) -> int64_t {
    if (depth[s] >= 0)
      return depth[s];
    if (onStack[s]) // A cycle: not a pipeline; count it as a sink.
      return 0;
    onStack[s] = 1;
    int64_t d = 0;
    for (int t : nodes[s].next)
      d = std::max(d, visit(t) + 1);
    onStack[s] = 0;
    return depth[s] = d;
  };
  for (size_t s = 0; s < n; ++s)
    visit(static_cast<int>(s));
  return depth;
}

/// Predecessors before successors (index order breaks ties).
std::vector<int> topologicalOrder(const std::vector<Node> &nodes) {
  size_t n = nodes.size();
  std::vector<int> indegree(n, 0), order;
  for (const Node &node : nodes)
    for (int t : node.next)
      ++indegree[t];
  std::vector<char> done(n, 0);
  while (order.size() < n) {
    int pick = -1;
    for (size_t s = 0; s < n && pick < 0; ++s)
      if (!done[s] && indegree[s] == 0)
        pick = static_cast<int>(s);
    if (pick < 0) // A cycle: take the rest in index order.
      for (size_t s = 0; s < n && pick < 0; ++s)
        if (!done[s])
          pick = static_cast<int>(s);
    done[pick] = 1;
    order.push_back(pick);
    for (int t : nodes[pick].next)
      --indegree[t];
  }
  return order;
}

enum class Step { F, Bd, Bw };
struct ComputeStep {
  Step step;
  int32_t mb;
};

/// Position of `x` in `list` (present by construction).
size_t indexOf(const std::vector<int> &list, size_t x) {
  return static_cast<size_t>(llvm::find(list, static_cast<int>(x)) -
                             list.begin());
}

} // namespace

std::vector<int64_t> mllm::sched::stageDepths(const PipelineGraph &graph) {
  return depthsOf(buildNodes(graph, ScheduleKind::MultimodalOneFOneB));
}

std::vector<Program> mllm::sched::generateSchedule(const PipelineGraph &graph,
                                                   ScheduleKind kind) {
  size_t n = graph.stages.size();
  int64_t m = std::max<int64_t>(graph.microbatches, 1);
  std::vector<Node> nodes = buildNodes(graph, kind);
  std::vector<int64_t> depth = depthsOf(nodes);
  std::vector<Program> programs(n);

  // Warm-up and in-flight caps.
  std::vector<int64_t> warmup(n, 0);
  for (size_t s = 0; s < n; ++s) {
    programs[s].stage = static_cast<int>(s);
    if (!nodes[s].hasBackward()) {
      warmup[s] = m;
      continue;
    }
    if (kind == ScheduleKind::GPipe) {
      warmup[s] = m;
      continue;
    }
    warmup[s] = std::min(depth[s], m);
    const StageInfo &info = graph.stages[s];
    if (kind == ScheduleKind::MultimodalOneFOneB && info.memoryCapacity > 0 &&
        info.activationBytesPerMicrobatch > 0) {
      int64_t room = info.memoryCapacity - info.staticBytes;
      int64_t fits =
          room > 0 ? room / info.activationBytesPerMicrobatch : int64_t(0);
      fits = std::max<int64_t>(fits, 1);
      warmup[s] = std::min(warmup[s], fits - 1);
    }
  }
  if (kind == ScheduleKind::MultimodalOneFOneB)
    for (int t : topologicalOrder(nodes)) {
      if (!nodes[t].hasBackward())
        continue;
      for (size_t k = 0; k < nodes[t].prev.size(); ++k) {
        int p = nodes[t].prev[k];
        if (nodes[t].gradToPrev[k] && nodes[p].hasBackward())
          warmup[t] = std::min(warmup[t], warmup[p]);
      }
    }

  // Compute order.
  std::vector<std::vector<ComputeStep>> steps(n);
  for (size_t s = 0; s < n; ++s) {
    const Node &node = nodes[s];
    std::vector<ComputeStep> &order = steps[s];
    auto backward = [&](int32_t mb) {
      if (node.bi)
        order.push_back({Step::Bd, mb});
      if (node.bw)
        order.push_back({Step::Bw, mb});
    };
    int64_t w = warmup[s];
    for (int64_t j = 0; j < w; ++j)
      order.push_back({Step::F, static_cast<int32_t>(j)});
    if (!node.hasBackward())
      continue;
    for (int64_t i = 0; i < m - w; ++i) {
      order.push_back({Step::F, static_cast<int32_t>(w + i)});
      backward(static_cast<int32_t>(i));
    }
    for (int64_t i = std::max<int64_t>(m - w, 0); i < m; ++i)
      backward(static_cast<int32_t>(i));
    Program &prog = programs[s];
    prog.warmup = w;
    prog.maxInFlight = std::min(w + 1, m);
  }
  for (size_t s = 0; s < n; ++s)
    if (!nodes[s].hasBackward()) {
      programs[s].warmup = m;
      programs[s].maxInFlight = 1;
    }

  // The programs: every compute in its compute order, each receive right
  // before the compute that uses it, each send right after the compute that
  // produces it (sends are asynchronous, so they never hold the stage up).
  for (size_t s = 0; s < n; ++s) {
    const Node &node = nodes[s];
    Program &prog = programs[s];
    std::vector<Action> &out = prog.actions;
    // A send or receive of microbatch j with `peer`, its size and tensors.
    auto message = [&](ActionKind kind, int32_t j, int peer, int64_t bytes,
                       const MessageShape &shape) {
      out.push_back({kind, j, peer, bytes, messageTag(kind, j), shape});
    };
    auto compute = [&](ActionKind kind, int32_t j) {
      Action a;
      a.kind = kind;
      a.microbatch = j;
      out.push_back(std::move(a));
    };
    for (const ComputeStep &cs : steps[s]) {
      int32_t j = cs.mb;
      switch (cs.step) {
      case Step::F:
        // A fan-in receives all inputs of the forward, in prev order.
        for (size_t k = 0; k < node.prev.size(); ++k)
          message(ActionKind::RecvActivation, j, node.prev[k], node.actBytes[k],
                  node.actShape[k]);
        compute(ActionKind::Forward, j);
        for (int t : node.next) {
          size_t k = indexOf(nodes[t].prev, s);
          message(ActionKind::SendActivation, j, t, nodes[t].actBytes[k],
                  nodes[t].actShape[k]);
        }
        break;
      case Step::Bd:
      case Step::Bw: {
        // The first backward action of the microbatch takes the gradients.
        if (cs.step == Step::Bd || !node.bi)
          for (int t : node.gradFrom) {
            size_t k = indexOf(nodes[t].prev, s);
            message(ActionKind::RecvGrad, j, t, nodes[t].gradBytes[k],
                    nodes[t].gradShape[k]);
          }
        compute(cs.step == Step::Bd ? ActionKind::BackwardInput
                                    : ActionKind::BackwardWeight,
                j);
        bool last = cs.step == Step::Bw || !node.bw;
        bool sends = node.sendAfterInput ? cs.step == Step::Bd : last;
        if (sends)
          for (size_t k = 0; k < node.prev.size(); ++k)
            if (node.gradToPrev[k])
              message(ActionKind::SendGrad, j, node.prev[k], node.gradBytes[k],
                      node.gradShape[k]);
        break;
      }
      }
    }
    const StageInfo &info = graph.stages[s];
    if (info.trainableParams > 0 && node.bw) {
      if (info.dp * info.cp > 1)
        prog.actions.push_back({ActionKind::AllReduceGrads,
                                -1,
                                -1,
                                info.trainableParams * kGradBytesPerParam,
                                -1,
                                {}});
      prog.actions.push_back({ActionKind::OptimizerStep, -1, -1, 0, -1, {}});
    }
  }
  return programs;
}

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
  auto fail = [](const std::string &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
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
                    std::to_string(m) + ")");
      if (isComm(a.kind) && (!validStage(graph, a.peer) || a.peer == s))
        return fail(where(s, i) + "has no valid peer");
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
    if (out.size() > in.size())
      return fail("stage " + name(from) + " sends the " + what +
                  " of microbatch " + std::to_string(out[i]->microbatch) +
                  " to " + name(to) + ", which never receives it" + counts);
    if (in.size() > out.size())
      return fail("stage " + name(to) + " waits for the " + what +
                  " of microbatch " + std::to_string(in[i]->microbatch) +
                  " from " + name(from) + ", which never sends it" + counts);
    if (i < common)
      return fail("stage " + name(to) + " receives the " + what +
                  " of microbatch " + std::to_string(in[i]->microbatch) +
                  " as message " + std::to_string(i) + " from " + name(from) +
                  ", which sends microbatch " +
                  std::to_string(out[i]->microbatch) + " there (the " + what +
                  "s are received out of order)");
    for (i = 0; i < common; ++i)
      if (out[i]->bytes != in[i]->bytes)
        return fail("stage " + name(to) + " receives " +
                    std::to_string(in[i]->bytes) + " bytes for the " + what +
                    " of microbatch " + std::to_string(in[i]->microbatch) +
                    " from " + name(from) + ", which sends " +
                    std::to_string(out[i]->bytes) + " bytes (size mismatch)");
    for (i = 0; i < common; ++i)
      if (out[i]->tag != in[i]->tag)
        return fail("stage " + name(to) + " receives the " + what +
                    " of microbatch " + std::to_string(in[i]->microbatch) +
                    " from " + name(from) + " with tag " +
                    std::to_string(in[i]->tag) + ", which sends it with tag " +
                    std::to_string(out[i]->tag) + " (tag mismatch)");
    for (i = 0; i < common; ++i)
      if (out[i]->shape != in[i]->shape)
        return fail("stage " + name(to) + " receives the " + what +
                    " of microbatch " + std::to_string(in[i]->microbatch) +
                    " from " + name(from) + " as " + formatShape(in[i]->shape) +
                    ", which sends it as " + formatShape(out[i]->shape) +
                    " (shape mismatch)");
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
                      std::to_string(j));
        fwd[j] = pos;
        break;
      case ActionKind::BackwardInput:
      case ActionKind::BackwardWeight: {
        std::vector<int64_t> &seen =
            a.kind == ActionKind::BackwardInput ? bd : bw;
        if (fwd[j] < 0)
          return fail(where(s, i) + "comes before the forward of microbatch " +
                      std::to_string(j));
        if (seen[j] >= 0)
          return fail(where(s, i) + "repeats a backward of microbatch " +
                      std::to_string(j));
        seen[j] = lastBwd[j] = lastBackward = pos;
        break;
      }
      case ActionKind::RecvActivation:
        if (fwd[j] >= 0)
          return fail(where(s, i) + "comes after the forward that needs it");
        break;
      case ActionKind::SendActivation:
        if (fwd[j] < 0)
          return fail(where(s, i) +
                      "comes before the forward that computes it");
        break;
      case ActionKind::RecvGrad:
        if (bd[j] >= 0 || bw[j] >= 0)
          return fail(where(s, i) + "comes after the backward that needs it");
        gradIn[j] = 1;
        break;
      case ActionKind::SendGrad:
        if (bd[j] < 0)
          return fail(where(s, i) +
                      "comes before the backward_input that computes it");
        break;
      case ActionKind::AllReduceGrads:
        allReduce = pos;
        break;
      case ActionKind::OptimizerStep:
        optimizer = pos;
        if (allReduce < 0 && info.dp * info.cp > 1 && lastBackward >= 0 &&
            info.trainableParams > 0)
          return fail(where(s, i) +
                      "comes without a gradient all-reduce over dp x cp");
        break;
      }
    }
    for (int64_t j = 0; j < m; ++j) {
      if (fwd[j] < 0)
        return fail(who + "never runs the forward of microbatch " +
                    std::to_string(j));
      if (gradIn[j] && lastBwd[j] < 0)
        return fail(who + "receives the gradient of microbatch " +
                    std::to_string(j) + " but runs no backward for it");
    }
    if (allReduce >= 0 && allReduce < lastBackward)
      return fail(who + "all-reduces gradients before its last backward");
    if (optimizer >= 0 && (optimizer < lastBackward || optimizer < allReduce))
      return fail(who + "steps the optimizer before its gradients are ready");
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
                      " microbatches at action " + std::to_string(i) + " (" +
                      describe(prog.actions[i]) + ") but its cap is " +
                      std::to_string(prog.maxInFlight));
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
              describe(a) + ") waiting for " + name(q) + ", which has not " +
              "sent it yet; " + peerState +
              " (a cycle of receives that wait for each other)");
}
