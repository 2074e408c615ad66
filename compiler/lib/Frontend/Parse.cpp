//===- Parse.cpp - .mllm text to syntax tree ------------------------------===//
//
// The only code that sees ANTLR. It is compiled with exceptions; nothing
// escapes parseBuffer (the exception firewall at the bottom). Syntax errors
// become MLIR diagnostics at byte-exact positions: ANTLR counts code points,
// the SourceMgr counts bytes, so positions go through a code-point table.
//
//===----------------------------------------------------------------------===//
#include "mllm/Frontend/Parse.h"

#include "MLLMLexer.h"
#include "MLLMParser.h"
#include "antlr4-runtime.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/ConvertUTF.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::grammar;

namespace {

/// Deeper nesting than this is rejected before parsing: the generated parser
/// recurses per level and would otherwise exhaust the stack on hostile input.
constexpr unsigned kMaxNesting = 128;
/// Operators in one field's value (or list entry): the parser recurses per
/// unary '-', and the AST is as deep as a chain of binary operators is
/// long.
constexpr unsigned kMaxOperators = 256;
/// Syntax errors reported per file before giving up on it.
constexpr unsigned kMaxSyntaxErrors = 50;
/// Bytes of an identifier: diagnostics quote identifiers, and a longer one
/// would fill a terminal with each.
constexpr size_t kMaxIdentifier = 256;

/// Maps ANTLR code-point indices to byte pointers in the SourceMgr buffer.
class PositionMap {
public:
  explicit PositionMap(llvm::StringRef text) : text(text) {
    bool ascii =
        llvm::all_of(text, [](char c) { return (unsigned char)c < 0x80; });
    if (ascii)
      return;
    for (size_t i = 0; i < text.size();) {
      cpToByte.push_back(i);
      unsigned len = llvm::getNumBytesForUTF8((unsigned char)text[i]);
      i += std::max(1u, len);
    }
  }

  llvm::SMLoc at(ssize_t cpIndex) const {
    size_t byte;
    if (cpIndex < 0)
      byte = text.size();
    else if (cpToByte.empty())
      byte = std::min<size_t>(cpIndex, text.size());
    else
      byte =
          (size_t)cpIndex < cpToByte.size() ? cpToByte[cpIndex] : text.size();
    return llvm::SMLoc::getFromPointer(text.data() + byte);
  }

private:
  llvm::StringRef text;
  std::vector<size_t> cpToByte; ///< Empty for ASCII buffers (identity).
};

/// Rewrites ANTLR's token names into words a user knows.
std::string friendlyMessage(std::string msg) {
  auto replaceAll = [&](llvm::StringRef from, llvm::StringRef to) {
    size_t pos = 0;
    while ((pos = msg.find(from.str(), pos)) != std::string::npos) {
      msg.replace(pos, from.size(), to.str());
      pos += to.size();
    }
  };
  replaceAll("<EOF>", "end of file");
  replaceAll("IDENT", "identifier");
  replaceAll("NUMBER", "number");
  replaceAll("STRING", "string");
  replaceAll("UNTERMINATED_string", "string");
  replaceAll("UNKNOWN_CHAR", "character");
  // "missing ';' at 'x'" reads better as "expected ';' before 'x'".
  if (llvm::StringRef(msg).starts_with("missing ")) {
    size_t at = msg.find(" at ");
    if (at != std::string::npos)
      msg =
          "expected " + msg.substr(8, at - 8) + " before" + msg.substr(at + 3);
  }
  if (llvm::StringRef(msg).starts_with("mismatched input "))
    msg = "unexpected " + msg.substr(17);
  if (llvm::StringRef(msg).starts_with("extraneous input "))
    msg = "unexpected " + msg.substr(17);
  if (llvm::StringRef(msg).starts_with("no viable alternative at input "))
    msg = "cannot parse " + msg.substr(31);
  replaceAll(" expecting ", "; expected ");
  return msg;
}

class ErrorListener : public antlr4::BaseErrorListener {
public:
  ErrorListener(Diagnostics &diags, const PositionMap &positions)
      : diags(diags), positions(positions) {}

  void syntaxError(antlr4::Recognizer *recognizer, antlr4::Token *offending,
                   size_t, size_t, const std::string &msg,
                   std::exception_ptr error) override {
    if (!offending)
      return; // The lexer has a catch-all token, so it reports nothing.
    // "no viable alternative" starts where the failed decision began, which
    // is where the user's mistake is (`layers 1;`, trailing junk at the end).
    antlr4::Token *start = nullptr;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const antlr4::NoViableAltException &e) {
        start = e.getStartToken();
      } catch (...) {
      }
    }
    antlr4::Token *at = offending;
    if (start && (offending->getType() == antlr4::Token::EOF ||
                  start->getTokenIndex() + 1 == offending->getTokenIndex()))
      at = start;
    ssize_t index = (ssize_t)at->getStartIndex();
    if (!reported.insert(index).second)
      return; // One error per token: recovery may revisit it.
    if (++count > kMaxSyntaxErrors)
      return;
    llvm::SMLoc loc = positions.at(index);
    if (count == kMaxSyntaxErrors) {
      diags.error(loc) << "too many syntax errors; stopping here";
      return;
    }
    switch (offending->getType()) {
    case MLLMLexer::UNKNOWN_CHAR: {
      std::string text = offending->getText();
      auto diag =
          diags.error(positions.at((ssize_t)offending->getStartIndex()));
      // A control character prints as nothing (or moves the caret).
      if (text.size() == 1 &&
          (static_cast<unsigned char>(text[0]) < 0x20 || text[0] == 0x7f))
        diag << "unexpected control character "
             << llvm::formatv("U+{0:X-4}", static_cast<unsigned>(text[0])).str()
             << "; a spec is UTF-8 text (is this a binary file?)";
      else
        diag << "unexpected character '" << text << "'";
      return;
    }
    case MLLMLexer::UNTERMINATED_STRING:
      diags.error(positions.at((ssize_t)offending->getStartIndex()))
          << "unterminated string; add the closing '\"'";
      return;
    case MLLMLexer::UNTERMINATED_COMMENT:
      diags.error(positions.at((ssize_t)offending->getStartIndex()))
          << "unterminated comment: it runs to the end of the file; add the "
             "closing '*/'";
      return;
    default:
      break;
    }
    auto *stream = dynamic_cast<antlr4::TokenStream *>(
        static_cast<antlr4::Parser *>(recognizer)->getInputStream());
    if (stream && reportHexadecimal(*stream, offending))
      return;
    // The end of the file inside a block: point at the '{' left open, not
    // only at the end.
    if (offending->getType() == antlr4::Token::EOF && stream) {
      std::vector<antlr4::Token *> open;
      for (size_t i = 0; i < offending->getTokenIndex(); ++i) {
        antlr4::Token *t = stream->get(i);
        if (t->getType() == MLLMLexer::LBRACE)
          open.push_back(t);
        else if (t->getType() == MLLMLexer::RBRACE && !open.empty())
          open.pop_back();
      }
      if (!open.empty()) {
        auto diag = diags.error(loc)
                    << "the file ends inside a block; add the '}' that "
                       "closes it";
        diags.note(diag, positions.at((ssize_t)open.back()->getStartIndex()),
                   "the block opened here is not closed");
        return;
      }
    }
    if (!start) {
      // `name: value;` (a ':' for the '=') reads as a block `name : BASE`
      // until the value.
      size_t i = offending->getTokenIndex();
      antlr4::Token *colon = stream && i >= 2 ? stream->get(i - 1) : nullptr;
      antlr4::Token *name = colon ? stream->get(i - 2) : nullptr;
      if (colon && name && colon->getType() == MLLMLexer::COLON &&
          name->getType() == MLLMLexer::IDENT &&
          offending->getType() != MLLMLexer::IDENT) {
        diags.error(positions.at((ssize_t)colon->getStartIndex()))
            << "expected '=' after '" << name->getText()
            << "', not ':'; fields are written 'name = value;'";
        return;
      }
      diags.error(loc) << friendlyMessage(msg);
      return;
    }
    // `name value;` inside a block is almost always a missing '='.
    antlr4::Token *next =
        stream ? stream->get(start->getTokenIndex() + 1) : nullptr;
    if (start->getType() == MLLMLexer::IDENT && next &&
        next->getType() != MLLMLexer::ASSIGN &&
        next->getType() != MLLMLexer::IDENT &&
        next->getType() != MLLMLexer::LBRACE &&
        next->getType() != MLLMLexer::COLON &&
        next->getType() != antlr4::Token::EOF) {
      diags.error(positions.at((ssize_t)next->getStartIndex()))
          << "expected '=' after '" << start->getText()
          << "'; fields are written 'name = value;'";
      return;
    }
    if (offending->getType() == antlr4::Token::EOF && at == start) {
      diags.error(loc) << "unexpected '" << start->getText()
                       << "' at the end of the file; expected a block such "
                          "as 'model NAME { ... }'";
      return;
    }
    diags.error(positions.at((ssize_t)offending->getStartIndex()))
        << "unexpected '" << offending->getText() << "'";
  }

  unsigned errors() const { return count; }

private:
  /// `0x10` lexes as the number `0x` (unit x) followed by `10`; report the
  /// literal as a whole instead of the second half.
  bool reportHexadecimal(antlr4::TokenStream &stream,
                         antlr4::Token *offending) {
    size_t i = offending->getTokenIndex();
    if (offending->getType() != MLLMLexer::NUMBER || i == 0)
      return false;
    antlr4::Token *prev = stream.get(i - 1);
    std::string headText = prev->getText();
    llvm::StringRef head(headText);
    if (prev->getType() != MLLMLexer::NUMBER ||
        prev->getStopIndex() + 1 != offending->getStartIndex() ||
        !(head.starts_with("0x") || head.starts_with("0X")))
      return false;
    std::string literal = head.str() + offending->getText();
    auto diag = diags.error(positions.at((ssize_t)prev->getStartIndex()))
                << "hexadecimal numbers are not supported; write '" << literal
                << "' in decimal";
    uint64_t decimal;
    if (!llvm::StringRef(literal).drop_front(2).getAsInteger(16, decimal))
      diag << " (" << decimal << ")";
    return true;
  }

  Diagnostics &diags;
  const PositionMap &positions;
  std::set<ssize_t> reported;
  unsigned count = 0;
};

/// Builds the AST from the (possibly error-recovered) parse tree. Any child
/// may be missing after recovery, so every access is checked.
class Builder {
public:
  explicit Builder(const PositionMap &positions) : positions(positions) {}

  llvm::SMRange range(antlr4::Token *start, antlr4::Token *stop) const {
    if (!start)
      return {};
    llvm::SMLoc begin = positions.at((ssize_t)start->getStartIndex());
    llvm::SMLoc end = begin;
    if (stop &&
        (ssize_t)stop->getStopIndex() >= (ssize_t)start->getStartIndex())
      end = positions.at((ssize_t)stop->getStopIndex() + 1);
    return {begin, end};
  }
  llvm::SMRange range(antlr4::ParserRuleContext *ctx) const {
    return range(ctx->getStart(), ctx->getStop());
  }
  ast::Ident ident(antlr4::Token *tok) const {
    if (!tok || (ssize_t)tok->getStartIndex() < 0)
      return {};
    return {tok->getText(), range(tok, tok)};
  }

  void file(MLLMParser::FileContext *ctx, ast::File &out) {
    for (auto *imp : ctx->importDecl()) {
      ast::Import import;
      import.range = range(imp);
      if (imp->path) {
        import.isPath = true;
        import.target = unquote(imp->path->getText());
      } else if (auto *qn = imp->qualifiedName()) {
        llvm::ListSeparator dot(".");
        for (auto *id : qn->IDENT())
          import.target += llvm::StringRef(dot).str() + id->getText();
      }
      // An empty path is the loader's error to report; an empty name is
      // what syntax-error recovery leaves.
      if (import.isPath || !import.target.empty())
        out.imports.push_back(std::move(import));
    }
    for (auto *b : ctx->block())
      if (auto built = block(b))
        out.blocks.push_back(std::move(built));
  }

private:
  std::unique_ptr<ast::Block> block(MLLMParser::BlockContext *ctx) {
    if (!ctx || !ctx->kind)
      return nullptr;
    auto out = std::make_unique<ast::Block>();
    out->kind = ident(ctx->kind);
    out->name = ident(ctx->name);
    out->base = ident(ctx->base);
    out->range = range(ctx);
    out->hasBody = ctx->LBRACE() != nullptr;
    if (out->kind.empty())
      return nullptr;
    for (auto *member : ctx->member()) {
      if (auto *f = member->field()) {
        if (!f->IDENT() || !f->expr())
          continue;
        std::unique_ptr<ast::Expr> value = expr(f->expr());
        if (!value)
          continue;
        ast::Field field;
        field.name = ident(f->IDENT()->getSymbol());
        field.value = std::move(value);
        field.range = range(f);
        out->order.push_back({true, (unsigned)out->fields.size()});
        out->fields.push_back(std::move(field));
      } else if (auto nested = block(member->block())) {
        out->order.push_back({false, (unsigned)out->blocks.size()});
        out->blocks.push_back(std::move(nested));
      }
    }
    return out;
  }

  std::unique_ptr<ast::Expr> make(ast::Expr::Kind kind,
                                  antlr4::ParserRuleContext *ctx) {
    auto e = std::make_unique<ast::Expr>(kind);
    e->range = range(ctx);
    return e;
  }

  /// Converts all of `exprs`; fails if any of them is missing.
  bool operands(const std::vector<MLLMParser::ExprContext *> &exprs,
                ast::Expr &into) {
    for (auto *sub : exprs) {
      auto built = expr(sub);
      if (!built)
        return false;
      into.operands.push_back(std::move(built));
    }
    return true;
  }

  std::unique_ptr<ast::Expr> expr(MLLMParser::ExprContext *ctx) {
    using K = ast::Expr::Kind;
    if (!ctx || ctx->exception)
      return nullptr;
    if (auto *c = dynamic_cast<MLLMParser::NumberExprContext *>(ctx)) {
      auto e = make(K::Number, ctx);
      std::string text = c->NUMBER()->getText();
      size_t unitStart = text.size();
      // The unit starts at the first letter that is not an exponent marker.
      for (size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (llvm::isAlpha(ch)) {
          bool exponent = (ch == 'e' || ch == 'E') && i + 1 < text.size() &&
                          (llvm::isDigit(text[i + 1]) ||
                           ((text[i + 1] == '-' || text[i + 1] == '+') &&
                            i + 2 < text.size() && llvm::isDigit(text[i + 2])));
          if (!exponent) {
            unitStart = i;
            break;
          }
          i += 1; // skip the sign/digit after 'e'
        }
      }
      e->text = text.substr(0, unitStart);
      e->unit = text.substr(unitStart);
      return e;
    }
    if (auto *c = dynamic_cast<MLLMParser::StringExprContext *>(ctx)) {
      auto e = make(K::String, ctx);
      e->name = unquote(c->STRING()->getText());
      return e;
    }
    if (auto *c = dynamic_cast<MLLMParser::IdentExprContext *>(ctx)) {
      auto e = make(K::Ident, ctx);
      e->name = c->IDENT()->getText();
      return e;
    }
    if (auto *c = dynamic_cast<MLLMParser::ParenExprContext *>(ctx))
      return expr(c->expr());
    if (auto *c = dynamic_cast<MLLMParser::NegExprContext *>(ctx)) {
      auto e = make(K::Negate, ctx);
      return operands({c->expr()}, *e) ? std::move(e) : nullptr;
    }
    if (auto *c = dynamic_cast<MLLMParser::ListExprContext *>(ctx)) {
      auto e = make(K::List, ctx);
      return operands(c->expr(), *e) ? std::move(e) : nullptr;
    }
    if (auto *c = dynamic_cast<MLLMParser::CallExprContext *>(ctx)) {
      auto e = make(K::Call, ctx);
      e->name = c->IDENT()->getText();
      return operands(c->expr(), *e) ? std::move(e) : nullptr;
    }
    auto binary = [&](antlr4::Token *op,
                      const std::vector<MLLMParser::ExprContext *> &sides)
        -> std::unique_ptr<ast::Expr> {
      if (!op || sides.size() != 2)
        return nullptr;
      auto e = make(K::Binary, ctx);
      e->op = op->getText()[0];
      return operands(sides, *e) ? std::move(e) : nullptr;
    };
    if (auto *c = dynamic_cast<MLLMParser::MulExprContext *>(ctx))
      return binary(c->op, c->expr());
    if (auto *c = dynamic_cast<MLLMParser::AddExprContext *>(ctx))
      return binary(c->op, c->expr());
    return nullptr;
  }

  static std::string unquote(const std::string &quoted) {
    std::string out;
    for (size_t i = 1; i + 1 < quoted.size(); ++i) {
      char c = quoted[i];
      if (c == '\\' && i + 2 < quoted.size()) {
        char n = quoted[++i];
        out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
      } else {
        out += c;
      }
    }
    return out;
  }

  const PositionMap &positions;
};

/// Reports nesting deeper than kMaxNesting, a value (or list entry) with
/// more than kMaxOperators operators, or an identifier longer than
/// kMaxIdentifier; returns false if found.
bool checkTokens(antlr4::CommonTokenStream &tokens, Diagnostics &diags,
                 const PositionMap &positions) {
  unsigned depth = 0, operators = 0;
  for (antlr4::Token *tok : tokens.getTokens()) {
    if (tok->getType() == MLLMLexer::IDENT &&
        tok->getStopIndex() - tok->getStartIndex() + 1 > kMaxIdentifier) {
      diags.error(positions.at((ssize_t)tok->getStartIndex()))
          << "an identifier of " << tok->getText().size()
          << " bytes; an identifier may have at most " << kMaxIdentifier
          << " (shorten it)";
      return false;
    }
    switch (tok->getType()) {
    case MLLMLexer::PLUS:
    case MLLMLexer::MINUS:
    case MLLMLexer::STAR:
    case MLLMLexer::SLASH:
      if (++operators > kMaxOperators) {
        diags.error(positions.at((ssize_t)tok->getStartIndex()))
            << "more than " << kMaxOperators
            << " operators in one value; write the value, or a shorter "
               "expression";
        return false;
      }
      break;
    case MLLMLexer::SEMI:
    case MLLMLexer::COMMA: // a list's entries are expressions of their own
      operators = 0;
      break;
    default:
      break;
    }
    switch (tok->getType()) {
    case MLLMLexer::LBRACE:
    case MLLMLexer::LPAREN:
    case MLLMLexer::LBRACK:
      if (++depth > kMaxNesting) {
        diags.error(positions.at((ssize_t)tok->getStartIndex()))
            << "nesting deeper than " << kMaxNesting
            << " levels; simplify this expression or block";
        return false;
      }
      break;
    case MLLMLexer::RBRACE:
    case MLLMLexer::RPAREN:
    case MLLMLexer::RBRACK:
      if (depth > 0)
        --depth;
      break;
    default:
      break;
    }
  }
  return true;
}

/// Reports the first byte that is not valid UTF-8; returns false if found.
/// ANTLR decodes the text to code points first and throws on a bad
/// sequence (or drops a truncated one at the end).
bool checkUTF8(llvm::StringRef text, Diagnostics &diags) {
  const auto *begin = reinterpret_cast<const llvm::UTF8 *>(text.begin());
  const auto *end = reinterpret_cast<const llvm::UTF8 *>(text.end());
  const llvm::UTF8 *at = begin;
  if (llvm::isLegalUTF8String(&at, end))
    return true;
  llvm::SMLoc loc = llvm::SMLoc::getFromPointer(text.data() + (at - begin));
  // A valid lead byte whose continuation bytes run out at the end of the
  // file is a truncated sequence; anything else is an invalid one.
  bool lead = *at >= 0xc2 && *at <= 0xf4;
  bool truncated =
      lead && llvm::getNumBytesForUTF8(*at) > static_cast<size_t>(end - at) &&
      std::all_of(at + 1, end, [](llvm::UTF8 c) { return (c & 0xc0) == 0x80; });
  if (truncated)
    diags.error(loc) << "truncated UTF-8 sequence at the end of the file; "
                        ".mllm files are UTF-8 text";
  else
    diags.error(loc) << "invalid UTF-8 sequence starting with byte 0x"
                     << llvm::utohexstr(*at, /*LowerCase=*/true, 2)
                     << "; .mllm files are UTF-8 text";
  return false;
}

std::unique_ptr<ast::File> parseImpl(unsigned bufferId, Diagnostics &diags) {
  const llvm::MemoryBuffer *buffer =
      diags.getSourceMgr().getMemoryBuffer(bufferId);
  llvm::StringRef text = buffer->getBuffer();
  auto file = std::make_unique<ast::File>();
  file->path = buffer->getBufferIdentifier().str();
  file->bufferId = bufferId;

  if (!checkUTF8(text, diags))
    return file;
  PositionMap positions(text);
  antlr4::ANTLRInputStream input(text.data(), text.size());
  MLLMLexer lexer(&input);
  lexer.removeErrorListeners();
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  if (!checkTokens(tokens, diags, positions))
    return file;

  MLLMParser parser(&tokens);
  parser.removeErrorListeners();
  ErrorListener listener(diags, positions);
  parser.addErrorListener(&listener);
  MLLMParser::FileContext *tree = parser.file();
  Builder(positions).file(tree, *file);
  return file;
}

} // namespace

std::unique_ptr<ast::File> mllm::parseBuffer(unsigned bufferId,
                                             Diagnostics &diags) {
  llvm::SMLoc start = llvm::SMLoc::getFromPointer(
      diags.getSourceMgr().getMemoryBuffer(bufferId)->getBufferStart());
  // The exception firewall: ANTLR throws std::exceptions and, historically,
  // C strings.
  try {
    return parseImpl(bufferId, diags);
  } catch (const std::exception &e) {
    diags.error(start) << "internal parser failure: " << e.what();
  } catch (const char *what) {
    diags.error(start) << "internal parser failure: " << what;
  } catch (...) {
    diags.error(start) << "internal parser failure";
  }
  return nullptr;
}
