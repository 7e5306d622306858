// libFuzzer target with a structure-aware mutator: the input is a set of function blobs
// (format in blob_set_model.h; fuzz_link inputs are accepted too), and LLVMFuzzerCustomMutator
// edits the decoded set (blob_set_mutator.h: opcodes, operands, instructions, constants,
// references, headers, captures, annotations, types, impls) and then recomputes every hash as
// the blob builder does, so mutated sets get past hash verification and exercise the linker's
// remapping, the bytecode verifier and, once verified, the VM. One mutation in eight is
// libFuzzer's own byte-level one (hash mismatches and decoder paths stay covered).
//
// For every input: the set is linked (ProgramFromBlobs, blobs[0] is the entry, with the impls);
// a link error must be one of the documented kinds (docs/blob-format.md, "Error kinds"). A
// linked program is rebuilt into blobs, which must round-trip through EncodeBlob/DecodeBlob,
// link again and rebuild to the same entry hash (rebuilding is a fixed point, except where the
// builder's tie-break by source order applies: members of one recursion group with equal
// shapes). Then the entry runs with small limits (fuel 20000, 4 MiB, 64 frames, 0.5 s) on
// argument values chosen by the input (ints, numbers, strings, arrays, maps, a function, a closure, a struct, None), with the
// right count, the required count, and one too many: every failure has a runtime kind
// (RuntimeError, ArgumentError, ResourceExhausted, Timeout), never Internal, and a result
// formats. The sanitizers do the rest: a verified program must not trip them.
//
//   ./build/fuzz/tools/fuzz_blob_struct -max_total_time=600 tests/fuzz/blob_struct/
//   SHAPEX_FUZZ_STATS=1 ...      prints how far the inputs got (link, verifier, run) at exit
//
// Seeds: tools/fuzz/make_blob_struct_seeds.sh (runs this binary with SHAPEX_FUZZ_WRITE_SEEDS,
// then with SHAPEX_FUZZ_UPGRADE_SEEDS on the fuzzer-found inputs it keeps).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "blob_set_mutator.h"
#include "fuzz_check.h"
#include "shapex/engine/compiler.h"
#include "shapex/engine/vm.h"

using namespace shapex;
using namespace shapex::engine;
using shapex_fuzz::Check;

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

// How far inputs got; printed at exit with SHAPEX_FUZZ_STATS=1. `structural` counts the
// inputs the structure-aware mutator produced just before they ran.
struct Stats {
  uint64_t runs = 0, structural = 0, no_blobs = 0, link_ok = 0, runs_ok = 0, run_errors = 0;
  uint64_t s_link_ok = 0, s_hash_fail = 0, s_verifier_fail = 0, s_other_link_fail = 0;
  std::map<std::string, uint64_t> link_errors;
  void Print() const {
    std::fprintf(stderr,
                 "blob_struct stats: %llu inputs (%llu from the structural mutator): %llu without "
                 "blobs, %llu linked (verified), calls %llu ok / %llu failed. Structural: %llu "
                 "linked, %llu hash/dependency errors, %llu verifier rejections, %llu other\n",
                 (unsigned long long)runs, (unsigned long long)structural,
                 (unsigned long long)no_blobs, (unsigned long long)link_ok,
                 (unsigned long long)runs_ok, (unsigned long long)run_errors,
                 (unsigned long long)s_link_ok, (unsigned long long)s_hash_fail,
                 (unsigned long long)s_verifier_fail, (unsigned long long)s_other_link_fail);
    for (auto& [what, n] : link_errors) std::fprintf(stderr, "  link error %s: %llu\n", what.c_str(), (unsigned long long)n);
  }
};
Stats g_stats;
bool g_last_structural = false;

Value MakeArg(Vm& vm, const Program& p, uint32_t entry, uint32_t kind, uint32_t i) {
  switch (kind % 11) {
    case 0: return Value::Int(i + 1);
    case 1: return Value::Int(i % 2 ? std::numeric_limits<int64_t>::min() : -1);
    case 2: return Value::Number(i % 2 ? 0.5 : std::nan(""));
    case 3: return vm.NewString(i % 2 ? "" : "ab\xc3\xa9");
    case 4: return vm.NewArray({Value::Int(3), Value::Int(1), Value::Int(2)});
    case 5: {
      Value m = vm.NewMap();
      AsMap(m)->Set(vm.NewString("k"), Value::Int(1));
      vm.Recharge(AsMap(m));
      return m;
    }
    case 6:
    case 7: {  // a function value, or a closure (fresh cells) when the program has one
      bool want_closure = kind % 11 == 7;
      for (uint32_t k = 0; k < p.protos.size(); ++k) {
        uint32_t proto = (entry + k) % static_cast<uint32_t>(p.protos.size());
        if (p.protos[proto]->is_closure != want_closure) continue;
        return want_closure ? vm.NewClosure(proto, {Value::Int(7)}) : vm.NewFunction(proto);
      }
      return Value::None();
    }
    case 8: return Value::Bool(i % 2 == 0);
    case 9:
      if (!p.structs.empty()) return vm.NewStruct(p.structs[0].get(), {Value::Int(1)});
      return vm.NewSome(Value::Int(1));
    default: return Value::None();
  }
}

void CheckRunStatus(const Status& s, Vm& vm, const Value& out, size_t num_protos) {
  if (s.ok()) {
    ++g_stats.runs_ok;
    std::string text;
    (void)ValueToString(vm, out, true, &text);  // may run out of fuel; must not crash
    return;
  }
  ++g_stats.run_errors;
  ErrorKind k = s.kind();
  if (k != ErrorKind::kRuntimeError && k != ErrorKind::kArgumentError &&
      k != ErrorKind::kResourceExhausted && k != ErrorKind::kTimeout) {
    std::fprintf(stderr, "unexpected run error: %s\n", s.ToString().c_str());
    Check(false, "a verified program fails only with a runtime error kind");
  }
  for (const TraceFrame& f : vm.trace())
    Check(f.skipped > 0 || f.proto == UINT32_MAX || f.proto < num_protos, "trace frames name real functions");
}

void RunEntry(const LinkedProgram& linked, uint8_t arg_seed) {
  const Program& p = *linked.program;
  Vm vm(p, Limits{.fuel = 20000, .memory = 4 << 20, .stack = 64, .timeout = 0.5});
  vm.SetOutput([](std::string_view) {});
  const Proto& entry = *p.protos[linked.entry];
  uint32_t counts[3] = {entry.num_params, entry.num_required, entry.num_params + 1};
  for (int call = 0; call < 3; ++call) {
    if (call == 1 && entry.num_required == entry.num_params) continue;
    if (call == 2 && (arg_seed & 0x80) == 0) continue;
    std::vector<Value> args;
    for (uint32_t i = 0; i < counts[call] && i < 16; ++i)
      args.push_back(MakeArg(vm, p, linked.entry, arg_seed + i * 3 + static_cast<uint32_t>(call), i));
    Value out;
    Status s = entry.is_closure
                   ? vm.CallValue(vm.NewClosure(linked.entry, {}), args, &out)
                   : vm.CallFunction(linked.entry, args, &out);
    CheckRunStatus(s, vm, out, p.protos.size());
  }
}

// Whether two members of one recursion group have the same shape (their bytes with in-group
// references and group_index written as 0). The builder orders such members by source order
// (docs/blob-format.md, "Recursion groups"), so their hashes depend on the proto order, which
// relinking changes: rebuilding is then not a fixed point, by design.
bool HasShapeTie(const ProgramBlobs& pb) {
  std::set<std::pair<std::vector<FunctionHash>, FunctionHash>> shapes;
  for (const FunctionBlob& b : pb.blobs) {
    if (b.group.empty()) continue;
    auto body = DecodeBody(b.canonical);
    if (!body.has_value()) return true;
    body->group_index = 0;
    for (BlobFnRef& r : body->fn_refs)
      if (r.in_group) r.index = 0;
    if (!shapes.insert({b.group, Sha256(EncodeBody(*body))}).second) return true;
  }
  return false;
}

// A linked (verified) program rebuilds into blobs that round-trip, link, and rebuild to the
// same hashes (unless a recursion group has members of equal shape, see HasShapeTie).
void CheckRebuild(const LinkedProgram& linked) {
  auto pb = BuildProgramBlobs(*linked.program);
  if (!pb.has_value()) std::fprintf(stderr, "%s\n", pb.error().ToString().c_str());
  Check(pb.has_value(), "a linked program rebuilds into blobs");
  for (const FunctionBlob& b : pb->blobs) {
    auto again = DecodeBlob(EncodeBlob(b));
    Check(again.has_value() && again->hash == b.hash && again->canonical == b.canonical &&
              again->group == b.group && again->debug.lines == b.debug.lines,
          "a rebuilt blob round-trips through EncodeBlob/DecodeBlob");
  }
  Check(VerifyBlobHashes(pb->blobs).ok(), "rebuilt blobs verify");
  const FunctionHash& entry = pb->proto_hashes[linked.entry];
  auto relinked = ProgramFromBlobs(entry, pb->blobs, pb->impls);
  if (!relinked.has_value()) std::fprintf(stderr, "%s\n", relinked.error().ToString().c_str());
  Check(relinked.has_value(), "rebuilt blobs link");
  auto pb2 = BuildProgramBlobs(*relinked->program);
  Check(pb2.has_value(), "a relinked program rebuilds into blobs");
  if (HasShapeTie(*pb)) return;
  Check(pb2->proto_hashes[relinked->entry] == entry,
        "rebuilding a linked program is a fixed point");
}

// ---- seeds (SHAPEX_FUZZ_WRITE_SEEDS=<dir> fuzz_blob_struct FILE.shape ...) ----

struct SeedCandidate {
  std::string name;
  std::vector<uint8_t> bytes;
  std::set<std::string> features;
  bool is_main = false;
};

std::set<std::string> Features(const shapex_fuzz::BlobSetInput& in) {
  std::set<std::string> f;
  for (const FunctionBlob& b : in.blobs) {
    auto body = DecodeBody(b.canonical);
    if (!body.has_value()) continue;
    for (size_t pc = 0; pc < body->code.size(); ++pc) {
      Op op = code::GetOp(body->code[pc]);
      f.insert(std::string("op:") + OpName(op));
      if (OpHasExtra(op)) ++pc;
    }
    for (const std::string& n : body->natives) f.insert("native:" + n);
    for (const TypeSpec& t : body->param_types) f.insert("param:" + std::to_string(static_cast<int>(t.kind)));
    f.insert("ret:" + std::to_string(static_cast<int>(body->return_type.kind)));
    f.insert("flags:" + std::to_string(body->flags));
    if (body->group_size > 1) f.insert("group:" + std::to_string(body->group_size));
    if (!body->captures.empty()) f.insert("captures");
    for (const auto& t : body->types) f.insert("type:" + std::to_string(t.kind));
  }
  if (!in.impls.empty()) f.insert("impls");
  return f;
}

void WriteSeeds(const std::string& dir, const std::vector<std::string>& files) {
  std::vector<SeedCandidate> candidates;
  for (const std::string& path : files) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream source;
    source << file.rdbuf();
    std::string label = path;
    if (size_t at = label.find("tests/lang/"); at != std::string::npos) label = label.substr(at + 11);
    if (label.size() > 6 && label.ends_with(".shape")) label.resize(label.size() - 6);
    for (char& c : label)
      if (c == '/') c = '_';
    auto program = Compile(source.str(), label + ".shape");
    if (!program.has_value()) continue;
    auto pb = BuildProgramBlobs(**program);
    if (!pb.has_value()) continue;
    // Every top-level function, and the top-level code itself (most golden programs are a script).
    std::vector<std::pair<std::string, uint32_t>> entries = (*program)->functions;
    entries.push_back({"script", (*program)->script});
    for (auto& [fname, proto] : entries) {
      auto set = MinimalBlobsByHash(*pb, pb->proto_hashes[proto]);
      if (!set.has_value()) continue;
      shapex_fuzz::BlobSetInput in;
      in.arg_seed = static_cast<uint8_t>(std::hash<std::string>()(label + fname));
      in.impls = set->impls;
      in.blobs = set->blobs;
      // blobs[0] must be the entry
      for (size_t i = 0; i < in.blobs.size(); ++i)
        if (in.blobs[i].hash == set->entry) std::swap(in.blobs[0], in.blobs[i]);
      if (in.blobs.size() > shapex_fuzz::kMaxSetBlobs) continue;
      candidates.push_back({label + "_" + fname, shapex_fuzz::SerializeBlobSet(in), Features(in),
                            fname == "main" || fname == "script"});
    }
  }
  // Greedy: the candidate adding the most features not yet covered, until none adds any; then
  // the main functions and top-level code of the other programs, up to 250 seeds.
  std::set<std::string> covered;
  std::vector<bool> taken(candidates.size(), false);
  std::vector<size_t> chosen;
  for (;;) {
    size_t best = candidates.size(), best_gain = 0;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (taken[i]) continue;
      size_t gain = 0;
      for (const std::string& f : candidates[i].features) gain += covered.count(f) == 0;
      if (gain > best_gain) best = i, best_gain = gain;
    }
    if (best == candidates.size()) break;
    taken[best] = true;
    chosen.push_back(best);
    covered.insert(candidates[best].features.begin(), candidates[best].features.end());
  }
  for (size_t i = 0; i < candidates.size() && chosen.size() < 250; ++i)
    if (!taken[i] && candidates[i].is_main) taken[i] = true, chosen.push_back(i);
  size_t bytes = 0;
  for (size_t i : chosen) {
    std::ofstream out(dir + "/" + candidates[i].name + ".bs", std::ios::binary);
    out.write(reinterpret_cast<const char*>(candidates[i].bytes.data()),
              static_cast<std::streamsize>(candidates[i].bytes.size()));
    bytes += candidates[i].bytes.size();
  }
  std::fprintf(stderr, "wrote %zu seeds (%zu bytes, %zu features) from %zu candidates\n",
               chosen.size(), bytes, covered.size(), candidates.size());
}

// SHAPEX_FUZZ_UPGRADE_SEEDS=1 fuzz_blob_struct FILE.bs ...: rewrites each blob set in place
// for the current VM version (the version field of every body is set to kVmVersion, then the
// set is rehashed as the mutator does), so that a kept input still gets past the version check
// after kVmVersion changes. Bodies that do not decode even then are dropped.
void UpgradeSeeds(const std::vector<std::string>& files) {
  for (const std::string& path : files) {
    std::ifstream file(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    shapex_fuzz::BlobSetInput in = shapex_fuzz::ParseBlobSet(bytes.data(), bytes.size());
    for (FunctionBlob& b : in.blobs)
      if (b.canonical.size() >= 8 && std::memcmp(b.canonical.data(), "SXFN", 4) == 0) {
        b.canonical[6] = static_cast<uint8_t>(kVmVersion & 0xff);
        b.canonical[7] = static_cast<uint8_t>(kVmVersion >> 8);
      }
    shapex_fuzz::SetModel model;
    if (!model.Load(in)) {
      std::fprintf(stderr, "%s: no blob body decodes; left as it is\n", path.c_str());
      continue;
    }
    std::vector<uint8_t> out = shapex_fuzz::SerializeBlobSet(model.Rehash());
    std::ofstream write(path, std::ios::binary | std::ios::trunc);
    write.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    std::fprintf(stderr, "%s: %zu of %zu blobs, VM version %u\n", path.c_str(), model.fns.size(),
                 in.blobs.size(), static_cast<unsigned>(kVmVersion));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (std::getenv("SHAPEX_FUZZ_UPGRADE_SEEDS")) {
    std::vector<std::string> files;
    for (int i = 1; i < *argc; ++i)
      if (std::string_view((*argv)[i]).ends_with(".bs")) files.push_back((*argv)[i]);
    UpgradeSeeds(files);
    std::exit(0);
  }
  if (const char* dir = std::getenv("SHAPEX_FUZZ_WRITE_SEEDS")) {
    std::vector<std::string> files;
    for (int i = 1; i < *argc; ++i)
      if (std::string_view((*argv)[i]).ends_with(".shape")) files.push_back((*argv)[i]);
    WriteSeeds(dir, files);
    std::exit(0);
  }
  if (std::getenv("SHAPEX_FUZZ_STATS")) std::atexit([] { g_stats.Print(); });
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  g_last_structural = false;
  if (seed % 8 == 0) return LLVMFuzzerMutate(data, size, max_size);
  shapex_fuzz::SetModel model;
  if (!model.Load(shapex_fuzz::ParseBlobSet(data, size))) return LLVMFuzzerMutate(data, size, max_size);
  shapex_fuzz::BlobSetMutator(&model, seed).Mutate();
  std::vector<uint8_t> out = shapex_fuzz::SerializeBlobSet(model.Rehash());
  if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out.data(), out.size());
  g_last_structural = true;
  return out.size();
}

extern "C" size_t LLVMFuzzerCustomCrossOver(const uint8_t* data1, size_t size1,
                                            const uint8_t* data2, size_t size2, uint8_t* out,
                                            size_t max_out_size, unsigned int seed) {
  g_last_structural = false;
  shapex_fuzz::SetModel a, b;
  if (!a.Load(shapex_fuzz::ParseBlobSet(data1, size1)) || !b.Load(shapex_fuzz::ParseBlobSet(data2, size2)))
    return 0;
  shapex_fuzz::BlobSetMutator(&a, seed).CrossOver(b);
  std::vector<uint8_t> bytes = shapex_fuzz::SerializeBlobSet(a.Rehash());
  if (bytes.size() > max_out_size) return 0;
  std::memcpy(out, bytes.data(), bytes.size());
  g_last_structural = true;
  return bytes.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bool structural = g_last_structural;
  g_last_structural = false;
  ++g_stats.runs;
  g_stats.structural += structural;
  shapex_fuzz::BlobSetInput in = shapex_fuzz::ParseBlobSet(data, size);
  if (in.blobs.empty()) {
    ++g_stats.no_blobs;
    return 0;
  }
  auto linked = ProgramFromBlobs(in.blobs[0].hash, in.blobs, in.impls);
  if (!linked.has_value()) {
    const Status& e = linked.error();
    ErrorKind k = e.kind();
    bool verifier = k == ErrorKind::kInvalidArgument;
    bool hash = k == ErrorKind::kProtocolError &&
                (e.message().find("hash") != std::string::npos ||
                 e.message().find("missing") != std::string::npos ||
                 e.message().find("group") != std::string::npos);
    if (structural) {
      g_stats.s_verifier_fail += verifier;
      g_stats.s_hash_fail += hash;
      g_stats.s_other_link_fail += !verifier && !hash;
      if (!verifier && !hash) ++g_stats.link_errors[e.ToString().substr(0, 60)];
    }
    if (k != ErrorKind::kProtocolError && k != ErrorKind::kInvalidArgument &&
        k != ErrorKind::kMissingModuleFunction && k != ErrorKind::kFunctionNotFound) {
      std::fprintf(stderr, "unexpected link error: %s\n", e.ToString().c_str());
      Check(false, "link errors have a documented kind");
    }
    Check(!verifier || e.message().starts_with("invalid bytecode"),
          "InvalidArgument from linking comes from the bytecode verifier");
    return 0;
  }
  ++g_stats.link_ok;
  g_stats.s_link_ok += structural;
  CheckRebuild(*linked);
  RunEntry(*linked, in.arg_seed);
  return 0;
}
