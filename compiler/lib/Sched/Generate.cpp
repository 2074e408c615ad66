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
//    predecessors p, in topological order; and the stages after a capped
//    one keep its share of their warm-ups (plan::WarmupShare), so that
//    they do not run in lockstep at one warm-up.
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
#include "mllm/Sched/Generate.h"
#include "mllm/Plan/Warmup.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <tuple>

using namespace mllm::sched;

namespace {

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
      // Everything the graph sends across the cut between i and i + 1, in
      // the order of the stages that produced it: the order in which the
      // runtime packs the tensors it passes on (RankFlow.cpp), an earlier
      // encoder's output first.
      int64_t bytes = 0;
      MessageShape shape;
      for (size_t p = 0; p <= i; ++p) {
        bool crosses = false;
        for (size_t t = i + 1; t < n && !crosses; ++t)
          crosses = llvm::is_contained(g.stages[t].prev, static_cast<int>(p));
        if (!crosses)
          continue;
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
                                      : ps.hasBackward());
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

std::string mllm::sched::scheduleKindNames() {
  std::string names;
  uint32_t last = sched_ir::getMaxEnumValForScheduleKind();
  for (uint32_t i = 0; i <= last; ++i) {
    if (i > 0)
      names += i == last ? " or " : ", ";
    names += stringifyScheduleKind(*sched_ir::symbolizeScheduleKind(i)).str();
  }
  return names;
}

llvm::Expected<std::vector<Program>>
mllm::sched::generateVerifiedSchedule(const PipelineGraph &graph,
                                      ScheduleKind kind) {
  std::vector<Program> programs = generateSchedule(graph, kind);
  if (llvm::Error error = verifySchedule(graph, programs))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "internal error: the generated " + stringifyScheduleKind(kind).str() +
            " schedule does not verify: " + llvm::toString(std::move(error)));
  return programs;
}

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

  // Round trips (plan::WarmupShare): a stage's forward, recompute and
  // input gradient, and its successor's round trip (an in-tree: at most
  // one successor).
  std::vector<int> topo = topologicalOrder(nodes);
  std::vector<double> trip(n, 0.0);
  for (int s : llvm::reverse(topo)) {
    const StageInfo &info = graph.stages[s];
    trip[s] = info.fwd;
    if (nodes[s].hasBackward())
      trip[s] += info.recompute + (nodes[s].bi ? info.bwdInput : 0.0);
    double after = 0;
    for (int t : nodes[s].next)
      after = std::max(after, trip[t]);
    trip[s] += after;
  }

  // Warm-ups: the multimodal kind's caps, carries and shares are
  // plan::multimodalWarmups, the rule the estimate prices.
  std::vector<int64_t> warmup(n, m);
  if (kind == ScheduleKind::MultimodalOneFOneB) {
    std::vector<plan::WarmupStage> rule(n);
    for (size_t s = 0; s < n; ++s) {
      const StageInfo &info = graph.stages[s];
      plan::WarmupStage &r = rule[s];
      r.depth = depth[s];
      r.trip = trip[s];
      r.backward = nodes[s].hasBackward();
      if (info.memoryCapacity > 0 && info.activationBytesPerMicrobatch > 0) {
        int64_t room = info.memoryCapacity - info.staticBytes;
        r.fits = std::max<int64_t>(
            room > 0 ? room / info.activationBytesPerMicrobatch : 0, 1);
      }
      for (size_t k = 0; k < nodes[s].prev.size(); ++k) {
        int p = nodes[s].prev[k];
        if (nodes[s].gradToPrev[k] && nodes[p].hasBackward())
          r.carriesFrom.push_back(p);
      }
    }
    warmup = plan::multimodalWarmups(rule, topo, m);
  } else if (kind == ScheduleKind::LinearOneFOneB) {
    for (size_t s = 0; s < n; ++s)
      if (nodes[s].hasBackward())
        warmup[s] = std::min(depth[s], m);
  }
  for (size_t s = 0; s < n; ++s)
    programs[s].stage = static_cast<int>(s);

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
