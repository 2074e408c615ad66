//===- Sema.cpp - semantic analysis of a program --------------------------===//
//
// Drives the analysis: collects the declarations of all files
// (Declarations.cpp), checks every block against its schema (Blocks.cpp,
// reading fields through Fields.cpp), resolves family/instance inheritance
// into architecture configs (Arch.cpp) and analyses the job (Job.cpp,
// Parallel.cpp).
//
//===----------------------------------------------------------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mllm;
using namespace mllm::sema;

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

std::optional<spec::Job> Sema::run(bool requireJob, spec::Library *library) {
  collect();
  // Every declaration is checked, used or not, so a library cannot rot.
  for (const auto &file : program.files)
    for (const auto &block : file->blocks) {
      auto it = decls.find(block->name.name);
      if (it == decls.end() || it->second != block.get())
        continue;
      if (block->kind.name == "hardware") {
        if (auto h = resolveHardware(*block); h && library)
          library->hardware[h->name] = *h;
      } else if (block->kind.name == "instance") {
        if (auto c = resolveInstance(*block); c && library)
          library->instances[c->instance] = *c;
      } else {
        (void)checkFamily(*block);
      }
    }

  spec::Job job;
  job.file = program.main().path;
  if (requireJob) {
    llvm::SMLoc start = llvm::SMLoc::getFromPointer(
        diags.getSourceMgr()
            .getMemoryBuffer(program.main().bufferId)
            ->getBufferStart());
    for (auto [block, kind] :
         {std::pair{model, "model"}, {data, "data"}, {cluster, "cluster"}})
      if (!block)
        diags.error(start) << "no '" << kind
                           << "' block; a job needs 'model', 'data' and "
                              "'cluster' blocks (see docs/language.md)";
    // Each block is checked as far as what it depends on is valid, so one
    // run reports as many independent errors as possible.
    bool clusterOk = cluster && resolveCluster(*cluster, job.cluster);
    bool modelOk = model && resolveModel(*model, job.model);
    if (modelOk) {
      bool dataOk = resolveData(data, job);
      if (dataOk && clusterOk)
        resolveParallel(parallel, job);
    }
    if (resolveTrain(train, job.train) && modelOk)
      warnIfNothingTrains(job);
  }
  if (diags.numErrors() != 0)
    return std::nullopt;
  return job;
}

void Sema::warnIfNothingTrains(const spec::Job &job) {
  const spec::Model &m = job.model;
  if (!m.llm.frozen || llvm::any_of(m.encoders, [](const spec::Encoder &e) {
        return !e.frozen || !e.projector.frozen;
      }))
    return;
  // Legitimate for evaluation and generation, but a training job that
  // changes nothing is more often a forgotten `frozen = false`.
  diags.warning(m.loc) << "nothing in model '" << m.name
                       << "' trains: every part is frozen, so its "
                       << job.train.steps
                       << " training step(s) change no parameter; set "
                          "'frozen = false' on the parts to train "
                          "(evaluation and generation need no trainable "
                          "part)";
}

std::optional<spec::Job> mllm::analyze(const Program &program,
                                       Diagnostics &diags, bool requireJob,
                                       spec::Library *library) {
  unsigned before = diags.numErrors();
  sema::Sema sema(program, diags);
  auto job = sema.run(requireJob, library);
  if (diags.numErrors() != before)
    return std::nullopt;
  return job;
}
