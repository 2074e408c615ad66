/*===- StepABI.h - the C ABI compiled step functions call ---------*- C -*-===*
 *
 * A compiled step function (sched-lower-steps, docs/runtime.md "Compiled
 * step functions") performs its program's actions by calling these
 * functions with the action's index in the program and its constants; the
 * runtime (exec::StepContext) checks that the call matches the plan's
 * action and runs it with the interpreter's code, so both execute the same
 * numeric steps. Every function returns 0 on success; on failure a
 * non-zero status, the error kept in the context for the caller of the step
 * function, and the step function returns that status at once.
 *
 * `ctx` is the runtime's opaque context. `offset` is the action's buffer in
 * the program's static memory plan (-1: none).
 *
 *===----------------------------------------------------------------------===*/
#ifndef MLLM_RUNTIME_STEPABI_H
#define MLLM_RUNTIME_STEPABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
enum {
  MLLM_RT_OK = 0,
  /* The action failed (communication, data, numerics). */
  MLLM_RT_FAILED = 1,
  /* The compiled code does not match the plan the runtime holds. */
  MLLM_RT_MISMATCH = 2,
};

/* The step begins: the program's index, its action count and arena size. */
int32_t mllm_rt_begin(void *ctx, int64_t program, int64_t actions,
                      int64_t arena_bytes);
int32_t mllm_rt_forward(void *ctx, int64_t action, int64_t mb, int64_t offset);
int32_t mllm_rt_backward_input(void *ctx, int64_t action, int64_t mb,
                               int64_t offset);
int32_t mllm_rt_backward_weight(void *ctx, int64_t action, int64_t mb,
                                int64_t offset);
/* Point-to-point: `peer` is the peer's stage index in the plan. */
int32_t mllm_rt_send_act(void *ctx, int64_t action, int64_t mb, int64_t peer,
                         int64_t tag, int64_t bytes, int64_t offset);
int32_t mllm_rt_recv_act(void *ctx, int64_t action, int64_t mb, int64_t peer,
                         int64_t tag, int64_t bytes, int64_t offset);
int32_t mllm_rt_send_grad(void *ctx, int64_t action, int64_t mb, int64_t peer,
                          int64_t tag, int64_t bytes, int64_t offset);
int32_t mllm_rt_recv_grad(void *ctx, int64_t action, int64_t mb, int64_t peer,
                          int64_t tag, int64_t bytes, int64_t offset);
int32_t mllm_rt_all_reduce_grads(void *ctx, int64_t action, int64_t bytes,
                                 int64_t offset);
int32_t mllm_rt_optimizer_step(void *ctx, int64_t action);

#ifdef __cplusplus
}
#endif

#endif /* MLLM_RUNTIME_STEPABI_H */
