// RUN: mllmc %examples/three_modality_colocated.mllm --emit=mllm > %t.mlir
// RUN: mllm-opt %t.mlir > %t.1.mlir
// RUN: mllm-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: mllm-opt %t.mlir --mlir-print-op-generic | mllm-opt > %t.3.mlir
// RUN: diff %t.1.mlir %t.3.mlir
// RUN: mllm-opt %t.mlir --verify-roundtrip
// Printing and parsing the mllm dialect are inverse to each other, in the
// custom and in the generic form.
