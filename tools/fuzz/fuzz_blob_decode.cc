// libFuzzer target: any byte string is decoded as a transport blob and its canonical body.
// Decoding must never crash; whatever decodes must re-encode to the same bytes.
//
//   ./build/fuzz/tools/fuzz_blob_decode -max_total_time=600 tests/fuzz/blob_decode/
#include <cstdio>
#include <cstdlib>

#include "blob_body.h"
#include "shapex/engine/blob.h"

using namespace shapex::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  auto blob = DecodeBlob(in);
  if (blob.has_value()) {
    std::vector<uint8_t> again = EncodeBlob(*blob);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) {
      std::fprintf(stderr, "blob re-encoding differs\n");
      std::abort();
    }
    in = blob->canonical;
  }
  auto body = DecodeBody(in);
  if (body.has_value()) {
    std::vector<uint8_t> again = EncodeBody(*body);
    if (again.size() != in.size() || !std::equal(again.begin(), again.end(), in.begin())) {
      std::fprintf(stderr, "body re-encoding differs\n");
      std::abort();
    }
  }
  return 0;
}
