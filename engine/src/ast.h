// AST: the parser's output. Nodes are "fat" structs (one node type for expressions, one for
// statements, one for patterns) with a kind tag; only the fields a kind uses are set.
// The resolver fills in `decl` links and the `captured` flags the compiler needs.
#ifndef SHAPEX_ENGINE_AST_H_
#define SHAPEX_ENGINE_AST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lexer.h"

namespace shapex::engine {

struct Expr;
struct Stmt;
struct Pattern;
struct FunctionDecl;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using PatternPtr = std::unique_ptr<Pattern>;

struct Pos {
  int line = 0, col = 0;
};

// A declared variable (let/var, parameter, loop variable, pattern binding).
struct Decl {
  std::string name;
  bool is_mutable = false;
  bool captured = false;  // referenced from a nested closure: stored in a cell
  bool is_global = false;
  uint32_t global_index = 0;
  FunctionDecl* owner = nullptr;  // function whose frame holds it (nullptr for globals)
  Pos pos;
};

// A parsed type annotation (resolved to TypeSpec by the compiler).
struct TypeExpr {
  std::string name;
  std::vector<TypeExpr> args;
  Pos pos;
};

struct Block {
  std::vector<StmtPtr> stmts;
  ExprPtr value;  // final expression (block's value) or nullptr
  Pos pos;
};

enum class ExprKind {
  kInt, kNumber, kString, kFString, kBool, kNone,
  kIdent,      // name; decl set by the resolver when it is a variable
  kSelf,
  kArray,      // items
  kMap,        // items = k0, v0, k1, v1, ...
  kStructLit,  // name, field_names + items
  kUnary,      // op, a
  kBinary,     // op, a, b
  kAnd, kOr,   // a, b
  kRange,      // a, b, flag = inclusive
  kCall,       // a = callee, items = args
  kMethodCall, // a = receiver, name, items = args
  kField,      // a, name
  kIndex,      // a, items (1 or 2 indices)
  kPath,       // name = type name, name2 = member  (A::B)
  kSome, kOk, kErr,  // a
  kClosure,    // fn
  kIf,         // a = cond, block, else_expr (kIf or kBlockExpr) or null
  kBlockExpr,  // block
  kMatch,      // a, arms
  kTry,        // a
};

struct MatchArm {
  PatternPtr pattern;
  ExprPtr guard;
  ExprPtr body;
  Pos pos;
};

struct Expr {
  ExprKind kind;
  Pos pos;
  Tok op = Tok::kEof;
  uint64_t int_value = 0;
  bool negative_literal = false;  // kInt produced by folding unary minus
  double number_value = 0;
  bool flag = false;
  std::string name, name2;
  std::vector<FStringPart> parts;       // kFString (text parts)
  std::vector<ExprPtr> fstring_exprs;   // kFString: parsed expression per expr part
  std::vector<ExprPtr> items;
  std::vector<std::string> field_names;  // kStructLit
  std::vector<Pos> field_pos;
  ExprPtr a, b;
  std::unique_ptr<Block> block;
  ExprPtr else_expr;
  std::vector<MatchArm> arms;
  std::unique_ptr<FunctionDecl> fn;  // kClosure
  Decl* decl = nullptr;              // kIdent/kSelf: resolved variable
};

enum class PatternKind {
  kWildcard, kBind, kLiteral, kNone, kSome, kOk, kErr, kVariant, kStruct, kArray, kAlt,
};

struct Pattern {
  PatternKind kind;
  Pos pos;
  std::string name, name2;  // kBind: name; kVariant: enum name2::variant name; kStruct: name
  ExprPtr literal;          // kLiteral
  std::vector<PatternPtr> subs;           // payloads / array elements / alternatives
  std::vector<std::string> field_names;   // kStruct
  std::unique_ptr<Decl> decl;             // kBind
};

enum class StmtKind { kLet, kAssign, kExpr, kReturn, kBreak, kContinue, kWhile, kFor };

struct Stmt {
  StmtKind kind;
  Pos pos;
  // kLet: decl, type (optional), value. kAssign: target, op (kAssign or compound), value.
  std::unique_ptr<Decl> decl;
  std::unique_ptr<TypeExpr> type;
  ExprPtr target, value;
  Tok op = Tok::kAssign;
  bool explicit_semicolon = false;  // kExpr: ended by ';' (discards its value)
  // kWhile: value = condition, body. kFor: pattern (kBind or kArray of kBind), value, body.
  PatternPtr pattern;
  std::unique_ptr<Block> body;
};

struct Param {
  std::unique_ptr<Decl> decl;
  std::unique_ptr<TypeExpr> type;
  ExprPtr default_value;
  Pos pos;
};

struct FunctionDecl {
  std::string name;  // "<closure>" for closures
  std::vector<Param> params;
  std::unique_ptr<TypeExpr> return_type;
  std::unique_ptr<Block> body;  // closures with an expression body get a block with value
  FunctionDecl* parent = nullptr;
  bool is_closure = false;
  bool remote = false;
  bool is_method = false;          // impl method with self
  std::string impl_type;           // owning type for impl functions
  Pos pos;
};

struct StructDecl {
  std::string name;
  std::vector<std::string> fields;
  std::vector<TypeExpr> field_types;
  Pos pos;
};

struct EnumDecl {
  std::string name;
  std::vector<std::string> variants;
  std::vector<std::vector<TypeExpr>> payloads;
  Pos pos;
};

struct Module {
  std::vector<std::unique_ptr<FunctionDecl>> functions;  // top-level and impl functions
  std::vector<StructDecl> structs;
  std::vector<EnumDecl> enums;
  std::unique_ptr<FunctionDecl> script;  // top-level statements as the body of <script>
};

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_AST_H_
