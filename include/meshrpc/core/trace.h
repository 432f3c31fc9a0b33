// Trace context: the W3C Trace Context `traceparent` header, carried as call metadata.
//
//   traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//                |  |                                |                |
//                |  trace id: 16 bytes, 32 lower-case hex digits, not all zero
//                |                                   parent id: 8 bytes, 16 hex, not zero
//                version: 00 (ff is invalid; a later version may append "-..." fields)
//                                                                     flags: 01 = sampled
//
// Every call has one trace id, shared by the calls made while serving it. A Channel sends
// each attempt with a fresh span id as the parent id (a new trace when the caller sent
// none); a server gives its side of the call its own span id, and ServerContext passes
// "trace id + the server's span id" on to downstream calls (child_call_options()). A
// malformed traceparent is never an error: the receiver starts a fresh trace.
//
// Ids come from Env::random_u64 (never from a global RNG), so they replay under SimEnv.
// Threading: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "meshrpc/core/call.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::core {

// The metadata key (lower case, as W3C specifies for the HTTP header).
inline constexpr std::string_view kTraceparentKey = "traceparent";

struct TraceId {
  uint64_t high = 0;
  uint64_t low = 0;

  bool valid() const { return high != 0 || low != 0; }
  // 32 lower-case hex digits.
  std::string to_hex() const;
  // 32 lower-case hex digits (W3C); nullopt for anything else, including all zeros.
  static std::optional<TraceId> from_hex(std::string_view hex);

  friend bool operator==(const TraceId&, const TraceId&) = default;
};

// 16 lower-case hex digits of a span id.
std::string span_id_hex(uint64_t span_id);

struct TraceParent {
  TraceId trace_id;
  uint64_t parent_id = 0;  // the sender's span
  uint8_t flags = 0;

  // "00-<trace id>-<parent id>-<flags>".
  std::string to_string() const;
  // A valid traceparent, or nullopt: wrong length or separators, anything but lower-case hex
  // digits, version ff,
  // an all-zero trace or parent id, or extra fields after a version-00 header.
  static std::optional<TraceParent> parse(std::string_view text);

  friend bool operator==(const TraceParent&, const TraceParent&) = default;
};

// Sampled: W3C's only defined flag. meshrpc records every call, so it sets it on new traces.
inline constexpr uint8_t kTraceFlagSampled = 0x01;

// A random non-zero span id.
uint64_t new_span_id(runtime::Env& env);
// A random valid trace id.
TraceId new_trace_id(runtime::Env& env);

// The traceparent in `metadata` if it has a valid one.
std::optional<TraceParent> find_traceparent(const Metadata& metadata);
// Sets (replacing every existing) traceparent entry of `metadata` to `value`.
void set_traceparent(Metadata& metadata, const TraceParent& value);

}  // namespace meshrpc::core
