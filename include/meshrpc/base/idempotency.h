// Idempotency: whether running a method twice is harmless, as its service declares it.
//
// It lives in base, not core, because both the core's CallOptions (which carry it) and the
// resilience layer's retry classification (which reads it) need it, and resilience depends
// only on base and runtime (DESIGN.md). core/call.h re-exports it as core::Idempotency.
#pragma once

#include <cstdint>
#include <string_view>

namespace meshrpc {

// As declared by the standard `idempotency_level` method option in a .proto, or at
// registration. The retry policy reads it: a call that may have run is retried only when its
// method is idempotent (DESIGN.md principle 5).
enum class Idempotency : uint8_t {
  kUnknown,        // may have side effects: never re-sent once it may have run
  kIdempotent,     // side effects, but running it twice equals running it once
  kNoSideEffects,  // a read: safe to retry and to hedge
};

// "IDEMPOTENCY_UNKNOWN", "IDEMPOTENT", "NO_SIDE_EFFECTS", as the .proto option spells them.
std::string_view idempotency_name(Idempotency idempotency);

}  // namespace meshrpc
