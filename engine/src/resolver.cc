#include "resolver.h"

#include <unordered_map>

namespace shapex::engine {
namespace {

struct ResolveFailure {
  SyntaxError error;
};

class Resolver {
 public:
  Resolver(Module* m, std::vector<std::string>* globals) : m_(m), global_names_(globals) {}

  void Run() {
    // Hoist the script's top-level let/var into globals, one slot per name.
    for (auto& s : m_->script->body->stmts) {
      if (s->kind != StmtKind::kLet) continue;
      Decl* d = s->decl.get();
      d->is_global = true;
      auto it = global_slots_.find(d->name);
      if (it == global_slots_.end()) {
        it = global_slots_.emplace(d->name, global_names_->size()).first;
        global_names_->push_back(d->name);
      }
      d->global_index = it->second;
      globals_[d->name] = d;  // functions see the last declaration's mutability
    }
    for (auto& fn : m_->functions) ResolveFunction(fn.get(), nullptr);
    ResolveFunction(m_->script.get(), nullptr);
  }

 private:
  struct Scope {
    std::unordered_map<std::string, Decl*> names;
    FunctionDecl* fn;
  };

  [[noreturn]] void Fail(const std::string& msg, Pos pos) {
    throw ResolveFailure{{msg, pos.line, pos.col}};
  }

  void Declare(Decl* d) {
    d->owner = current_;
    scopes_.back().names[d->name] = d;
  }

  Decl* Lookup(const std::string& name) {
    for (size_t i = scopes_.size(); i-- > 0;) {
      auto it = scopes_[i].names.find(name);
      if (it == scopes_[i].names.end()) continue;
      Decl* d = it->second;
      if (!d->is_global && d->owner != current_) d->captured = true;
      return d;
    }
    auto g = globals_.find(name);
    return g == globals_.end() ? nullptr : g->second;
  }

  void ResolveFunction(FunctionDecl* fn, FunctionDecl* parent) {
    fn->parent = parent;
    FunctionDecl* saved = current_;
    std::vector<Scope> saved_scopes;
    if (parent == nullptr) saved_scopes.swap(scopes_);  // top-level functions see only globals
    current_ = fn;
    scopes_.push_back({{}, fn});
    for (auto& p : fn->params) {
      if (p.default_value) ResolveExpr(p.default_value.get());
      Declare(p.decl.get());
    }
    bool is_script = fn == m_->script.get();
    ResolveBlock(fn->body.get(), is_script);
    scopes_.pop_back();
    if (parent == nullptr) scopes_.swap(saved_scopes);
    current_ = saved;
  }

  void ResolveBlock(Block* b, bool script_top = false) {
    scopes_.push_back({{}, current_});
    for (auto& s : b->stmts) ResolveStmt(s.get(), script_top);
    if (b->value) ResolveExpr(b->value.get());
    scopes_.pop_back();
  }

  void ResolveStmt(Stmt* s, bool script_top) {
    switch (s->kind) {
      case StmtKind::kLet:
        ResolveExpr(s->value.get());
        if (script_top) {
          globals_[s->decl->name] = s->decl.get();  // later statements see this declaration
        } else {
          s->decl->is_mutable = s->decl->is_mutable;
          Declare(s->decl.get());
        }
        return;
      case StmtKind::kAssign:
        ResolveExpr(s->target.get());
        ResolveExpr(s->value.get());
        return;
      case StmtKind::kExpr:
      case StmtKind::kReturn:
        if (s->value) ResolveExpr(s->value.get());
        return;
      case StmtKind::kBreak:
      case StmtKind::kContinue:
        return;
      case StmtKind::kWhile:
        ResolveExpr(s->value.get());
        ResolveBlock(s->body.get());
        return;
      case StmtKind::kFor:
        ResolveExpr(s->value.get());
        scopes_.push_back({{}, current_});
        DeclarePattern(s->pattern.get());
        ResolveBlock(s->body.get());
        scopes_.pop_back();
        return;
    }
  }

  void DeclarePattern(Pattern* p) {
    switch (p->kind) {
      case PatternKind::kBind:
        Declare(p->decl.get());
        return;
      case PatternKind::kLiteral:
        ResolveExpr(p->literal.get());
        return;
      case PatternKind::kAlt:
        for (auto& sub : p->subs) {
          if (HasBinding(sub.get()))
            Fail("variables cannot be bound inside alternative patterns", sub->pos);
          DeclarePattern(sub.get());
        }
        return;
      default:
        for (auto& sub : p->subs) DeclarePattern(sub.get());
        return;
    }
  }
  static bool HasBinding(const Pattern* p) {
    if (p->kind == PatternKind::kBind) return true;
    for (auto& sub : p->subs)
      if (HasBinding(sub.get())) return true;
    return false;
  }

  void ResolveExpr(Expr* e) {
    if (e == nullptr) return;
    switch (e->kind) {
      case ExprKind::kIdent:
        e->decl = Lookup(e->name);
        return;
      case ExprKind::kSelf:
        e->decl = Lookup("self");
        if (e->decl == nullptr) Fail("'self' outside of a method", e->pos);
        return;
      case ExprKind::kClosure:
        for (auto& p : e->fn->params)
          if (p.default_value) Fail("closure parameters cannot have defaults", p.pos);
        ResolveFunction(e->fn.get(), current_);
        return;
      case ExprKind::kIf:
        ResolveExpr(e->a.get());
        ResolveBlock(e->block.get());
        ResolveExpr(e->else_expr.get());
        return;
      case ExprKind::kBlockExpr:
        ResolveBlock(e->block.get());
        return;
      case ExprKind::kMatch:
        ResolveExpr(e->a.get());
        for (auto& arm : e->arms) {
          scopes_.push_back({{}, current_});
          DeclarePattern(arm.pattern.get());
          ResolveExpr(arm.guard.get());
          ResolveExpr(arm.body.get());
          scopes_.pop_back();
        }
        return;
      default:
        ResolveExpr(e->a.get());
        ResolveExpr(e->b.get());
        for (auto& item : e->items) ResolveExpr(item.get());
        for (auto& fe : e->fstring_exprs) ResolveExpr(fe.get());
        return;
    }
  }

  Module* m_;
  std::vector<std::string>* global_names_;
  std::unordered_map<std::string, uint32_t> global_slots_;
  std::unordered_map<std::string, Decl*> globals_;
  std::vector<Scope> scopes_;
  FunctionDecl* current_ = nullptr;
};

}  // namespace

bool ResolveModule(Module* module, std::vector<std::string>* global_names, SyntaxError* error) {
  try {
    Resolver(module, global_names).Run();
  } catch (ResolveFailure& f) {
    *error = std::move(f.error);
    return false;
  }
  return true;
}

}  // namespace shapex::engine
