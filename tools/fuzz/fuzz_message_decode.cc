// libFuzzer target: any byte string is decoded as a WireMessage (ipc/messages.h). Decoding must
// never crash and must fail only with ProtocolError; whatever decodes must re-encode to bytes
// that decode again and re-encode identically (the encoding is canonical).
//
//   cmake --preset fuzz && cmake --build --preset fuzz
//   ./build/fuzz/tools/fuzz_message_decode -max_total_time=600 tests/fuzz/message_decode/
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "shapex/ipc/messages.h"

using namespace shapex;
using namespace shapex::ipc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<WireMessage> message = DecodeMessage(std::span<const uint8_t>(data, size));
  if (!message.has_value()) {
    if (message.error().kind() != ErrorKind::kProtocolError) {
      std::fprintf(stderr, "unexpected error kind: %s\n", message.error().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  std::vector<uint8_t> first = EncodeMessage(*message);
  Result<WireMessage> again = DecodeMessage(first);
  if (!again.has_value()) {
    std::fprintf(stderr, "re-encoded message does not decode: %s\n",
                 again.error().ToString().c_str());
    std::abort();
  }
  if (EncodeMessage(*again) != first) {
    std::fprintf(stderr, "re-encoding is not stable\n");
    std::abort();
  }
  return 0;
}
