//===- StepContext.cpp - the C ABI of step functions over a rank ----------===//
#include "mllm/runtime/exec/StepContext.h"

#include "mllm/runtime/StepABI.h"

#include "llvm/Support/Compiler.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime::exec;
using sched::ActionKind;

static StepContext &of(void *ctx) { return *static_cast<StepContext *>(ctx); }

extern "C" {
int32_t mllm_rt_begin(void *ctx, int64_t program, int64_t actions,
                      int64_t arena_bytes) {
  return of(ctx).begin(program, actions, arena_bytes);
}
int32_t mllm_rt_forward(void *ctx, int64_t action, int64_t mb, int64_t offset) {
  return of(ctx).call(ActionKind::Forward, action, mb, -1, -1, -1, offset);
}
int32_t mllm_rt_backward_input(void *ctx, int64_t action, int64_t mb,
                               int64_t offset) {
  return of(ctx).call(ActionKind::BackwardInput, action, mb, -1, -1, -1,
                      offset);
}
int32_t mllm_rt_backward_weight(void *ctx, int64_t action, int64_t mb,
                                int64_t offset) {
  return of(ctx).call(ActionKind::BackwardWeight, action, mb, -1, -1, -1,
                      offset);
}
int32_t mllm_rt_send_act(void *ctx, int64_t action, int64_t mb, int64_t peer,
                         int64_t tag, int64_t bytes, int64_t offset) {
  return of(ctx).call(ActionKind::SendActivation, action, mb, peer, tag, bytes,
                      offset);
}
int32_t mllm_rt_recv_act(void *ctx, int64_t action, int64_t mb, int64_t peer,
                         int64_t tag, int64_t bytes, int64_t offset) {
  return of(ctx).call(ActionKind::RecvActivation, action, mb, peer, tag, bytes,
                      offset);
}
int32_t mllm_rt_send_grad(void *ctx, int64_t action, int64_t mb, int64_t peer,
                          int64_t tag, int64_t bytes, int64_t offset) {
  return of(ctx).call(ActionKind::SendGrad, action, mb, peer, tag, bytes,
                      offset);
}
int32_t mllm_rt_recv_grad(void *ctx, int64_t action, int64_t mb, int64_t peer,
                          int64_t tag, int64_t bytes, int64_t offset) {
  return of(ctx).call(ActionKind::RecvGrad, action, mb, peer, tag, bytes,
                      offset);
}
int32_t mllm_rt_all_reduce_grads(void *ctx, int64_t action, int64_t bytes,
                                 int64_t offset) {
  return of(ctx).call(ActionKind::AllReduceGrads, action, -1, -1, -1, bytes,
                      offset);
}
int32_t mllm_rt_optimizer_step(void *ctx, int64_t action) {
  return of(ctx).call(ActionKind::OptimizerStep, action, -1, -1, -1, -1, -1);
}
}

std::vector<std::pair<const char *, void *>> StepContext::symbols() {
  auto fn = [](auto *f) { return reinterpret_cast<void *>(f); };
  return {{"mllm_rt_begin", fn(&mllm_rt_begin)},
          {"mllm_rt_forward", fn(&mllm_rt_forward)},
          {"mllm_rt_backward_input", fn(&mllm_rt_backward_input)},
          {"mllm_rt_backward_weight", fn(&mllm_rt_backward_weight)},
          {"mllm_rt_send_act", fn(&mllm_rt_send_act)},
          {"mllm_rt_recv_act", fn(&mllm_rt_recv_act)},
          {"mllm_rt_send_grad", fn(&mllm_rt_send_grad)},
          {"mllm_rt_recv_grad", fn(&mllm_rt_recv_grad)},
          {"mllm_rt_all_reduce_grads", fn(&mllm_rt_all_reduce_grads)},
          {"mllm_rt_optimizer_step", fn(&mllm_rt_optimizer_step)}};
}

int32_t StepContext::mismatch(const llvm::Twine &message) {
  if (!error)
    error = runner.makeError("the compiled step function does not match the "
                             "plan: " +
                             message);
  return MLLM_RT_MISMATCH;
}

int32_t StepContext::begin(int64_t program, int64_t actions, int64_t arena) {
  int64_t mine = static_cast<int64_t>(runner.program().actions.size());
  if (begun)
    return mismatch("it began twice");
  if (program != runner.programIndex() || actions != mine)
    return mismatch(llvm::formatv("it runs program {0} of {1} actions, this "
                                  "rank runs program {2} of {3}",
                                  program, actions, runner.programIndex(),
                                  mine));
  // The plan records the arena the compiler planned; the code carries the
  // one it was lowered with.
  int64_t recorded = runner.recordedArena();
  if (recorded >= 0 && recorded != arena)
    return mismatch(llvm::formatv("its memory plan has an arena of {0} bytes, "
                                  "the plan's program {1} one of {2}",
                                  arena, program, recorded));
  begun = true;
  arenaBytes = arena;
  return MLLM_RT_OK;
}

int32_t StepContext::call(ActionKind kind, int64_t index, int64_t mb,
                          int64_t peer, int64_t tag, int64_t bytes,
                          int64_t offset) {
  const sched::Program &p = runner.program();
  // After a failure or a mismatch nothing more runs, even for code that
  // ignores the status (the runner has dropped its iteration's state).
  if (error)
    return MLLM_RT_FAILED;
  if (!begun)
    return mismatch("an action ran before mllm_rt_begin");
  if (index != next || index >= static_cast<int64_t>(p.actions.size()))
    return mismatch(llvm::formatv("it ran action {0} ({1}) where the plan's "
                                  "action {2} comes next",
                                  index, sched::actionMnemonic(kind), next));
  const sched::Action &a = p.actions[index];
  bool same = a.kind == kind;
  if (sched::perMicrobatch(kind))
    same = same && a.microbatch == mb;
  if (sched::isComm(kind))
    same = same && a.peer == peer && a.tag == tag && a.bytes == bytes;
  if (kind == ActionKind::AllReduceGrads)
    same = same && a.bytes == bytes;
  if (!same)
    return mismatch(llvm::formatv(
        "action {0} is {1} microbatch {2} (peer {3}, tag {4}, {5} bytes) in "
        "the code but {6} microbatch {7} (peer {8}, tag {9}, {10} bytes) in "
        "the plan",
        index, sched::actionMnemonic(kind), mb, peer, tag, bytes,
        sched::actionMnemonic(a.kind), a.microbatch, a.peer, a.tag, a.bytes));
  if (offset < -1 || (arenaBytes > 0 && offset >= arenaBytes))
    return mismatch(llvm::formatv("action {0} uses offset {1} outside the "
                                  "arena of {2} bytes",
                                  index, offset, arenaBytes));
  ++next;
  if (llvm::Error e = runner.runAction(static_cast<size_t>(index))) {
    error = std::move(e);
    return MLLM_RT_FAILED;
  }
  return MLLM_RT_OK;
}

// UBSan's -fsanitize=function reads a type signature from the 8 bytes before
// every function an indirect call reaches; ORC-compiled code has none, and
// when its function starts a page those bytes can be unmapped (a SEGV in the
// sanitizer build). The step function's type is fixed by the lowering.
LLVM_NO_SANITIZE("function")
llvm::Error StepContext::run(StepFunction step) {
  int32_t status = step(this);
  if (error)
    return std::move(error);
  if (status != MLLM_RT_OK)
    return runner.makeError(llvm::formatv("the compiled step function returned "
                                          "status {0} without an error",
                                          status));
  auto n = static_cast<int64_t>(runner.program().actions.size());
  if (!begun || next != n)
    return runner.makeError(
        llvm::formatv("the compiled step function returned after {0} of "
                      "the program's {1} actions",
                      next, n));
  return llvm::Error::success();
}
