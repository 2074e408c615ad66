//===- ProfileWriter.cpp - measured layer times as a cost profile ---------===//
#include "ProfileWriter.h"

#include "mllm/Driver/Driver.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mllm;
using namespace mllm::runtime;

llvm::Error mllm::writeProfile(llvm::StringRef path,
                               const std::vector<exec::LayerTiming> &timings,
                               llvm::StringRef device) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "# Measured by mllm-run --profile-out: per layer and microbatch, "
        "milliseconds.\n";
  os << "device: \"" << device << "\"\n";
  os << "layers:\n";
  for (const exec::LayerTiming &t : timings) {
    os << "  # " << t.part << "." << t.group << "\n";
    os << "  - {kind: " << t.kind;
    for (const LayerConfigKey &k : layerConfigKeys()) {
      if (!k.isSet(t.config))
        continue;
      if (k.type == LayerConfigKey::Int)
        os << ", " << k.name << ": " << t.config.*(k.intField);
      else if (k.type == LayerConfigKey::Bool)
        os << ", " << k.name << ": "
           << (t.config.*(k.boolField) ? "true" : "false");
    }
    os << ", tokens: " << t.tokens << ", attention_span: " << t.attentionSpan
       << ", tp: 1, cp: 1";
    os << llvm::format(", forward_ms: %.6f, weight_grad_ms: %.6f, "
                       "input_grad_ms: %.6f}\n",
                       t.forwardMs, t.weightGradMs, t.inputGradMs);
  }
  // Never half a profile; through a link, in place on a device (Driver's
  // OutputFile, as every tool's outputs).
  return writeOutputAtomically(path, text);
}
