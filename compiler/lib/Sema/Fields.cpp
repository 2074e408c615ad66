//===- Fields.cpp - reading typed fields of a block -----------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <optional>

using namespace mllm;
using namespace mllm::sema;

//===----------------------------------------------------------------------===//
// Fields
//===----------------------------------------------------------------------===//

void Fields::add(const ast::Block &block, Schema schema) {
  for (const ast::Field &field : block.fields)
    if (const FieldSpec *spec = lookup(schema, field.name.name)) {
      fields[field.name.name] = &field;
      types[field.name.name] = spec->type;
    }
  last = block.range;
}

/// The dimension of a field's numbers, where its type fixes one.
static std::optional<Dim> numberDim(Type type) {
  switch (type) {
  case Type::Int:
  case Type::Float:
  case Type::IntList:
  case Type::Size2D:
  case Type::IntOrAuto:
    return Dim::None;
  case Type::Bytes:
    return Dim::Bytes;
  case Type::Bandwidth:
    return Dim::Bandwidth;
  case Type::Flops:
    return Dim::Flops;
  case Type::Duration:
    return Dim::Time;
  default:
    return std::nullopt;
  }
}

const ast::Field *Fields::get(llvm::StringRef name) const {
  auto it = fields.find(name);
  return it == fields.end() ? nullptr : it->second;
}

bool Fields::require(llvm::StringRef name) {
  if (has(name))
    return true;
  if (sema.onceKey(std::to_string((uintptr_t)last.Start.getPointer()) +
                   name.str()))
    sema.diags.error(last) << context << " is missing required field '" << name
                           << "'";
  return false;
}

Value Fields::value(llvm::StringRef name) {
  const ast::Field *field = get(name);
  if (!field)
    return Value();
  // Each field is evaluated (and its errors reported) once, however many
  // instances inherit it.
  auto it = sema.values.find(field);
  if (it == sema.values.end())
    it = sema.values
             .try_emplace(field, evaluate(*field->value, sema.diags,
                                          numberDim(types.lookup(name))))
             .first;
  return it->second;
}

void Fields::typeError(llvm::StringRef name, const Value &value,
                       llvm::StringRef expected,
                       llvm::ArrayRef<std::string> names) {
  const ast::Field *field = get(name);
  if (!sema.once(&field->value))
    return;
  auto diag =
      sema.diags.error(value.range.isValid() ? value.range : field->range)
      << "field '" << name << "' expects " << expected << ", got "
      << value.describe();
  if (value.kind == Value::Kind::Ident && !names.empty())
    diag << Sema::suggest(value.text, names);
}

bool Fields::readInt(llvm::StringRef name, int64_t &out, int64_t min,
                     int64_t max) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Number || v.dim != Dim::None || !v.isInteger) {
    typeError(name, v, "an integer");
    return false;
  }
  if (v.number > (double)max) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range) << "field '" << name << "' must be at most "
                                << max << ", got " << formatNumber(v.number);
    return false;
  }
  if (v.number < (double)min) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range) << "field '" << name << "' must be at least "
                                << min << ", got " << formatNumber(v.number);
    return false;
  }
  out = (int64_t)v.number;
  return true;
}

bool Fields::readFloat(llvm::StringRef name, double &out, double min,
                       bool exclusive) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Number || v.dim != Dim::None) {
    typeError(name, v, "a number");
    return false;
  }
  if (exclusive ? !(v.number > min) : !(v.number >= min)) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range)
          << "field '" << name << "' must be "
          << (exclusive ? "greater than " : "at least ") << formatNumber(min);
    return false;
  }
  out = v.number;
  return true;
}

bool Fields::readBool(llvm::StringRef name, bool &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Ident || (v.text != "true" && v.text != "false")) {
    typeError(name, v, "true or false");
    return false;
  }
  out = v.text == "true";
  return true;
}

bool Fields::readDim(llvm::StringRef name, double &out, Dim dim) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Number || v.dim != dim) {
    std::string expected = describe(dim);
    if (v.kind == Value::Kind::Number && v.dim == Dim::None)
      expected += dim == Dim::Bytes       ? " (add a unit: 48GiB)"
                  : dim == Dim::Bandwidth ? " (add a unit: 200Gbps, 600GB/s)"
                  : dim == Dim::Flops     ? " (add a unit: 312TFLOPS)"
                                          : " (add a unit: 30s, 10ms)";
    typeError(name, v, expected);
    return false;
  }
  if (!(v.number > 0)) {
    if (sema.once(&get(name)->name))
      sema.diags.error(v.range) << "field '" << name << "' must be positive";
    return false;
  }
  out = v.number;
  return true;
}

bool Fields::readBytes(llvm::StringRef name, int64_t &out) {
  double bytes = (double)out;
  if (!readDim(name, bytes, Dim::Bytes))
    return false;
  // Integers beyond 2^53 are not exact in the evaluator's doubles; no GPU
  // needs them.
  if (bytes > (double)bounds::kMaxBytes) {
    if (sema.once(&get(name)->name))
      sema.diags.error(get(name)->value->range)
          << "field '" << name << "' is too large";
    return false;
  }
  out = (int64_t)std::llround(bytes);
  return true;
}

bool Fields::readChoice(llvm::StringRef name, llvm::StringRef choices,
                        int &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  llvm::SmallVector<llvm::StringRef> options;
  choices.split(options, '|');
  std::string list;
  for (size_t i = 0; i < options.size(); ++i)
    list += (i ? (i + 1 == options.size() ? " or " : ", ") : "") +
            ("'" + options[i] + "'").str();
  if (v.kind != Value::Kind::Ident) {
    typeError(name, v, "one of " + list);
    return false;
  }
  for (size_t i = 0; i < options.size(); ++i)
    if (v.text == options[i]) {
      out = (int)i;
      return true;
    }
  if (sema.once(&get(name)->value)) {
    std::vector<std::string> names(options.begin(), options.end());
    sema.diags.error(v.range)
        << "'" << v.text << "' is not a valid " << name << "; expected " << list
        << Sema::suggest(v.text, names);
  }
  return false;
}

bool Fields::readIntList(llvm::StringRef name, std::vector<int64_t> &out,
                         int64_t max) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::List) {
    typeError(name, v, "a list of integers like [4, 4]");
    return false;
  }
  std::vector<int64_t> result;
  for (const Value &e : v.elems) {
    if (e.kind != Value::Kind::Number || e.dim != Dim::None || !e.isInteger ||
        e.number < 1) {
      if (sema.once(&get(name)->value))
        sema.diags.error(e.range)
            << "'" << name << "' entries must be positive integers";
      return false;
    }
    // Bounded entries keep the sum of any list the front end accepts
    // (at most 2^16 entries) inside int64.
    if (e.number > (double)max) {
      if (sema.once(&get(name)->value))
        sema.diags.error(e.range)
            << "'" << name << "' entry " << formatNumber(e.number)
            << " exceeds the limit " << max;
      return false;
    }
    result.push_back((int64_t)e.number);
  }
  out = std::move(result);
  return true;
}

bool Fields::readSize2D(llvm::StringRef name, int64_t &width, int64_t &height) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  auto positiveInt = [](const Value &e) {
    return e.kind == Value::Kind::Number && e.dim == Dim::None && e.isInteger &&
           e.number >= 1 && e.number <= (double)bounds::kMaxWidth;
  };
  if (positiveInt(v)) {
    width = height = (int64_t)v.number;
    return true;
  }
  if (v.kind == Value::Kind::List && v.elems.size() == 2 &&
      positiveInt(v.elems[0]) && positiveInt(v.elems[1])) {
    width = (int64_t)v.elems[0].number;
    height = (int64_t)v.elems[1].number;
    return true;
  }
  typeError(name, v, "a positive size like 384 or [1280, 720]");
  return false;
}

bool Fields::readRecompute(llvm::StringRef name, spec::Recompute &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind == Value::Kind::Ident) {
    if (v.text == "true" || v.text == "full") {
      out = spec::Recompute::Full;
      return true;
    }
    if (v.text == "false" || v.text == "none") {
      out = spec::Recompute::None;
      return true;
    }
    if (v.text == "selective") {
      out = spec::Recompute::Selective;
      return true;
    }
  }
  typeError(name, v, "true, false, 'full', 'selective' or 'none'",
            {"true", "false", "full", "selective", "none"});
  return false;
}

bool Fields::readName(llvm::StringRef name, Value &out) {
  if (!has(name))
    return true;
  Value v = value(name);
  if (!v.valid())
    return false;
  if (v.kind != Value::Kind::Ident) {
    typeError(name, v, "a name");
    return false;
  }
  out = v;
  return true;
}
