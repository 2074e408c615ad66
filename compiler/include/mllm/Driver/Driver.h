//===- Driver.h - what mllmc, mllm-sim and mllm-run share -------*- C++ -*-===//
//
// One front-end sequence (load, check, generate IR, plan, schedule) behind
// compileSpec(), one set of command-line options for it, and one way to get a
// plan from any input a user hands a tool: a .mllm spec, a .mlir module from
// `mllmc --emit=mllm|sched`, or a plan file from `mllmc --emit=plan`; and
// the one way every tool writes an output file (OutputFile: atomically, never
// over one of its inputs).
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
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir {
class MLIRContext;
class PassManager;
} // namespace mlir

namespace mllm {

/// llvm::cl's parser for an option with named values, whose error for an
/// unknown value lists the values (`--emit takes summary, ast or plan, not
/// 'x'`) instead of "Cannot find option named 'x'!".
template <typename T>
class ChoiceParser : public llvm::cl::parser<T> {
public:
  using llvm::cl::parser<T>::parser;

  bool parse(llvm::cl::Option &o, llvm::StringRef argName, llvm::StringRef arg,
             T &value) {
    std::string names;
    const size_t n = this->Values.size();
    for (size_t i = 0; i < n; ++i) {
      if (this->Values[i].Name == arg) {
        value = this->Values[i].V.getValue();
        return false;
      }
      names += (i == 0 ? "" : i + 1 == n ? " or " : ", ");
      names += this->Values[i].Name;
    }
    return o.error("takes " + names + ", not '" + arg + "'");
  }
};

/// The options every tool that compiles a spec takes. Construct once, in
/// main() before llvm::cl::ParseCommandLineOptions: the members register
/// themselves in `category`.
struct DriverOptions {
  explicit DriverOptions(llvm::cl::OptionCategory &category);

  llvm::cl::list<std::string> includeDirs;
  llvm::cl::opt<std::string> stdlibDir;
  llvm::cl::opt<std::string> profile;
  llvm::cl::opt<sched::ScheduleKind, false, ChoiceParser<sched::ScheduleKind>>
      schedule;
  /// The plans the planner's search over every cut may price
  /// (plan::PipelineResources::searchBudget).
  llvm::cl::opt<uint64_t> searchBudget;
  /// The training steps a tool runs instead of the spec's train.steps
  /// (mllm-run --steps), which the spec's diagnostics count; unset: the
  /// spec's.
  std::optional<int64_t> trainSteps;

  /// Import search options for a main file at `mainFile`.
  LoadOptions loadOptions(llvm::StringRef mainFile) const;
};

/// Before llvm::cl::ParseCommandLineOptions: --help lists the tool's
/// `category`, --help/--version and MLIR's --mlir-* options (IR printing,
/// timing) only. The LLVM backends' hundreds of options, registered in the
/// general category by libLLVM, are listed by --help-hidden only, and are
/// never suggested for a mistyped option ('--stpes' got '--stats', not
/// '--steps'); they are still accepted. `args` is the command line.
void hideUnrelatedOptions(llvm::cl::OptionCategory &category,
                          llvm::ArrayRef<const char *> args);

/// llvm::cl::ParseCommandLineOptions, with its errors on stderr and false
/// returned on one. An unknown option's value ('--stpes 3') is not also
/// reported as a surplus positional argument: the "did you mean" is the
/// fix.
bool parseCommandLine(int argc, const char *const *argv,
                      llvm::StringRef overview);

/// After parseCommandLine: an option of `category` that
/// takes one value, given more than once (`--emit=ast --emit=plan`, where
/// llvm::cl keeps the last), is reported as "TOOL: error: ..." and false is
/// returned. Lists (-I) may repeat.
bool checkRepeatedOptions(llvm::cl::OptionCategory &category,
                          llvm::StringRef tool);

/// --version: `tool`'s (mllmc's) version, the plan format it writes and
/// reads, and the LLVM/MLIR it was built with.
void setVersionPrinter(llvm::StringRef tool);

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
  /// The paths of those files (an output must not replace one of them).
  std::vector<std::string> sources;
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

/// A plan from any input: a spec is compiled and scheduled with
/// options.schedule, a module planned and scheduled where it has not been,
/// a plan file read. A plan or a module with a schedule keeps its own kind
/// unless --schedule was given (then it is rescheduled where it differs).
/// With a spec or IR, `module` receives the planned module (for
/// re-planning). Errors are printed through the context's handler (spec,
/// IR) or returned in `error` (plan files); returns the exit code.
int loadPlan(mlir::MLIRContext &context, llvm::SourceMgr &srcMgr,
             llvm::StringRef path, const DriverOptions &options,
             runtime::Plan &plan, std::string &error,
             mlir::OwningOpRef<mlir::ModuleOp> *module = nullptr);

/// Replaces the plan's programs by a freshly generated and verified schedule
/// of `kind` on the same graph.
llvm::Error reschedule(runtime::Plan &plan, sched::ScheduleKind kind);

/// An output of a tool (docs/cli.md, "Output files"). A regular file (or a
/// new one) is written to a temporary file in its directory and renamed over
/// it by commit(), so a run that fails, or is interrupted, leaves an existing
/// file as it was and no partial one. "-" is standard output; a device or a
/// pipe (/dev/null) is written in place. Write errors (a full disk, a closed
/// pipe) are reported by commit(), naming the file, instead of ending the
/// process with LLVM's "IO failure on output stream". Usage:
///
///   auto out = OutputFile::open(path);    // before the work: fails early
///   ... write to (*out)->os() ...
///   if (ok) error = (*out)->commit();     // else the destructor discards
class OutputFile {
public:
  static llvm::Expected<std::unique_ptr<OutputFile>> open(llvm::StringRef path);
  ~OutputFile();
  OutputFile(const OutputFile &) = delete;
  OutputFile &operator=(const OutputFile &) = delete;

  llvm::raw_ostream &os() { return *stream; }
  llvm::StringRef path() const { return target; }
  /// Flushes, checks for write errors and puts the file in place. After an
  /// error an existing file is untouched. Call at most once.
  llvm::Error commit();

private:
  OutputFile() = default;
  std::string target; ///< As given: "-", or the path the user named.
  std::string real;   ///< The file replaced (links resolved).
  std::optional<llvm::sys::fs::TempFile> temp;
  std::unique_ptr<llvm::raw_fd_ostream> owned;
  llvm::raw_ostream *stream = nullptr;
  bool done = false;
};

/// A tool's exit status once its standard output is flushed: a write that
/// failed there (a full disk, a closed file) is said as `TOOL: error:
/// cannot write to standard output: ...` and makes the status 1 if it was
/// 0, rather than LLVM's fatal "IO failure on output stream" at exit.
int finishStandardOutput(llvm::StringRef tool, int status);

/// Refuses an output that is the same file as one of `inputs` (through any
/// path or link): writing it would destroy the input. Call it before any
/// input is read for the inputs named on the command line, and again for the
/// files found while reading (imports) before committing. "-" (standard
/// input or output) counts only where standard input is a redirected file.
llvm::Error checkOutputNotInput(llvm::StringRef output,
                                llvm::ArrayRef<std::string> inputs);

/// The tools' input file ("-": standard input), as mlir::openInputFile
/// reads it, but at most 256 MiB (the plan's limit) and one byte: a
/// character device or a pipe without end would be read until memory runs
/// out. Null with `error` set when it cannot be read.
std::unique_ptr<llvm::MemoryBuffer> openInputFile(llvm::StringRef path,
                                                  std::string &error);

/// Writes `contents` through an OutputFile at `path`: a whole output
/// produced in memory (mllm-sim's trace and SVG files).
llvm::Error writeOutputAtomically(llvm::StringRef path,
                                  llvm::StringRef contents);

} // namespace mllm

#endif // MLLM_DRIVER_DRIVER_H
