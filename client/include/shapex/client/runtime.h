// shapex::Runtime and shapex::Module: calling Shape functions from C++ in a few lines.
//
//   #include <shapex/shapex.h>
//
//   shapex::Runtime rt = shapex::Runtime::Connect().value();     // finds or starts the supervisor
//   shapex::Module m = rt.Load("examples/add.shape").value();    // compiled once, code sent once
//   int64_t r = m.Call<int64_t>("add", 10, 32).value();          // 42
//   auto f = m.CallAsync<int64_t>("add", 1, 2);                  // std::future: calls in flight
//   shapex::CallResult<int64_t> g = m.CallWith<int64_t>({.fuel = 1000}, "fib", 40);
//   if (!g) std::cerr << g.error().ToString();                   // error[ResourceExhausted]: ...
//
// What a call does: the arguments are converted to Shape values (Convert<T> below), the
// function runs in a jailed executor leased from the per-user supervisor exactly as
// `shapex call FILE FUNC ARGS` runs it (the module's top-level code has run first, here, and
// the globals the function uses travel with the call; send-copy), and the result is converted
// back to R. What the function printed is kept in the result (output()), not printed. An error
// keeps its kind (RuntimeError, ArgumentError, Timeout, ...), its message and the Shape trace,
// named with the module's file and lines. RuntimeOptions::local runs the same code in this
// process instead (no sandbox; for tests and debugging), with the same results.
//
// Conversions, both ways: bool; integers (Int, checked for range); float and double (Number;
// an Int result converts to double); std::string (and const char*, std::string_view as
// arguments); std::vector<T> (Array); std::map<K, V> and std::unordered_map<K, V> (Map; keys
// bool, integer or string); std::optional<T> (None or Some(x)); shapex::Formatted (a result
// only: the value as Shape prints it, for any kind); ipc::SharedVec<T> (an argument only: a
// typed array Vec::f64, Vec::i32, ... passed with no copy, as its segment's descriptor). A result that does not convert is an error
// of kind InvalidArgument naming what was expected and what came. Add your own by specialising
// shapex::Convert<T> (see the specialisations below).
//
// Limits: RuntimeOptions::limits apply to every call; CallWith overrides them for one call
// (fuel in instructions, memory in bytes, timeout in seconds, 0 = the executor's default; the
// executor enforces them and a breach is ResourceExhausted or Timeout).
//
// Thread-safety: Runtime and Module are cheap handles (copies share state) and may be used
// from any number of threads at once. A Module runs up to RuntimeOptions::max_in_flight calls
// at the same time, each on its own executor (each such call slot has its own connection,
// lease and copy of the module's globals; its top-level code runs once per slot); more calls
// wait for a free slot. Values never leak from one call into the next: every call copies its
// arguments and the globals in, its result out.
//
// The lower-level API (Client, ExecutorSession, RemoteCalls) stays for experts.
#ifndef SHAPEX_CLIENT_RUNTIME_H_
#define SHAPEX_CLIENT_RUNTIME_H_

#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/core/result.h"
#include "shapex/core/status.h"
#include "shapex/engine/program.h"
#include "shapex/engine/value.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/shared_vec.h"

namespace shapex {

// Per-call limits; 0 = the executor's default (no fuel limit, 1 GiB, no timeout).
struct CallOptions {
  uint64_t fuel = 0;       // instructions (walks of values count too)
  size_t memory = 0;       // heap bytes of the executor's VM
  double timeout = 0;      // wall-clock seconds
};

struct RuntimeOptions {
  ClientOptions client;         // supervisor socket, the `shapex` binary, transport
  CallOptions limits;           // for every call unless CallWith says otherwise
  size_t max_in_flight = 2;     // calls of one Module running at once (one executor each)
  bool local = false;           // run calls in this process (no sandbox), same results
};

// One frame of a Shape trace, innermost first. A frame standing for frames left out of a deep
// trace has function "... N more frames" and line 0.
struct TraceLine {
  std::string function;
  std::string file;
  uint32_t line = 0;
};

class Error {
 public:
  Error() = default;
  Error(ErrorKind kind, std::string message, std::vector<TraceLine> trace = {})
      : kind_(kind), message_(std::move(message)), trace_(std::move(trace)) {}
  ErrorKind kind() const { return kind_; }
  std::string_view kind_name() const { return ErrorKindName(kind_); }
  const std::string& message() const { return message_; }
  const std::vector<TraceLine>& trace() const { return trace_; }
  // As the CLI prints it: "error[Kind]: message" and one "  at f (file:line)" per frame.
  std::string ToString() const;

 private:
  ErrorKind kind_ = ErrorKind::kInternal;
  std::string message_;
  std::vector<TraceLine> trace_;
};

// A call's value or its Error, plus what the function printed (either way).
template <class T>
class [[nodiscard]] CallResult {
 public:
  CallResult(T value, std::string output) : value_(std::move(value)), output_(std::move(output)) {}
  CallResult(Error error, std::string output)
      : error_(std::move(error)), output_(std::move(output)) {}

  bool has_value() const { return value_.has_value(); }
  explicit operator bool() const { return has_value(); }
  // The value; on an error, prints the error (ToString) to stderr and aborts, like Result.
  T& value() & {
    Check();
    return *value_;
  }
  const T& value() const& {
    Check();
    return *value_;
  }
  T&& value() && {
    Check();
    return std::move(*value_);
  }
  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }
  const Error& error() const { return error_; }
  const std::string& output() const { return output_; }

 private:
  void Check() const;
  std::optional<T> value_;
  Error error_;
  std::string output_;
};

// A call with no result wanted.
struct Void {};

// The result as Shape prints it (`print(x)`), for a value of any kind.
struct Formatted {
  std::string text;
};

// ---------------- conversions ----------------

// Convert<T>::ToShape makes a value of `vm`; FromShape reads one (false with *why saying what
// was expected). Specialise it for your own types.
template <class T, class Enable = void>
struct Convert;

namespace internal {
std::string DescribeValue(const engine::Value& v);  // "Int", "String", "Array", ...
engine::Value NewString(engine::Vm& vm, std::string_view s);
bool FormatValue(engine::Vm& vm, const engine::Value& v, std::string* out);
template <class T>
using Bare = std::remove_cvref_t<T>;
}  // namespace internal

template <>
struct Convert<bool> {
  static engine::Value ToShape(engine::Vm&, bool b) { return engine::Value::Bool(b); }
  static bool FromShape(engine::Vm&, const engine::Value& v, bool* out, std::string* why) {
    if (v.type != engine::Type::kBool) return (*why = "Bool", false);
    *out = v.as.b;
    return true;
  }
};

template <class T>
struct Convert<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static engine::Value ToShape(engine::Vm&, T i) {
    // An unsigned value above INT64_MAX has no Int: it saturates (documented in embedding.md).
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
      if (i > static_cast<T>(std::numeric_limits<int64_t>::max()))
        return engine::Value::Int(std::numeric_limits<int64_t>::max());
    }
    return engine::Value::Int(static_cast<int64_t>(i));
  }
  static bool FromShape(engine::Vm&, const engine::Value& v, T* out, std::string* why) {
    if (v.type != engine::Type::kInt) return (*why = "Int", false);
    int64_t i = v.as.i;
    bool fits;
    if constexpr (std::is_unsigned_v<T>) {
      fits = i >= 0 && static_cast<uint64_t>(i) <= std::numeric_limits<T>::max();
    } else {
      fits = i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max();
    }
    if (!fits) return (*why = "an Int in the range of the C++ type", false);
    *out = static_cast<T>(i);
    return true;
  }
};

template <class T>
struct Convert<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static engine::Value ToShape(engine::Vm&, T d) {
    return engine::Value::Number(static_cast<double>(d));
  }
  static bool FromShape(engine::Vm&, const engine::Value& v, T* out, std::string* why) {
    if (v.type == engine::Type::kNumber) {
      *out = static_cast<T>(v.as.n);
    } else if (v.type == engine::Type::kInt) {
      *out = static_cast<T>(v.as.i);
    } else {
      return (*why = "Number", false);
    }
    return true;
  }
};

template <>
struct Convert<std::string> {
  static engine::Value ToShape(engine::Vm& vm, const std::string& s) {
    return internal::NewString(vm, s);
  }
  static bool FromShape(engine::Vm&, const engine::Value& v, std::string* out, std::string* why) {
    if (v.type != engine::Type::kString) return (*why = "String", false);
    *out = engine::AsString(v)->str;
    return true;
  }
};
template <>
struct Convert<std::string_view> {
  static engine::Value ToShape(engine::Vm& vm, std::string_view s) {
    return internal::NewString(vm, s);
  }
};
template <>
struct Convert<const char*> {
  static engine::Value ToShape(engine::Vm& vm, const char* s) {
    return internal::NewString(vm, s);
  }
};
template <size_t N>
struct Convert<char[N]> {
  static engine::Value ToShape(engine::Vm& vm, const char (&s)[N]) {
    return internal::NewString(vm, std::string_view(s));
  }
};

// A typed array in shared memory: the executor maps the caller's segment (read-only); nothing
// is copied on this side. Only as an argument.
template <class T>
struct Convert<ipc::SharedVec<T>> {
  static bool ToShape(engine::Vm& vm, const ipc::SharedVec<T>& v, engine::Value* out,
                      std::string* why) {
    Result<engine::Value> value = v.ToValue(vm);
    if (!value.has_value()) return (*why = value.error().message(), false);
    *out = *value;
    return true;
  }
};

template <>
struct Convert<Formatted> {
  static bool FromShape(engine::Vm& vm, const engine::Value& v, Formatted* out, std::string* why) {
    if (!internal::FormatValue(vm, v, &out->text)) return (*why = "a printable value", false);
    return true;
  }
};

template <>
struct Convert<Void> {
  static bool FromShape(engine::Vm&, const engine::Value&, Void*, std::string*) { return true; }
};

template <class T>
struct Convert<std::optional<T>> {
  static engine::Value ToShape(engine::Vm& vm, const std::optional<T>& o) {
    if (!o) return engine::Value::None();
    return vm.NewSome(Convert<T>::ToShape(vm, *o));
  }
  static bool FromShape(engine::Vm& vm, const engine::Value& v, std::optional<T>* out,
                        std::string* why) {
    if (v.type == engine::Type::kNone) {
      out->reset();
      return true;
    }
    const engine::Value* inner = &v;
    if (v.type == engine::Type::kEnum && engine::AsEnum(v)->etype == engine::OptionType() &&
        engine::AsEnum(v)->variant == engine::kSomeVariant) {
      inner = &engine::AsEnum(v)->payload[0];
    }
    T value{};
    if (!Convert<T>::FromShape(vm, *inner, &value, why)) return false;
    *out = std::move(value);
    return true;
  }
};

template <class T>
struct Convert<std::vector<T>> {
  static engine::Value ToShape(engine::Vm& vm, const std::vector<T>& items) {
    engine::Value array = vm.NewArray();
    engine::Vm::RootScope root(vm);
    root.Add(array);
    for (const T& item : items) engine::AsArray(array)->items.push_back(Convert<T>::ToShape(vm, item));
    vm.Recharge(array.as.o);
    return array;
  }
  static bool FromShape(engine::Vm& vm, const engine::Value& v, std::vector<T>* out,
                        std::string* why) {
    if (v.type != engine::Type::kArray) return (*why = "Array", false);
    out->clear();
    for (const engine::Value& item : engine::AsArray(v)->items) {
      T value{};
      if (!Convert<T>::FromShape(vm, item, &value, why)) {
        *why = "Array of " + *why;
        return false;
      }
      out->push_back(std::move(value));
    }
    return true;
  }
};

namespace internal {
template <class M>
struct ConvertMap {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  static engine::Value ToShape(engine::Vm& vm, const M& map) {
    engine::Value m = vm.NewMap();
    engine::Vm::RootScope root(vm);
    root.Add(m);
    for (const auto& [k, v] : map) {
      engine::Value key = Convert<K>::ToShape(vm, k);
      root.Add(key);
      engine::Value value = Convert<V>::ToShape(vm, v);
      engine::AsMap(m)->Set(key, value);
    }
    vm.Recharge(m.as.o);
    return m;
  }
  static bool FromShape(engine::Vm& vm, const engine::Value& v, M* out, std::string* why) {
    if (v.type != engine::Type::kMap) return (*why = "Map", false);
    out->clear();
    bool ok = true;
    engine::AsMap(v)->ForEach([&](const engine::Value& key, const engine::Value& value) {
      if (!ok) return;
      K k{};
      V val{};
      if (!Convert<K>::FromShape(vm, key, &k, why) || !Convert<V>::FromShape(vm, value, &val, why)) {
        *why = "Map of " + *why;
        ok = false;
        return;
      }
      out->emplace(std::move(k), std::move(val));
    });
    return ok;
  }
};
}  // namespace internal

template <class K, class V>
struct Convert<std::map<K, V>> : internal::ConvertMap<std::map<K, V>> {};
template <class K, class V>
struct Convert<std::unordered_map<K, V>> : internal::ConvertMap<std::unordered_map<K, V>> {};

// ---------------- Runtime and Module ----------------

class Module;

class Runtime {
 public:
  // Finds the per-user supervisor (or the one options.client names), starting it if none runs
  // (not with options.local). Fails with the Client's errors (SandboxError naming the cause).
  static Result<Runtime> Connect(RuntimeOptions options = {});

  // Compiles a file / source text (named `name` in traces) and runs its top-level code.
  // Errors: CompileError with the diagnostic; the top-level code's own error.
  CallResult<Module> Load(const std::string& path) const;
  CallResult<Module> LoadSource(std::string source, std::string name) const;

  const RuntimeOptions& options() const { return *options_; }

 private:
  explicit Runtime(std::shared_ptr<const RuntimeOptions> options) : options_(std::move(options)) {}
  std::shared_ptr<const RuntimeOptions> options_;
};

class Module {
 public:
  // Calls top-level function `function` with `args`, converting the result to R (Void: none).
  template <class R = Void, class... Args>
  CallResult<R> Call(std::string_view function, const Args&... args) const {
    return CallWith<R>(impl_limits(), function, args...);
  }
  // The same with limits for this call only.
  template <class R = Void, class... Args>
  CallResult<R> CallWith(const CallOptions& limits, std::string_view function,
                         const Args&... args) const {
    std::optional<R> result;
    std::string output;
    Error error;
    auto make_args = [&](engine::Vm& vm, std::vector<engine::Value>* out, std::string* why) {
      engine::Vm::RootScope root(vm);
      return (AddArg(vm, args, out, &root, why) && ...);
    };
    auto take = [&](engine::Vm& vm, const engine::Value& v, std::string* why) {
      R value{};
      if (!Convert<R>::FromShape(vm, v, &value, why)) return false;
      result = std::move(value);
      return true;
    };
    if (!Run(limits, function, make_args, take, &output, &error)) {
      return CallResult<R>(std::move(error), std::move(output));
    }
    return CallResult<R>(std::move(*result), std::move(output));
  }
  // Call on another thread: many calls in flight (up to max_in_flight run at once). The
  // arguments are copied; the Module may go away before the call ends.
  template <class R = Void, class... Args>
  std::future<CallResult<R>> CallAsync(std::string_view function, Args... args) const {
    return std::async(std::launch::async,
                      [module = *this, name = std::string(function), ... a = std::move(args)] {
                        return module.template Call<R>(name, a...);
                      });
  }

  // The file (or name) the module was loaded from, and its top-level functions.
  const std::string& name() const;
  std::vector<std::string> functions() const;

  struct Impl;

 private:
  friend class Runtime;
  explicit Module(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  // One argument: Convert<A>::ToShape, or its checked form `bool ToShape(vm, a, &value, why)`
  // for conversions that can fail (false with *why set).
  template <class A>
  static bool AddArg(engine::Vm& vm, const A& a, std::vector<engine::Value>* out,
                     engine::Vm::RootScope* root, std::string* why) {
    using C = Convert<internal::Bare<A>>;
    engine::Value v;
    if constexpr (requires { C::ToShape(vm, a, &v, why); }) {
      if (!C::ToShape(vm, a, &v, why)) return false;
    } else {
      v = C::ToShape(vm, a);
    }
    root->Add(v);
    out->push_back(v);
    return true;
  }
  const CallOptions& impl_limits() const;
  // The non-template part of a call: a free call slot, the arguments made there, the call,
  // the result taken there. False with *error set on any failure.
  bool Run(const CallOptions& limits, std::string_view function,
           const std::function<bool(engine::Vm&, std::vector<engine::Value>*, std::string*)>&
               make_args,
           const std::function<bool(engine::Vm&, const engine::Value&, std::string*)>& take,
           std::string* output, Error* error) const;

  std::shared_ptr<Impl> impl_;
};

namespace internal {
[[noreturn]] void DieOnBadCallResult(const Error& error);
}  // namespace internal

template <class T>
void CallResult<T>::Check() const {
  if (!value_.has_value()) internal::DieOnBadCallResult(error_);
}

}  // namespace shapex

#endif  // SHAPEX_CLIENT_RUNTIME_H_
