//===- MLLMEnums.h - the mllm dialect's enumerations ------------*- C++ -*-===//
//
// The enums of the mllm dialect (MLLMBase.td) without its ops: the one
// definition and spelling of layer kinds, encoder layouts, partition and CP
// balancing policies, optimizers, precisions, ... that the front end, the
// IR, the plan and the docs share.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_IR_MLLMENUMS_H
#define MLLM_DIALECT_MLLM_IR_MLLMENUMS_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/OpImplementation.h"

#include "mllm/Dialect/MLLM/IR/MLLMEnums.h.inc"

namespace mllm {

/// Every case of an mllm enum, in declaration order, and "a|b|c" of their
/// spellings (for the front end's field schema and messages).
template <typename E>
struct EnumCases;

#define MLLM_ENUM_CASES(E)                                                     \
  template <>                                                                  \
  struct EnumCases<E> {                                                        \
    static std::vector<E> all() {                                              \
      std::vector<E> cases;                                                    \
      for (uint32_t i = 0; i <= getMaxEnumValFor##E(); ++i)                    \
        if (auto c = symbolize##E(i))                                          \
          cases.push_back(*c);                                                 \
      return cases;                                                            \
    }                                                                          \
  };
MLLM_ENUM_CASES(EncoderLayout)
MLLM_ENUM_CASES(PartitionPolicy)
MLLM_ENUM_CASES(CPBalance)
MLLM_ENUM_CASES(Optimizer)
MLLM_ENUM_CASES(Precision)
#undef MLLM_ENUM_CASES

template <typename E>
std::string enumChoices() {
  std::string out;
  for (E e : EnumCases<E>::all()) {
    if (!out.empty())
      out += "|";
    out += stringifyEnum(e).str();
  }
  return out;
}

} // namespace mllm

#endif // MLLM_DIALECT_MLLM_IR_MLLMENUMS_H
