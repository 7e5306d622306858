// CodeGen: the compiler's back half, shared by compiler.cc (declarations, statements, control
// flow) and compile_expr.cc (expressions, patterns). Internal to the engine.
//
// Register discipline (as in Lua): locals live in registers in declaration order; temporaries
// are allocated above them and released by restoring `free_reg`. ExprTo(e, dst) writes e's
// value to dst with dst written only by the *last* instruction it emits, so `x = x + 1` can
// target x's register directly.
#ifndef SHAPEX_ENGINE_CODEGEN_H_
#define SHAPEX_ENGINE_CODEGEN_H_

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "ast.h"
#include "shapex/engine/opcodes.h"
#include "shapex/engine/program.h"

namespace shapex::engine {

struct CompileFailure {
  std::string message;
  Pos pos;
};

class CodeGen {
 public:
  CodeGen(Module* module, Program* program) : m_(module), p_(program) {}
  void Run();  // throws CompileFailure

 private:
  struct Loop {
    std::vector<size_t> breaks, continues;
  };
  struct FnState {
    FunctionDecl* decl = nullptr;
    Proto* proto = nullptr;
    FnState* parent = nullptr;
    std::unordered_map<const Decl*, int> regs;
    std::vector<const Decl*> captures;
    int free_reg = 0;
    std::vector<Loop> loops;
    std::unordered_map<uint32_t, uint32_t> fn_refs;
    std::unordered_map<std::string, uint32_t> natives, strings;
    std::map<int64_t, uint32_t> ints;
    std::map<uint64_t, uint32_t> numbers;  // by bit pattern
    int line = 0;
  };

  // ---- declarations (compiler.cc) ----
  void DeclareTypes();
  TypeSpec ResolveType(const TypeExpr& t);
  void CompileFunction(FunctionDecl* fn, uint32_t proto_index, FnState* parent);
  uint32_t NewProto();

  // ---- emission helpers (compiler.cc) ----
  [[noreturn]] void Fail(const std::string& msg, Pos pos) { throw CompileFailure{msg, pos}; }
  size_t Emit(uint32_t word);
  size_t EmitABC(Op op, int a, int b, int c) { return Emit(code::ABC(op, a, b, c)); }
  size_t EmitABx(Op op, int a, uint32_t bx) { return Emit(code::ABx(op, a, bx)); }
  size_t EmitJump();                      // JMP with offset patched later
  void PatchJump(size_t at);              // to the current end of code
  void PatchJumpTo(size_t at, size_t target);
  void EmitJumpBack(size_t target);
  size_t Here() const { return fs_->proto->code.size(); }
  int AllocReg(Pos pos);
  int AllocRegs(int n, Pos pos);
  uint32_t ConstInt(int64_t v);
  uint32_t ConstNumber(double v);
  uint32_t ConstString(const std::string& s);
  uint32_t FnRef(uint32_t proto_index);
  uint32_t NativeRef(const std::string& qualified, Pos pos);
  uint32_t Symbol(const std::string& name);
  void LoadConstK(int dst, uint32_t k);
  void SetLine(Pos pos) {
    if (pos.line > 0) fs_->line = pos.line;
  }

  // ---- statements (compiler.cc) ----
  void BlockTo(const Block& b, int dst);
  void BlockEffect(const Block& b);
  void Stmt(const struct Stmt& s);
  void LetStmt(const struct Stmt& s);
  void AssignStmt(const struct Stmt& s);
  void WhileStmt(const struct Stmt& s);
  void ForStmt(const struct Stmt& s);
  void BindLocal(const Decl* d, int reg);
  int VarRegister(const Decl* d);  // register of a non-captured local, else -1
  int CaptureIndex(FnState* fs, const Decl* d);

  // ---- expressions (compile_expr.cc) ----
  void ExprTo(const Expr& e, int dst);
  int ExprAny(const Expr& e);  // register holding e (a local's own register when possible)
  void ExprEffect(const Expr& e);
  void CondJump(const Expr& e, bool jump_if, std::vector<size_t>* jumps);
  void LoadIdent(const Expr& e, int dst);
  void StoreVariable(const Decl* d, int src, Pos pos);
  int CallBase(int dst, Pos pos);
  void CallTo(const Expr& e, int dst);
  void MethodCallTo(const Expr& e, int dst);
  void PathTo(const Expr& e, int dst, const std::vector<ExprPtr>* args);
  void BinaryTo(const Expr& e, int dst);
  void ArithTo(Tok op, const Expr& a, const Expr& b, int dst, Pos pos);
  // Compound assignment into a field or index: `cur` holds the current value; emits
  // `val = cur <op> rhs`.
  void CompoundUpdate(Tok arith, const Expr& rhs, int cur, int val, Pos pos);
  void IfTo(const Expr& e, int dst);
  void MatchTo(const Expr& e, int dst);
  void PatternTest(const Pattern& p, int reg, std::vector<size_t>* fails);
  void ClosureTo(const Expr& e, int dst);
  void StructLitTo(const Expr& e, int dst);
  void ListTo(Op op, const std::vector<ExprPtr>& items, int per, int dst, Pos pos);
  void FStringTo(const Expr& e, int dst);
  bool IsSafeDirectTarget(const Expr& e) const;
  int64_t IntLiteral(const Expr& e);
  void LoadInt(int dst, int64_t v);  // LOADI, or LOADK of an Int constant
  const StructType* FindStruct(const std::string& name, int* index) const;
  const EnumType* FindEnum(const std::string& name, int* index) const;
  bool IsModuleName(const Expr& e) const;

  Module* m_;
  Program* p_;
  FnState* fs_ = nullptr;
  std::unordered_map<std::string, uint32_t> functions_;  // top-level name -> proto index
  std::unordered_map<std::string, uint32_t> statics_;    // "Type::name" -> proto index
  std::unordered_map<std::string, uint32_t> symbols_;
};

inline constexpr uint32_t kOptionEnumId = 0xFFFF;
inline constexpr uint32_t kResultEnumId = 0xFFFE;

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_CODEGEN_H_
