// Content-hash verification of untrusted blobs, shared by the linker (ProgramFromBlobs) and by
// anything that keeps blobs without linking them (VerifyBlobHashes: the on-disk blob store), and
// the dependencies of a blob (BlobDependencies: what a supervisor preloads with it).
#include <unordered_map>

#include "blob_body.h"

namespace shapex::engine {

Status VerifyBlobHash(const FunctionBlob& blob, const BlobBody& body, const BlobLookup& find,
                      std::vector<FunctionHash>* verified) {
  std::string key = HashToHex(blob.hash);
  if (blob.group.empty()) {
    if (body.group_size != 1) return ProtocolError("blob " + key + " lacks its recursion group");
    FunctionHash actual = Sha256(blob.canonical);
    if (actual != blob.hash)
      return ProtocolError("hash mismatch: blob claims " + key + " but its bytes hash to " +
                           HashToHex(actual));
    verified->push_back(actual);
    return Status::Ok();
  }
  if (blob.group.size() != body.group_size || body.group_index >= blob.group.size() ||
      blob.group[body.group_index] != blob.hash)
    return ProtocolError("blob " + key + " has an inconsistent recursion group");
  std::vector<std::vector<uint8_t>> members;
  for (const FunctionHash& h : blob.group) {
    const FunctionBlob* m = find(h);
    if (m == nullptr) return ProtocolError("missing recursion-group member " + HashToHex(h));
    if (m->group != blob.group)
      return ProtocolError("blob " + HashToHex(h) + " has an inconsistent recursion group");
    members.push_back(m->canonical);
  }
  std::vector<FunctionHash> expect = GroupMemberHashes(members);
  for (size_t k = 0; k < expect.size(); ++k) {
    if (expect[k] != blob.group[k])
      return ProtocolError("hash mismatch in recursion group of " + key);
  }
  verified->insert(verified->end(), expect.begin(), expect.end());
  return Status::Ok();
}

Status VerifyBlobHashes(std::span<const FunctionBlob> blobs) {
  std::unordered_map<std::string, const FunctionBlob*> by_hash;
  for (const FunctionBlob& b : blobs) {
    auto [it, inserted] = by_hash.emplace(HashToHex(b.hash), &b);
    if (!inserted && (it->second->canonical != b.canonical || it->second->group != b.group))
      return ProtocolError("two different blobs claim hash " + it->first);
  }
  BlobLookup find = [&by_hash](const FunctionHash& h) -> const FunctionBlob* {
    auto it = by_hash.find(HashToHex(h));
    return it == by_hash.end() ? nullptr : it->second;
  };
  std::unordered_map<std::string, bool> proved;
  for (const FunctionBlob& b : blobs) {
    if (proved.count(HashToHex(b.hash))) continue;
    ASSIGN_OR_RETURN(BlobBody body, DecodeBody(b.canonical));
    std::vector<FunctionHash> verified;
    RETURN_IF_ERROR(VerifyBlobHash(b, body, find, &verified));
    for (const FunctionHash& h : verified) proved.emplace(HashToHex(h), true);
  }
  return Status::Ok();
}

Result<std::vector<FunctionHash>> BlobDependencies(const FunctionBlob& blob) {
  ASSIGN_OR_RETURN(BlobBody body, DecodeBody(blob.canonical));
  std::vector<FunctionHash> out;
  std::unordered_map<std::string, bool> seen{{HashToHex(blob.hash), true}};
  auto add = [&](const FunctionHash& h) {
    if (seen.emplace(HashToHex(h), true).second) out.push_back(h);
  };
  for (const FunctionHash& member : blob.group) add(member);
  for (const BlobFnRef& ref : body.fn_refs)
    if (!ref.in_group) add(ref.hash);
  return out;
}

}  // namespace shapex::engine
