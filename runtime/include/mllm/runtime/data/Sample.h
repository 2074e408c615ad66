//===- Sample.h - one sample's tokens and where its items go ----*- C++ -*-===//
//
// A manifest sample becomes its text token ids and its items, each placed
// before a text token: the n-th `<enc>` marker in the text places the n-th
// item of encoder `enc` there (the marker itself is no text); the items
// without a marker follow the plan's placement for that encoder (prepend,
// append, or at a fraction of this sample's text). At one point the order
// is: prepended items, then marked and `at` items, then appended ones.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_SAMPLE_H
#define MLLM_RUNTIME_DATA_SAMPLE_H

#include "mllm/runtime/data/Manifest.h"
#include "mllm/runtime/data/Tokenizer.h"

namespace mllm::runtime::data {

struct PlacedItem {
  int encoder = 0;    ///< Index in DataGeometry::encoders.
  int64_t index = 0;  ///< The item's index in the sample's list.
  int64_t offset = 0; ///< Text tokens before it.
};

struct SampleLayout {
  std::vector<int64_t> text;      ///< Text token ids (with the end id).
  std::vector<PlacedItem> items;  ///< In sequence order.
  int64_t tokens = 0;             ///< Text + items' LLM tokens.
  std::vector<int64_t> itemCount; ///< Per encoder.
};

/// The layout of `sample`, or a Problem (bad marker, or nothing in it).
llvm::Expected<SampleLayout> layoutSample(const ManifestSample &sample,
                                          const DataGeometry &geometry,
                                          const Tokenizer &tokenizer,
                                          bool addEos);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_SAMPLE_H
