// Matrix (decisions.md #18): row-major f64. Statics Matrix::zeros/from/identity, the methods,
// and elementwise arithmetic for the interpreter's + - * / operators. Element access
// `m[i, j]` is the interpreter's (GETINDEX2/SETINDEX2); get/set here follow the same rules
// (negative indices count from the end).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "natives_impl.h"

namespace shapex::engine {
namespace {

bool Receiver(Vm& vm, Value* args, ObjMatrix** m) {
  if (!args[0].Is(Type::kMatrix)) return FailType(vm, "matrix", args[0]);
  *m = AsMatrix(args[0]);
  return true;
}

bool ArgDim(Vm& vm, const Value& v, size_t* out) {
  int64_t n{};
  if (!ArgInt(vm, v, &n)) return false;
  if (n < 0) return vm.Fail("negative length");
  *out = static_cast<size_t>(n);
  return true;
}

// Allocates a zeroed rows x cols matrix after checking rows * cols against the memory limit
// (an overflowing product fails the check instead of wrapping to a small buffer).
bool NewMatrixChecked(Vm& vm, size_t rows, size_t cols, Value* out) {
  uint64_t cells{};
  if (__builtin_mul_overflow(static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), &cells))
    cells = std::numeric_limits<uint64_t>::max();
  return CheckAllocArray(vm, cells, sizeof(double)) && vm.NewMatrix(rows, cols, out);
}

double ScalarOp(char op, double x, double y) {
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    default:
      return x / y;
  }
}

}  // namespace

bool MatrixBinary(Vm& vm, char op, const Value& a, const Value& b, Value* out) {
  const ObjMatrix* ma = a.Is(Type::kMatrix) ? AsMatrix(a) : nullptr;
  const ObjMatrix* mb = b.Is(Type::kMatrix) ? AsMatrix(b) : nullptr;
  bool operands_ok = (ma != nullptr || mb != nullptr) && (ma != nullptr || a.IsNumeric()) &&
                     (mb != nullptr || b.IsNumeric()) &&
                     (op == '+' || op == '-' || op == '*' || op == '/');
  if (!operands_ok) {
    return vm.Fail(
        fmt::format("unsupported operand types for {}: {} and {}", op, TypeName(a), TypeName(b)));
  }
  if (ma != nullptr && mb != nullptr && (ma->rows != mb->rows || ma->cols != mb->cols))
    return vm.Fail("shape mismatch");
  const ObjMatrix* shape = ma != nullptr ? ma : mb;
  Value result;
  if (!vm.NewMatrix(shape->rows, shape->cols, &result)) return false;
  double* r = AsMatrix(result)->data;
  double sa = a.IsNumeric() ? a.AsDouble() : 0;
  double sb = b.IsNumeric() ? b.AsDouble() : 0;
  size_t n = shape->rows * shape->cols;
  for (size_t i = 0; i < n; ++i) {
    r[i] = ScalarOp(op, ma != nullptr ? ma->data[i] : sa, mb != nullptr ? mb->data[i] : sb);
  }
  *out = result;
  return true;
}

bool MatrixZeros(Vm& vm, Value* args, int /*argc*/, Value* out) {
  size_t rows{}, cols{};
  return ArgDim(vm, args[0], &rows) && ArgDim(vm, args[1], &cols) &&
         NewMatrixChecked(vm, rows, cols, out);
}

bool MatrixFrom(Vm& vm, Value* args, int /*argc*/, Value* out) {
  size_t rows{}, cols{};
  if (!ArgDim(vm, args[0], &rows) || !ArgDim(vm, args[1], &cols)) return false;
  const Value& src = args[2];
  bool is_vec = src.Is(Type::kTypedArray) && AsTypedArray(src)->kind != ElemKind::kBool;
  if (!is_vec && !src.Is(Type::kArray)) return FailType(vm, "array or Vec<f64>", src);
  size_t len = is_vec ? AsTypedArray(src)->length : AsArray(src)->items.size();
  // rows * cols cannot overflow when it equals an existing container's length; check by
  // division so a huge rows * cols that wraps around to `len` is rejected too.
  if ((rows == 0 || cols == 0) ? len != 0 : (len % rows != 0 || len / rows != cols))
    return vm.Fail("shape mismatch");
  if (!vm.NewMatrix(rows, cols, out)) return false;
  double* data = AsMatrix(*out)->data;
  for (size_t i = 0; i < len; ++i) {
    if (is_vec) {
      data[i] = ElemAsDouble(AsTypedArray(src), i);
    } else if (!ArgNumber(vm, AsArray(src)->items[i], &data[i])) {
      return false;
    }
  }
  return true;
}

bool MatrixIdentity(Vm& vm, Value* args, int /*argc*/, Value* out) {
  size_t n{};
  if (!ArgDim(vm, args[0], &n) || !NewMatrixChecked(vm, n, n, out)) return false;
  for (size_t i = 0; i < n; ++i) AsMatrix(*out)->At(i, i) = 1.0;
  return true;
}

bool MatrixRows(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  *out = Value::Int(static_cast<int64_t>(m->rows));
  return true;
}

bool MatrixCols(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  *out = Value::Int(static_cast<int64_t>(m->cols));
  return true;
}

bool MatrixGet(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  size_t i{}, j{};
  if (!Receiver(vm, args, &m) || !ResolveIndex(vm, args[1], m->rows, &i) ||
      !ResolveIndex(vm, args[2], m->cols, &j))
    return false;
  *out = Value::Number(m->At(i, j));
  return true;
}

bool MatrixSet(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  size_t i{}, j{};
  double x{};
  if (!Receiver(vm, args, &m) || !ResolveIndex(vm, args[1], m->rows, &i) ||
      !ResolveIndex(vm, args[2], m->cols, &j) || !ArgNumber(vm, args[3], &x))
    return false;
  m->At(i, j) = x;
  *out = Value::None();
  return true;
}

bool MatrixRow(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  size_t i{};
  if (!Receiver(vm, args, &m) || !ResolveIndex(vm, args[1], m->rows, &i) ||
      !vm.NewTypedArray(ElemKind::kF64, m->cols, out))
    return false;
  if (m->cols > 0)
    std::memcpy(AsTypedArray(*out)->data, &m->data[i * m->cols], m->cols * sizeof(double));
  return true;
}

bool MatrixTranspose(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  if (!Receiver(vm, args, &m) || !vm.NewMatrix(m->cols, m->rows, out)) return false;
  ObjMatrix* t = AsMatrix(*out);
  for (size_t r = 0; r < m->rows; ++r)
    for (size_t c = 0; c < m->cols; ++c) t->At(c, r) = m->At(r, c);
  return true;
}

bool MatrixMatmul(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* a = nullptr;
  if (!Receiver(vm, args, &a)) return false;
  if (!args[1].Is(Type::kMatrix)) return FailType(vm, "matrix", args[1]);
  const ObjMatrix* b = AsMatrix(args[1]);
  if (a->cols != b->rows) return vm.Fail("shape mismatch");
  if (!NewMatrixChecked(vm, a->rows, b->cols, out)) return false;
  ObjMatrix* r = AsMatrix(*out);
  // i-k-j order walks b and r row by row (contiguous), which the compiler vectorises.
  for (size_t i = 0; i < a->rows; ++i) {
    double* row = &r->data[i * r->cols];
    for (size_t k = 0; k < a->cols; ++k) {
      double x = a->At(i, k);
      const double* brow = &b->data[k * b->cols];
      for (size_t j = 0; j < b->cols; ++j) row[j] += x * brow[j];
    }
  }
  return true;
}

bool MatrixSum(Vm& vm, Value* args, int /*argc*/, Value* out) {
  ObjMatrix* m = nullptr;
  if (!Receiver(vm, args, &m)) return false;
  double s = 0;
  for (size_t i = 0; i < m->rows * m->cols; ++i) s += m->data[i];
  *out = Value::Number(s);
  return true;
}

}  // namespace shapex::engine
