//===- Driver.h - what mllmc, mllm-sim and mllm-run share -------*- C++ -*-===//
//
// One front-end sequence (load, check, generate IR, plan, schedule) behind
// compileSpec(), one set of command-line options for it, and one way to get a
// plan from any input a user hands a tool: a .mllm spec, a .mlir module from
// `mllmc --emit=mllm|sched`, or a plan file from `mllmc --emit=plan`.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DRIVER_DRIVER_H
#define MLLM_DRIVER_DRIVER_H

#include "mllm/Sched/Generate.h"
#include "mllm/Sema/Sema.h"
#include "mllm/runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/SourceMgr.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir {
class MLIRContext;
class PassManager;
} // namespace mlir

namespace mllm {

/// The options every tool that compiles a spec takes. Construct once, in
/// main() before llvm::cl::ParseCommandLineOptions: the members register
/// themselves in `category`.
struct DriverOptions {
  explicit DriverOptions(llvm::cl::OptionCategory &category);

  llvm::cl::list<std::string> includeDirs;
  llvm::cl::opt<std::string> stdlibDir;
  llvm::cl::opt<std::string> profile;
  llvm::cl::opt<sched::ScheduleKind> schedule;

  /// Import search options for a main file at `mainFile`.
  LoadOptions loadOptions(llvm::StringRef mainFile) const;
};

/// Loads options.profile (if given) to report a bad one once, up front, as
/// the user's error: a located message as the reader gives it, else
/// "TOOL: error: ...". Returns false after reporting.
bool checkProfile(const DriverOptions &options, llvm::StringRef tool);

/// How far compileSpec() goes.
enum class CompileStage { Sema, IR, Plan, Schedule };

/// What compileSpec() produces.
struct Compiled {
  std::optional<spec::Job> job;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  /// SHA-256 (hex) of every source file the spec loaded, in load order.
  std::string specHash;
};

/// Front end, then the plan pipeline and the schedule pipeline up to
/// `stage`. Diagnostics go to the context's handler (located in the
/// spec). `configure` may add options to the pass manager before it runs
/// (mllmc's --mlir-print-ir-* flags). Returns the exit code: 0, 1 (the
/// spec's fault, diagnosed) or 2 (internal).
int compileSpec(mlir::MLIRContext &context, llvm::SourceMgr &srcMgr,
                unsigned bufferId, llvm::StringRef mainFile,
                const DriverOptions &options, CompileStage stage, Compiled &out,
                mlir::TimingScope *timing = nullptr,
                llvm::function_ref<mlir::LogicalResult(mlir::PassManager &)>
                    configure = {});

/// The plan pipeline, and the schedule pipeline when `schedule` is set, on
/// a module (compileSpec's passes).
mlir::LogicalResult
runPipelines(mlir::ModuleOp module, const DriverOptions &options,
             std::optional<sched::ScheduleKind> schedule,
             mlir::TimingScope *timing = nullptr,
             llvm::function_ref<mlir::LogicalResult(mlir::PassManager &)>
                 configure = {});

/// What a tool's input file is.
enum class InputKind { Spec, IR, Plan };
/// By extension (.mllm, .mlir, .yaml/.yml), else by content; `why` says how
/// a file not named after its kind was recognised.
InputKind classifyInput(llvm::StringRef path, llvm::StringRef text,
                        std::string *why = nullptr);

/// A plan from any input, scheduled with options.schedule: a spec is
/// compiled, a module planned and scheduled where it has not been, a plan
/// file read (and rescheduled when options.schedule differs from its
/// kind). With a spec or IR, `module` receives the planned module (for
/// re-planning). Errors are printed through the context's handler (spec,
/// IR) or returned in `error` (plan files); returns the exit code.
int loadPlan(mlir::MLIRContext &context, llvm::SourceMgr &srcMgr,
             llvm::StringRef path, const DriverOptions &options,
             runtime::Plan &plan, std::string &error,
             mlir::OwningOpRef<mlir::ModuleOp> *module = nullptr);

/// Replaces the plan's programs by a freshly generated and verified schedule
/// of `kind` on the same graph.
llvm::Error reschedule(runtime::Plan &plan, sched::ScheduleKind kind);

} // namespace mllm

#endif // MLLM_DRIVER_DRIVER_H
