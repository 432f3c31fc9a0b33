// ServerContext: what a handler knows about the call it serves.
//
// The deadline is the client's, converted to this server's clock on arrival (deadlines
// travel as durations). cancelled() turns true when the client cancels, the deadline passes
// or the server shuts down; the same event emits cancellation_slot(), so a handler that
// awaits with the slot bound (or just co_awaits anything, the coroutine carries the slot)
// stops promptly.
//
// Context propagation to calls the handler makes downstream:
//   - deadline and trace metadata are passed explicitly: child_call_options() gives
//     CallOptions with this call's deadline and its propagated metadata (keys starting with
//     kPropagatedMetadataPrefix, and a `traceparent` naming this call's trace and span; see
//     trace.h), so a chain of calls shares one end-to-end deadline and one trace id;
//   - cancellation is carried by the coroutine: the handler runs with the call's
//     cancellation slot, so a downstream call it awaits (even across co_spawn onto another
//     executor, with use_awaitable) is cancelled, and CANCEL sent on, when this call ends.
// Nothing is read from thread-local state.
//
// Threading: the handler's coroutine only (it runs on the connection's executor).
// Lifetime: valid until the handler's coroutine returns.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "meshrpc/core/call.h"
#include "meshrpc/core/trace.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/peer_identity.h"
#include "meshrpc/wire/frame.h"

namespace meshrpc::core {

// Metadata keys with this prefix travel on from a call to the calls its handler makes
// (trace and request ids, baggage).
inline constexpr std::string_view kPropagatedMetadataPrefix = "meshrpc-trace-";

// Which attempt of a call a request is ("2", "3", ...), sent by clients that retry or hedge
// (cluster::Client) with every attempt after the first; absent means the first. Servers show it
// in /rpcz.
inline constexpr std::string_view kAttemptMetadataKey = "meshrpc-attempt";
// The attempt number `metadata` carries: 1 when absent or not a number from 1 to 2^31.
uint32_t attempt_number(const Metadata& metadata);

// The first value of `key` in `metadata`, or nullptr.
const std::string* find_metadata(const Metadata& metadata, std::string_view key);

class ServerContext {
 public:
  ServerContext(runtime::Env& env, std::string method, Metadata metadata,
                runtime::TimePoint deadline, transport::Address peer)
      : env_(env),
        method_(std::move(method)),
        metadata_(std::move(metadata)),
        deadline_(deadline),
        peer_(std::move(peer)) {
    start_trace();
  }

  runtime::Env& env() { return env_; }
  const std::string& method() const { return method_; }
  const Metadata& metadata() const { return metadata_; }
  // Sent back to the client in the trailers.
  Metadata& response_metadata() { return response_metadata_; }
  const transport::Address& peer() const { return peer_; }
  // The peer's verified certificate identity (mTLS), or null: plaintext, or TLS without a
  // client certificate. What authorization rules on identity read (security/).
  const transport::PeerIdentity* peer_identity() const { return peer_identity_.get(); }
  const std::shared_ptr<const transport::PeerIdentity>& shared_peer_identity() const {
    return peer_identity_;
  }
  void set_peer_identity(std::shared_ptr<const transport::PeerIdentity> identity) {
    peer_identity_ = std::move(identity);
  }
  // Who authentication found the caller to be: a security::Principal, set and read through
  // security/principal.h (typed there; core does not know the type). Null until set.
  const std::shared_ptr<const void>& principal_slot() const { return principal_; }
  void set_principal_slot(std::shared_ptr<const void> principal) {
    principal_ = std::move(principal);
  }

  // kInfiniteFuture when the client set none.
  runtime::TimePoint deadline() const { return deadline_; }
  runtime::Duration remaining() const { return deadline_ - env_.now(); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // The trace this call belongs to: the incoming traceparent's, or a new one when the client
  // sent none or a malformed one (never an error). Always valid.
  const TraceId& trace_id() const { return trace_id_; }
  // This server's span of the call (random, non-zero); downstream calls name it as parent.
  uint64_t span_id() const { return span_id_; }
  // The client's span (the incoming traceparent's parent id); 0 when this call started the
  // trace.
  uint64_t parent_span_id() const { return parent_span_id_; }
  // What downstream calls carry: this trace, this call's span as their parent.
  TraceParent child_traceparent() const { return TraceParent{trace_id_, span_id_, trace_flags_}; }

  // The metadata a call made while serving this one carries on: keys starting with
  // kPropagatedMetadataPrefix, and child_traceparent().
  Metadata propagated_metadata() const {
    Metadata out;
    for (const auto& entry : metadata_) {
      if (std::string_view(entry.first).starts_with(kPropagatedMetadataPrefix)) {
        out.push_back(entry);
      }
    }
    set_traceparent(out, child_traceparent());
    return out;
  }

  // Options for a call made while serving this one: same deadline, propagated metadata.
  CallOptions child_call_options() const {
    CallOptions options;
    options.deadline = deadline_;
    options.metadata = propagated_metadata();
    return options;
  }

  // Set by the server when the call ends early (cancel, deadline, shutdown).
  void mark_cancelled() { cancelled_.store(true, std::memory_order_release); }

 private:
  runtime::Env& env_;
  std::string method_;
  Metadata metadata_;
  Metadata response_metadata_;
  runtime::TimePoint deadline_;
  transport::Address peer_;
  std::shared_ptr<const transport::PeerIdentity> peer_identity_;
  std::shared_ptr<const void> principal_;
  void start_trace() {
    if (auto incoming = find_traceparent(metadata_)) {
      trace_id_ = incoming->trace_id;
      parent_span_id_ = incoming->parent_id;
      trace_flags_ = incoming->flags;
    } else {
      trace_id_ = new_trace_id(env_);
    }
    span_id_ = new_span_id(env_);
  }

  TraceId trace_id_;
  uint64_t span_id_ = 0;
  uint64_t parent_span_id_ = 0;
  uint8_t trace_flags_ = kTraceFlagSampled;
  // Atomic: a blocking handler polls it from a worker thread.
  std::atomic<bool> cancelled_{false};
};

}  // namespace meshrpc::core
