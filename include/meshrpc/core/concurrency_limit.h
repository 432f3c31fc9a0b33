// ConcurrencyLimit: the server's hook for a limit on the calls it runs at once that moves with
// load (ServerOptions::concurrency_limit). The server asks it before dispatching each call and
// rejects the call with RESOURCE_EXHAUSTED, before dispatch (so the client may retry it
// elsewhere), when it says no; it reports each admitted call's end.
//
// Declared here, implemented above: core may not depend on resilience (DESIGN.md layers).
// cluster/adaptive_limit.h adapts resilience's AdaptiveConcurrencyLimiter to it.
//
// Threading: implementations must be safe to call from any thread at once: a server's
// connections, and so its calls, live on several io threads.
#pragma once

#include <cstddef>

#include "meshrpc/runtime/clock.h"

namespace meshrpc::core {

class ConcurrencyLimit {
 public:
  virtual ~ConcurrencyLimit() = default;

  // True to run the call, counting it in flight until release(); false to shed it.
  [[nodiscard]] virtual bool try_acquire() = 0;
  // An admitted call ended, `latency` after it was admitted; `ok` when it ended with OK.
  // Called exactly once per successful try_acquire(), on whichever thread the call ran.
  virtual void release(runtime::Duration latency, bool ok) = 0;
  // The current limit, for the message of a shed call.
  virtual size_t limit() const = 0;
};

}  // namespace meshrpc::core
