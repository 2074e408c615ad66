// MLLM.g4 - the .mllm specification language.
//
// The grammar is deliberately small and regular: a file is a list of imports
// and blocks; a block holds fields (`name = expr;`) and nested blocks. Which
// block kinds and fields exist, and their types and units, is checked by the
// semantic analysis against one schema (compiler/lib/Sema/Schema.cpp), so that
// misspellings get "did you mean" diagnostics instead of parser noise.
grammar MLLM;

file
  : importDecl* block* EOF
  ;

// import llama;            stdlib or -I directory, `llama.mllm`
// import models.llama;     `models/llama.mllm`
// import "./mine.mllm";    relative to the importing file
importDecl
  : IMPORT (path=STRING | qualifiedName) SEMI
  ;

qualifiedName
  : IDENT (DOT IDENT)*
  ;

// kind name? (: base)? { members }     e.g.  instance llama3_2_1b : llama3 { ... }
// kind name (: base)? ;                e.g.  projector linear;
block
  : kind=IDENT name=IDENT? (COLON base=IDENT)? LBRACE member* RBRACE
  | kind=IDENT name=IDENT (COLON base=IDENT)? SEMI
  ;

member
  : field
  | block
  ;

field
  : IDENT ASSIGN expr SEMI
  ;

expr
  : MINUS expr                                        # negExpr
  | expr op=(STAR | SLASH) expr                       # mulExpr
  | expr op=(PLUS | MINUS) expr                       # addExpr
  | LPAREN expr RPAREN                                # parenExpr
  | LBRACK (expr (COMMA expr)* COMMA?)? RBRACK        # listExpr
  | IDENT LPAREN (expr (COMMA expr)*)? RPAREN         # callExpr
  | NUMBER                                            # numberExpr
  | STRING                                            # stringExpr
  | IDENT                                             # identExpr
  ;

IMPORT : 'import' ;

// A number may carry a unit suffix written without a space: 4k, 48GiB,
// 200Gbps, 3.35TB/s, 30s, 1e-4.
NUMBER : DIGITS ('.' DIGITS)? EXPONENT? UNIT? ;
fragment DIGITS   : [0-9] ([0-9_]* [0-9])? ;
fragment EXPONENT : [eE] [+-]? [0-9]+ ;
fragment UNIT     : [a-zA-Z]+ ('/' [a-zA-Z]+)? ;

STRING : '"' (~["\\\r\n] | '\\' ~[\r\n])* '"' ;
IDENT  : [a-zA-Z_] [a-zA-Z0-9_]* ;

LBRACE : '{' ;
RBRACE : '}' ;
LPAREN : '(' ;
RPAREN : ')' ;
LBRACK : '[' ;
RBRACK : ']' ;
SEMI   : ';' ;
COLON  : ':' ;
COMMA  : ',' ;
DOT    : '.' ;
ASSIGN : '=' ;
PLUS   : '+' ;
MINUS  : '-' ;
STAR   : '*' ;
SLASH  : '/' ;

LINE_COMMENT  : '//' ~[\r\n]* -> skip ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
WS            : [ \t\r\n\f]+ -> skip ;

// Anything else becomes a token the parser rejects with a located message,
// rather than a lexer error that loses the position of what follows.
UNTERMINATED_STRING : '"' (~["\\\r\n] | '\\' ~[\r\n])* ;
// A '/*' whose body reaches the end of the file without a '*/' (no '*'
// in it is followed by '/'): longer than any BLOCK_COMMENT only then.
UNTERMINATED_COMMENT : '/*' (~[*] | '*'+ ~[*/])* '*'* EOF ;
UNKNOWN_CHAR        : . ;
