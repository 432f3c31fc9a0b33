// libFuzzer target for the struct decoder (MESHRPC_STRUCT, codec/struct_codec.h).
//
// Input: bytes as received from a peer, decoded as fuzz::Target, a struct with a member of
// every kind the codec supports (tests/fuzz/struct_decoder_target.h).
//
// Properties checked (a violation traps, which libFuzzer reports with the input):
//   1. No crash, no out-of-bounds read, no unbounded allocation or recursion (ASan/UBSan,
//      -rss_limit_mb); malformed input fails with INVALID_ARGUMENT.
//   2. A decoded value re-encodes to encoded_size() bytes that decode again.
//   3. Decode-encode is idempotent: the second value re-encodes byte-identically.
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "tests/fuzz/struct_decoder_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (const char* violation = meshrpc::codec::fuzz::struct_decoder_violation(bytes)) {
    std::fprintf(stderr, "property violated: %s\n", violation);
    __builtin_trap();
  }
  return 0;
}
