// What a client call takes (CallOptions) and what it ends with (CallResult).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/failure_origin.h"
#include "meshrpc/base/idempotency.h"
#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/wire/frame.h"

namespace meshrpc::core {

using Metadata = wire::Metadata;

// Declared in base so that the resilience layer can read it without depending on core.
using ::meshrpc::FailureOrigin;
using ::meshrpc::Idempotency;
using ::meshrpc::idempotency_name;

struct CallOptions {
  // The call fails with DEADLINE_EXCEEDED (and is cancelled on the server) once the earlier
  // of `timeout` from the start and `deadline` passes. Neither: no deadline.
  std::optional<runtime::Duration> timeout;
  runtime::TimePoint deadline = runtime::kInfiniteFuture;
  // Sent with the request (HEADERS).
  Metadata metadata;
  // Set by generated clients from the method's declaration; read by retry and hedging policies.
  Idempotency idempotency = Idempotency::kUnknown;
  // Wait for ready (gRPC's wait-for-ready semantics). Unset: while the endpoint is unreachable
  // or the channel is backing off after a failed connect, the call fails fast with UNAVAILABLE.
  // Set: the call does not fail fast; it waits, queued (and counted against
  // ChannelOptions::max_queued_calls), for a connection, while the channel keeps reconnecting
  // on its backoff schedule. If no connection is up within this long from the call's start, it
  // fails with UNAVAILABLE, not processed, saying it was not ready within N ms and giving the
  // last connect error. Origin FailureOrigin::kTransport, as for a fail-fast call: the cause
  // is the same unreachable endpoint, and outlier detection and failover one layer up must
  // count it against that endpoint, not against a limit of this client (kLocal). The call's
  // deadline still applies: whichever comes first ends the wait, the deadline with
  // DEADLINE_EXCEEDED. Once the call is handed to a connection (sent, or queued there for a
  // stream slot) this bound no longer applies.
  std::optional<runtime::Duration> wait_for_ready;
};

struct CallResult {
  Status status;
  Buffer response;             // when status is OK
  Metadata trailing_metadata;  // from the server's trailers
  // True when the server provably did not run the handler: it rejected the call before
  // dispatch, refused it under GOAWAY, or the request never left this client. Such a call
  // is safe to retry whatever the method (DESIGN.md principle 5).
  bool not_processed = false;
  // Who produced a failed status: this client (kLocal), the connection or the attempt's
  // deadline timer (kTransport), or the server's trailers (kServer). kServer when OK.
  FailureOrigin origin = FailureOrigin::kServer;
  // The response message had arrived before the call failed (gRPC's commit point: such a
  // call is never retried).
  bool committed = false;

  bool ok() const { return status.ok(); }
  Result<Buffer> into_result() && {
    if (!status.ok()) return std::move(status);
    return std::move(response);
  }
};

}  // namespace meshrpc::core
