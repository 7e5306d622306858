#include "shapex/ipc/sidecar.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <unordered_map>

namespace shapex::ipc {
namespace {

// Kinds whose children are values that may hold large data (map keys are skipped: see header).
bool HasValueChildren(WireKind k) {
  switch (k) {
    case WireKind::kArray:
    case WireKind::kMap:
    case WireKind::kStruct:
    case WireKind::kEnum:
    case WireKind::kSome:
    case WireKind::kOk:
    case WireKind::kErr:
    case WireKind::kClosure:
    case WireKind::kCell:  // a captured variable's value
      return true;
    default:
      return false;
  }
}

class Extractor {
 public:
  explicit Extractor(const ExtractOptions& options) : options_(options) {}

  void Walk(WireValue* v, int depth) {
    if (Extract(v)) return;
    // Deeper values are rejected by every decoder anyway; do not recurse without bound.
    if (!HasValueChildren(v->kind) || depth > kMaxWireDepth) return;
    bool is_map = v->kind == WireKind::kMap;
    for (size_t i = 0; i < v->children.size(); ++i) {
      if (is_map && i % 2 == 0) continue;
      Walk(&v->children[i], depth + 1);
    }
  }

  std::vector<Sidecar> Take() { return std::move(sidecars_); }

 private:
  // Replaces `v` by a SidecarRef when it is a large string, typed array or matrix.
  bool Extract(WireValue* v) {
    WireSidecarRef ref;
    std::vector<uint8_t> bytes;
    std::shared_ptr<const SegmentView> segment;
    if (v->kind == WireKind::kString) {
      std::string* s = std::get_if<std::string>(&v->data);
      if (s == nullptr || s->size() < options_.threshold) return false;
      ref.kind = SidecarKind::kString;
      bytes.assign(s->begin(), s->end());
    } else if (v->kind == WireKind::kTypedArray || v->kind == WireKind::kMatrix) {
      WireBuffer* b = std::get_if<WireBuffer>(&v->data);
      if (b == nullptr || (!b->segment && b->bytes.size() < options_.threshold)) return false;
      ref.kind = v->kind == WireKind::kMatrix ? SidecarKind::kMatrix : SidecarKind::kTypedArray;
      ref.elem = b->elem;
      ref.rows = b->rows;
      ref.cols = b->cols;
      bytes = std::move(b->bytes);
      segment = std::move(b->segment);
    } else {
      return false;
    }
    ref.id = static_cast<uint32_t>(sidecars_.size());
    ref.length = segment ? segment->bytes.size() : bytes.size();
    // Bytes in a shared segment are immutable or read-only to the receiver: no checksum. Bytes
    // borrowed from the sender's memory (fd -1) are copied like inline ones.
    bool in_segment = segment && segment->fd >= 0;
    ref.checksum = in_segment || !options_.checksums
                       ? 0
                       : SidecarChecksum(segment ? segment->bytes : std::span<const uint8_t>(bytes));
    if (ref.kind != SidecarKind::kMatrix) ref.rows = ref.cols = 0;
    if (ref.kind != SidecarKind::kTypedArray) ref.elem = engine::ElemKind::kF64;
    sidecars_.push_back(Sidecar{ref.id, ref.kind, std::move(bytes), std::move(segment)});
    *v = WireValue::SidecarRef(ref);
    return true;
  }

  ExtractOptions options_;
  std::vector<Sidecar> sidecars_;
};

class Reassembler {
 public:
  Status Index(std::vector<Sidecar> sidecars) {
    sidecars_ = std::move(sidecars);
    used_.assign(sidecars_.size(), false);
    for (size_t i = 0; i < sidecars_.size(); ++i) {
      if (!by_id_.emplace(sidecars_[i].id, i).second)
        return ProtocolError(fmt::format("two sidecars have id {}", sidecars_[i].id));
    }
    return Status::Ok();
  }

  Status Walk(WireValue* v, int depth) {
    if (v->kind == WireKind::kSidecarRef) return Replace(v);
    if (!HasValueChildren(v->kind)) return Status::Ok();
    if (depth > kMaxWireDepth)
      return ProtocolError(fmt::format("value nested deeper than {} levels", kMaxWireDepth));
    for (WireValue& child : v->children) RETURN_IF_ERROR(Walk(&child, depth + 1));
    return Status::Ok();
  }

  Status CheckAllUsed() const {
    for (size_t i = 0; i < sidecars_.size(); ++i)
      if (!used_[i])
        return ProtocolError(fmt::format("sidecar {} is not referenced", sidecars_[i].id));
    return Status::Ok();
  }

 private:
  Status Replace(WireValue* v) {
    const WireSidecarRef* ref = std::get_if<WireSidecarRef>(&v->data);
    if (ref == nullptr) return ProtocolError("malformed sidecar reference");
    auto it = by_id_.find(ref->id);
    if (it == by_id_.end()) return ProtocolError(fmt::format("missing sidecar {}", ref->id));
    if (used_[it->second])
      return ProtocolError(fmt::format("sidecar {} is referenced twice", ref->id));
    Sidecar& s = sidecars_[it->second];
    std::span<const uint8_t> data = s.data();
    if (!s.segment && s.kind != ref->kind)
      return ProtocolError(fmt::format("sidecar {} holds a {}, the reference wants a {}", ref->id,
                                       SidecarKindName(s.kind), SidecarKindName(ref->kind)));
    if (data.size() != ref->length)
      return ProtocolError(fmt::format("sidecar {} has {} bytes, the reference says {}", ref->id,
                                       data.size(), ref->length));
    if (!s.segment && SidecarChecksum(data) != ref->checksum)
      return ProtocolError(fmt::format("sidecar {} fails its checksum", ref->id));
    used_[it->second] = true;
    switch (ref->kind) {
      case SidecarKind::kString:
        *v = WireValue::String(std::string(data.begin(), data.end()));
        break;
      case SidecarKind::kTypedArray:
        if (static_cast<int>(ref->elem) >= engine::kNumElemKinds ||
            data.size() % engine::ElemSize(ref->elem) != 0)
          return ProtocolError(
              fmt::format("sidecar {} is not a whole number of elements", ref->id));
        *v = s.segment ? WireValue::SharedTypedArray(ref->elem, std::move(s.segment))
                       : WireValue::TypedArray(ref->elem, std::move(s.bytes));
        break;
      case SidecarKind::kMatrix:
        if ((ref->cols != 0 && ref->rows > data.size() / sizeof(double) / ref->cols) ||
            ref->rows * ref->cols * sizeof(double) != data.size())
          return ProtocolError(fmt::format("sidecar {} does not match its matrix shape", ref->id));
        *v = s.segment ? WireValue::SharedMatrix(ref->rows, ref->cols, std::move(s.segment))
                       : WireValue::Matrix(ref->rows, ref->cols, std::move(s.bytes));
        break;
      default:
        return ProtocolError(fmt::format("sidecar {} has an unknown kind", ref->id));
    }
    return Status::Ok();
  }

  std::vector<Sidecar> sidecars_;
  std::vector<bool> used_;
  std::unordered_map<uint32_t, size_t> by_id_;
};

}  // namespace

uint64_t SidecarChecksum(std::span<const uint8_t> bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

bool operator==(const Sidecar& a, const Sidecar& b) {
  auto x = a.data(), y = b.data();
  return a.id == b.id && a.kind == b.kind && std::equal(x.begin(), x.end(), y.begin(), y.end());
}

std::vector<Sidecar> ExtractSidecars(WireValue* value, size_t threshold) {
  return ExtractSidecars(std::vector<WireValue*>{value}, ExtractOptions{threshold, true});
}

std::vector<Sidecar> ExtractSidecars(std::vector<WireValue>* values, size_t threshold) {
  std::vector<WireValue*> roots;
  for (WireValue& v : *values) roots.push_back(&v);
  return ExtractSidecars(std::move(roots), ExtractOptions{threshold, true});
}

std::vector<Sidecar> ExtractSidecars(std::vector<WireValue*> roots, const ExtractOptions& options) {
  Extractor extractor(options);
  for (WireValue* v : roots) extractor.Walk(v, 1);
  return extractor.Take();
}

Status ReassembleSidecars(WireValue* value, std::vector<Sidecar> sidecars) {
  Reassembler r;
  RETURN_IF_ERROR(r.Index(std::move(sidecars)));
  RETURN_IF_ERROR(r.Walk(value, 1));
  return r.CheckAllUsed();
}

Status ReassembleSidecars(std::vector<WireValue>* values, std::vector<Sidecar> sidecars) {
  Reassembler r;
  RETURN_IF_ERROR(r.Index(std::move(sidecars)));
  for (WireValue& v : *values) RETURN_IF_ERROR(r.Walk(&v, 1));
  return r.CheckAllUsed();
}

Status ReassembleSidecars(std::vector<WireValue*> roots, std::vector<Sidecar> sidecars) {
  Reassembler r;
  RETURN_IF_ERROR(r.Index(std::move(sidecars)));
  for (WireValue* v : roots) RETURN_IF_ERROR(r.Walk(v, 1));
  return r.CheckAllUsed();
}

}  // namespace shapex::ipc
