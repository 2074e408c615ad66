//===- RankStep.cpp - one iteration of a rank -----------------------------===//
//
// RankRunner::step (the iteration around the actions: data, the message
// arena's layout, the checks of --check-memory-plan), the rank's view of
// its plan, its trace and its share of a batch under CP.
//
//===----------------------------------------------------------------------===//
#include "RankImpl.h"

#include "mllm/runtime/PlanMemory.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

llvm::Error RankRunner::checkMessages() const {
  const Impl &s = *impl;
  const MessageArena &arena = s.messages;
  for (const sched::Buffer &b : arena.layout().buffers) {
    auto it = arena.freedAt().find(b.action);
    int64_t freed = it == arena.freedAt().end() ? -1 : it->second;
    if (freed < 0)
      return makeError(llvm::formatv(
          "stage '{0}': the buffer of message action {1} was {2}",
          s.stage->name, b.action,
          it == arena.freedAt().end() ? "never used" : "never freed"));
    // A receive ends where the runtime copies it out; a send where the
    // plan releases it.
    bool send = b.kind == sched::BufferKind::SendAct ||
                b.kind == sched::BufferKind::SendGrad;
    if (send && freed != b.last)
      return makeError(llvm::formatv(
          "stage '{0}': the buffer of send action {1} was freed at action "
          "{2} but the static memory plan frees it at action {3}",
          s.stage->name, b.action, freed, b.last));
  }
  if (arena.measuredBytes() != arena.layout().arenaBytes)
    return makeError(llvm::formatv(
        "stage '{0}': the message arena's measured peak is {1} bytes but its "
        "plan's size is {2} bytes",
        s.stage->name, arena.measuredBytes(), arena.layout().arenaBytes));
  return llvm::Error::success();
}

int64_t RankRunner::messageArenaBytes() const { return impl->stepArenaBytes; }
int64_t RankRunner::messageArenaPeak() const { return impl->stepArenaPeak; }

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

llvm::Error RankRunner::agreeOnStart() {
  if (stepsAgreed)
    return llvm::Error::success();
  setActivity("comparing the ranks' steps");
  if (llvm::Error e = agreeOnStep(*impl->world, done))
    return makeError(llvm::toString(std::move(e)));
  stepsAgreed = true;
  return llvm::Error::success();
}

llvm::Expected<StepStats> RankRunner::step() {
  Impl &s = *impl;
  if (llvm::Error e = checkIdle())
    return std::move(e);
  if (llvm::Error e = agreeOnStart())
    return e;
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
  // The messages' buffers, now that their sizes are known.
  if (llvm::Error e =
          s.messages.plan(*s.prog, s.sendRelease, messageFloats(model, s)))
    return makeError("stage '" + s.stage->name +
                     "': " + llvm::toString(std::move(e)));
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
    if (llvm::Error e = checkMessages())
      return e;
  s.stepArenaBytes = s.messages.layout().arenaBytes;
  s.stepArenaPeak = s.messages.measuredBytes();
  tracing = s.tracing = false;
  for (auto &[mb, m] : s.mbs)
    for (const StageRange &r : s.flow().ranges)
      model.chains[r.chain]->release(mb);
  for (const auto &[mb, m] : s.mbs)
    if (const BatchLayout *layout = m.data.layout.get();
        layout && !layout->cpTokens.empty())
      cpStats.add(*layout);
  s.mbs.clear();
  if (llvm::Error e = unusedReceives())
    return std::move(e);

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

llvm::Expected<std::vector<RankEvent>>
exec::gatherRankEvents(Group &world, const std::vector<RankEvent> &events) {
  const int size = world.size();
  int64_t mine = static_cast<int64_t>(events.size()), most = 0;
  std::vector<int64_t> counts(size);
  if (llvm::Error e = world.allGatherBytes(&mine, sizeof(mine), counts.data()))
    return std::move(e);
  for (int64_t c : counts)
    most = std::max(most, c);
  std::vector<RankEvent> padded(events);
  padded.resize(most);
  std::vector<RankEvent> all(static_cast<size_t>(most) * size);
  if (most > 0)
    if (llvm::Error e = world.allGatherBytes(
            padded.data(), most * static_cast<int64_t>(sizeof(RankEvent)),
            all.data()))
      return std::move(e);
  std::vector<RankEvent> result;
  if (world.rank() == 0)
    for (int r = 0; r < size; ++r)
      result.insert(result.end(), all.begin() + r * most,
                    all.begin() + r * most + counts[r]);
  return std::move(result);
}

llvm::Expected<std::vector<RankEvent>> RankRunner::gatherTrace() {
  return gatherRankEvents(*impl->world, events);
}

MicrobatchData RankRunner::localData(MicrobatchData full) const {
  return localShare(model, std::move(full));
}

const std::vector<std::vector<int64_t>> &
exec::cpSplit(const Model &model, const MicrobatchData &data) {
  return data.layout && !data.layout->cpTokens.empty()
             ? data.layout->cpTokens
             : model.contextParallel.tokens;
}

MicrobatchData exec::localShare(const Model &model, MicrobatchData full) {
  if (model.localTokens.empty())
    return full;
  // Under CP the LLM's layers read this rank's tokens of each sequence: of
  // the batch's own split when it has one (real data), else the plan's.
  const std::vector<int64_t> *tokens = &model.localTokens;
  if (const auto &split = cpSplit(model, full);
      &split != &model.contextParallel.tokens) {
    auto cp = std::make_shared<cpu::ContextParallel>();
    cp->group = model.contextParallel.group;
    cp->tokens = split;
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

int64_t exec::localRow(const Model &model, const MicrobatchData &data,
                       int64_t row) {
  if (model.localTokens.empty())
    return row;
  const std::vector<int64_t> &mine =
      cpSplit(model, data)[model.contextParallel.group->rank()];
  auto it = std::find(mine.begin(), mine.end(), row);
  return it == mine.end() ? -1 : it - mine.begin();
}
