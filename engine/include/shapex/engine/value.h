// Value: the VM's universal 16-byte value, and the heap object kinds it can point to.
//
// Representation (Lua-style tagged value, chosen over NaN-boxing because Int is a full i64):
//
//   byte  0..7   payload union: int64_t i | double n | bool b | Obj* o (None: 0, or the
//                marker of Value::Unset(), held only by globals not yet initialised)
//   byte  8      Type tag (uint8_t), see enum Type below
//   byte  9..15  padding (always zero so values can be compared and hashed bytewise)
//
// Tags below kFirstObject are immediates (None, Bool, Int, Number); tags from kFirstObject on
// carry a non-null Obj* whose Obj::type equals the tag, so a type switch never needs a load
// through the pointer. Objects live on the VM heap (heap.h), are traced by a precise
// mark-and-sweep collector, and are never shared between VMs.
//
// Option and Result are ordinary enum objects (ObjEnum) of two built-in enum types; the Option
// `None` is the plain None immediate.
//
// Thread-safety: none. A Value belongs to the VM that created it.
#ifndef SHAPEX_ENGINE_VALUE_H_
#define SHAPEX_ENGINE_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shapex::engine {

enum class Type : uint8_t {
  kNone = 0,
  kBool,
  kInt,
  kNumber,
  // --- heap objects from here on ---
  kString,
  kArray,
  kMap,
  kStruct,
  kEnum,  // user enums, Option::Some, Result::Ok/Err
  kRange,
  kFunction,  // a compiled function without captures
  kClosure,   // a compiled function plus captured cells
  kNative,    // a C++ native from the registration table
  kTypedArray,
  kMatrix,
  kCell,  // internal: a boxed variable captured by a closure
};
inline constexpr uint8_t kFirstObject = static_cast<uint8_t>(Type::kString);
inline constexpr int kNumTypes = static_cast<int>(Type::kCell) + 1;

struct Obj;

struct Value {
  union {
    int64_t i;
    double n;
    bool b;
    Obj* o;
  } as;
  Type type;

  constexpr Value() : as{.i = 0}, type(Type::kNone) {}
  static Value None() { return Value(); }
  static Value Bool(bool b) {
    Value v;
    v.type = Type::kBool;
    v.as.b = b;
    return v;
  }
  static Value Int(int64_t i) {
    Value v;
    v.type = Type::kInt;
    v.as.i = i;
    return v;
  }
  static Value Number(double n) {
    Value v;
    v.type = Type::kNumber;
    v.as.n = n;
    return v;
  }
  static Value Object(Obj* o);  // defined below, takes the tag from the object

  // A module global whose `let`/`var` has not run yet: None with a marker payload. Only global
  // slots hold it (GETGLOBAL raises "'y' is read before its 'let' has run" instead of loading
  // it), so it never reaches a register, a container or the wire.
  static constexpr int64_t kUnsetMarker = 0x7465736e75;  // "unset"
  static Value Unset() {
    Value v;
    v.as.i = kUnsetMarker;
    return v;
  }
  bool IsUnset() const { return type == Type::kNone && as.i == kUnsetMarker; }

  bool IsNone() const { return type == Type::kNone; }
  bool IsBool() const { return type == Type::kBool; }
  bool IsInt() const { return type == Type::kInt; }
  bool IsNumber() const { return type == Type::kNumber; }
  bool IsNumeric() const { return type == Type::kInt || type == Type::kNumber; }
  bool IsObject() const { return static_cast<uint8_t>(type) >= kFirstObject; }
  bool Is(Type t) const { return type == t; }
  // Int or Number as a double.
  double AsDouble() const { return type == Type::kInt ? static_cast<double>(as.i) : as.n; }
};
static_assert(sizeof(Value) == 16);

// Element kinds of typed arrays (Vec<T>).
enum class ElemKind : uint8_t { kF64, kF32, kI64, kI32, kI16, kI8, kU8, kBool };
inline constexpr int kNumElemKinds = 8;
size_t ElemSize(ElemKind k);
std::string_view ElemKindName(ElemKind k);  // "f64", "f32", ...
bool ElemKindFromName(std::string_view name, ElemKind* out);
inline bool ElemIsFloat(ElemKind k) { return k == ElemKind::kF64 || k == ElemKind::kF32; }

// Common object header. `bytes` is what the heap charged for this object (header plus owned
// buffers); Heap::Recharge keeps it current when a container grows or shrinks.
struct Obj {
  Obj* gc_next = nullptr;
  size_t bytes = 0;
  Type type;
  bool marked = false;
  bool permanent = false;  // program constants: never swept
  explicit Obj(Type t) : type(t) {}
};

inline Value Value::Object(Obj* o) {
  Value v;
  v.type = o->type;
  v.as.o = o;
  return v;
}

struct ObjString : Obj {
  std::string str;
  mutable uint64_t hash = 0;  // 0 = not computed yet
  bool ascii = false;         // all bytes < 0x80: character index == byte index
  explicit ObjString(std::string s);
  uint64_t Hash() const;
};

struct ObjArray : Obj {
  std::vector<Value> items;
  ObjArray() : Obj(Type::kArray) {}
};

// Insertion-ordered hash map with Int/String/Bool keys. Entries live in a dense vector (removed
// entries become tombstones until the next rebuild); `index` is an open-addressing table of
// entry positions.
struct ObjMap : Obj {
  struct Entry {
    Value key;
    Value value;
  };
  std::vector<Entry> entries;  // tombstones have key.type == kNone
  std::vector<int32_t> index;  // -1 empty; else position in entries
  size_t count = 0;            // live entries
  ObjMap() : Obj(Type::kMap) {}

  static bool ValidKey(const Value& k) {
    return k.type == Type::kInt || k.type == Type::kString || k.type == Type::kBool;
  }
  // All take a key for which ValidKey() is true.
  const Value* Find(const Value& key) const;
  Value* Find(const Value& key);
  void Set(const Value& key, const Value& value);  // inserts at the end or updates in place
  bool Remove(const Value& key, Value* old);
  template <class F>
  void ForEach(F&& f) const {
    for (const Entry& e : entries)
      if (e.key.type != Type::kNone) f(e.key, e.value);
  }

 private:
  size_t Slot(const Value& key) const;
  void Rebuild(size_t capacity);
};

struct StructType;
struct EnumType;
struct Proto;
struct NativeDef;

struct ObjStruct : Obj {
  const StructType* stype;
  std::vector<Value> fields;  // in declaration order
  ObjStruct(const StructType* t, size_t n) : Obj(Type::kStruct), stype(t), fields(n) {}
};

struct ObjEnum : Obj {
  const EnumType* etype;
  uint32_t variant;
  std::vector<Value> payload;
  ObjEnum(const EnumType* t, uint32_t v, size_t n)
      : Obj(Type::kEnum), etype(t), variant(v), payload(n) {}
};

struct ObjRange : Obj {
  int64_t start, end, step;
  bool inclusive;
  ObjRange(int64_t s, int64_t e, int64_t st, bool inc)
      : Obj(Type::kRange), start(s), end(e), step(st), inclusive(inc) {}
  // Number of elements, saturating; 0 for an empty range.
  int64_t Length() const;
};

struct ObjFunction : Obj {
  const Proto* proto;
  explicit ObjFunction(const Proto* p) : Obj(Type::kFunction), proto(p) {}
};

struct ObjCell : Obj {
  Value value;
  explicit ObjCell(Value v) : Obj(Type::kCell), value(v) {}
};

struct ObjClosure : Obj {
  const Proto* proto;
  std::vector<ObjCell*> cells;
  ObjClosure(const Proto* p, size_t n) : Obj(Type::kClosure), proto(p), cells(n, nullptr) {}
};

struct ObjNative : Obj {
  const NativeDef* def;
  explicit ObjNative(const NativeDef* d) : Obj(Type::kNative), def(d) {}
};

// A buffer a typed array or matrix took over from the embedder instead of allocating it (e.g.
// a private mapping of a received shared-memory segment): `release(base, size)` frees it when
// the object dies.
struct ExternalBuffer {
  void (*release)(void* base, size_t size) = nullptr;
  void* base = nullptr;
  size_t size = 0;
};

// Fixed-length contiguous typed array. `data` is 64-byte aligned and owned by the object.
struct ObjTypedArray : Obj {
  ElemKind kind;
  size_t length;
  uint8_t* data;
  ExternalBuffer external;  // release set: `data` lies in this buffer
  ObjTypedArray(ElemKind k, size_t n);  // zero-filled
  ObjTypedArray(ElemKind k, size_t n, uint8_t* adopted, ExternalBuffer owner)
      : Obj(Type::kTypedArray), kind(k), length(n), data(adopted), external(owner) {}
  ~ObjTypedArray();
  ObjTypedArray(const ObjTypedArray&) = delete;
  ObjTypedArray& operator=(const ObjTypedArray&) = delete;
  size_t ByteSize() const { return length * ElemSize(kind); }
  // Element access with conversion; Set() range checks are the caller's job (see StoreElem).
  Value Get(size_t i) const;
  template <class T>
  T* As() {
    return reinterpret_cast<T*>(data);
  }
  template <class T>
  const T* As() const {
    return reinterpret_cast<const T*>(data);
  }
};

// Row-major f64 matrix.
struct ObjMatrix : Obj {
  size_t rows, cols;
  double* data;
  ExternalBuffer external;  // release set: `data` lies in this buffer
  ObjMatrix(size_t r, size_t c);  // zero-filled
  ObjMatrix(size_t r, size_t c, double* adopted, ExternalBuffer owner)
      : Obj(Type::kMatrix), rows(r), cols(c), data(adopted), external(owner) {}
  ~ObjMatrix();
  ObjMatrix(const ObjMatrix&) = delete;
  ObjMatrix& operator=(const ObjMatrix&) = delete;
  double& At(size_t r, size_t c) { return data[r * cols + c]; }
  double At(size_t r, size_t c) const { return data[r * cols + c]; }
};

// ---- accessors (no checks: the caller has checked the tag) ----
inline ObjString* AsString(const Value& v) { return static_cast<ObjString*>(v.as.o); }
inline ObjArray* AsArray(const Value& v) { return static_cast<ObjArray*>(v.as.o); }
inline ObjMap* AsMap(const Value& v) { return static_cast<ObjMap*>(v.as.o); }
inline ObjStruct* AsStruct(const Value& v) { return static_cast<ObjStruct*>(v.as.o); }
inline ObjEnum* AsEnum(const Value& v) { return static_cast<ObjEnum*>(v.as.o); }
inline ObjRange* AsRange(const Value& v) { return static_cast<ObjRange*>(v.as.o); }
inline ObjFunction* AsFunction(const Value& v) { return static_cast<ObjFunction*>(v.as.o); }
inline ObjClosure* AsClosure(const Value& v) { return static_cast<ObjClosure*>(v.as.o); }
inline ObjNative* AsNative(const Value& v) { return static_cast<ObjNative*>(v.as.o); }
inline ObjTypedArray* AsTypedArray(const Value& v) { return static_cast<ObjTypedArray*>(v.as.o); }
inline ObjMatrix* AsMatrix(const Value& v) { return static_cast<ObjMatrix*>(v.as.o); }
inline ObjCell* AsCell(const Value& v) { return static_cast<ObjCell*>(v.as.o); }
inline bool IsCallable(const Value& v) {
  return v.type == Type::kFunction || v.type == Type::kClosure || v.type == Type::kNative;
}
// The code a function or closure value runs; nullptr for any other value (natives included).
inline const Proto* CalleeProto(const Value& v) {
  if (v.type == Type::kFunction) return AsFunction(v)->proto;
  if (v.type == Type::kClosure) return AsClosure(v)->proto;
  return nullptr;
}

// ---- walks of values and what they cost ----

class Vm;

// What walks of values (printing and formatting, equality, copies) may spend, so that no walk
// escapes the limits of the Vm it runs for. Sharing makes a value's tree exponentially larger
// than its heap (`a = [a, a]` thirty times: 31 objects, 2^30 leaves), so a walk pays for what it
// visits, not for what the value holds:
//   * one unit of fuel per element visited inside a container (array item, map entry, struct
//     field, payload, typed-array or matrix element);
//   * one unit per 16 bytes of string compared, and per 16 bytes of the string a walk builds;
//   * a string being built is checked against the memory limit as it grows (every
//     kSizeStep bytes), not only when it is done.
// Fuel is counted here and paid to the Vm in batches (kBatch units), so a walk's inner loop pays
// an add and a compare per element. A walk stops as soon as the budget refuses and returns false;
// the Vm then holds the error (ResourceExhausted "fuel exhausted" or "memory limit exceeded", or
// Timeout: the wall-clock deadline is checked with every batch).
// Settle() pays what is still owed at the end: call it once after the walk(s) it paid for.
//
// One budget may pay for several walks (contains() comparing each item, print() formatting each
// argument) but builds at most one string. A default-constructed budget is unlimited: for tests,
// tools and embedders formatting values outside any Vm. Not thread-safe (like the Vm).
class WalkBudget {
 public:
  WalkBudget() = default;
  explicit WalkBudget(Vm& vm) : vm_(&vm), pay_at_(kBatch), next_check_(kSizeStep) {}
  WalkBudget(const WalkBudget&) = delete;
  WalkBudget& operator=(const WalkBudget&) = delete;

  // `units` more elements visited (or 16-byte blocks compared). False once fuel has run out.
  bool Charge(uint64_t units) {
    owed_ += units;
    return owed_ < pay_at_ || Pay(/*batch=*/true);
  }
  // The string being built will have `size` bytes. False when that passes the memory limit.
  bool Grow(size_t size) { return size < next_check_ || CheckSize(size); }
  // Pays what is owed, including the fuel of a built string of `built` bytes. False when the
  // fuel has run out (or the budget refused earlier).
  bool Settle(size_t built = 0) {
    return (owed_ == 0 && built < 16 && !failed_) || SettleSlow(built);
  }
  // Fuel counted but not yet paid to the Vm (tests).
  uint64_t owed() const { return owed_; }

  static constexpr uint64_t kBatch = 1024;
  static constexpr size_t kSizeStep = size_t{64} << 10;

 private:
  // A full batch also checks the wall-clock deadline (Timeout): a long walk is long work.
  bool Pay(bool batch);
  bool CheckSize(size_t size);
  bool SettleSlow(size_t built);
  bool Refuse();
  // Adds the fuel of the built string's bytes from charged_bytes_ up to `size`.
  void ChargeBytes(size_t size);

  Vm* vm_ = nullptr;       // nullptr: unlimited
  uint64_t owed_ = 0;      // fuel counted, not yet paid
  uint64_t pay_at_ = UINT64_MAX;
  size_t next_check_ = SIZE_MAX;  // string size at which to check the memory limit next
  size_t charged_bytes_ = 0;      // bytes of the built string whose fuel is counted
  bool failed_ = false;
};

// ---- value semantics shared by the VM and the natives (value.cc) ----

// Structural equality (LANGUAGE.md "Equality"): Int == Number numerically; functions by identity.
// Unlimited (see WalkBudget); the VM compares with the budgeted forms below.
bool ValuesEqual(const Value& a, const Value& b);
// The same walk paid for by `budget`: false when it refused (*equal is then unspecified).
bool ValuesEqual(const Value& a, const Value& b, WalkBudget& budget, bool* equal);
// One paid and settled comparison for `vm`: false with the Vm's error set.
bool ValuesEqual(Vm& vm, const Value& a, const Value& b, bool* equal);
// Hash consistent with ValuesEqual for valid map keys. Keys are Int, String or Bool, so hashing
// never walks a container (a String's hash is computed once and cached).
uint64_t HashKey(const Value& key);
// Name used in messages and by type_of(): "int", "number", "string", "Point", "Vec<f64>" ...
std::string TypeName(const Value& v);
// Printing as LANGUAGE.md "Printing" specifies. `quoted` = inside a container (strings quoted).
// Unlimited (see WalkBudget); the VM and the natives format with the budgeted forms below.
void AppendValue(std::string* out, const Value& v, bool quoted);
std::string ValueToString(const Value& v, bool quoted = false);
// The same walk paid for by `budget` (which `out` is the one string of): false when it refused
// (*out then holds a prefix of the text).
bool AppendValue(std::string* out, const Value& v, bool quoted, WalkBudget& budget);
// One paid and settled formatting for `vm`: false with the Vm's error set.
bool ValueToString(Vm& vm, const Value& v, bool quoted, std::string* out);
void AppendNumber(std::string* out, double d);
void AppendF32(std::string* out, float f);
void AppendQuoted(std::string* out, std::string_view s);
// Three-way comparison for < <= > >= and sorting: Int/Number and String only.
// Returns false when the pair is not comparable. *result is -1, 0 or 1, or kUnordered when a
// NaN is involved (all of < <= > >= are then false): test `r < 0`, `r <= 0`, `r == 1`
// (for >) and `r == 0 || r == 1` (for >=), never `r > 0` / `r >= 0`.
inline constexpr int kUnordered = 2;
bool CompareValues(const Value& a, const Value& b, int* result);

}  // namespace shapex::engine

#endif  // SHAPEX_ENGINE_VALUE_H_
