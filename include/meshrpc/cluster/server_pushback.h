// Server pushback, the server's side: a handler tells its callers whether and when they may
// retry the call it is failing (read by cluster::Client; wire meaning in
// resilience/pushback.h).
//
//   if (overloaded) {
//     cluster::push_back_retry_after(ctx, 200ms);   // "try again, but not before 200 ms"
//     co_return unavailable_error("shedding load");
//   }
//   cluster::push_back_do_not_retry(ctx);           // "this failure will repeat; stop"
//
// Pushback only restrains: a retry after the delay still needs a retryable failure, an
// attempt left and the caller's budget. Threading: the handler's, like its ServerContext.
#pragma once

#include "meshrpc/core/server_context.h"
#include "meshrpc/runtime/clock.h"

namespace meshrpc::cluster {

// Clients retry no sooner than `delay` (rounded down to whole ms; capped at
// resilience::kMaxRetryPushback) after the response. Replaces an earlier pushback.
void push_back_retry_after(core::ServerContext& context, runtime::Duration delay);

// Clients do not retry this call at all.
void push_back_do_not_retry(core::ServerContext& context);

}  // namespace meshrpc::cluster
