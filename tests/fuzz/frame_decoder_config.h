// The fuzz input's first byte configures the decoder; shared by the fuzz target and the test
// that replays the seed corpus, so both read a corpus file the same way.
//   bit 0: server role (else client)
//   bit 1: compression allowed
//   bit 2: tiny limits, so inputs reach every limit check within a few bytes
#pragma once

#include <cstdint>

#include "meshrpc/wire/frame_decoder.h"
#include "meshrpc/wire/limits.h"

namespace meshrpc::wire::fuzz {

inline Role role_for(uint8_t config) {
  return (config & 0x01) != 0 ? Role::kServer : Role::kClient;
}

inline Limits limits_for(uint8_t config) {
  Limits limits;
  limits.allow_compression = (config & 0x02) != 0;
  if ((config & 0x04) != 0) {
    limits.max_frame_bytes = 256;
    limits.max_header_bytes = 128;
    limits.max_metadata_entries = 3;
    limits.max_settings_entries = 4;
    limits.max_stream_id = 1000;
  }
  return limits;
}

}  // namespace meshrpc::wire::fuzz
