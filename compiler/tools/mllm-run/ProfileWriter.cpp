//===- ProfileWriter.cpp - measured layer times as a cost profile ---------===//
#include "ProfileWriter.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mllm;
using namespace mllm::runtime;

llvm::Error mllm::writeProfile(llvm::StringRef path,
                               const std::vector<exec::LayerTiming> &timings,
                               llvm::StringRef device) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "# Measured by mllm-run --profile: per layer and microbatch, "
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
  // A temporary file next to the target, renamed over it: never half a
  // profile.
  llvm::SmallString<256> model(path);
  model += ".tmp%%%%%%";
  auto temp = llvm::sys::fs::TempFile::create(model);
  if (!temp)
    return temp.takeError();
  {
    llvm::raw_fd_ostream out(temp->FD, /*shouldClose=*/false);
    out << text;
    out.flush();
    if (out.has_error()) {
      out.clear_error();
      llvm::consumeError(temp->discard());
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "cannot write '" + path + "'");
    }
  }
  return temp->keep(path);
}
