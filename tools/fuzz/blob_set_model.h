// The input of fuzz_blob_struct (a linkable set of function blobs) and its editable model.
//
// Input format ("blob set"):
//
//   "SXBS"                      magic
//   u8  arg_seed                chooses the argument values the entry is called with
//   u8  n_impls (<= 32), then n_impls x (hash type_schema, u8 len + method name, hash function)
//   then up to 32 frames of (u32 length, EncodeBlob bytes); the first blob is the entry
//
// Without the magic the bytes are read as fuzz_link's input (frames only), so that corpus is a
// valid seed corpus here too. Integers are little-endian; parsing is tolerant (a short or
// malformed tail is ignored, a frame that fails DecodeBlob is dropped).
//
// SetModel is the same set decoded for editing: every blob's body (BlobBody), its code as a
// list of instructions whose jumps point at instructions (so inserting or deleting one keeps
// the other jumps right), and its function references resolved to positions in the set.
// Rehash() turns the model back into blobs the way engine/src/blob_build.cc hashes a program
// (Tarjan's components over the references inside the set, callees first; a component of
// more than one function becomes a recursion group ordered by the hash of each member's shape,
// hash_k derived from the group digest), so an edited set passes hash verification and reaches
// the bytecode verifier. References to functions outside the set keep their hash.
#ifndef SHAPEX_TOOLS_FUZZ_BLOB_SET_MODEL_H_
#define SHAPEX_TOOLS_FUZZ_BLOB_SET_MODEL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "blob_body.h"
#include "opcode_info.h"
#include "shapex/engine/blob.h"

namespace shapex_fuzz {

using shapex::engine::BlobBody;
using shapex::engine::FunctionBlob;
using shapex::engine::FunctionHash;
using shapex::engine::ImplEntry;

inline constexpr char kBlobSetMagic[4] = {'S', 'X', 'B', 'S'};
inline constexpr size_t kMaxSetBlobs = 32;
inline constexpr size_t kMaxSetImpls = 32;

struct BlobSetInput {
  uint8_t arg_seed = 0;
  std::vector<ImplEntry> impls;
  std::vector<FunctionBlob> blobs;  // blobs[0] is the entry
};

namespace detail {
struct ByteReader {
  const uint8_t* p;
  size_t left;
  bool Take(void* out, size_t n) {
    if (n > left) return false;
    std::memcpy(out, p, n);
    p += n;
    left -= n;
    return true;
  }
};
inline void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
}  // namespace detail

inline BlobSetInput ParseBlobSet(const uint8_t* data, size_t size) {
  BlobSetInput in;
  detail::ByteReader r{data, size};
  if (size >= 4 && std::memcmp(data, kBlobSetMagic, 4) == 0) {
    r.p += 4;
    r.left -= 4;
    uint8_t n_impls = 0;
    if (!r.Take(&in.arg_seed, 1) || !r.Take(&n_impls, 1)) return in;
    for (uint8_t i = 0; i < n_impls && i < kMaxSetImpls; ++i) {
      ImplEntry e;
      uint8_t len = 0;
      if (!r.Take(e.type_schema.data(), 32) || !r.Take(&len, 1)) return in;
      e.method.resize(len);
      if (!r.Take(e.method.data(), len) || !r.Take(e.function.data(), 32)) return in;
      in.impls.push_back(std::move(e));
    }
  }
  while (in.blobs.size() < kMaxSetBlobs) {
    uint32_t len = 0;
    if (!r.Take(&len, 4) || len > r.left) break;
    auto blob = shapex::engine::DecodeBlob(std::span<const uint8_t>(r.p, len));
    r.p += len;
    r.left -= len;
    if (blob.has_value()) in.blobs.push_back(std::move(*blob));
  }
  return in;
}

inline std::vector<uint8_t> SerializeBlobSet(const BlobSetInput& in) {
  std::vector<uint8_t> out(kBlobSetMagic, kBlobSetMagic + 4);
  out.push_back(in.arg_seed);
  size_t n_impls = std::min(in.impls.size(), kMaxSetImpls);
  out.push_back(static_cast<uint8_t>(n_impls));
  for (size_t i = 0; i < n_impls; ++i) {
    const ImplEntry& e = in.impls[i];
    out.insert(out.end(), e.type_schema.begin(), e.type_schema.end());
    size_t len = std::min<size_t>(e.method.size(), 255);
    out.push_back(static_cast<uint8_t>(len));
    out.insert(out.end(), e.method.begin(), e.method.begin() + static_cast<ptrdiff_t>(len));
    out.insert(out.end(), e.function.begin(), e.function.end());
  }
  for (size_t i = 0; i < in.blobs.size() && i < kMaxSetBlobs; ++i) {
    std::vector<uint8_t> bytes = shapex::engine::EncodeBlob(in.blobs[i]);
    detail::PutU32(&out, static_cast<uint32_t>(bytes.size()));
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  return out;
}

// One instruction of a function's code. `target` is the instruction a jump operand lands on
// (-1: not a jump, or its raw offset lands outside the code or inside an instruction, in
// which case the raw offset is kept).
struct Insn {
  uint32_t word = 0;
  bool has_extra = false;
  uint32_t extra = 0;
  uint32_t line = 0;
  int target = -1;
};

inline bool IsJumpOp(uint32_t op) {
  using shapex::engine::OperandKind;
  return op < static_cast<uint32_t>(shapex::engine::kNumOps) &&
         shapex::engine::kOpInfo[op].b == OperandKind::kJump;
}

struct FnModel {
  BlobBody body;  // fn_refs are rebuilt from `refs` by Rehash
  shapex::engine::BlobDebugInfo debug;
  // Per fn_ref: the position of the target in the set, or -1 with `external` holding its hash.
  struct Ref {
    int target = -1;
    FunctionHash external{};
  };
  std::vector<Ref> refs;
  // The code as instructions; when the words cannot be split (unknown opcode, a cut-off extra
  // word) `insns_ok` is false and body.code is edited as raw words instead.
  std::vector<Insn> insns;
  bool insns_ok = false;

  void SplitCode() {
    insns.clear();
    const std::vector<uint32_t>& code = body.code;
    std::vector<int> at(code.size(), -1);
    for (size_t pc = 0; pc < code.size();) {
      uint32_t op = code[pc] & 0xff;
      if (op >= static_cast<uint32_t>(shapex::engine::kNumOps)) return;
      Insn insn;
      insn.word = code[pc];
      insn.line = pc < debug.lines.size() ? debug.lines[pc] : 0;
      insn.has_extra = shapex::engine::kOpInfo[op].extra;
      if (insn.has_extra) {
        if (pc + 1 >= code.size()) return;
        insn.extra = code[pc + 1];
      }
      at[pc] = static_cast<int>(insns.size());
      insns.push_back(insn);
      pc += insn.has_extra ? 2 : 1;
    }
    size_t pc = 0;
    for (Insn& insn : insns) {
      size_t next = pc + (insn.has_extra ? 2 : 1);
      if (IsJumpOp(insn.word & 0xff)) {
        int64_t t = static_cast<int64_t>(next) + shapex::engine::code::GetSBx(insn.word);
        if (t >= 0 && t < static_cast<int64_t>(code.size())) insn.target = at[static_cast<size_t>(t)];
      }
      pc = next;
    }
    insns_ok = true;
  }

  // Writes `insns` back into body.code and debug.lines, recomputing every jump offset.
  void JoinCode() {
    if (!insns_ok) return;
    std::vector<size_t> pos(insns.size() + 1, 0);
    for (size_t i = 0; i < insns.size(); ++i) pos[i + 1] = pos[i] + (insns[i].has_extra ? 2 : 1);
    body.code.clear();
    debug.lines.clear();
    for (size_t i = 0; i < insns.size(); ++i) {
      Insn& insn = insns[i];
      if (insn.target >= static_cast<int>(insns.size())) insn.target = -1;
      if (insn.target >= 0 && IsJumpOp(insn.word & 0xff)) {
        int64_t off = static_cast<int64_t>(pos[static_cast<size_t>(insn.target)]) -
                      static_cast<int64_t>(pos[i] + 1);
        if (off >= -32768 && off <= 32767)
          insn.word = (insn.word & 0xffff) | (static_cast<uint32_t>(off & 0xffff) << 16);
      }
      body.code.push_back(insn.word);
      debug.lines.push_back(insn.line);
      if (insn.has_extra) {
        body.code.push_back(insn.extra);
        debug.lines.push_back(insn.line);
      }
    }
  }
};

struct SetModel {
  uint8_t arg_seed = 0;
  std::vector<FnModel> fns;  // fns[0] is the entry
  // Impls whose function is in the set point at it by position (-1: keep the raw hash).
  std::vector<ImplEntry> impls;
  std::vector<int> impl_target;

  int Find(const std::vector<FunctionBlob>& blobs, const FunctionHash& h) const {
    for (size_t i = 0; i < blobs.size(); ++i)
      if (blobs[i].hash == h) return static_cast<int>(i);
    return -1;
  }

  // False when no blob body decodes.
  bool Load(const BlobSetInput& in) {
    arg_seed = in.arg_seed;
    std::vector<FunctionBlob> kept;
    for (const FunctionBlob& b : in.blobs) {
      auto body = shapex::engine::DecodeBody(b.canonical);
      if (!body.has_value()) continue;
      kept.push_back(b);
      FnModel fn;
      fn.body = std::move(*body);
      fn.debug = b.debug;
      fns.push_back(std::move(fn));
    }
    for (size_t i = 0; i < fns.size(); ++i) {
      FnModel& fn = fns[i];
      const FunctionBlob& b = kept[i];
      for (const shapex::engine::BlobFnRef& r : fn.body.fn_refs) {
        FunctionHash h{};
        if (!r.in_group) h = r.hash;
        else if (b.group.empty()) h = b.hash;
        else if (r.index < b.group.size()) h = b.group[r.index];
        FnModel::Ref ref;
        ref.target = Find(kept, h);
        ref.external = h;
        fn.refs.push_back(ref);
      }
      fn.SplitCode();
    }
    impls = in.impls;
    for (const ImplEntry& e : impls) impl_target.push_back(Find(kept, e.function));
    return !fns.empty();
  }

  // Hashes every function (see the header comment) and returns the set as blobs.
  BlobSetInput Rehash() {
    for (FnModel& fn : fns) fn.JoinCode();
    const int n = static_cast<int>(fns.size());
    std::vector<FunctionHash> hash(fns.size());
    std::vector<std::vector<uint8_t>> canonical(fns.size());
    std::vector<std::vector<FunctionHash>> group(fns.size());
    for (const std::vector<int>& comp : Components()) {
      auto in_comp = [&](int t) { return std::find(comp.begin(), comp.end(), t) != comp.end(); };
      // Member m's bytes with in-group references resolved through `order` (position -> index).
      auto encode = [&](int m, const std::map<int, uint32_t>& order, uint32_t size) {
        BlobBody body = fns[static_cast<size_t>(m)].body;
        body.group_size = size;
        body.group_index = order.empty() ? 0 : order.at(m);
        body.fn_refs.clear();
        for (const FnModel::Ref& r : fns[static_cast<size_t>(m)].refs) {
          shapex::engine::BlobFnRef ref;
          if (r.target >= 0 && in_comp(r.target)) {
            ref.in_group = true;
            ref.index = order.empty() ? 0 : order.at(r.target);
          } else {
            ref.hash = r.target >= 0 ? hash[static_cast<size_t>(r.target)] : r.external;
          }
          body.fn_refs.push_back(ref);
        }
        return shapex::engine::EncodeBody(body);
      };
      if (comp.size() == 1) {
        size_t m = static_cast<size_t>(comp[0]);
        canonical[m] = encode(comp[0], {}, 1);
        hash[m] = shapex::engine::Sha256(canonical[m]);
        continue;
      }
      uint32_t size = static_cast<uint32_t>(comp.size());
      std::vector<std::pair<FunctionHash, int>> shapes;
      for (int m : comp) shapes.push_back({shapex::engine::Sha256(encode(m, {}, size)), m});
      std::sort(shapes.begin(), shapes.end());
      std::map<int, uint32_t> order;
      for (uint32_t k = 0; k < shapes.size(); ++k) order[shapes[k].second] = k;
      std::vector<std::vector<uint8_t>> members;
      for (auto& [shape, m] : shapes) members.push_back(encode(m, order, size));
      std::vector<FunctionHash> hashes = shapex::engine::GroupMemberHashes(members);
      for (uint32_t k = 0; k < shapes.size(); ++k) {
        size_t m = static_cast<size_t>(shapes[k].second);
        canonical[m] = std::move(members[k]);
        hash[m] = hashes[k];
        group[m] = hashes;
      }
    }
    BlobSetInput out;
    out.arg_seed = arg_seed;
    for (int i = 0; i < n; ++i) {
      FunctionBlob b;
      b.hash = hash[static_cast<size_t>(i)];
      b.canonical = std::move(canonical[static_cast<size_t>(i)]);
      b.group = std::move(group[static_cast<size_t>(i)]);
      b.debug = fns[static_cast<size_t>(i)].debug;
      out.blobs.push_back(std::move(b));
    }
    for (size_t i = 0; i < impls.size(); ++i) {
      ImplEntry e = impls[i];
      if (impl_target[i] >= 0 && impl_target[i] < n) e.function = hash[static_cast<size_t>(impl_target[i])];
      out.impls.push_back(std::move(e));
    }
    return out;
  }

 private:
  // Strongly connected components of the references inside the set, callees first (the set is
  // at most kMaxSetBlobs functions, so plain recursion is fine).
  std::vector<std::vector<int>> Components() const {
    const int n = static_cast<int>(fns.size());
    std::vector<int> index(fns.size(), -1), low(fns.size(), 0), stack;
    std::vector<bool> on_stack(fns.size(), false);
    std::vector<std::vector<int>> out;
    int counter = 0;
    std::function<void(int)> visit = [&](int v) {
      index[v] = low[v] = counter++;
      stack.push_back(v);
      on_stack[v] = true;
      for (const FnModel::Ref& r : fns[static_cast<size_t>(v)].refs) {
        int w = r.target;
        if (w < 0 || w >= n) continue;
        if (index[w] < 0) {
          visit(w);
          low[v] = std::min(low[v], low[w]);
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
      }
      if (low[v] != index[v]) return;
      std::vector<int> comp;
      int w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        comp.push_back(w);
      } while (w != v);
      std::sort(comp.begin(), comp.end());
      out.push_back(std::move(comp));
    };
    for (int v = 0; v < n; ++v)
      if (index[v] < 0) visit(v);
    return out;
  }
};

}  // namespace shapex_fuzz

#endif  // SHAPEX_TOOLS_FUZZ_BLOB_SET_MODEL_H_
