// Test helpers for ipc: a compiled program with its blobs, and a Vm that converts values to and
// from WireValue.
//
//   WireTestProgram p("function f() { [1, 2] }");
//   VmSide a(p), b(p);                         // two Vms running the same program
//   ASSERT_OK_AND_ASSIGN(WireValue w, a.CallToWire("f"));
//   ASSERT_OK_AND_ASSIGN(engine::Value v, b.FromWire(w));
#ifndef SHAPEX_TESTS_TESTING_WIRE_TEST_UTIL_H_
#define SHAPEX_TESTS_TESTING_WIRE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "shapex/engine/blob.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/type_registry.h"
#include "shapex/ipc/wire_value.h"
#include "testing/status_matchers.h"

// gtest printer for WireValue, found by ADL.
namespace shapex::ipc {
inline void PrintTo(const WireValue& v, std::ostream* os) { *os << DescribeWire(v); }
}  // namespace shapex::ipc

namespace shapex::ipc::testing {

class WireTestProgram {
 public:
  explicit WireTestProgram(std::string_view source) {
    auto program = engine::Compile(source, "wire_test.shape");
    if (!program) {
      ADD_FAILURE() << "compile failed: " << program.error();
      program_ = std::make_unique<engine::Program>();
      return;
    }
    program_ = std::move(*program);
    auto blobs = engine::BuildProgramBlobs(*program_);
    if (!blobs) {
      ADD_FAILURE() << "BuildProgramBlobs failed: " << blobs.error();
      return;
    }
    blobs_ = std::move(*blobs);
  }

  const engine::Program& program() const { return *program_; }
  const engine::ProgramBlobs& blobs() const { return blobs_; }
  ToWireContext to_wire() const { return ToWireContext{program_.get(), blobs_.proto_hashes}; }

 private:
  std::unique_ptr<engine::Program> program_;
  engine::ProgramBlobs blobs_;
};

// One Vm over a WireTestProgram, with what FromWire needs. Values it returns are not rooted:
// use them before the next call into the Vm.
class VmSide {
 public:
  explicit VmSide(const WireTestProgram& p, engine::Limits limits = {})
      : program_(p),
        types_(p.program()),
        vm_(p.program(), limits),
        protos_(MakeProtoIndex(p.blobs().proto_hashes)),
        ctx_{&vm_, &protos_, &types_} {
    vm_.SetOutput([](std::string_view) {});
  }

  engine::Vm& vm() { return vm_; }
  TypeRegistry& types() { return types_; }

  Result<engine::Value> Call(const std::string& name, const std::vector<engine::Value>& args = {}) {
    engine::Value out;
    Status s = vm_.CallByName(name, args, &out);
    if (!s.ok()) return s;
    return out;
  }
  Result<WireValue> CallToWire(const std::string& name,
                               const std::vector<engine::Value>& args = {}) {
    ASSIGN_OR_RETURN(engine::Value v, Call(name, args));
    return ToWire(v, program_.to_wire());
  }
  Result<engine::Value> FromWire(const WireValue& w) { return ipc::FromWire(w, ctx_); }

 private:
  const WireTestProgram& program_;
  TypeRegistry types_;  // before vm_: outlives its values
  engine::Vm vm_;
  ProtoIndex protos_;
  FromWireContext ctx_;
};

// The bytes of a sequence of doubles (little-endian host).
inline std::vector<uint8_t> F64Bytes(const std::vector<double>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(double));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace shapex::ipc::testing

#endif  // SHAPEX_TESTS_TESTING_WIRE_TEST_UTIL_H_
