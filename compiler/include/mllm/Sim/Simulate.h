//===- Simulate.h - discrete-event simulation of one iteration --*- C++ -*-===//
//
// Runs the per-stage programs of Schedule.h against the cost model's stage
// times and the cluster's links: compute actions take their stage time, a
// transfer takes bytes / bandwidth (intra- or inter-node from the ranks)
// from the moment its send is posted, a gradient all-reduce takes the ring
// time 2(n-1)/n x bytes / bw. A stage waits for its sends where the
// runtime does (sched::sendReleases). The model (asynchronous sends, send
// waits, blocking receives, memory, optimizer) is described in docs/sim.md.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SIM_SIMULATE_H
#define MLLM_SIM_SIMULATE_H

#include "mllm/runtime/Schedule.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace mllm::sched {

/// One executed action on one stage.
struct Event {
  int stage = 0;
  ActionKind kind;
  int32_t microbatch = -1;
  double start = 0, end = 0; ///< Seconds from the iteration's start.
  int32_t peer = -1;         ///< The other stage of a send/recv, else -1.
  /// The global rank it ran on; -1: every rank of the stage (a simulated
  /// event). A measured trace (mllm-run --trace) sets it.
  int64_t rank = -1;
};

struct StageReport {
  double busy = 0; ///< Seconds computing.
  /// Seconds of transfers of its sends and receives (a send overlaps the
  /// stage's compute) and of collectives.
  double comm = 0;
  double bubble = 0; ///< 1 - busy / iteration.
  /// Per microbatch, as simulated: the forward, weight and input
  /// gradients, and the forward run again before the backward (activation
  /// checkpointing; the backward action that runs it is charged for it, and
  /// bwdWeight and bwdInput leave it out).
  double fwd = 0, bwdWeight = 0, bwdInput = 0, recompute = 0;
  int64_t peakMemory = 0; ///< Bytes: static + activations in flight.
  /// Most microbatches whose activations the stage held at once (forward
  /// ran, last backward of the microbatch not finished).
  int64_t maxInFlight = 0;
};

struct SimResult {
  double iterationTime = 0;
  std::vector<StageReport> stages;
  /// Grouped by stage (stage order), each stage's in execution (= time)
  /// order. Empty when SimOptions::recordEvents is false.
  std::vector<Event> events;
  double tokensPerSecond = 0;
  double mfu = 0;
  int64_t eventsSimulated = 0; ///< Actions executed, over all stages.
  int64_t worldSize = 0;       ///< GPUs: sum of tp x cp x dp of the stages.
};

struct SimOptions {
  /// The optimizer step takes trainableParams x optimizerBytesPerParam /
  /// memoryBandwidth (a memory-bound roofline); 0 when memoryBandwidth is 0
  /// (PipelineGraph does not carry it; mllm-sim passes the cluster's).
  double optimizerBytesPerParam = 16;
  double memoryBandwidth = 0;
  /// Keep every executed action in SimResult::events (for the trace/SVG).
  bool recordEvents = true;
  /// sched::sendReleases(graph, programs) where the caller already has it
  /// (an entry per action of every program; program s is stage s), else
  /// null: simulate() computes the releases itself. Not owned.
  const std::vector<std::vector<int64_t>> *sendReleases = nullptr;
};

llvm::Expected<SimResult> simulate(const PipelineGraph &graph,
                                   const std::vector<Program> &programs);
llvm::Expected<SimResult> simulate(const PipelineGraph &graph,
                                   const std::vector<Program> &programs,
                                   const SimOptions &options);

/// The cost model's pieces, exposed for tests and tools.
/// Seconds to move `bytes` from stage `from` to stage `to`: intra-node
/// bandwidth when the stages' first ranks share a node, else inter-node. A
/// bandwidth <= 0 counts as infinite.
double p2pTime(const PipelineGraph &graph, int from, int to, int64_t bytes);
/// Ring all-reduce of `bytes` over the stage's dp x cp group:
/// 2(n-1)/n x bytes / bandwidth, inter-node when the group spans nodes.
double allReduceTime(const PipelineGraph &graph, const StageInfo &stage,
                     int64_t bytes);

} // namespace mllm::sched

#endif // MLLM_SIM_SIMULATE_H
