//===- Value.cpp - evaluating field values with units ---------------------===//
#include "Value.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>
#include <optional>

using namespace mllm;
using namespace mllm::sema;

const char *sema::describe(Dim dim) {
  switch (dim) {
  case Dim::None:
    return "a plain number";
  case Dim::Bytes:
    return "a size in bytes";
  case Dim::Bandwidth:
    return "a bandwidth";
  case Dim::Flops:
    return "a compute rate";
  case Dim::Time:
    return "a duration";
  }
  return "a number";
}

std::string Value::describe() const {
  switch (kind) {
  case Kind::Invalid:
    return "an invalid value";
  case Kind::Number:
    if (dim != Dim::None)
      return sema::describe(dim);
    return isInteger ? "an integer" : "a number";
  case Kind::String:
    return "a string";
  case Kind::Ident:
    return "the name '" + text + "'";
  case Kind::List:
    return "a list";
  case Kind::Call:
    return "'" + text + "(...)'";
  }
  return "a value";
}

namespace {
struct Unit {
  const char *name;
  double scale;
  Dim dim;
};
// Counts use binary multiples, as in "4k context" = 4096 tokens.
const Unit units[] = {
    {"k", 1024.0, Dim::None},
    {"K", 1024.0, Dim::None},
    {"M", 1048576.0, Dim::None},
    {"G", 1073741824.0, Dim::None},
    {"B", 1, Dim::Bytes},
    {"KB", 1e3, Dim::Bytes},
    {"MB", 1e6, Dim::Bytes},
    {"GB", 1e9, Dim::Bytes},
    {"TB", 1e12, Dim::Bytes},
    {"KiB", 1024.0, Dim::Bytes},
    {"MiB", 1048576.0, Dim::Bytes},
    {"GiB", 1073741824.0, Dim::Bytes},
    {"TiB", 1099511627776.0, Dim::Bytes},
    {"B/s", 1, Dim::Bandwidth},
    {"KB/s", 1e3, Dim::Bandwidth},
    {"MB/s", 1e6, Dim::Bandwidth},
    {"GB/s", 1e9, Dim::Bandwidth},
    {"TB/s", 1e12, Dim::Bandwidth},
    {"KiB/s", 1024.0, Dim::Bandwidth},
    {"MiB/s", 1048576.0, Dim::Bandwidth},
    {"GiB/s", 1073741824.0, Dim::Bandwidth},
    {"TiB/s", 1099511627776.0, Dim::Bandwidth},
    {"bps", 1.0 / 8, Dim::Bandwidth},
    {"Kbps", 1e3 / 8, Dim::Bandwidth},
    {"Mbps", 1e6 / 8, Dim::Bandwidth},
    {"Gbps", 1e9 / 8, Dim::Bandwidth},
    {"Tbps", 1e12 / 8, Dim::Bandwidth},
    {"Gb/s", 1e9 / 8, Dim::Bandwidth},
    {"Tb/s", 1e12 / 8, Dim::Bandwidth},
    {"FLOPS", 1, Dim::Flops},
    {"GFLOPS", 1e9, Dim::Flops},
    {"TFLOPS", 1e12, Dim::Flops},
    {"PFLOPS", 1e15, Dim::Flops},
    {"TFLOP/s", 1e12, Dim::Flops},
    {"PFLOP/s", 1e15, Dim::Flops},
    {"s", 1, Dim::Time},
    {"ms", 1e-3, Dim::Time},
    {"us", 1e-6, Dim::Time},
    {"min", 60, Dim::Time},
    {"h", 3600, Dim::Time},
};
} // namespace

std::string sema::formatNumber(double value) {
  char buf[64];
  // Integers are exact in a double up to 2^53: print them whole.
  if (value == std::floor(value) && std::fabs(value) <= 9007199254740992.0)
    snprintf(buf, sizeof(buf), "%lld", (long long)value);
  else
    snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

std::vector<std::string> sema::knownUnits() {
  std::vector<std::string> out;
  for (const Unit &u : units)
    out.push_back(u.name);
  return out;
}

static Value invalid() { return Value(); }

/// `v`, or an error at `e` when it overflowed a double (1e309, 1e200 *
/// 1e200): every field wants a finite value, and an infinity would reach
/// the IR's verifier or the plan.
static Value finite(Value v, const ast::Expr &e, Diagnostics &diags) {
  if (std::isfinite(v.number))
    return v;
  diags.error(e.range) << "number out of range: its magnitude passes the "
                          "largest a field can hold (about 1.8e308)";
  return invalid();
}

/// Whether a unit counts bits (Gbps, Tb/s): a lower-case 'b'.
static bool isBits(llvm::StringRef unit) { return unit.contains('b'); }

/// What to say after "unknown unit 'U'": the unit meant, among those of
/// `expected` when the field's dimension is known (a count takes k/M/G
/// only), else among all.
static std::string unitHint(const ast::Expr &e, llvm::StringRef digits,
                            std::optional<Dim> expected) {
  llvm::StringRef written = e.unit;
  // A unit written without a lower-case 'b' is not one of bits (3.35TBps is
  // a rate in TB/s, not Tbps); one with may be either ('gb/sec').
  auto allowed = [&](llvm::StringRef unit, Dim dim) {
    return (!expected || dim == *expected) &&
           (isBits(written) || !isBits(unit));
  };
  auto dimOf = [](llvm::StringRef unit) {
    for (const Unit &u : units)
      if (unit == u.name)
        return u.dim;
    return Dim::None;
  };
  // Spellings of other tools, which edit distance maps to a unit of another
  // dimension ('400Gb' to GB, a size; '989TF' to TB).
  static const std::pair<llvm::StringRef, llvm::StringRef> spellings[] = {
      {"gb", "Gbps"},      {"gbit", "Gbps"},    {"gbit/s", "Gbps"},
      {"gbits/s", "Gbps"}, {"tb", "Tbps"},      {"tbit/s", "Tbps"},
      {"mb", "Mbps"},      {"mbit/s", "Mbps"},  {"gbps/s", "Gbps"},
      {"tf", "TFLOPS"},    {"tflop", "TFLOPS"}, {"tflops/s", "TFLOPS"},
      {"pf", "PFLOPS"},    {"pflop", "PFLOPS"}, {"gf", "GFLOPS"},
      {"gbps", "Gbps"},    {"gbps", "GB/s"},    {"tbps", "Tbps"},
      {"tbps", "TB/s"},    {"mbps", "Mbps"},    {"mbps", "MB/s"},
      {"gb/sec", "GB/s"},  {"gibps", "GiB/s"},  {"sec", "s"},
      {"secs", "s"},       {"seconds", "s"},    {"msec", "ms"}};
  std::string lower = written.lower();
  for (const auto &[spelling, unit] : spellings)
    if (lower == spelling && allowed(unit, dimOf(unit)))
      return ("; did you mean '" + unit + "'?").str();
  if (lower == "px" || lower == "pixels")
    return ("; an image size is a plain number of pixels: write '" + digits +
            "'")
        .str();
  auto hint = [](llvm::StringRef unit) {
    return ("; did you mean '" + unit + "'?").str();
  };
  // The case differs ('gib'), or a bit is written for a byte where the
  // field's dimension has no bits ('80Gb' of a memory).
  for (const Unit &u : units)
    if (llvm::StringRef(u.name).equals_insensitive(written) &&
        allowed(u.name, u.dim))
      return hint(u.name);
  // A prefix of the field's units: one scale is the unit meant ('312T' for
  // TFLOPS or TFLOP/s); of several, each is named ('80g': GB or GiB).
  if (expected) {
    std::vector<const Unit *> found;
    for (const Unit &u : units)
      if (u.dim == *expected &&
          llvm::StringRef(u.name).starts_with_insensitive(written) &&
          llvm::none_of(found,
                        [&](const Unit *f) { return f->scale == u.scale; }))
        found.push_back(&u);
    if (found.size() == 1)
      return hint(found[0]->name);
    if (found.size() > 1) {
      std::string names;
      for (size_t i = 0; i < found.size(); ++i)
        names += std::string(i == 0                  ? "'"
                             : i + 1 == found.size() ? "' or '"
                                                     : "', '") +
                 found[i]->name;
      return "; did you mean " + names + "'?";
    }
  }
  // Close spellings, which keep the scale letter written ('Gs' for GB, not
  // B: 80 bytes for a memory).
  std::string best;
  unsigned bestDist = 3;
  for (const Unit &u : units) {
    if (!allowed(u.name, u.dim) ||
        llvm::toLower(u.name[0]) != llvm::toLower(written[0]))
      continue;
    unsigned d = llvm::StringRef(u.name).edit_distance(written, true);
    if (d < bestDist) {
      bestDist = d;
      best = u.name;
    }
  }
  if (!best.empty())
    return hint(best);
  if (!expected)
    return "; units are k/M/G (x1024), B/KB/GB/GiB, GB/s or Gbps, TFLOPS, "
           "s or ms";
  if (*expected == Dim::None)
    return "; this field takes a plain number, with k, M or G (x1024) at "
           "most";
  std::string list;
  for (const Unit &u : units)
    if (u.dim == *expected)
      list += (list.empty() ? "" : ", ") + std::string(u.name);
  return "; " + std::string(describe(*expected)) + " takes " + list;
}

static Value number(const ast::Expr &e, Diagnostics &diags,
                    std::optional<Dim> expected) {
  std::string digits;
  for (char c : e.text)
    if (c != '_')
      digits += c;
  Value v;
  v.kind = Value::Kind::Number;
  v.range = e.range;
  v.isInteger = digits.find_first_of(".eE") == std::string::npos;
  if (llvm::StringRef(digits).getAsDouble(v.number)) {
    diags.error(e.range) << "malformed number '" << e.text << "'";
    return invalid();
  }
  if (e.unit.empty())
    return finite(v, e, diags);
  for (const Unit &u : units) {
    if (e.unit != u.name)
      continue;
    v.number *= u.scale;
    v.dim = u.dim;
    // Binary count multiples keep integers integral; 1.5k is 1536.
    v.isInteger =
        (v.isInteger || v.dim == Dim::None) && v.number == std::floor(v.number);
    return finite(v, e, diags);
  }
  // `1e` and `0xff` lex as a number with a unit; say what they were meant
  // to be.
  if (e.unit == "e" || e.unit == "E") {
    diags.error(e.range) << "the exponent of '" << e.text << e.unit
                         << "' has no digits; write one as in 1e3 (1000)";
    return invalid();
  }
  if (digits == "0" && (e.unit[0] == 'x' || e.unit[0] == 'X')) {
    auto diag = diags.error(e.range)
                << "hexadecimal numbers are not supported; write '0" << e.unit
                << "' in decimal";
    uint64_t decimal;
    if (!llvm::StringRef(e.unit).drop_front().getAsInteger(16, decimal))
      diag << " (" << decimal << ")";
    return invalid();
  }
  diags.error(e.range) << "unknown unit '" << e.unit << "'"
                       << unitHint(e, digits, expected);
  return invalid();
}

static Value binary(const ast::Expr &e, Diagnostics &diags,
                    std::optional<Dim> expected) {
  // An operand's unit: most likely the field's dimension, as a count
  // operand rarely has one.
  Value lhs = evaluate(*e.operands[0], diags, expected);
  Value rhs = evaluate(*e.operands[1], diags, expected);
  if (!lhs.valid() || !rhs.valid())
    return invalid();
  for (const Value *side : {&lhs, &rhs})
    if (side->kind != Value::Kind::Number) {
      diags.error(side->range)
          << "arithmetic needs numbers, got " << side->describe();
      return invalid();
    }
  Value v;
  v.kind = Value::Kind::Number;
  v.range = e.range;
  v.isInteger = lhs.isInteger && rhs.isInteger;
  switch (e.op) {
  case '+':
  case '-':
    if (lhs.dim != rhs.dim) {
      diags.error(e.range) << "cannot " << (e.op == '+' ? "add" : "subtract")
                           << " " << describe(lhs.dim) << " and "
                           << describe(rhs.dim);
      return invalid();
    }
    v.dim = lhs.dim;
    v.number = e.op == '+' ? lhs.number + rhs.number : lhs.number - rhs.number;
    return finite(v, e, diags);
  case '*':
    if (lhs.dim != Dim::None && rhs.dim != Dim::None) {
      diags.error(e.range) << "cannot multiply " << describe(lhs.dim) << " by "
                           << describe(rhs.dim);
      return invalid();
    }
    v.dim = lhs.dim != Dim::None ? lhs.dim : rhs.dim;
    v.number = lhs.number * rhs.number;
    return finite(v, e, diags);
  default: // '/'
    if (rhs.number == 0) {
      diags.error(e.operands[1]->range) << "division by zero";
      return invalid();
    }
    if (rhs.dim != Dim::None && rhs.dim != lhs.dim) {
      diags.error(e.range) << "cannot divide " << describe(lhs.dim) << " by "
                           << describe(rhs.dim);
      return invalid();
    }
    v.dim = rhs.dim == Dim::None ? lhs.dim : Dim::None;
    v.number = lhs.number / rhs.number;
    // Integer division is exact or it is not an integer.
    v.isInteger = v.isInteger && v.number == std::floor(v.number);
    return finite(v, e, diags);
  }
}

Value sema::evaluate(const ast::Expr &e, Diagnostics &diags,
                     std::optional<Dim> expected) {
  using K = ast::Expr::Kind;
  switch (e.kind) {
  case K::Number:
    return number(e, diags, expected);
  case K::String: {
    Value v;
    v.kind = Value::Kind::String;
    v.text = e.name;
    v.range = e.range;
    return v;
  }
  case K::Ident: {
    Value v;
    v.kind = Value::Kind::Ident;
    v.text = e.name;
    v.range = e.range;
    return v;
  }
  case K::List:
  case K::Call: {
    Value v;
    v.kind = e.kind == K::List ? Value::Kind::List : Value::Kind::Call;
    v.text = e.name;
    v.range = e.range;
    for (const auto &operand : e.operands) {
      Value elem = evaluate(*operand, diags, expected);
      if (!elem.valid())
        return invalid();
      v.elems.push_back(std::move(elem));
    }
    return v;
  }
  case K::Binary:
    return binary(e, diags, expected);
  case K::Negate: {
    Value v = evaluate(*e.operands[0], diags, expected);
    if (!v.valid())
      return v;
    if (v.kind != Value::Kind::Number) {
      diags.error(e.range) << "cannot negate " << v.describe();
      return invalid();
    }
    v.number = -v.number;
    v.range = e.range;
    return v;
  }
  }
  return invalid();
}
