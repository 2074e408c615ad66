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
    // Only of a spec without errors: a mistyped block ('encodr') drops the
    // trainable part it held, and the warning would blame the model.
    if (resolveTrain(train, job.train) && modelOk && diags.numErrors() == 0)
      warnIfNothingTrains(job);
  }
  if (diags.numErrors() != 0)
    return std::nullopt;
  return job;
}

void Sema::warnIfNothingTrains(const spec::Job &job) {
  // A run of no step (evaluation, generation) wastes none.
  const int64_t steps = trainSteps.value_or(job.train.steps);
  const spec::Model &m = job.model;
  if (steps == 0 || !m.llm.frozen ||
      llvm::any_of(m.encoders, [](const spec::Encoder &e) {
        return !e.frozen || !e.projector.frozen;
      }))
    return;
  // Legitimate for evaluation and generation, but a training job that
  // changes nothing is more often a forgotten `frozen = false`.
  diags.warning(m.loc) << "nothing in model '" << m.name
                       << "' trains: every part is frozen, so its " << steps
                       << " training step(s) change no parameter; set "
                          "'frozen = false' on the parts to train "
                          "(evaluation and generation need no trainable "
                          "part)";
}

/// Emits the diagnostics of `run` in source order (files in load order, then
/// line and column): the analysis visits blocks by dependence (the cluster
/// before the model) and a block's structure before its values.
static void emitInSourceOrder(const Program &program,
                              std::vector<mlir::Diagnostic> &captured,
                              Diagnostics &diags) {
  std::vector<llvm::StringRef> names;
  for (const auto &file : program.files)
    names.push_back(diags.getSourceMgr()
                        .getMemoryBuffer(file->bufferId)
                        ->getBufferIdentifier());
  auto key = [&](const mlir::Diagnostic &d) {
    auto loc = llvm::dyn_cast<mlir::FileLineColLoc>(d.getLocation());
    if (!loc)
      return std::tuple(program.files.size(), 0u, 0u);
    size_t file =
        llvm::find(names, loc.getFilename().getValue()) - names.begin();
    return std::tuple(file, loc.getLine(), loc.getColumn());
  };
  // Ties keep the order of emission (the index breaks them).
  std::vector<std::pair<std::tuple<size_t, unsigned, unsigned>, size_t>> order;
  for (size_t i = 0; i < captured.size(); ++i)
    order.push_back({key(captured[i]), i});
  llvm::sort(order);
  for (auto &entry : order)
    diags.getContext().getDiagEngine().emit(std::move(captured[entry.second]));
}

std::optional<spec::Job> mllm::analyze(const Program &program,
                                       Diagnostics &diags, bool requireJob,
                                       spec::Library *library,
                                       std::optional<int64_t> trainSteps) {
  unsigned before = diags.numErrors();
  std::vector<mlir::Diagnostic> captured;
  std::optional<spec::Job> job;
  {
    mlir::ScopedDiagnosticHandler capture(&diags.getContext(),
                                          [&](mlir::Diagnostic &d) {
                                            captured.push_back(std::move(d));
                                            return mlir::success();
                                          });
    sema::Sema sema(program, diags);
    sema.trainSteps = trainSteps;
    job = sema.run(requireJob, library);
  }
  emitInSourceOrder(program, captured, diags);
  if (diags.numErrors() != before)
    return std::nullopt;
  return job;
}
