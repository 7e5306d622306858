// Value semantics shared by the VM and the natives: object constructors, the insertion-ordered
// map, equality, hashing and comparison, plus the program.h helpers. Printing and type names
// live in value_print.cc.
#include "shapex/engine/value.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "shapex/engine/program.h"
#include "shapex/engine/vm.h"

namespace shapex::engine {
namespace {

// Containers nested deeper than this compare unequal: it bounds the native stack used by
// comparing deeply nested data.
constexpr int kMaxDepth = 64;

// Typed-array and matrix buffers are 64-byte aligned (one cache line, any SIMD width).
constexpr std::align_val_t kBufferAlign{64};

// From this size a buffer is its own anonymous mapping: its pages come zeroed from the kernel
// (no memset pass), only when touched, and as transparent huge pages where the system allows
// them on request (THP "madvise" mode is common): 2 MiB per fault instead of 4 KiB, which makes
// creating a 64 MiB array several times faster. Sanitizer builds keep the allocator so ASan
// still checks every buffer.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kMappedBuffer = SIZE_MAX;
#else
constexpr size_t kMappedBuffer = size_t{1} << 20;
#endif
constexpr size_t kHugePage = size_t{2} << 20;

uint8_t* AllocateZeroed(size_t bytes) {
  if (bytes >= kMappedBuffer) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    if (bytes >= kHugePage) (void)::madvise(p, bytes, MADV_HUGEPAGE);  // advice only
    return static_cast<uint8_t*>(p);
  }
  // Round up to whole cache lines and never allocate zero bytes, so `data` is always a valid
  // aligned pointer even for an empty array.
  size_t rounded = bytes == 0 ? 64 : (bytes + 63) & ~size_t{63};
  auto* p = static_cast<uint8_t*>(::operator new(rounded, kBufferAlign));
  std::memset(p, 0, rounded);
  return p;
}

// A typed array's or matrix's buffer: the embedder's (adopted), or ours, allocated with
// `bytes` bytes by AllocateZeroed.
void ReleaseBuffer(const ExternalBuffer& external, void* data, size_t bytes) {
  if (external.release != nullptr) {
    external.release(external.base, external.size);
  } else if (bytes >= kMappedBuffer) {
    ::munmap(data, bytes);
  } else {
    ::operator delete(data, kBufferAlign);
  }
}

// splitmix64's finalizer: a cheap bijective mix with good avalanche.
uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

bool KeysEqual(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::kInt:
      return a.as.i == b.as.i;
    case Type::kBool:
      return a.as.b == b.as.b;
    case Type::kString:
      return a.as.o == b.as.o || AsString(a)->str == AsString(b)->str;
    default:
      return false;
  }
}

// The container pairs currently being compared, outermost first, and what the walk may spend.
struct EqWalk {
  std::vector<std::pair<const Obj*, const Obj*>> path;
  WalkBudget& budget;
};

// Each returns false when the budget refused; otherwise *equal holds the answer.
bool EqualAt(const Value& a, const Value& b, EqWalk& w, bool* equal);
bool ObjectsEqual(const Value& a, const Value& b, EqWalk& w, bool* equal);

bool StringsEqual(const Value& a, const Value& b, WalkBudget& budget, bool* equal) {
  const std::string& x = AsString(a)->str;
  const std::string& y = AsString(b)->str;
  if (a.as.o == b.as.o || x.size() != y.size()) {
    *equal = a.as.o == b.as.o;
    return true;
  }
  // Comparing bytes is work too: in a shared structure the same long strings may be compared
  // once per path that reaches them.
  if (x.size() >= 16 && !budget.Charge(x.size() / 16)) return false;
  *equal = x == y;
  return true;
}

bool SequencesEqual(const std::vector<Value>& x, const std::vector<Value>& y, EqWalk& w,
                    bool* equal) {
  *equal = x.size() == y.size();
  for (size_t i = 0; *equal && i < x.size(); ++i)
    if (!w.budget.Charge(1) || !EqualAt(x[i], y[i], w, equal)) return false;
  return true;
}

bool MapsEqual(const ObjMap* x, const ObjMap* y, EqWalk& w, bool* equal) {
  // Order-insensitive, like Python dicts: same keys with equal values.
  *equal = x->count == y->count;
  bool paid = true;
  x->ForEach([&](const Value& k, const Value& v) {
    if (!*equal || !paid) return;
    const Value* other = y->Find(k);
    if (other == nullptr) {
      *equal = false;
      return;
    }
    paid = w.budget.Charge(1) && EqualAt(v, *other, w, equal);
  });
  return paid;
}

bool TypedArraysEqual(const ObjTypedArray* x, const ObjTypedArray* y, EqWalk& w, bool* equal) {
  *equal = x->length == y->length;
  if (!*equal) return true;
  if (!w.budget.Charge(x->length)) return false;
  if (x->kind == y->kind && !ElemIsFloat(x->kind)) {
    *equal = std::memcmp(x->data, y->data, x->ByteSize()) == 0;
    return true;
  }
  // Elements are immediates: no recursion, nothing more to pay.
  for (size_t i = 0; *equal && i < x->length; ++i) EqualAt(x->Get(i), y->Get(i), w, equal);
  return true;
}

bool MatricesEqual(const ObjMatrix* x, const ObjMatrix* y, WalkBudget& budget, bool* equal) {
  *equal = x->rows == y->rows && x->cols == y->cols;
  if (!*equal) return true;
  if (!budget.Charge(x->rows * x->cols)) return false;
  for (size_t i = 0; *equal && i < x->rows * x->cols; ++i) *equal = x->data[i] == y->data[i];
  return true;
}

bool EqualAt(const Value& a, const Value& b, EqWalk& w, bool* equal) {
  if (a.IsNumeric() && b.IsNumeric()) {
    if (a.IsInt() && b.IsInt()) {
      *equal = a.as.i == b.as.i;
    } else {
      int r;
      *equal = CompareValues(a, b, &r) && r == 0;
    }
    return true;
  }
  *equal = false;
  if (a.type != b.type) return true;
  switch (a.type) {
    case Type::kNone:
      *equal = true;
      return true;
    case Type::kBool:
      *equal = a.as.b == b.as.b;
      return true;
    case Type::kString:
      return StringsEqual(a, b, w.budget, equal);
    default:
      break;
  }
  // Identity implies equality for containers (as in Python); this also makes `a == a` true
  // for a cyclic array.
  // A pair already being compared further up closes a cycle: it is equal unless some other
  // part differs (coinductive equality), which keeps comparing cyclic data finite.
  *equal = true;
  if (a.as.o == b.as.o) return true;
  for (const auto& [x, y] : w.path)
    if (x == a.as.o && y == b.as.o) return true;
  *equal = false;
  if (w.path.size() >= kMaxDepth) return true;
  w.path.emplace_back(a.as.o, b.as.o);
  bool paid = ObjectsEqual(a, b, w, equal);
  w.path.pop_back();
  return paid;
}

bool ObjectsEqual(const Value& a, const Value& b, EqWalk& w, bool* equal) {
  *equal = false;
  switch (a.type) {
    case Type::kArray:
      return SequencesEqual(AsArray(a)->items, AsArray(b)->items, w, equal);
    case Type::kMap:
      return MapsEqual(AsMap(a), AsMap(b), w, equal);
    case Type::kStruct:
      if (AsStruct(a)->stype != AsStruct(b)->stype) return true;
      return SequencesEqual(AsStruct(a)->fields, AsStruct(b)->fields, w, equal);
    case Type::kEnum: {
      const ObjEnum* x = AsEnum(a);
      const ObjEnum* y = AsEnum(b);
      if (x->etype != y->etype || x->variant != y->variant) return true;
      return SequencesEqual(x->payload, y->payload, w, equal);
    }
    case Type::kRange: {
      const ObjRange* x = AsRange(a);
      const ObjRange* y = AsRange(b);
      *equal = x->start == y->start && x->end == y->end && x->step == y->step &&
               x->inclusive == y->inclusive;
      return true;
    }
    case Type::kFunction:
      *equal = AsFunction(a)->proto == AsFunction(b)->proto;
      return true;
    case Type::kNative:
      *equal = AsNative(a)->def == AsNative(b)->def;
      return true;
    case Type::kTypedArray:
      return TypedArraysEqual(AsTypedArray(a), AsTypedArray(b), w, equal);
    case Type::kMatrix:
      return MatricesEqual(AsMatrix(a), AsMatrix(b), w.budget, equal);
    case Type::kCell:
      return w.budget.Charge(1) && EqualAt(AsCell(a)->value, AsCell(b)->value, w, equal);
    default:  // closures: identity only (checked above)
      return true;
  }
}

}  // namespace

// ---------------- element kinds ----------------

size_t ElemSize(ElemKind k) {
  switch (k) {
    case ElemKind::kF64:
    case ElemKind::kI64:
      return 8;
    case ElemKind::kF32:
    case ElemKind::kI32:
      return 4;
    case ElemKind::kI16:
      return 2;
    case ElemKind::kI8:
    case ElemKind::kU8:
    case ElemKind::kBool:
      return 1;
  }
  return 1;
}

namespace {
constexpr std::string_view kElemNames[kNumElemKinds] = {"f64", "f32", "i64", "i32",
                                                        "i16", "i8",  "u8",  "bool"};
}  // namespace

std::string_view ElemKindName(ElemKind k) {
  auto i = static_cast<size_t>(k);
  return i < kNumElemKinds ? kElemNames[i] : std::string_view("?");
}

bool ElemKindFromName(std::string_view name, ElemKind* out) {
  for (int i = 0; i < kNumElemKinds; ++i) {
    if (kElemNames[i] == name) {
      *out = static_cast<ElemKind>(i);
      return true;
    }
  }
  return false;
}

// ---------------- objects ----------------

namespace {

// True when no byte has its high bit set. Every string the VM creates is scanned once, so this
// works a word at a time (and stays fast in unoptimised builds too).
bool IsAscii(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t high = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    high |= word;
  }
  for (; n > 0; ++p, --n) high |= static_cast<unsigned char>(*p);
  return (high & 0x8080808080808080ULL) == 0;
}

}  // namespace

ObjString::ObjString(std::string s) : Obj(Type::kString), str(std::move(s)) {
  ascii = IsAscii(str);
}

uint64_t ObjString::Hash() const {
  if (hash != 0) return hash;
  // FNV-1a over the bytes, then a final mix so that short keys spread over all bits (the map
  // uses the low bits as the slot).
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : str) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h = Mix64(h ^ str.size());
  hash = h == 0 ? 1 : h;  // 0 means "not computed"
  return hash;
}

// Open addressing with linear probing. An index slot holds -1 (empty) or a position in
// `entries`. A slot whose entry is a tombstone stays "occupied": probing continues past it,
// so removing one key never hides another. Returns the slot holding `key`, or the empty slot
// where it would be inserted. Requires a non-empty index (power-of-two size) with at least one
// empty slot, which the load factor guarantees.
size_t ObjMap::Slot(const Value& key) const {
  size_t mask = index.size() - 1;
  size_t slot = HashKey(key) & mask;
  while (true) {
    int32_t pos = index[slot];
    if (pos < 0) return slot;
    if (KeysEqual(entries[pos].key, key)) return slot;
    slot = (slot + 1) & mask;
  }
}

// Compacts tombstones out of `entries` and rehashes into an index of `capacity` slots.
void ObjMap::Rebuild(size_t capacity) {
  if (count != entries.size()) {
    size_t w = 0;
    for (size_t r = 0; r < entries.size(); ++r)
      if (entries[r].key.type != Type::kNone) entries[w++] = entries[r];
    entries.resize(w);
  }
  index.assign(capacity, -1);
  size_t mask = capacity - 1;
  for (size_t i = 0; i < entries.size(); ++i) {
    size_t slot = HashKey(entries[i].key) & mask;
    while (index[slot] >= 0) slot = (slot + 1) & mask;
    index[slot] = static_cast<int32_t>(i);
  }
}

const Value* ObjMap::Find(const Value& key) const {
  if (count == 0) return nullptr;
  int32_t pos = index[Slot(key)];
  return pos < 0 ? nullptr : &entries[pos].value;
}

Value* ObjMap::Find(const Value& key) {
  return const_cast<Value*>(static_cast<const ObjMap*>(this)->Find(key));
}

void ObjMap::Set(const Value& key, const Value& value) {
  if (!index.empty()) {
    size_t slot = Slot(key);
    if (index[slot] >= 0) {
      entries[index[slot]].value = value;
      return;
    }
  }
  // Inserting: keep (live + tombstoned) entries <= capacity / 2 after the insert. Rebuilding
  // sizes for the live count only, so tombstones are reclaimed here too.
  if ((entries.size() + 1) * 2 > index.size()) {
    size_t capacity = 8;
    while (capacity < (count + 1) * 2) capacity *= 2;
    Rebuild(capacity);
  }
  size_t slot = Slot(key);
  index[slot] = static_cast<int32_t>(entries.size());
  entries.push_back({key, value});
  ++count;
}

bool ObjMap::Remove(const Value& key, Value* old) {
  if (count == 0) return false;
  size_t slot = Slot(key);
  int32_t pos = index[slot];
  if (pos < 0) return false;
  if (old != nullptr) *old = entries[pos].value;
  entries[pos].key = Value::None();
  entries[pos].value = Value::None();
  --count;
  if (count == 0) {
    entries.clear();
    index.clear();
  } else if (entries.size() - count > count && entries.size() > 16) {
    // Mostly tombstones: compact so iteration and memory stay proportional to the live count.
    size_t capacity = 8;
    while (capacity < count * 2) capacity *= 2;
    Rebuild(capacity);
  }
  return true;
}

int64_t ObjRange::Length() const {
  if (step <= 0) return 0;
  // Unsigned distance: end - start can exceed INT64_MAX (e.g. INT64_MIN..INT64_MAX).
  uint64_t span;
  if (inclusive) {
    if (end < start) return 0;
    span = static_cast<uint64_t>(end) - static_cast<uint64_t>(start);
  } else {
    if (end <= start) return 0;
    span = static_cast<uint64_t>(end) - static_cast<uint64_t>(start) - 1;
  }
  uint64_t n = span / static_cast<uint64_t>(step) + 1;  // span/step < 2^64 - 1: no overflow
  if (n == 0 || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(n);
}

ObjTypedArray::ObjTypedArray(ElemKind k, size_t n)
    : Obj(Type::kTypedArray), kind(k), length(n), data(AllocateZeroed(n * ElemSize(k))) {}

ObjTypedArray::~ObjTypedArray() { ReleaseBuffer(external, data, ByteSize()); }

Value ObjTypedArray::Get(size_t i) const {
  switch (kind) {
    case ElemKind::kF64:
      return Value::Number(As<double>()[i]);
    case ElemKind::kF32:
      return Value::Number(As<float>()[i]);
    case ElemKind::kI64:
      return Value::Int(As<int64_t>()[i]);
    case ElemKind::kI32:
      return Value::Int(As<int32_t>()[i]);
    case ElemKind::kI16:
      return Value::Int(As<int16_t>()[i]);
    case ElemKind::kI8:
      return Value::Int(As<int8_t>()[i]);
    case ElemKind::kU8:
      return Value::Int(As<uint8_t>()[i]);
    case ElemKind::kBool:
      return Value::Bool(As<uint8_t>()[i] != 0);
  }
  return Value::None();
}

ObjMatrix::ObjMatrix(size_t r, size_t c)
    : Obj(Type::kMatrix),
      rows(r),
      cols(c),
      data(reinterpret_cast<double*>(AllocateZeroed(r * c * sizeof(double)))) {}

ObjMatrix::~ObjMatrix() { ReleaseBuffer(external, data, rows * cols * sizeof(double)); }

// ---------------- semantics ----------------

bool ValuesEqual(const Value& a, const Value& b, WalkBudget& budget, bool* equal) {
  EqWalk walk{{}, budget};
  return EqualAt(a, b, walk, equal);
}

bool ValuesEqual(const Value& a, const Value& b) {
  WalkBudget unlimited;
  bool equal = false;
  ValuesEqual(a, b, unlimited, &equal);  // an unlimited budget never refuses
  return equal;
}

bool ValuesEqual(Vm& vm, const Value& a, const Value& b, bool* equal) {
  WalkBudget budget(vm);
  return ValuesEqual(a, b, budget, equal) && budget.Settle();
}

// ---------------- walk budgets ----------------

bool WalkBudget::Refuse() {
  // Every later Charge, Grow and Settle lands in a slow path that sees failed_.
  failed_ = true;
  owed_ = 0;
  pay_at_ = 0;
  next_check_ = 0;
  return false;
}

bool WalkBudget::Pay(bool batch) {
  if (failed_) return false;
  if (vm_ == nullptr) {
    owed_ = 0;
    return true;
  }
  uint64_t units = owed_;
  owed_ = 0;
  return (vm_->ChargeFuel(units) && (!batch || vm_->CheckDeadline())) || Refuse();
}

void WalkBudget::ChargeBytes(size_t size) {
  if (size <= charged_bytes_) return;
  owed_ += size / 16 - charged_bytes_ / 16;
  charged_bytes_ = size;
}

bool WalkBudget::CheckSize(size_t size) {
  if (failed_) return false;
  if (vm_ == nullptr) return true;
  ChargeBytes(size);
  next_check_ = size + kSizeStep;
  return Pay(/*batch=*/true) && (vm_->CheckMemory(size) || Refuse());
}

bool WalkBudget::SettleSlow(size_t built) {
  if (failed_) return false;
  if (built >= next_check_ && !CheckSize(built)) return false;
  ChargeBytes(built);
  return Pay(/*batch=*/false);
}

uint64_t HashKey(const Value& key) {
  switch (key.type) {
    case Type::kString:
      return AsString(key)->Hash();
    case Type::kInt:
      return Mix64(static_cast<uint64_t>(key.as.i));
    case Type::kBool:
      // Distinct from Int 0/1 hashes (the keys are unequal anyway; this only spreads them).
      return Mix64(key.as.b ? 0x5bd1e995ULL : 0x1b873593ULL);
    default:
      return 0;
  }
}

bool CompareValues(const Value& a, const Value& b, int* result) {
  if (a.IsInt() && b.IsInt()) {
    *result = a.as.i < b.as.i ? -1 : (a.as.i > b.as.i ? 1 : 0);
    return true;
  }
  if (a.IsNumeric() && b.IsNumeric()) {
    // long double holds every i64 exactly (x87 80-bit / IEEE quad), so Int vs Number
    // compares exactly: 2^53 + 1 > 2^53 as a Number.
    long double x = a.IsInt() ? static_cast<long double>(a.as.i) : a.as.n;
    long double y = b.IsInt() ? static_cast<long double>(b.as.i) : b.as.n;
    if (x < y) {
      *result = -1;
    } else if (x > y) {
      *result = 1;
    } else if (x == y) {
      *result = 0;
    } else {
      *result = kUnordered;  // NaN: every one of < <= > >= is false
    }
    return true;
  }
  if (a.Is(Type::kString) && b.Is(Type::kString)) {
    // string_view::compare is byte-lexicographic (unsigned bytes).
    int c = std::string_view(AsString(a)->str).compare(AsString(b)->str);
    *result = c < 0 ? -1 : (c > 0 ? 1 : 0);
    return true;
  }
  return false;
}

// ---------------- program.h helpers ----------------

const EnumType* OptionType() {
  static const EnumType* type = [] {
    auto* t = new EnumType;  // intentionally leaked: lives for the whole process
    t->name = "Option";
    t->variant_names = {"Some"};
    t->variant_arity = {1};
    t->builtin = true;
    return t;
  }();
  return type;
}

const EnumType* ResultType() {
  static const EnumType* type = [] {
    auto* t = new EnumType;
    t->name = "Result";
    t->variant_names = {"Ok", "Err"};
    t->variant_arity = {1, 1};
    t->builtin = true;
    return t;
  }();
  return type;
}

int Program::FindFunction(const std::string& name) const {
  for (const auto& [fn_name, index] : functions)
    if (fn_name == name) return static_cast<int>(index);
  return -1;
}

Value Program::NewConstantString(std::string s) {
  auto* str = new ObjString(std::move(s));
  str->permanent = true;
  str->bytes = sizeof(ObjString) + str->str.capacity();
  constant_objects.emplace_back(str, [](Obj* o) { delete static_cast<ObjString*>(o); });
  return Value::Object(str);
}

std::string TypeSpecName(const TypeSpec& t, const Program& p) {
  using Kind = TypeSpec::Kind;
  auto arg = [&](size_t i) {
    return i < t.args.size() ? TypeSpecName(t.args[i], p) : std::string("any");
  };
  switch (t.kind) {
    case Kind::kAny:
      return "any";
    case Kind::kInt:
      return "int";
    case Kind::kNumber:
      return "number";
    case Kind::kBool:
      return "bool";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kMap:
      return "map";
    case Kind::kFunction:
      return "function";
    case Kind::kMatrix:
      return "Matrix";
    case Kind::kRange:
      return "range";
    case Kind::kNone:
      return "None";
    case Kind::kVec:
      return fmt::format("Vec<{}>", ElemKindName(t.elem));
    case Kind::kStruct:
      return t.index < p.structs.size() ? p.structs[t.index]->name : "<struct?>";
    case Kind::kEnum:
      return t.index < p.enums.size() ? p.enums[t.index]->name : "<enum?>";
    case Kind::kOption:
      return fmt::format("Option<{}>", arg(0));
    case Kind::kResult:
      return fmt::format("Result<{}, {}>", arg(0), arg(1));
  }
  return "any";
}

}  // namespace shapex::engine
