// RUN: mllmc %examples/largest.mllm --emit=mllm > %t.planned.mlir
// RUN: mllm-opt %t.planned.mlir > %t.once.mlir
// RUN: mllm-opt %t.planned.mlir --mllm-plan-pipeline > %t.twice.mlir
// RUN: diff %t.once.mlir %t.twice.mlir
// RUN: FileCheck %s < %t.twice.mlir
//
// mllm-opt's --mllm-plan-pipeline is the pipeline mllmc runs: planning an
// already planned module again reproduces it exactly (the pipeline replaces
// its own results rather than adding to them).

// CHECK: mllm.cp_assignment @llm cp 2
// CHECK: mllm.pipeline frozen_aware encoders_parallel
